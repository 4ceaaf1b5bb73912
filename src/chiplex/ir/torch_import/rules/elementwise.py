"""Elementwise arithmetic, activations, clamps and mask selection (`where`, `masked_fill`)."""

from __future__ import annotations

import math
from typing import Any, cast

import torch
import torch.fx
from xdsl.dialects.builtin import (
    TensorType,
    f32,
    i1,
)
from xdsl.ir import SSAValue

from chiplex.ir import nn
from chiplex.ir.torch_import.builder import (
    Importer,
    elem_of,
    retype_elem,
    shape_of,
)
from chiplex.ir.torch_import.registry import (
    Rule,
    aten_rule,
    packet,
)
from chiplex.ir.torch_import.values import (
    Const,
    Unsupported,
    Value,
    is_float_elem,
)

BINARY: dict[str, type[nn.NNOp]] = {
    "add": nn.AddOp,
    "sub": nn.SubOp,
    "mul": nn.MulOp,
    "div": nn.DivOp,
    "maximum": nn.MaxOp,
    "minimum": nn.MinOp,
    "pow": nn.PowOp,
}
UNARY: dict[str, type[nn.NNOp]] = {
    "relu": nn.ReluOp,
    "tanh": nn.TanhOp,
    "sigmoid": nn.SigmoidOp,
    "silu": nn.SiluOp,
    "exp": nn.ExpOp,
    "log": nn.LogOp,
    "erf": nn.ErfOp,
    "sqrt": nn.SqrtOp,
    "rsqrt": nn.RsqrtOp,
    "neg": nn.NegOp,
}


def binary(imp: Importer, node: torch.fx.Node, cls: type[nn.NNOp], a: Value, b: Value) -> SSAValue:
    rtype = imp.meta_type(node)
    elem = rtype.get_element_type()
    lhs, rhs = imp.value(a, elem), imp.value(b, elem)
    return imp.emit(cls(lhs, rhs, rtype))  # type: ignore[call-arg]


for _name, _cls in BINARY.items():

    def _make(cls: type[nn.NNOp]) -> Rule:
        def handler(
            imp: Importer, node: torch.fx.Node, a: Value, b: Value, *rest: Any, **kw: Any
        ) -> SSAValue:
            alpha = kw.get("alpha", rest[0] if rest else 1)
            if kw.get("rounding_mode") is not None:
                raise Unsupported(f"rounding_mode={kw['rounding_mode']!r}")
            if alpha != 1:
                # add/sub with alpha: b * alpha first.
                if isinstance(b, bool | int | float):
                    b = b * alpha
                else:
                    b = imp.emit(nn.MulOp(imp.value(b), imp.scalar(alpha, elem_of(imp, b))))
            return binary(imp, node, cls, a, b)

        return handler

    aten_rule(_name)(_make(_cls))


@aten_rule("rsub")
def _rsub(imp: Importer, node: torch.fx.Node, a: Value, b: Value, alpha: float = 1) -> SSAValue:
    if alpha != 1:
        if isinstance(a, bool | int | float):
            a = a * alpha
        else:
            a = imp.emit(nn.MulOp(imp.value(a), imp.scalar(alpha, elem_of(imp, a))))
    return binary(imp, node, nn.SubOp, b, a)


@aten_rule("reciprocal")
def _reciprocal(imp: Importer, node: torch.fx.Node, x: Value) -> SSAValue:
    return binary(imp, node, nn.DivOp, 1.0, x)


@aten_rule("abs")
def _abs(imp: Importer, node: torch.fx.Node, x: Value) -> SSAValue:
    """|x| = max(x, -x): exact in every dtype, two vector ops."""
    v = imp.value(x)
    return imp.emit(nn.MaxOp(v, imp.emit(nn.NegOp(v)), imp.meta_type(node)))


@aten_rule("leaky_relu")
def _leaky_relu(
    imp: Importer, node: torch.fx.Node, x: Value, negative_slope: float = 0.01
) -> SSAValue:
    """max(x, a x) for a slope in [0, 1] (min(x, a x) above 1): exact, two vector ops."""
    v = imp.value(x)
    scaled = imp.emit(nn.MulOp(v, imp.scalar(negative_slope, elem_of(imp, x))))
    cls = nn.MaxOp if negative_slope <= 1 else nn.MinOp
    return imp.emit(cls(v, scaled, imp.meta_type(node)))


