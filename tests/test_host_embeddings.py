"""`host-embeddings`: a token table too large for one chip is looked up by the host; the module
takes the gathered rows as a new argument, computes the same results (the interpreter runs the
host step), compiles where the table would not fit, and passes `chiplex check`."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_shard_params import SMALL_TARGET
from xdsl.dialects import func

from chiplex.cli import main
from chiplex.compile import compile_module, module_text, run_pipeline
from chiplex.errors import ChiplexError
from chiplex.ir import interpret
from chiplex.ir.graph import graph_from_module
from chiplex.ir.host_lookup import host_lookups
from chiplex.ir.parse import parse_module
from chiplex.ir.torch_import import import_with_constants, module_stats
from chiplex.models import bert, example_inputs, gpt2
from chiplex.testing import assert_pipeline_preserves_semantics

SMALL_BERT = dict(hidden=64, heads=4, seq=16, with_embeddings=True, vocab_size=1000)


def _small_bert():  # type: ignore[no-untyped-def]
    model = bert(2, **SMALL_BERT)  # type: ignore[arg-type]
    return import_with_constants(model, example_inputs(model))[0]


def test_the_token_table_moves_to_the_host_with_the_same_results() -> None:
    module = _small_bert()
    pipeline = "host-embeddings{max_bytes=20000}"
    assert_pipeline_preserves_semantics(module, pipeline)
    moved = run_pipeline(module.clone(), pipeline)[0]
    (lookup,) = host_lookups(moved)
    assert lookup.table == "embeddings.word.weight"
    assert lookup.table_type.get_shape() == (1000, 64)
    assert (lookup.ids, lookup.arg) == (0, 1)
    function = next(op for op in moved.ops if isinstance(op, func.FuncOp))
    assert [t.get_shape() for t in function.function_type.inputs.data] == [(1, 16), (1, 16, 64)]
    assert (
        function.function_type.outputs
        == next(op for op in module.ops if isinstance(op, func.FuncOp)).function_type.outputs
    )
    # Flops unchanged (a lookup has none); the parameter bytes drop by exactly the table's.
    before, after = module_stats(module), module_stats(moved)
    assert after.flops == before.flops
    assert before.param_bytes - after.param_bytes == lookup.table_bytes == 1000 * 64
    # The graph now reads the rows from the host and no longer the ids.
    assert graph_from_module(moved).input_bytes.sum() == lookup.rows_bytes


def test_the_lowered_module_runs_on_its_own_given_the_rows() -> None:
    module = _small_bert()
    params = interpret.random_parameters(module, 0)
    (ids,) = interpret.random_inputs(module, 0)
    expected = interpret.run(module, [ids], params)
    moved = run_pipeline(module.clone(), "host-embeddings{max_bytes=20000}")[0]
    rows = params["embeddings.word.weight"][ids]
    got = interpret.run(moved, [ids, rows], params)  # the host's rows supplied by the caller
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and abs(g - e).max() < 1e-5


def test_a_tied_table_stays_for_shard_params() -> None:
    """GPT-2's token table is also the LM head's weight: the host cannot take it."""
    model = gpt2(1, 64, 4, seq=16, with_embeddings=True, vocab_size=1000)
    module = import_with_constants(model, example_inputs(model))[0]
    text = module_text(module)
    assert module_text(run_pipeline(module, "host-embeddings{max_bytes=20000}")[0]) == text


def test_nothing_moves_when_every_table_fits_a_chip() -> None:
    module = _small_bert()
    text = module_text(module)
    assert module_text(run_pipeline(module, "host-embeddings{target=tpu-ring8}")[0]) == text


def test_default_pipeline_compiles_with_the_table_on_the_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "small.toml"
    target.write_text(SMALL_TARGET)
    model = bert(2, hidden=128, heads=4, seq=32, with_embeddings=True)
    module, _ = import_with_constants(model, example_inputs(model))
    text = module_text(module)
    result = compile_module(parse_module(text), str(target))
    assert result.schedule is not None
    assert "nn.embedding_shard" not in result.placed_ir
    assert "chiplex.host_lookups" in result.placed_ir
    assert result.graph.total_weight_bytes < module_stats(module).param_bytes
    placed = tmp_path / "placed.mlir"
    placed.write_text(result.placed_ir)
    assert main(["check", str(placed), "--target", str(target)]) == 0
    # As a user: the compile summary says what the host does and what it sends.
    source = tmp_path / "bert.mlir"
    source.write_text(text)
    out_dir = str(tmp_path / "o")
    args = ["compile", str(source), "--target", str(target), "-o", out_dir, "--check-semantics"]
    assert main(args) == 0
    out = capsys.readouterr().out
    # The chiplets' program, given the ids alone, runs the host step first: same results.
    assert "semantics kept" in out
    assert "host lookup: table 'embeddings.word.weight' (30522x128 i8, 3.73 MiB)" in out
    assert "sends them as input 1 (1x32x128 bf16): 8.0 KiB per sample" in out


def test_missing_table_for_the_host_step_is_reported() -> None:
    module = _small_bert()
    moved = run_pipeline(module.clone(), "host-embeddings{max_bytes=20000}")[0]
    params = interpret.random_parameters(module, 0)
    del params["embeddings.word.weight"]
    with pytest.raises(ChiplexError, match="host looks up rows of table 'embeddings.word.weight'"):
        interpret.run(moved, interpret.random_inputs(module, 0), params)
