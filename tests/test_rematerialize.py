"""`rematerialize`: a value derived from parameters alone by data movement (MPNet's relative
position bias) is recomputed next to each reader: same results, flops and parameter bytes, and no
edge from the one producer to every layer."""

from __future__ import annotations

import torch
from torch import nn as tnn

from chiplex.compile import compile_module, module_text, run_pipeline
from chiplex.ir.graph import graph_from_module
from chiplex.ir.torch_import import import_with_constants, module_stats
from chiplex.passes import default_pipeline
from chiplex.runtime_sim.simulator import analytic_estimate
from chiplex.testing import assert_pipeline_preserves_semantics


class SharedBias(tnn.Module):
    """A relative-position bias looked up once from a small table at constant buckets and read by
    every layer, as MPNet and T5 do."""

    def __init__(self, layers: int = 3, seq: int = 6, heads: int = 2) -> None:
        super().__init__()
        self.table = tnn.Embedding(8, heads)
        self.register_buffer(
            "buckets", (torch.arange(seq)[None] - torch.arange(seq)[:, None]).abs()
        )
        self.layers = tnn.ModuleList(tnn.Linear(seq, seq) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.table(self.buckets).permute(2, 0, 1)  # [heads, seq, seq]
        for layer in self.layers:
            x = torch.tanh(layer(x) + bias)
        return x


def test_each_reader_gets_its_own_copy_with_the_same_results() -> None:
    module = import_with_constants(SharedBias(heads=4), (torch.randn(4, 6, 6),), weight_dtype="i8")[
        0
    ]
    assert_pipeline_preserves_semantics(module, "rematerialize")
    copied = run_pipeline(module.clone(), "rematerialize")[0]
    text = module_text(copied)
    assert "chiplex.rematerialized = 2" in text  # layers 1 and 2; layer 0 keeps the original
    assert text.count("nn.embedding") == 3 and text.count("nn.transpose") == 3
    g0, g1 = graph_from_module(module), graph_from_module(copied)
    assert g1.flops.sum() == g0.flops.sum()
    assert module_stats(copied).param_bytes == module_stats(module).param_bytes
    assert g1.total_weight_bytes == g0.total_weight_bytes
    # Every lookup has one reader now: nothing derived from the table crosses to another layer.
    lookups = [i for i, kind in enumerate(g1.kinds) if kind == "nn.embedding"]
    successors = g1.successors()
    assert all(len(successors[i]) == 1 for i in lookups)


def test_nothing_changes_without_shared_derived_values() -> None:
    model = tnn.Sequential(tnn.Linear(4, 4), tnn.ReLU())
    module = import_with_constants(model, (torch.randn(1, 4),))[0]
    text = module_text(module)
    assert module_text(run_pipeline(module, "rematerialize")[0]) == text


def test_no_copy_when_its_inputs_outweigh_the_receive_buffers() -> None:
    # 2 heads x 64 x 64 bf16 = 16 KiB of bias from 32 KiB of int64 bucket ids (+ the table): each
    # copy would store more than a reader's two receive buffers, so the value is sent.
    module = import_with_constants(
        SharedBias(layers=3, seq=64, heads=2), (torch.randn(2, 64, 64),), weight_dtype="i8"
    )[0]
    text = module_text(module)
    assert module_text(run_pipeline(module, "rematerialize")[0]) == text
    # 4 heads: 32 KiB of bias, two buffers 64 KiB > 32 KiB of ids: copied.
    module = import_with_constants(
        SharedBias(layers=3, seq=64, heads=4), (torch.randn(4, 64, 64),), weight_dtype="i8"
    )[0]
    assert "chiplex.rematerialized = 2" in module_text(run_pipeline(module, "rematerialize")[0])


def test_default_pipeline_recomputes_instead_of_tying_the_pipeline_together() -> None:
    # MPNet's shape: a 12-head bias read by every layer. Sent from the first stage to all 25 chips
    # of a pipeline, it bounds the period by buffer back-pressure and the first link; recomputed, it
    # does not (MPNet-base on simba-6x6: 84 -> 546 samples/s).
    module = import_with_constants(
        SharedBias(layers=12, seq=128, heads=12), (torch.randn(12, 128, 128),), weight_dtype="i8"
    )[0]
    default = default_pipeline("simba-6x6")
    assert "rematerialize," in default
    recomputed = compile_module(module.clone(), "simba-6x6", pipeline=default)
    sent = compile_module(
        module.clone(), "simba-6x6", pipeline=default.replace("rematerialize,", "")
    )
    assert "chiplex.rematerialized = 11" in module_text(recomputed.module)
    faster = analytic_estimate(recomputed.schedule, recomputed.target).throughput
    slower = analytic_estimate(sent.schedule, sent.target).throughput
    assert faster > 2 * slower