@aten_rule("elu")
def _elu(
    imp: Importer,
    node: torch.fx.Node,
    x: Value,
    alpha: float = 1.0,
    scale: float = 1.0,
    input_scale: float = 1.0,
) -> SSAValue:
    """scale * (relu(x) + alpha * (exp(input_scale * min(x, 0)) - 1)): the exponential term is
    exactly 0 where x > 0. ELU, SELU (scale, alpha) and CELU (input_scale = 1 / alpha)."""
    rtype = imp.meta_type(node)
    elem = rtype.get_element_type()
    v = imp.value(x)
    negative = imp.emit(nn.MinOp(v, imp.scalar(0.0, elem)))
    if input_scale != 1:
        negative = imp.emit(nn.MulOp(negative, imp.scalar(input_scale, elem)))
    below = imp.emit(nn.SubOp(imp.emit(nn.ExpOp(negative)), imp.scalar(1.0, elem)))
    if alpha != 1:
        below = imp.emit(nn.MulOp(below, imp.scalar(alpha, elem)))
    out = imp.emit(nn.AddOp(imp.emit(nn.ReluOp(v)), below, rtype))
    if scale != 1:
        out = imp.emit(nn.MulOp(out, imp.scalar(scale, elem), rtype))
    return out


@aten_rule("celu")
def _celu(imp: Importer, node: torch.fx.Node, x: Value, alpha: float = 1.0) -> SSAValue:
    # torch's own decomposition is a `where` of x and alpha * (exp(x / alpha) - 1), which the
    # mask arithmetic of `where` rounds where the unused branch is large (x = 6 -> 1e5).
    return _elu(imp, node, x, alpha, 1.0, 1.0 / alpha)


@aten_rule("log1p")
def _log1p(imp: Importer, node: torch.fx.Node, x: Value) -> SSAValue:
    """log(1 + x) (softplus, mish, logsigmoid): equal within float rounding of 1 + x."""
    v = imp.value(x)
    return imp.emit(nn.LogOp(imp.emit(nn.AddOp(v, imp.scalar(1.0, elem_of(imp, x))))))


@aten_rule("expm1")
def _expm1(imp: Importer, node: torch.fx.Node, x: Value) -> SSAValue:
    """exp(x) - 1 (CELU): equal within float rounding of the subtraction."""
    return binary(imp, node, nn.SubOp, imp.emit(nn.ExpOp(imp.value(x))), 1.0)


@aten_rule("log2", "log10")
def _log_base(imp: Importer, node: torch.fx.Node, x: Value) -> SSAValue:
    """log(x) / log(base), as a product with the f32 reciprocal."""
    base = 2.0 if packet(node.target) == "log2" else 10.0
    log = imp.emit(nn.LogOp(imp.value(x)))
    return imp.emit(nn.MulOp(log, imp.scalar(1 / math.log(base), f32), imp.meta_type(node)))


@aten_rule("exp2")
def _exp2(imp: Importer, node: torch.fx.Node, x: Value) -> SSAValue:
    """2^x = exp(x log 2)."""
    scaled = imp.emit(nn.MulOp(imp.value(x), imp.scalar(math.log(2.0), f32)))
    return imp.emit(nn.ExpOp(scaled))


@aten_rule("square")
def _square(imp: Importer, node: torch.fx.Node, x: Value) -> SSAValue:
    return binary(imp, node, nn.MulOp, x, x)


for _name, _cls in UNARY.items():

    def _make_unary(cls: type[nn.NNOp]) -> Rule:
        def handler(
            imp: Importer, node: torch.fx.Node, x: Value, *rest: Any, **kw: Any
        ) -> SSAValue:
            # gelu's `approximate` and similar options change the value, not the cost.
            return imp.emit(cls(imp.value(x)))  # type: ignore[call-arg]

        return handler

    aten_rule(_name)(_make_unary(_cls))


