"""`shard-params`: parameters too large for one chip are split into shards; the sharded function
computes the same results with the same shapes, parameter bytes and flops, compiles where the
unsharded one cannot, and passes `chiplex check`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_torch_import import run_ir
from torch import nn as tnn
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from chiplex.cli import main
from chiplex.compile import compile_module, module_text, run_pipeline
from chiplex.errors import ChiplexError
from chiplex.ir.graph import graph_from_module
from chiplex.ir.parse import parse_module
from chiplex.ir.torch_import import import_with_constants, module_stats
from chiplex.models import bert, example_inputs, gpt2, mlp
from chiplex.passes import default_pipeline

# 4 chips of 2 MiB: a 2-layer BERT (hidden 128) with its 30522-row word table (3.7 MiB in int8)
# fits the module (8 MiB) but its table does not fit a chip.
SMALL_TARGET = """\
name = "small-ring4"
description = "4 chiplets with 2 MiB SRAM each"

[chip]
matrix_ops = { i8 = 16.0e12, bf16 = 8.0e12, f16 = 8.0e12, f32 = 2.0e12 }
vector_ops = { i8 = 1.0e12, bf16 = 1.0e12, f16 = 1.0e12, f32 = 0.5e12 }
sram_bytes = 2097152
sram_bandwidth = 400.0e9

[link]
bandwidth = 4.0e9
latency = 500.0e-9

