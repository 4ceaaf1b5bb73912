"""Checking that a pass pipeline preserves what a program computes.

`assert_pipeline_preserves_semantics(module, pipeline)` runs the module on the reference interpreter
(`chiplex.ir.interpret`) before and after the pipeline, on the same seeded random inputs and
parameters, and fails with the largest error if the results differ. `nn_programs()` is a hypothesis
strategy of small random `nn` programs (transformer-like and convolutional) to run it on::

    from hypothesis import given, settings
    from chiplex.testing import assert_pipeline_preserves_semantics, nn_programs

    @settings(max_examples=25, deadline=None)
    @given(nn_programs())
    def test_my_pass_preserves_meaning(module):
        assert_pipeline_preserves_semantics(module, "my-pass")

Both are re-exported by `chiplex.testing`; docs/semantics.md shows them on a user's pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import numpy as np
from hypothesis import strategies as st
from hypothesis.vendor.pretty import RepresentationPrinter, for_type_by_name
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType, i64
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from chiplex.ir import interpret, nn
from chiplex.ir.interpret import ArrayLike, Comparison
from chiplex.ir.types import parse_dtype

__all__ = [
    "assert_pipeline_preserves_semantics",
    "nn_programs",
    "random_program",
    "tight_target",
]

Pick = Callable[[int, int], int]
"""pick(lo, hi) -> an int in lo..hi (inclusive): a hypothesis draw or a numpy generator."""


def assert_pipeline_preserves_semantics(
    module: ModuleOp,
    pipeline: str,
    *,
    parameters: dict[str, ArrayLike] | None = None,
    inputs: Sequence[ArrayLike] | None = None,
    seed: int = 0,
    rtol: float = 1e-5,
    bit_identical: bool = False,
) -> Comparison:
    """Run `pipeline` (MLIR-style pass list, as `chiplex compile --pipeline`) on a copy of
    `module` and assert that the interpreted results before and after agree.

    Parameters and inputs default to seeded random ones (`interpret.random_parameters` and
    `random_inputs`). `rtol` bounds the norm-wise relative error (largest absolute error over
    largest magnitude, per output); `bit_identical` demands exactly equal arrays instead, which
    holds for passes that only move ops (placement, transfers, splitting). `module` is left as it
    was. Returns the measured comparison.
    """
    from chiplex.compile import run_pipeline  # the driver sits above the passes: import late

    params = parameters if parameters is not None else interpret.random_parameters(module, seed)
    args = inputs if inputs is not None else interpret.random_inputs(module, seed)
    before = interpret.run(module, args, params)
    transformed = module.clone()
    run_pipeline(transformed, pipeline)
    after = interpret.run(transformed, args, params)
    comparison = interpret.compare_outputs(after, before)
    if bit_identical:
        differing = [
            i for i, (a, b) in enumerate(zip(after, before, strict=True)) if not _same_bits(a, b)
        ]
        if differing:
            raise AssertionError(
                f"pipeline {pipeline!r} changed output(s) {differing}: max abs error "
                f"{comparison.max_abs:.3g}, max rel error {comparison.max_rel:.3g} "
                "(expected bit-identical results)"
            )
    elif not comparison.within(rtol):
        raise AssertionError(
            f"pipeline {pipeline!r} changed what the program computes: output "
            f"{comparison.worst_output} differs by {comparison.max_rel:.3g} relative "
            f"(max abs error {comparison.max_abs:.3g}, rtol {rtol:g})"
        )
    return comparison


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def tight_target(module: ModuleOp, directory: str | Path, num_chips: int = 4) -> str:
    """A target TOML (written into `directory`) on which placing `module` for throughput spreads
    it over several chips: a ring of `num_chips` slow chips joined by fast links, each with twice
    the SRAM the whole graph needs. Returns its path, for `annotate-costs{target="..."}`."""
    from chiplex.ir.graph import graph_from_module
    from chiplex.testing import min_capacity

    sram = 2 * min_capacity(graph_from_module(module), 1)
    path = Path(directory) / f"tight-{num_chips}-{sram}.toml"
    path.write_text(
        f'name = "tight-{num_chips}"\n'
        "[chip]\nmatrix_ops = { i8 = 1.0e6, bf16 = 1.0e6, f32 = 1.0e6 }\n"
        "vector_ops = { i8 = 1.0e6, bf16 = 1.0e6, f32 = 1.0e6 }\n"
        f"sram_bytes = {sram}\nsram_bandwidth = 1.0e12\n"
        "[link]\nbandwidth = 1.0e12\nlatency = 1.0e-12\n"
        f'[topology]\nkind = "ring"\nnum_chips = {num_chips}\n',
        encoding="utf-8",
    )
    return str(path)


# ---------------------------------------------------------------------------------------------
# Small random programs
# ---------------------------------------------------------------------------------------------


class _Program:
    def __init__(self, pick: Pick) -> None:
        self.pick = pick
        act, weight = parse_dtype("bf16"), parse_dtype("i8")
        assert act is not None and weight is not None
        self.act: Attribute = act
        self.weight: Attribute = weight
        self.ops: list[Operation] = []
        self.params = 0

    def choice(self, options: Sequence[str]) -> str:
        return options[self.pick(0, len(options) - 1)]

    def emit(self, op: Operation) -> SSAValue:
        self.ops.append(op)
        return op.results[0]

    def param(self, shape: Sequence[int]) -> SSAValue:
        self.params += 1
        return self.emit(nn.ParamOp(f"p{self.params}", TensorType(self.weight, list(shape))))

    def scalar(self, value: float) -> SSAValue:
        return self.emit(nn.ConstantOp(value, TensorType(self.act, [])))


def _shape(v: SSAValue) -> tuple[int, ...]:
    return tuple(cast(TensorType, v.type).get_shape())


_UNARY: dict[str, type[nn.ElementwiseUnaryOp]] = {
    "gelu": nn.GeluOp,
    "relu": nn.ReluOp,
    "tanh": nn.TanhOp,
    "sigmoid": nn.SigmoidOp,
    "silu": nn.SiluOp,
    "neg": nn.NegOp,
    "erf": nn.ErfOp,
}
_BINARY: dict[str, type[nn.ElementwiseBinaryOp]] = {
    "add": nn.AddOp,
    "sub": nn.SubOp,
    "mul": nn.MulOp,
    "max": nn.MaxOp,
    "min": nn.MinOp,
}
_SEQUENCE_STEPS = (
    "linear", "unary", "binary", "softmax", "layer_norm", "attention", "centre", "reshape",
    "concat_slice", "scale",
)  # fmt: skip
_IMAGE_STEPS = ("conv", "batch_norm", "unary", "pool", "residual")


def _sequence_step(p: _Program, kind: str, pool: list[SSAValue]) -> SSAValue:
    x = pool[p.pick(max(0, len(pool) - 3), len(pool) - 1)]
    b, t, h = _shape(x)
    if kind == "linear":
        out = p.choice(["4", "8"])
        y = p.emit(nn.MatmulOp(x, p.param([h, int(out)])))
        return p.emit(nn.AddOp(y, p.param([int(out)])))
    if kind == "unary":
        return p.emit(_UNARY[p.choice(list(_UNARY))](x))
    if kind == "binary":
        same = [v for v in pool if _shape(v) == (b, t, h) and v is not x]
        other = same[p.pick(0, len(same) - 1)] if same else p.param([h])
        return p.emit(_BINARY[p.choice(list(_BINARY))](x, other))
    if kind == "softmax":
        return p.emit(nn.SoftmaxOp(x, p.pick(1, 2)))
    if kind == "layer_norm":
        return p.emit(nn.LayerNormOp(x, p.param([h]), p.param([h])))
    if kind == "attention":
        scores = p.emit(nn.BatchMatmulOp(x, p.emit(nn.TransposeOp(x, [0, 2, 1]))))
        probs = p.emit(nn.SoftmaxOp(p.emit(nn.MulOp(scores, p.scalar(0.25))), -1))
        return p.emit(nn.BatchMatmulOp(probs, x))
    if kind == "centre":
        reduce = p.choice(["mean", "sum", "max"])
        cls = {"mean": nn.ReduceMeanOp, "sum": nn.ReduceSumOp, "max": nn.ReduceMaxOp}[reduce]
        return p.emit(nn.SubOp(x, p.emit(cls(x, [p.pick(1, 2)], keepdims=True))))
    if kind == "reshape":
        flat = p.emit(nn.ReshapeOp(x, TensorType(p.act, [b, t * h])))
        return p.emit(nn.ReshapeOp(flat, TensorType(p.act, [b, t, h])))
    if kind == "concat_slice":
        other = pool[p.pick(0, len(pool) - 1)]
        both = p.emit(nn.ConcatOp([x, other], axis=2))
        width = _shape(both)[2]
        start = p.pick(0, width - h)
        return p.emit(nn.SliceOp(both, [0, 0, start], [b, t, h]))
    # scale: x * 0.5 + 1 / (1 + exp(x))
    half = p.emit(nn.MulOp(x, p.scalar(0.5)))
    denom = p.emit(nn.AddOp(p.emit(nn.ExpOp(x)), p.scalar(1.0)))
    return p.emit(nn.AddOp(half, p.emit(nn.DivOp(p.scalar(1.0), denom))))


def _image_step(p: _Program, kind: str, pool: list[SSAValue]) -> SSAValue:
    x = pool[-1]
    n, c, h, w = _shape(x)
    if kind == "conv":
        groups = c if p.pick(0, 3) == 0 else 1
        stride = 2 if h >= 6 and p.pick(0, 2) == 0 else 1
        return p.emit(nn.Conv2dOp(x, p.param([c, c // groups, 3, 3]), (stride, stride), (1, 1), (1, 1), groups))  # fmt: skip
    if kind == "batch_norm":
        return p.emit(nn.BatchNormOp(x, p.param([c]), p.param([c])))
    if kind == "unary":
        return p.emit(_UNARY[p.choice(["relu", "silu", "gelu"])](x))
    if kind == "pool" and h >= 4:
        cls = nn.MaxPool2dOp if p.pick(0, 1) else nn.AvgPool2dOp
        if p.pick(0, 1):
            return p.emit(cls(x, (2, 2), (2, 2)))
        return p.emit(cls(x, (3, 3), (1, 1), (1, 1)))
    same = [v for v in pool if _shape(v) == (n, c, h, w) and v is not x]
    return p.emit(nn.AddOp(x, same[-1])) if same else p.emit(nn.ReluOp(x))


def random_program(pick: Pick, max_ops: int = 12, name: str = "random") -> ModuleOp:
    """A small random `nn` function: a sequence model ([batch, tokens, width] activations, maybe
    token embeddings) or a convolutional one (NCHW, then pooled into a linear head). Parameters
    are named `p1`, `p2`, ...; element types are i8 weights and bf16 activations."""
    p = _Program(pick)
    steps = pick(1, max(1, max_ops))
    arg_types: list[Attribute]
    if pick(0, 2) > 0:
        b, t, h = pick(1, 2), pick(2, 4), 4 * pick(1, 2)
        embed = pick(0, 2) == 0
        arg_types = [TensorType(i64, [b, t]) if embed else TensorType(p.act, [b, t, h])]
        block = Block(arg_types=arg_types)
        x: SSAValue = block.args[0]
        if embed:
            x = p.emit(nn.EmbeddingOp(p.param([7, h]), x, TensorType(p.act, [b, t, h])))
        pool = [x]
        for _ in range(steps):
            pool.append(_sequence_step(p, p.choice(_SEQUENCE_STEPS), pool))
        result = pool[-1]
    else:
        n, c, size = pick(1, 2), 2 * pick(1, 2), 4 + 2 * pick(0, 2)
        arg_types = [TensorType(p.act, [n, c, size, size])]
        block = Block(arg_types=arg_types)
        pool = [block.args[0]]
        for _ in range(steps):
            pool.append(_image_step(p, p.choice(_IMAGE_STEPS), pool))
        pooled = p.emit(nn.GlobalAvgPool2dOp(pool[-1]))
        flat = p.emit(nn.ReshapeOp(pooled, TensorType(p.act, [n, c])))
        result = p.emit(nn.MatmulOp(flat, p.param([c, 3])))
    block.add_ops(p.ops)
    block.add_op(func.ReturnOp(result))
    function = func.FuncOp(name, (arg_types, [result.type]), Region(block))
    module = ModuleOp([function])
    module.verify()
    return module


def _show_module(module: ModuleOp, printer: RepresentationPrinter, cycle: bool) -> None:
    """A falsifying example's module as its IR text, not xDSL's dataclass fields (thousands of lines)."""
    printer.text(str(module))


# The hook hypothesis offers for types it does not own (IPython's pretty-printer protocol).
for_type_by_name("xdsl.dialects.builtin", "ModuleOp", _show_module)


@st.composite
def nn_programs(draw: st.DrawFn, max_ops: int = 12) -> ModuleOp:
    """Hypothesis strategy: `random_program` with every choice drawn (so examples shrink)."""
    return random_program(lambda lo, hi: draw(st.integers(lo, hi)), max_ops)


def random_programs(count: int, seed: int = 0, max_ops: int = 12) -> list[ModuleOp]:
    """`count` programs from a numpy generator (no hypothesis): a fixed corpus for benchmarks."""
    rng = np.random.default_rng(seed)
    return [
        random_program(lambda lo, hi: int(rng.integers(lo, hi + 1)), max_ops, f"random_{i}")
        for i in range(count)
    ]