@aten_rule("gelu")
def _gelu(
    imp: Importer, node: torch.fx.Node, x: Value, approximate: str = "none", **kw: Any
) -> SSAValue:
    v = imp.value(x)
    if kw.get("approximate", approximate) != "tanh":
        return imp.emit(nn.GeluOp(v))
    # nn.gelu is the exact (erf) GELU; the tanh form differs by up to 5e-4, so it is spelled out:
    # x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3))). The factors are f32 scalars, which
    # an activation dtype like bf16 would round (0.044715 -> 0.04468).
    cube = imp.emit(nn.MulOp(imp.emit(nn.MulOp(v, v)), v))
    inner = imp.emit(nn.AddOp(v, imp.emit(nn.MulOp(cube, imp.scalar(0.044715, f32)))))
    t = imp.emit(nn.TanhOp(imp.emit(nn.MulOp(inner, imp.scalar(math.sqrt(2 / math.pi), f32)))))
    half = imp.emit(nn.MulOp(v, imp.scalar(0.5, f32)))
    return imp.emit(nn.MulOp(half, imp.emit(nn.AddOp(t, imp.scalar(1.0, f32)))))


@aten_rule("clamp", "clip", "clamp_min", "clamp_max", "hardtanh", "relu6")
def _clamp(imp: Importer, node: torch.fx.Node, x: Value, *bounds: Any, **kw: Any) -> SSAValue:
    name = packet(node.target)
    names = {"clamp_min": ["min"], "clamp_max": ["max"], "hardtanh": ["min_val", "max_val"]}
    given = dict(zip(names.get(name, ["min", "max"]), bounds, strict=False)) | kw
    if name == "relu6":
        lo, hi = 0.0, 6.0
    elif name == "hardtanh":
        lo, hi = given.get("min_val", -1.0), given.get("max_val", 1.0)
    else:
        lo, hi = given.get("min"), given.get("max")
    rtype = imp.meta_type(node)
    elem = rtype.get_element_type()
    v = imp.value(x)
    if lo is not None:
        v = imp.emit(nn.MaxOp(v, imp.value(lo, elem), rtype))
    if hi is not None:
        v = imp.emit(nn.MinOp(v, imp.value(hi, elem), rtype))
    return v


@aten_rule("where")
def _where(
    imp: Importer, node: torch.fx.Node, cond: Value, a: Value = None, b: Value = None
) -> SSAValue:
    if a is None or b is None:
        raise Unsupported("where(cond) with one argument (data-dependent shape)")
    return _select_by_mask(imp, node, cond, a, b)


@aten_rule("masked_fill")
def _masked_fill(
    imp: Importer, node: torch.fx.Node, x: Value, mask: Value, value: Value
) -> SSAValue:
    return _select_by_mask(imp, node, mask, value, x)


def _select_by_mask(
    imp: Importer, node: torch.fx.Node, cond: Value, a: Value, b: Value
) -> SSAValue:
    """where(c, a, b) = c * a + (1 - c) * b: nn has no select op, so the mask becomes arithmetic.

    An infinite fill would make that NaN where c is 0 (0 * inf), so where(c, +-inf, b) is
    b +- -log(1 - c) instead (log(1) = 0, log(0) = -inf), and where(c, a, +-inf) is a +- -log(c).
    """
    rtype = imp.meta_type(node)
    elem = rtype.get_element_type()
    infinite_a = isinstance(a, float) and math.isinf(a)
    if isinstance(cond, Const) and infinite_a and not isinstance(b, Const):
        # A constant mask filled with -inf (a causal mask): one additive tensor.
        fill = torch.zeros(cond.tensor.shape, dtype=torch.float32).masked_fill(
            cond.tensor, float(a)
        )
        return imp.emit(nn.AddOp(imp.value(b, elem), imp.value(Const(fill, cond.name)), rtype))
    if isinstance(cond, Const) and is_float_elem(elem):
        return _select_by_constant_mask(imp, cond, a, b, rtype)
    c = imp.value(cond)
    if cast(TensorType, c.type).get_element_type() != elem:
        c = imp.emit(nn.CastOp(c, retype_elem(rtype, shape_of(c))))
    infinite_b = isinstance(b, float) and math.isinf(b)
    if infinite_a != infinite_b:
        fill, other, where_fill = (a, b, imp.emit(nn.SubOp(imp.scalar(1, elem), c)))
        if infinite_b:
            fill, other, where_fill = (b, a, c)
        # log(where_fill) is 0 where `other` is chosen and -inf where the fill is.
        log = imp.emit(nn.LogOp(where_fill))
        step = nn.AddOp if fill < 0 else nn.SubOp
        return imp.emit(step(imp.value(other, elem), log, rtype))
    # c * a + (1 - c) * b: each product is exactly one operand or zero and adding zero is exact,
    # so the chosen value arrives unrounded however far apart a and b are. The shorter
    # b + c * (a - b) rounds a - b: where(x > 0, x, 1e7 * x) lost x's low bits, and a kept tensor
    # next to a huge fill (T5's where(causal, position_bias, finfo.min)) was rounded away.
    av, bv = imp.value(a, elem), imp.value(b, elem)
    chosen_a = imp.emit(nn.MulOp(c, av))
    chosen_b = imp.emit(nn.MulOp(imp.emit(nn.SubOp(imp.scalar(1, elem), c)), bv))
    return imp.emit(nn.AddOp(chosen_a, chosen_b, rtype))