[topology]
kind = "ring"
num_chips = 4
"""


def _import(model: tnn.Module) -> tuple[ModuleOp, dict[str, torch.Tensor]]:
    return import_with_constants(
        model, example_inputs(model), weight_dtype=None, activation_dtype=None
    )


def _result_types(module: ModuleOp) -> list[object]:
    function = next(op for op in module.ops if isinstance(op, func.FuncOp))
    return list(function.function_type.outputs.data)


def _shard(module: ModuleOp, options: str) -> ModuleOp:
    return run_pipeline(module, f"shard-params{{target=tpu-ring8 {options}}}")[0]


def _check_same_function(model: tnn.Module, options: str, extra_flops: int = 0) -> ModuleOp:
    module, consts = _import(model)
    before_text = module_text(module)
    before, graph_before = module_stats(module), graph_from_module(module)
    types = _result_types(module)
    inputs = example_inputs(model)
    with torch.no_grad():
        expected = run_ir(module, model, inputs, consts)
    sharded = _shard(module, options)
    assert module_text(sharded) != before_text, "nothing was sharded"
    after, graph_after = module_stats(sharded), graph_from_module(sharded)
    assert _result_types(sharded) == types
    assert after.param_elements == before.param_elements
    assert after.param_bytes == before.param_bytes
    assert after.matrix_flops == before.matrix_flops
    assert after.flops == before.flops + extra_flops
    assert graph_after.flops.sum() == graph_before.flops.sum() + extra_flops
    with torch.no_grad():
        got = run_ir(sharded, model, inputs, consts)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g.float(), e.float(), atol=1e-4, rtol=1e-4)
    return sharded


def test_vocabulary_parallel_embedding_and_tied_head() -> None:
    """GPT-2 with its token table read by the embedding and, transposed, by the tied LM head."""
    model = gpt2(1, 64, 4, seq=16, with_embeddings=True, vocab_size=1000)
    sharded = _check_same_function(model, "max_bytes=100000")
    text = module_text(sharded)
    # 1000 x 64 f32 = 256000 bytes -> 3 shards of 334, 333, 333 rows.
    assert text.count('shard_of = "wte.weight"') == 3
    assert text.count("nn.embedding_shard") == 3
    assert "row_offset = 667" in text
    # The head reads the same three shards, transposed, as output-column pieces.
    lm_head = [op for op in sharded.walk() if op.name == "nn.concat"]
    assert any(op.results[0].type.get_shape()[-1] == 1000 for op in lm_head)  # type: ignore[attr-defined]
    graph = graph_from_module(sharded)
    assert "wte.weight" not in {p for names in graph.param_names for p in names}


def test_weight_bytes_per_op_add_up_to_the_table() -> None:
    model = bert(1, 64, 4, seq=16, with_embeddings=True, vocab_size=1000)
    module, _ = _import(model)
    sharded = _shard(module, "max_bytes=100000")
    g0, g1 = graph_from_module(module), graph_from_module(sharded)
    assert g1.weight_bytes.sum() == g0.weight_bytes.sum()


def test_column_split_linear_keeps_flops_exact() -> None:
    model = mlp(32, 512, 2, 10, batch=4)
    sharded = _check_same_function(model, "max_bytes=40000")
    assert any(op.name == "nn.concat" for op in sharded.walk())


def test_row_split_linear_adds_exactly_the_partial_sums() -> None:
    model = mlp(32, 512, 2, 10, batch=4)
    # f32 weights over 40000 bytes: the 32 x 512 input layer (65536 bytes) in 2 row pieces and
    # the 512 x 512 hidden layer (1 MiB) in 27; each extra piece adds one [4, 512] partial sum.
    extra = (2 - 1) * 4 * 512 + (27 - 1) * 4 * 512
    sharded = _check_same_function(model, "max_bytes=40000 linear_split=row", extra_flops=extra)
    assert not any(op.name == "nn.concat" for op in sharded.walk())


def test_nothing_changes_when_every_parameter_fits() -> None:
    model = bert(1, 64, 4, seq=16)
    module, _ = _import(model)
    text = module_text(module)
    assert module_text(_shard(module, "")) == text


def test_small_bert_with_embeddings_compiles_only_with_sharding(tmp_path: Path) -> None:
    target = tmp_path / "small.toml"
    target.write_text(SMALL_TARGET)
    model = bert(2, hidden=128, heads=4, seq=32, with_embeddings=True)
    module, _ = import_with_constants(model, example_inputs(model))
    text = module_text(module)
    # Without host-embeddings (which would keep the table on the host instead): shard-params alone.
    sharding = default_pipeline(str(target)).replace(f'host-embeddings{{target="{target}"}},', "")
    unsharded = sharding.replace(f'shard-params{{target="{target}"}},', "")
    assert "shard-params" not in unsharded and "host-embeddings" not in sharding
    with pytest.raises(ChiplexError, match="embeddings.word.weight"):
        compile_module(parse_module(text), str(target), pipeline=unsharded)
    result = compile_module(parse_module(text), str(target), pipeline=sharding)
    assert result.schedule is not None
    assert "nn.embedding_shard" in result.placed_ir
    # The placed IR is legal by `chiplex check`, as a user would run it.
    placed = tmp_path / "placed.mlir"
    placed.write_text(result.placed_ir)
    assert main(["check", str(placed), "--target", str(target)]) == 0


def test_a_parameter_that_cannot_be_sharded_is_named_with_its_size() -> None:
    model = tnn.Sequential(tnn.Conv2d(64, 64, 3), tnn.ReLU())
    module, _ = import_with_constants(model, (torch.randn(1, 64, 8, 8),), weight_dtype="i8")
    with pytest.raises(ChiplexError) as info:
        _shard(module, "max_bytes=10000")
    message = str(info.value)
    assert "parameter '0.weight' (0.04 MiB, 64x64x3x3)" in message
    assert "read by nn.conv2d" in message
    assert "at most 0.01 MiB would fit" in message


def test_a_single_row_larger_than_the_budget_says_what_would_fit() -> None:
    model = tnn.Embedding(4, 50000)
    module, _ = import_with_constants(model, (torch.zeros(2, dtype=torch.long),))
    with pytest.raises(ChiplexError, match=r"a budget of at least 0\.05 MiB would fit"):
        _shard(module, "max_bytes=10000")


def test_bad_options_are_reported() -> None:
    module, _ = _import(mlp(8, 8, 1, 2, batch=1))
    with pytest.raises(ChiplexError, match="linear_split must be 'column' or 'row'"):
        _shard(module, "linear_split=diagonal")
