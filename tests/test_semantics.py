"""Every chiplex pass (and the example plugin pass) preserves what a program computes, checked with
`chiplex.testing.assert_pipeline_preserves_semantics` on hypothesis-generated programs; the check
itself catches a pass that changes the meaning."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType, bf16, i8, i64
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from chiplex.ir import nn
from chiplex.ir.mcm import ProgramOp
from chiplex.passes import PASSES, load_plugin, register_pass
from chiplex.testing import assert_pipeline_preserves_semantics, nn_programs, tight_target

ROOT = Path(__file__).parents[1]
PLUGIN = ROOT / "examples" / "passes" / "decompose_softmax.py"
# The default pipeline's passes in order; the first two take the target (see `lowering`).
LOWERING = [
    "shard-params",
    "annotate-costs",
    "place",
    "legalize-placement",
    "insert-transfers",
    "split-chiplets",
]
TARGETED = {"shard-params", "annotate-costs"}
EXAMPLES = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def lowering(target: str, passes: list[str] = LOWERING) -> str:
    """The pipeline text of `passes`, the target given to those that take one."""
    return ",".join(f'{p}{{target="{target}"}}' if p in TARGETED else p for p in passes)


@pytest.mark.parametrize("last", range(1, len(LOWERING) + 1))
@EXAMPLES
@given(module=nn_programs())
def test_every_chiplex_pass_preserves_meaning_bit_for_bit(
    last: int, module: ModuleOp, tmp_path: Path
) -> None:
    """The default pipeline's passes in turn: they only annotate and move ops (every parameter fits
    a chip, so shard-params keeps the program as it is), so the results are bit-identical on a
    target small enough to force a split over several chips. `test_shard_params_preserves_meaning`
    covers shard-params where it rewrites."""
    target = tight_target(module, tmp_path)
    assert_pipeline_preserves_semantics(
        module, lowering(target, LOWERING[:last]), bit_identical=True
    )


@EXAMPLES
@given(module=nn_programs())
def test_the_example_plugin_pass_preserves_meaning(module: ModuleOp, tmp_path: Path) -> None:
    load_plugin(str(PLUGIN))
    target = tight_target(module, tmp_path)
    assert_pipeline_preserves_semantics(
        module,
        "decompose-softmax," + lowering(target),
        rtol=1e-6,
    )


def test_tight_targets_really_split(tmp_path: Path) -> None:
    from chiplex.compile import run_pipeline
    from chiplex.semantics import random_programs

    spread = 0
    for module in random_programs(10, seed=4, max_ops=10):
        target = tight_target(module, tmp_path)
        run_pipeline(module, lowering(target))
        program = next(op for op in module.ops if isinstance(op, ProgramOp))
        spread += sum(len(c.block.ops) > 1 for c in program.chiplets) >= 2
    assert spread >= 8


# A pass that changes the meaning: GELU becomes ReLU (close, but not the same function).
class _GeluToRelu(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.GeluOp, rewriter: PatternRewriter, /) -> None:
        rewriter.replace(op, [nn.ReluOp(op.input)])


@dataclass(frozen=True)
class WrongGelu(ModulePass):
    name = "test-wrong-gelu"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        walker = PatternRewriteWalker(GreedyRewritePatternApplier([_GeluToRelu()]))
        walker.rewrite_module(op)


def test_the_check_catches_a_pass_that_changes_meaning() -> None:
    from chiplex.semantics import random_programs

    register_pass(WrongGelu)
    try:
        caught = 0
        for module in random_programs(40, seed=2):
            if not any(isinstance(op, nn.GeluOp) for op in module.walk()):
                continue
            with pytest.raises(AssertionError, match="'test-wrong-gelu' changed what the program"):
                assert_pipeline_preserves_semantics(module, "test-wrong-gelu")
            caught += 1
        assert caught >= 3
    finally:
        PASSES.pop(WrongGelu.name, None)


def test_bit_identical_is_stricter_than_a_tolerance() -> None:
    from chiplex.semantics import random_programs

    module = next(
        m for m in random_programs(40, seed=2) if any(isinstance(o, nn.SoftmaxOp) for o in m.walk())
    )
    load_plugin(str(PLUGIN))
    assert_pipeline_preserves_semantics(module, "decompose-softmax", rtol=1e-6)


NORMS = ROOT / "examples" / "passes" / "decompose_norms.py"


@EXAMPLES
@given(module=nn_programs())
def test_a_user_pass_decomposing_layer_norm_and_gelu_preserves_meaning(module: ModuleOp) -> None:
    load_plugin(str(NORMS))
    assert_pipeline_preserves_semantics(module, "decompose-norms", rtol=1e-5)


def test_the_user_pass_on_a_real_model_and_through_the_cli(tmp_path: Path) -> None:
    from chiplex.cli import main
    from chiplex.ir.parse import load_module

    load_plugin(str(NORMS))
    module = load_module(ROOT / "examples" / "models" / "bert_layer.mlir")
    comparison = assert_pipeline_preserves_semantics(module, "decompose-norms", rtol=1e-5)
    assert comparison.max_rel > 0  # a different summation order: close, not identical
    pipeline = (
        "decompose-norms,annotate-costs{target=tpu-ring8},place,legalize-placement,"
        "insert-transfers,split-chiplets"
    )
    out = tmp_path / "out"
    args = ["compile", str(ROOT / "examples" / "models" / "bert_layer.mlir")]
    assert main([*args, "--plugin", str(NORMS), "--pipeline", pipeline, "-o", str(out)]) == 0


@pytest.mark.parametrize("kind", ["transformer", "convnet", "mlp", "hybrid"])
def test_synthetic_graphs_placed_and_split_are_bit_identical(kind: str, tmp_path: Path) -> None:
    """The learned placer's training graphs: realistic sizes, every family."""
    from chiplex.ir.synthetic import SyntheticConfig, random_graph

    module = random_graph(1, kind, SyntheticConfig(max_blocks=1))
    target = tight_target(module, tmp_path)
    assert_pipeline_preserves_semantics(module, lowering(target), bit_identical=True)


