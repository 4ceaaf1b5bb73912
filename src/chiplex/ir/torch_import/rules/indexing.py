"""Indexing: embeddings and gathers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.fx
from xdsl.dialects.builtin import i1
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
from chiplex.ir.torch_import.rules.shape import reshape_to
from chiplex.ir.torch_import.values import (
    Const,
    Unsupported,
    Value,
)


def _wrapped(index: Value, size: int) -> Value:
    """Constant indices with negative entries counted from the end, as torch reads them
    (Falcon's fused QKV split indexes `-2` and `-1`): nn.gather takes indices in 0..size-1."""
    if (
        isinstance(index, Const)
        and not index.tensor.is_floating_point()
        and (index.tensor < 0).any()
    ):
        return Const(torch.where(index.tensor < 0, index.tensor + size, index.tensor), index.name)
    return index


@aten_rule("embedding")
def _embedding(
    imp: Importer, node: torch.fx.Node, table: Value, ids: Value, *rest: Any, **kw: Any
) -> SSAValue:
    return imp.emit(nn.EmbeddingOp(imp.value(table), imp.value(ids), imp.meta_type(node)))


@aten_rule("index_select")
def _index_select(imp: Importer, node: torch.fx.Node, x: Value, dim: int, index: Value) -> SSAValue:
    data = imp.value(x)
    rank = len(shape_of(data))
    return imp.emit(nn.GatherOp(data, imp.value(index), norm_dim(dim, rank), imp.meta_type(node)))


@aten_rule("flip")
def _flip(imp: Importer, node: torch.fx.Node, x: Value, dims: Sequence[int]) -> Value:
    """Reversal along each dim: `nn.gather` at the constant indices n-1, ..., 0. Exact. The reverse
    direction of a bidirectional LSTM / GRU flips its sequence."""
    v = imp.value(x)
    shape = shape_of(v)
    for dim in dims:
        axis = norm_dim(dim, len(shape))
        reverse = Const(torch.arange(shape[axis] - 1, -1, -1), f"flip{shape[axis]}")
        v = imp.emit(nn.GatherOp(v, imp.value(reverse), axis, v.type))
    return v


@aten_rule("gather")
def _gather(
    imp: Importer, node: torch.fx.Node, x: Value, dim: int, index: Value, **kw: Any
) -> SSAValue:
    data = imp.value(x)
    axis = norm_dim(dim, len(shape_of(data)))
    return imp.emit(nn.GatherElementsOp(data, imp.value(index), axis, imp.meta_type(node)))


@aten_rule("index")
def _index(
    imp: Importer, node: torch.fx.Node, x: Value, indices: Sequence[Value | None]
) -> SSAValue:
    """`x[i, j]` with index tensors at adjacent dims: those dims are flattened into one (a
    reshape) and the indices linearised (`i * size_j + j`, broadcast), then one `nn.gather`."""
    positions = [k for k, ix in enumerate(indices) if ix is not None]
    if not positions:
        return imp.value(x)
    first, last = positions[0], positions[-1]
    if positions != list(range(first, last + 1)):
        raise Unsupported("index tensors at non-adjacent dims")
    shape = shape_of(x)
    linear: SSAValue | None = None
    stride = 1
    for k in reversed(positions):
        ix = imp.value(_wrapped(indices[k], shape[k]))
        elem = elem_of(imp, ix)
        if elem == i1:
            raise Unsupported("a boolean mask index (data-dependent shape)")
        term = ix if stride == 1 else imp.emit(nn.MulOp(ix, imp.scalar(stride, elem)))
        linear = term if linear is None else imp.emit(nn.AddOp(linear, term))
        stride *= shape[k]
    assert linear is not None
    flat = shape[:first] + (stride,) + shape[last + 1 :]
    data = imp.value(reshape_to(imp, x, flat))
    return imp.emit(nn.GatherOp(data, linear, first, imp.meta_type(node)))
