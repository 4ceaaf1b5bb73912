"""`split-rows`: a feed-forward block tiled by rows computes the same results with the same shapes,
flops and parameter bytes, needs a smaller working set per op, and is what lets the default
pipeline place a model whose whole blocks leave no room on a chip (then `chiplex check` passes)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn as tnn

from chiplex.cli import main
from chiplex.compile import compile_module, module_text, run_pipeline
from chiplex.errors import ChiplexError
from chiplex.ir.graph import graph_from_module
from chiplex.ir.parse import parse_module
from chiplex.ir.torch_import import import_with_constants, module_stats
from chiplex.passes.split_rows import row_blocks
from chiplex.targets.solver import InfeasibleError
from chiplex.testing import assert_pipeline_preserves_semantics


class FeedForward(tnn.Module):
    """Pre-norm residual feed-forward block, as in BERT/ViT, then a gated one (not a chain)."""

    def __init__(self, d: int = 16, f: int = 64, gated: bool = True) -> None:
        super().__init__()
        self.gated = gated
        self.norm = tnn.LayerNorm(d)
        self.up, self.down = tnn.Linear(d, f), tnn.Linear(f, d)
        self.gate, self.value, self.out = tnn.Linear(d, f), tnn.Linear(d, f), tnn.Linear(f, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.down(torch.nn.functional.gelu(self.up(self.norm(x))))
        if not self.gated:
            return x
        return x + self.out(torch.nn.functional.silu(self.gate(x)) * self.value(x))


def _module(gated: bool = True):  # type: ignore[no-untyped-def]
    return import_with_constants(
        FeedForward(gated=gated), (torch.randn(1, 10, 16),), weight_dtype="i8"
    )[0]


def _one_chip_target(path: Path, sram: int) -> str:
    path.write_text(
        f'name = "one"\n[chip]\nmatrix_ops = {{ i8 = 1.0e12, bf16 = 1.0e12, f32 = 1.0e12 }}\n'
        f"vector_ops = {{ i8 = 1.0e12, bf16 = 1.0e12, f32 = 1.0e12 }}\nsram_bytes = {sram}\n"
        "sram_bandwidth = 1.0e12\n[link]\nbandwidth = 1.0e9\nlatency = 1.0e-9\n"
        '[topology]\nkind = "ring"\nnum_chips = 1\n'
    )
    return str(path)


def test_plain_and_gated_feed_forward_blocks_are_split() -> None:
    module = _module()
    plain, gated = row_blocks(next(iter(module.ops)))
    assert [op.name for op in plain.chain] == ["nn.add", "nn.gelu"]
    # The gated block is split along its gate branch; the value branch is read by rows.
    assert [op.name for op in gated.chain] == ["nn.add", "nn.silu", "nn.mul"]
    assert_pipeline_preserves_semantics(module, "split-rows{chunks=3}")
    split = run_pipeline(module.clone(), "split-rows{chunks=3}")[0]
    text = module_text(split)
    assert text.count(".rows0") >= 8  # matmul, bias add, activation, matmul of each first slice
    assert "up.matmul.rows2" in text and "gate.matmul.rows2" in text
    assert "value.matmul.rows" not in text  # the value branch is whole, sliced for the product
    assert "chiplex.split_rows = 2" in text


def test_same_results_shapes_flops_and_parameter_bytes() -> None:
    module = _module(gated=False)
    assert_pipeline_preserves_semantics(module, "split-rows{chunks=3}")
    split = run_pipeline(module.clone(), "split-rows{chunks=3}")[0]
    before, after = module_stats(module), module_stats(split)
    assert (after.flops, after.matrix_flops) == (before.flops, before.matrix_flops)
    assert (after.param_bytes, after.param_elements) == (before.param_bytes, before.param_elements)
    g0, g1 = graph_from_module(module), graph_from_module(split)
    assert g1.flops.sum() == g0.flops.sum()
    assert g1.total_weight_bytes == g0.total_weight_bytes
    functions = [next(iter(m.ops)) for m in (module, split)]
    assert functions[0].function_type == functions[1].function_type  # type: ignore[attr-defined]
    # The widened activation (10 x 64 bf16, in and out of the GELU) is what shrinks.
    assert g1.working_set_bytes.max() < g0.working_set_bytes.max()


def test_min_bytes_keeps_small_blocks_whole() -> None:
    module = _module()
    text = module_text(module)
    assert module_text(run_pipeline(module, "split-rows{min_bytes=100000}")[0]) == text
    with pytest.raises(ChiplexError, match="chunks must be >= 2"):
        run_pipeline(_module(), "split-rows{chunks=1}")


def test_default_pipeline_splits_only_when_the_whole_blocks_do_not_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _module(gated=False)
    text = module_text(module)
    graph = graph_from_module(module)
    split_graph = graph_from_module(run_pipeline(module.clone(), "split-rows{chunks=2}")[0])
    weights = graph.total_weight_bytes
    whole, tiled = graph.working_set_bytes.max(), split_graph.working_set_bytes.max()
    # Room for the weights and the tiled working set, not for the whole block's.
    tight = _one_chip_target(tmp_path / "tight.toml", int(weights + (whole + tiled) // 2))
    with pytest.raises(InfeasibleError):
        compile_module(parse_module(text), tight, pipeline=_plain(tight))
    result = compile_module(parse_module(text), tight)
    assert "chiplex.split_rows" in result.placed_ir
    placed = tmp_path / "placed.mlir"
    placed.write_text(result.placed_ir)
    assert main(["check", str(placed), "--target", tight]) == 0
    source = tmp_path / "ffn.mlir"
    source.write_text(text)
    assert main(["compile", str(source), "--target", tight, "-o", str(tmp_path / "o")]) == 0
    assert (
        "split-rows: 1 blocks (feed-forward, attention) run in row slices"
        in capsys.readouterr().out
    )
    # With room for the whole blocks nothing is split.
    roomy = _one_chip_target(tmp_path / "roomy.toml", int(weights + whole) * 2)
    assert "split_rows" not in compile_module(parse_module(text), roomy).placed_ir


def test_no_placement_even_split_says_both(tmp_path: Path) -> None:
    module = _module(gated=False)
    room = graph_from_module(module).total_weight_bytes + 64  # every param fits, no working set
    with pytest.raises(InfeasibleError, match="blocks split by rows too"):
        compile_module(module, _one_chip_target(tmp_path / "t.toml", room))


def _plain(target: str) -> str:
    from chiplex.passes import default_pipeline

    return default_pipeline(target)


class Attention(tnn.Module):
    """Scores -> scale -> key mask -> softmax -> weighted sum, and a causal one whose [T, T] mask
    has the row axis (sliced with the rows)."""

    def __init__(self, d: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = tnn.Linear(d, 3 * d)
        key_mask = torch.zeros(1, 1, 1, 12).masked_fill(torch.arange(12) >= 10, float("-inf"))
        self.register_buffer("key_mask", key_mask)
        self.register_buffer("causal", torch.full((12, 12), float("-inf")).triu(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (
            y.reshape(b, t, self.heads, d // self.heads).transpose(1, 2)
            for y in self.qkv(x).chunk(3, dim=-1)
        )
        scores = (q @ k.transpose(-1, -2)) * (d // self.heads) ** -0.5
        out = torch.softmax(scores + self.key_mask, dim=-1) @ v
        causal = torch.softmax(q @ k.transpose(-1, -2) + self.causal, dim=-1) @ v
        return (out + causal).transpose(1, 2).reshape(b, t, d)


def test_attention_scores_are_split_by_query_rows() -> None:
    module = import_with_constants(Attention(), (torch.randn(1, 12, 16),), weight_dtype="i8")[0]
    keyed, causal = row_blocks(next(iter(module.ops)))
    assert keyed.first.name == keyed.last.name == "nn.batch_matmul"
    assert [op.name for op in keyed.chain] == ["nn.mul", "nn.add", "nn.softmax"]
    assert [op.name for op in causal.chain] == ["nn.add", "nn.softmax"]
    pipeline = "split-rows{chunks=2 max_bytes=300}"
    assert_pipeline_preserves_semantics(module, pipeline)
    split = run_pipeline(module.clone(), pipeline)[0]
    g0, g1 = graph_from_module(module), graph_from_module(split)
    assert g1.flops.sum() == g0.flops.sum()
    # max_bytes asks for more slices than `chunks`: each slice's scores are a few rows.
    softmaxes = [op for op in split.walk() if op.name == "nn.softmax"]
    expected = [min(12, math.ceil(b.working_set() / 300)) for b in (keyed, causal)]
    assert len(softmaxes) == sum(expected)
    # The causal mask is read a slice of rows at a time.
    mask_slices = [
        op
        for op in split.walk()
        if op.name == "nn.slice" and op.operands[0].type.get_shape() == (12, 12)  # type: ignore[attr-defined]
    ]
    assert len(mask_slices) == expected[1]


class Conv1DGelu(tnn.Module):
    """GPT-2's MLP as Hugging Face writes it: `addmm` on [tokens, features] views and the tanh
    GELU, which reads its input four times (a region of row-wise ops, not a chain)."""

    def __init__(self, d: int = 16, f: int = 64) -> None:
        super().__init__()
        self.w_fc, self.b_fc = tnn.Parameter(torch.randn(d, f) / 4), tnn.Parameter(torch.randn(f))
        self.w_proj = tnn.Parameter(torch.randn(f, d) / 8)
        self.b_proj = tnn.Parameter(torch.randn(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.addmm(self.b_fc, x.view(-1, x.shape[-1]), self.w_fc).view(*x.shape[:-1], -1)
        h = 0.5 * h * (1.0 + torch.tanh(0.7978845608 * (h + 0.044715 * torch.pow(h, 3.0))))
        y = torch.addmm(self.b_proj, h.view(-1, h.shape[-1]), self.w_proj)
        return y.view(*x.shape[:-1], -1)


def test_a_region_with_reused_values_and_unit_reshapes_is_split() -> None:
    module = import_with_constants(Conv1DGelu(), (torch.randn(1, 10, 16),), weight_dtype="i8")[0]
    (block,) = row_blocks(next(iter(module.ops)))
    kinds = [op.name for op in block.chain]
    assert "nn.tanh" in kinds and "nn.reshape" in kinds and "nn.pow" in kinds
    assert_pipeline_preserves_semantics(module, "split-rows{chunks=3}")
    split = run_pipeline(module.clone(), "split-rows{chunks=3}")[0]
    g0, g1 = graph_from_module(module), graph_from_module(split)
    assert g1.flops.sum() == g0.flops.sum()
    assert g1.working_set_bytes.max() < g0.working_set_bytes.max()


def test_no_retry_when_the_weights_alone_exceed_the_module(tmp_path: Path) -> None:
    module = _module(gated=False)
    graph = graph_from_module(module)
    largest = int(graph.param_bytes.max())
    # Every parameter fits a chip (nothing to shard), all of them together do not.
    assert largest < graph.total_weight_bytes - 64
    target = _one_chip_target(tmp_path / "t.toml", graph.total_weight_bytes - 64)
    with pytest.raises(InfeasibleError) as info:
        compile_module(module, target)
    assert "total weights" in str(info.value) and "split by rows" not in str(info.value)
