"""Reductions: `mean`, `sum`, `amax`, `max`, `amin`, `min`, `var`."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.fx
from xdsl.ir import SSAValue

from chiplex.ir import nn
from chiplex.ir.torch_import.builder import (
    Importer,
    elem_of,
    norm_dim,
    shape_of,
)
from chiplex.ir.torch_import.registry import (
    aten_rule,
)
from chiplex.ir.torch_import.rules.elementwise import binary
from chiplex.ir.torch_import.values import (
    Unsupported,
    Value,
)

# -- reductions and pooling --------------------------------------------------------------------


def _reduce(
    imp: Importer, node: torch.fx.Node, cls: type[nn.NNOp], x: Value, dims: Any, keepdim: bool
) -> SSAValue:
    v = imp.value(x)
    rank = len(shape_of(v))
    if dims is None or (isinstance(dims, list | tuple) and len(dims) == 0):
        axes = list(range(rank))
    elif isinstance(dims, int):
        axes = [norm_dim(dims, rank)]
    else:
        axes = [norm_dim(d, rank) for d in dims]
    if rank == 0:
        return v
    return imp.emit(cls(v, axes, bool(keepdim), imp.meta_type(node)))  # type: ignore[call-arg]


@aten_rule("mean")
def _mean(
    imp: Importer,
    node: torch.fx.Node,
    x: Value,
    dims: Any = None,
    keepdim: bool = False,
    **kw: Any,
) -> SSAValue:
    return _reduce(imp, node, nn.ReduceMeanOp, x, dims, keepdim)


@aten_rule("sum")
def _sum(
    imp: Importer,
    node: torch.fx.Node,
    x: Value,
    dims: Any = None,
    keepdim: bool = False,
    **kw: Any,
) -> SSAValue:
    if isinstance(dims, torch.dtype):
        dims = None
    return _reduce(imp, node, nn.ReduceSumOp, x, dims, keepdim)


@aten_rule("amax")
def _amax(
    imp: Importer, node: torch.fx.Node, x: Value, dims: Any = (), keepdim: bool = False
) -> SSAValue:
    return _reduce(imp, node, nn.ReduceMaxOp, x, dims, keepdim)


@aten_rule("max")
def _max(
    imp: Importer, node: torch.fx.Node, x: Value, dim: Any = None, keepdim: bool = False
) -> Value:
    if not isinstance(dim, int | type(None)):
        return binary(imp, node, nn.MaxOp, x, dim)  # max.other: elementwise
    if dim is None:
        return _reduce(imp, node, nn.ReduceMaxOp, x, None, False)
    # max.dim returns (values, indices); only the values are computable with nn ops.
    values = imp.emit(
        nn.ReduceMaxOp(imp.value(x), [norm_dim(dim, len(shape_of(x)))], bool(keepdim))
    )
    return (values, None)


def _negated(imp: Importer, x: Value) -> SSAValue:
    return imp.emit(nn.NegOp(imp.value(x)))


@aten_rule("amin")
def _amin(
    imp: Importer, node: torch.fx.Node, x: Value, dims: Any = (), keepdim: bool = False
) -> SSAValue:
    # nn has no min reduction: min(x) = -max(-x), exact (negation only flips the sign bit).
    return imp.emit(nn.NegOp(_reduce(imp, node, nn.ReduceMaxOp, _negated(imp, x), dims, keepdim)))


@aten_rule("min")
def _min(
    imp: Importer, node: torch.fx.Node, x: Value, dim: Any = None, keepdim: bool = False
) -> Value:
    if not isinstance(dim, int | type(None)):
        return binary(imp, node, nn.MinOp, x, dim)  # min.other: elementwise
    if dim is None:
        return _amin(imp, node, x, None, False)
    # min.dim returns (values, indices); only the values are computable with nn ops.
    return (_amin(imp, node, x, dim, keepdim), None)


@aten_rule("var")
def _var(
    imp: Importer, node: torch.fx.Node, x: Value, dims: Any = None, *rest: Any, **kw: Any
) -> SSAValue:
    unbiased = rest[0] if rest and isinstance(rest[0], bool) else kw.get("unbiased", True)
    correction = kw.get("correction", 1 if unbiased else 0)
    keepdim = kw.get("keepdim", rest[1] if len(rest) > 1 else False)
    v = imp.value(x)
    shape = shape_of(v)
    axes = list(range(len(shape))) if not dims else [norm_dim(d, len(shape)) for d in dims]
    mean = imp.emit(nn.ReduceMeanOp(v, axes, True))
    diff = imp.emit(nn.SubOp(v, mean))
    sq = imp.emit(nn.MulOp(diff, diff))
    out = imp.emit(nn.ReduceMeanOp(sq, axes, bool(keepdim)))
    n = math.prod(shape[a] for a in axes)
    if correction and n > correction:
        out = imp.emit(nn.MulOp(out, imp.scalar(n / (n - correction), elem_of(imp, out))))
    return out


@aten_rule("cumsum")
def _cumsum(
    imp: Importer, node: torch.fx.Node, x: Value, dim: int, *rest: Any, **kw: Any
) -> SSAValue:
    v = imp.value(x)
    axis = norm_dim(dim, len(shape_of(v)))
    return imp.emit(nn.CumsumOp(v, axis, imp.meta_type(node)))


@aten_rule("linalg_vector_norm")
def _vector_norm(
    imp: Importer,
    node: torch.fx.Node,
    x: Value,
    order: float = 2,
    dims: Any = None,
    keepdim: bool = False,
    **kw: Any,
) -> SSAValue:
    """The 2-norm `sqrt(sum(x * x))` (weight normalisation of a convolution's weight)."""
    if order != 2:
        raise Unsupported(f"a vector norm of order {order}")
    v = imp.value(x)
    squares = imp.emit(nn.MulOp(v, v))
    rank = len(shape_of(v))
    axes = list(range(rank)) if not dims else [norm_dim(d, rank) for d in dims]
    total = imp.emit(nn.ReduceSumOp(squares, axes, bool(keepdim)))
    out = imp.emit(nn.SqrtOp(total))
    rtype = imp.meta_type(node)
    return out if out.type == rtype else imp.emit(nn.CastOp(out, rtype))