def _select_by_constant_mask(
    imp: Importer, cond: Const, a: Value, b: Value, rtype: TensorType
) -> SSAValue:
    """where(c, a, b) with a constant mask (a causal mask): c * a + (1 - c) * b with each product
    of constants computed here (`torch.where(c, a, 0)`, exact, infinities included), so a tensor
    side costs one multiply by the stored mask and the sum one add (T5's masked position bias:
    two ops)."""
    mask = cond.tensor.to(torch.bool)
    elem = rtype.get_element_type()
    # A mask that selects one side everywhere (T5's encoder without padding: all true) is that side.
    for uniform, side in ((bool(mask.all()), a), (not bool(mask.any()), b)):
        if uniform and not isinstance(side, Const | bool | int | float):
            value = imp.value(side, elem)
            if value.type == rtype:
                return value

    def chosen(keep: torch.Tensor, v: Value) -> SSAValue:
        if isinstance(v, Const | bool | int | float):
            data = v.tensor.float() if isinstance(v, Const) else torch.tensor(float(v))
            return imp.value(Const(torch.where(keep, data, 0.0), cond.name))
        return imp.emit(nn.MulOp(imp.value(Const(keep.float(), cond.name)), imp.value(v, elem)))

    return imp.emit(nn.AddOp(chosen(mask, a), chosen(~mask, b), rtype))


# -- comparisons -------------------------------------------------------------------------------


def _compare_operands(imp: Importer, a: Value, b: Value) -> tuple[SSAValue, SSAValue]:
    """Both operands as SSA values; a Python scalar takes the other operand's element type."""
    tensor = b if isinstance(a, bool | int | float) else a
    elem = elem_of(imp, tensor)
    return imp.value(a, elem), imp.value(b, elem)


for _predicate in nn.COMPARE_PREDICATES:

    def _make_compare(predicate: str) -> Rule:
        def handler(imp: Importer, node: torch.fx.Node, a: Value, b: Value) -> SSAValue:
            lhs, rhs = _compare_operands(imp, a, b)
            return imp.emit(nn.CompareOp(predicate, lhs, rhs, imp.meta_type(node)))

        return handler

    aten_rule(_predicate)(_make_compare(_predicate))


@aten_rule("sign")
def _sign(imp: Importer, node: torch.fx.Node, x: Value) -> SSAValue:
    """sign(x) = (x > 0) - (x < 0), the comparisons cast to x's type: exact (softshrink)."""
    rtype = imp.meta_type(node)
    lhs, zero = _compare_operands(imp, x, 0)
    bool_type = TensorType(i1, rtype.get_shape())
    above, below = (
        imp.emit(nn.CastOp(imp.emit(nn.CompareOp(p, lhs, zero, bool_type)), rtype))
        for p in ("gt", "lt")
    )
    return imp.emit(nn.SubOp(above, below, rtype))


@aten_rule("logical_not", "bitwise_not")
def _logical_not(imp: Importer, node: torch.fx.Node, x: Value) -> SSAValue:
    rtype = imp.meta_type(node)
    if rtype.get_element_type() != i1:
        raise Unsupported("bitwise not of integers")
    lhs, rhs = _compare_operands(imp, x, 0)
    return imp.emit(nn.CompareOp("eq", lhs, rhs, rtype))


@aten_rule("logical_and", "bitwise_and", "logical_or", "bitwise_or", "__and__", "__or__")
def _logical_binary(imp: Importer, node: torch.fx.Node, a: Value, b: Value) -> SSAValue:
    """On booleans, `and` is the minimum and `or` the maximum (one elementwise op each)."""
    rtype = imp.meta_type(node)
    if rtype.get_element_type() != i1:
        raise Unsupported("bitwise logic on integers")
    cls = nn.MinOp if "and" in packet(node.target) else nn.MaxOp
    return binary(imp, node, cls, a, b)