WRONG_PLUGIN = '''
from dataclasses import dataclass

from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern,
)

from chiplex.ir import nn


class TanhGelu(RewritePattern):
    """A user's 'GELU' lowering that forgets the 1 + ...: wrong."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.GeluOp, rewriter, /):
        t = nn.TanhOp(op.input)
        rewriter.replace(op, [t, nn.MulOp(op.input, t)])


@dataclass(frozen=True)
class BadGelu(ModulePass):
    name = "bad-gelu"

    def apply(self, ctx, op):
        PatternRewriteWalker(GreedyRewritePatternApplier([TanhGelu()])).rewrite_module(op)
'''


def test_compile_check_semantics_catches_a_wrong_user_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chiplex.cli import main

    plugin = tmp_path / "bad_gelu.py"
    plugin.write_text(WRONG_PLUGIN)
    model = str(ROOT / "examples" / "models" / "bert_layer.mlir")
    lowering = (
        "annotate-costs{target=tpu-ring8},place,legalize-placement,insert-transfers,split-chiplets"
    )
    out = tmp_path / "out"
    args = ["compile", model, "--plugin", str(plugin), "--check-semantics", "-o", str(out)]
    assert main([*args, "--pipeline", f"bad-gelu,{lowering}"]) == 1
    err = capsys.readouterr().err
    assert "--check-semantics: the pipeline changed what the program computes" in err
    assert "Traceback" not in err and not out.exists()
    assert main([*args, "--pipeline", lowering]) == 0
    assert "semantics kept: bit-identical" in capsys.readouterr().out


# -- shard-params where it rewrites: a parameter larger than one chip -----------------------------

# 16 slow chips of 4000 bytes: a token table of 260+ rows x 16 (i8) does not fit one chip, so
# shard-params splits it into shards of at most a quarter chip (1000 bytes).
SHARD_TARGET = """\
name = "tiny-ring8"
[chip]
matrix_ops = { i8 = 1.0e6, bf16 = 1.0e6, f32 = 1.0e6 }
vector_ops = { i8 = 1.0e6, bf16 = 1.0e6, f32 = 1.0e6 }
sram_bytes = 4000
sram_bandwidth = 1.0e12
# One receive buffer per edge: with double buffering these 4000-byte chips leave the sharded
# programs no legal placement, and this test is about what sharding computes, not about buffers.
buffers_per_edge = 1
[link]
bandwidth = 1.0e12
latency = 1.0e-12
[topology]
kind = "ring"
num_chips = 16
"""


@st.composite
def shardable_programs(draw: st.DrawFn) -> ModuleOp:
    """Token ids -> embedding (a table too large for a SHARD_TARGET chip) + a slice of a position
    table, then maybe a linear layer whose weight is too large too, then a small linear head."""
    act, weight = bf16, i8
    b, t = 1, 2
    vocab, dim = draw(st.integers(260, 320)), 16
    ops: list[Operation] = []

    def emit(op: Operation) -> SSAValue:
        ops.append(op)
        return op.results[0]

    def param(name: str, shape: list[int]) -> SSAValue:
        return emit(nn.ParamOp(name, TensorType(weight, shape)))

    block = Block(arg_types=[TensorType(i64, [b, t])])
    x = emit(
        nn.EmbeddingOp(param("wte", [vocab, dim]), block.args[0], TensorType(act, [b, t, dim]))
    )
    if draw(st.booleans()):
        positions = draw(st.integers(t, 40))
        table = param("wpe", [positions, dim])
        x = emit(nn.AddOp(x, emit(nn.SliceOp(table, [0, 0], [t, dim]))))
    if draw(st.booleans()):
        # 16 x 256..280 i8 = 4096.. bytes: larger than a chip.
        width = draw(st.integers(256, 280))
        x = emit(nn.MatmulOp(x, param("fc", [dim, width])))
        x = emit(nn.GeluOp(emit(nn.AddOp(x, param("fc.bias", [width])))))
    head = emit(nn.MatmulOp(x, param("head", [cast(TensorType, x.type).get_shape()[-1], 4])))
    block.add_ops(ops)
    block.add_op(func.ReturnOp(head))
    function = func.FuncOp("shardable", ([block.args[0].type], [head.type]), Region(block))
    module = ModuleOp([function])
    module.verify()
    return module


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(module=shardable_programs())
def test_shard_params_preserves_meaning(module: ModuleOp, tmp_path: Path) -> None:
    """shard-params, then the rest of the default pipeline, on a target where the token table
    (and the wide linear weight) do not fit one chip: the sharded, placed and split program
    computes what the original does. (A row split, `linear_split=row`, is checked against torch
    in test_shard_params.py: here its full-width partial sums would not fit these chips.)"""
    from chiplex.compile import run_pipeline

    target = tmp_path / "tiny-ring8.toml"
    target.write_text(SHARD_TARGET)
    shard = f'shard-params{{target="{target}"}}'
    sharded = run_pipeline(module.clone(), shard)[0]
    shards = [
        op for op in sharded.walk() if isinstance(op, nn.ParamOp) and "shard_of" in op.attributes
    ]
    assert {op.attributes["shard_of"].data for op in shards} >= {"wte"}  # type: ignore[attr-defined]
    assert any(isinstance(op, nn.EmbeddingShardOp) for op in sharded.walk())
    pipeline = ",".join([shard, lowering(str(target), LOWERING[1:])])
    assert_pipeline_preserves_semantics(module, pipeline, rtol=1e-6)


def test_a_falsifying_program_is_shown_as_its_ir() -> None:
    # Hypothesis prints a failing example's arguments; a ModuleOp's dataclass fields run to
    # thousands of lines, its IR text to a dozen.
    from hypothesis.vendor.pretty import pretty

    from chiplex.semantics import random_programs

    module = random_programs(1, seed=3)[0]
    shown = pretty(module)
    assert shown == str(module) and shown.startswith("builtin.module {")
    assert "_operand_uses" not in shown
