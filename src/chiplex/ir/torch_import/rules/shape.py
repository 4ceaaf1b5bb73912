"""Views and data movement: reshapes, permutations, expands, casts, concatenation, slices,
nearest upsampling."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.fx
from xdsl.dialects.builtin import (
    TensorType,
)
from xdsl.ir import SSAValue

from chiplex.ir import nn
from chiplex.ir.torch_import.builder import (
    Importer,
    broadcast_to,
    elem_of,
    norm_dim,
    retype,
    retype_elem,
    shape_of,
)
from chiplex.ir.torch_import.registry import (
    IDENTITY,
    aten_rule,
    packet,
)
from chiplex.ir.torch_import.rules.elementwise import BINARY
from chiplex.ir.torch_import.values import (
    Const,
    ParamRef,
    Unsupported,
    Value,
    View,
)

# -- views and data movement -------------------------------------------------------------------


@aten_rule(*IDENTITY)
def _identity(imp: Importer, node: torch.fx.Node, x: Value, *rest: Any, **kw: Any) -> Value:
    return x


def reshape_to(imp: Importer, x: Value, shape: Sequence[int]) -> Value:
    shape = tuple(int(d) for d in shape)
    if isinstance(x, ParamRef):
        return x.view(View(shape))
    if isinstance(x, Const) and x.from_params:
        # A weight folded at import is stored in the shape it is read in, as a parameter is.
        return Const(x.tensor.reshape(shape), x.name, x.from_params)
    v = imp.value(x)
    # A reshape of a reshape reads the original: unsqueeze + squeeze leaves no op behind.
    while isinstance(v.owner, nn.ReshapeOp):
        v = v.owner.input
    if shape_of(v) == shape:
        return v
    return imp.emit(nn.ReshapeOp(v, retype(v, shape)))


@aten_rule(
    "view",
    "reshape",
    "_unsafe_view",
    "flatten",
    "unflatten",
    "unsqueeze",
    "squeeze",
    "view_as",
    "reshape_as",
)
def _view(imp: Importer, node: torch.fx.Node, x: Value, *rest: Any, **kw: Any) -> Value:
    return reshape_to(imp, x, imp.meta_type(node).get_shape())


def permute_value(imp: Importer, x: Value, perm: Sequence[int]) -> Value:
    rank = len(shape_of(x))
    perm = tuple(norm_dim(p, rank) for p in perm)
    if perm == tuple(range(rank)):
        return x
    shape = shape_of(x)
    new_shape = tuple(shape[p] for p in perm)
    if isinstance(x, ParamRef):
        return x.view(View(new_shape, perm))
    v = imp.value(x)
    if isinstance(v.owner, nn.TransposeOp):
        # A transpose of a transpose is one permutation (or none: `.t().t()`).
        inner = tuple(v.owner.perm.get_values())
        v, perm = v.owner.input, tuple(inner[p] for p in perm)
        if perm == tuple(range(rank)):
            return v
    return imp.emit(nn.TransposeOp(v, list(perm)))


@aten_rule("permute")
def _permute(imp: Importer, node: torch.fx.Node, x: Value, perm: Sequence[int]) -> Value:
    return permute_value(imp, x, perm)


@aten_rule("transpose", "swapaxes", "swapdims")
def _transpose(imp: Importer, node: torch.fx.Node, x: Value, d0: int, d1: int) -> Value:
    rank = len(shape_of(x))
    perm = list(range(rank))
    a, b = norm_dim(d0, rank), norm_dim(d1, rank)
    perm[a], perm[b] = perm[b], perm[a]
    return permute_value(imp, x, perm)


@aten_rule("t", "numpy_T")
def _t(imp: Importer, node: torch.fx.Node, x: Value) -> Value:
    rank = len(shape_of(x))
    return x if rank < 2 else permute_value(imp, x, list(range(rank))[::-1])


_ELEMENTWISE_USERS = frozenset(BINARY) | {"rsub", "where", "masked_fill", "add_", "mul_"}


@aten_rule("expand", "expand_as", "broadcast_to")
def _expand(imp: Importer, node: torch.fx.Node, x: Value, *rest: Any, **kw: Any) -> Value:
    target = tuple(imp.meta_type(node).get_shape())
    shape = shape_of(x)
    if shape == target:
        return x
    if len(shape) <= len(target):
        # Elementwise users broadcast by themselves: the expand needs no op.
        users = imp.users(node)
        if users and all(
            u.op == "call_function" and packet(u.target) in _ELEMENTWISE_USERS for u in users
        ):
            return x
    return broadcast_to(imp, imp.value(x), target)


@aten_rule(
    "_to_copy", "to", "type_as", "_autocast_to_reduced_precision", "_autocast_to_full_precision"
)
def _to(imp: Importer, node: torch.fx.Node, x: Value, *rest: Any, **kw: Any) -> Value:
    rtype = imp.meta_type(node)
    if shape_of(x) != tuple(rtype.get_shape()):
        raise Unsupported("a cast that changes the shape")
    if elem_of(imp, x) == rtype.get_element_type():
        return x  # the same IR type (float32 -> float16 with a bf16 activation dtype): folded
    return imp.emit(nn.CastOp(imp.value(x), rtype))


@aten_rule("cat", "concat", "concatenate")
def _cat(imp: Importer, node: torch.fx.Node, tensors: Sequence[Value], dim: int = 0) -> SSAValue:
    values = [imp.value(t) for t in tensors]
    rank = len(shape_of(values[0]))
    rtype = imp.meta_type(node)
    values = [v for v in values if math.prod(shape_of(v)) > 0] or values[:1]
    if len(values) == 1:
        return values[0]
    elem = rtype.get_element_type()
    values = [
        v
        if cast(TensorType, v.type).get_element_type() == elem
        else imp.emit(nn.CastOp(v, retype_elem(rtype, shape_of(v))))
        for v in values
    ]
    return imp.emit(nn.ConcatOp(values, norm_dim(dim, rank), rtype))


def slice_value(imp: Importer, x: Value, dim: int, start: int, size: int, step: int) -> Value:
    shape = shape_of(x)
    if start == 0 and size == shape[dim] and step == 1:
        return x
    starts = [0] * len(shape)
    sizes = list(shape)
    strides = [1] * len(shape)
    starts[dim], sizes[dim], strides[dim] = start, size, step
    return imp.emit(nn.SliceOp(imp.value(x), starts, sizes, strides))


@aten_rule("slice")
def _slice(
    imp: Importer,
    node: torch.fx.Node,
    x: Value,
    dim: int = 0,
    start: int | None = None,
    end: int | None = None,
    step: int = 1,
) -> Value:
    shape = shape_of(x)
    dim = norm_dim(dim, len(shape))
    size = imp.meta_type(node).get_shape()[dim]
    s = 0 if start is None else (start + shape[dim] if start < 0 else start)
    s = max(0, min(s, shape[dim]))
    if size == 0:
        raise Unsupported("an empty slice")
    return slice_value(imp, x, dim, s, size, step)


@aten_rule("narrow")
def _narrow(
    imp: Importer, node: torch.fx.Node, x: Value, dim: int, start: int, length: int
) -> Value:
    shape = shape_of(x)
    dim = norm_dim(dim, len(shape))
    start = start + shape[dim] if start < 0 else start
    return slice_value(imp, x, dim, start, length, 1)


def select_value(imp: Importer, x: Value, dim: int, index: int) -> Value:
    shape = shape_of(x)
    dim = norm_dim(dim, len(shape))
    index = index + shape[dim] if index < 0 else index
    part = slice_value(imp, x, dim, index, 1, 1)
    return reshape_to(imp, part, shape[:dim] + shape[dim + 1 :])


@aten_rule("select")
def _select(imp: Importer, node: torch.fx.Node, x: Value, dim: int, index: int) -> Value:
    return select_value(imp, x, dim, index)


def _split_sizes(total: int, size_or_sizes: int | Sequence[int]) -> list[int]:
    if isinstance(size_or_sizes, int):
        n = max(1, math.ceil(total / size_or_sizes))
        return [min(size_or_sizes, total - i * size_or_sizes) for i in range(n)]
    return list(size_or_sizes)


@aten_rule("split", "split_with_sizes", "split_copy", "split_with_sizes_copy")
def _split(imp: Importer, node: torch.fx.Node, x: Value, sizes: Any, dim: int = 0) -> list[Value]:
    shape = shape_of(x)
    dim = norm_dim(dim, len(shape))
    parts: list[Value] = []
    start = 0
    for size in _split_sizes(shape[dim], sizes):
        parts.append(slice_value(imp, x, dim, start, size, 1))
        start += size
    return parts


@aten_rule("chunk")
def _chunk(imp: Importer, node: torch.fx.Node, x: Value, chunks: int, dim: int = 0) -> list[Value]:
    total = shape_of(x)[norm_dim(dim, len(shape_of(x)))]
    return _split(imp, node, x, math.ceil(total / chunks), dim)


@aten_rule("unbind")
def _unbind(imp: Importer, node: torch.fx.Node, x: Value, dim: int = 0) -> list[Value]:
    shape = shape_of(x)
    return [select_value(imp, x, dim, i) for i in range(shape[norm_dim(dim, len(shape))])]


# -- padding and writes into slices (functionalised in-place updates) ---------------------------


@aten_rule("constant_pad_nd", "pad")
def _pad(
    imp: Importer, node: torch.fx.Node, x: Value, pad: Sequence[int], *rest: Any, **kw: Any
) -> Value:
    """`pad` lists (low, high) pairs from the last dim backwards; negative entries crop."""
    if packet(node.target) == "pad":
        mode = rest[0] if rest else kw.get("mode", "constant")
        if mode in BORDER_PADDINGS:
            return _border_pad(imp, node, x, pad, mode)
        if mode != "constant":
            raise Unsupported(f"{mode} padding")
        value = rest[1] if len(rest) > 1 else kw.get("value")
    else:
        value = rest[0] if rest else kw.get("value", 0)
    shape = shape_of(x)
    rank = len(shape)
    low, high = [0] * rank, [0] * rank
    for i in range(len(pad) // 2):
        low[rank - 1 - i], high[rank - 1 - i] = int(pad[2 * i]), int(pad[2 * i + 1])
    v = imp.value(x)
    if any(p < 0 for p in low + high):
        starts = [max(0, -lo) for lo in low]
        sizes = [d - max(0, -lo) - max(0, -hi) for d, lo, hi in zip(shape, low, high, strict=True)]
        v = imp.emit(nn.SliceOp(v, starts, sizes))
    low, high = [max(0, p) for p in low], [max(0, p) for p in high]
    if not any(low + high):
        return v
    return imp.emit(nn.PadOp(v, low, high, float(value or 0), imp.meta_type(node)))


@aten_rule("repeat")
def _repeat(imp: Importer, node: torch.fx.Node, x: Value, repeats: Sequence[int]) -> Value:
    """`x.repeat(r0, r1, ...)` tiles whole copies: x as [1, d0, 1, d1, ...], broadcast to
    [r0, d0, r1, d1, ...] (materialised) and reshaped to [r0 * d0, r1 * d1, ...]. Exact."""
    reps = [int(r) for r in repeats]
    shape = (1,) * (len(reps) - len(shape_of(x))) + tuple(shape_of(x))
    interleaved = [n for d in shape for n in (1, d)]
    tiled = [n for r, d in zip(reps, shape, strict=True) for n in (r, d)]
    v = imp.value(reshape_to(imp, x, interleaved))
    v = broadcast_to(imp, v, tiled)
    return reshape_to(imp, v, [r * d for r, d in zip(reps, shape, strict=True)])


BORDER_PADDINGS = ("reflect", "replicate", "circular")


def _border_pad(
    imp: Importer, node: torch.fx.Node, x: Value, pad: Sequence[int], mode: str
) -> Value:
    """Reflection, replication and circular padding copy the input's own border: per padded dim
    (last first, as `pad` lists them), `nn.concat` of slices of it around it. Exact.

    reflect: x[p], ..., x[1] | x | x[L-2], ..., x[L-1-p] (one slice per padded row);
    replicate: x[0] broadcast p times | x | x[L-1] broadcast; circular: x[L-p:] | x | x[:p].
    """
    v = imp.value(x)
    rank = len(shape_of(v))
    for i in range(len(pad) // 2):
        dim = rank - 1 - i
        low, high = int(pad[2 * i]), int(pad[2 * i + 1])
        length = shape_of(v)[dim]
        if low < 0 or high < 0:
            raise Unsupported(f"{mode} padding by a negative amount")
        pieces: list[SSAValue] = []

        def rows(start: int, size: int, dim: int = dim, source: SSAValue = v) -> SSAValue:
            return imp.value(slice_value(imp, source, dim, start, size, 1))

        def repeated(row: SSAValue, times: int, dim: int = dim) -> SSAValue:
            shape = list(shape_of(row))
            shape[dim] = times
            return broadcast_to(imp, row, shape)

        if mode == "reflect":
            pieces += [rows(k, 1) for k in range(low, 0, -1)]
            pieces.append(v)
            pieces += [rows(length - 2 - k, 1) for k in range(high)]
        elif mode == "replicate":
            pieces += [repeated(rows(0, 1), low)] if low else []
            pieces.append(v)
            pieces += [repeated(rows(length - 1, 1), high)] if high else []
        else:
            pieces += [rows(length - low, low)] if low else []
            pieces.append(v)
            pieces += [rows(0, high)] if high else []
        if len(pieces) > 1:
            shape = list(shape_of(v))
            shape[dim] += low + high
            v = imp.emit(nn.ConcatOp(pieces, dim, retype(v, shape)))
    return v


def _as_elem(imp: Importer, v: SSAValue, rtype: TensorType) -> SSAValue:
    """`v` in the element type of `rtype` (a cast when they differ)."""
    if cast(TensorType, v.type).get_element_type() == rtype.get_element_type():
        return v
    return imp.emit(nn.CastOp(v, retype_elem(rtype, shape_of(v))))


@aten_rule("slice_scatter")
def _slice_scatter(
    imp: Importer,
    node: torch.fx.Node,
    dest: Value,
    src: Value,
    dim: int = 0,
    start: int | None = None,
    end: int | None = None,
    step: int = 1,
) -> SSAValue:
    shape = shape_of(dest)
    dim = norm_dim(dim, len(shape))
    s = 0 if start is None else (start + shape[dim] if start < 0 else start)
    starts, strides = [0] * len(shape), [1] * len(shape)
    starts[dim], strides[dim] = max(0, min(s, shape[dim])), step
    rtype = imp.meta_type(node)
    source = _as_elem(imp, imp.value(src), rtype)
    return imp.emit(
        nn.InsertSliceOp(source, _as_elem(imp, imp.value(dest), rtype), starts, strides, rtype)
    )


@aten_rule("select_scatter")
def _select_scatter(
    imp: Importer, node: torch.fx.Node, dest: Value, src: Value, dim: int, index: int
) -> SSAValue:
    shape = shape_of(dest)
    dim = norm_dim(dim, len(shape))
    index = index + shape[dim] if index < 0 else index
    rtype = imp.meta_type(node)
    source = imp.value(reshape_to(imp, src, shape[:dim] + (1,) + shape[dim + 1 :]))
    starts = [0] * len(shape)
    starts[dim] = index
    source = _as_elem(imp, source, rtype)
    return imp.emit(
        nn.InsertSliceOp(source, _as_elem(imp, imp.value(dest), rtype), starts, None, rtype)
    )


@aten_rule("copy")
def _copy(imp: Importer, node: torch.fx.Node, dest: Value, src: Value, *rest: Any) -> Value:
    """Functional `copy_`: the source, broadcast to the destination's shape and type."""
    rtype = imp.meta_type(node)
    v = _as_elem(imp, imp.value(src), rtype)
    return broadcast_to(imp, v, rtype.get_shape())


@aten_rule("upsample_nearest2d")
def _upsample_nearest(imp: Importer, node: torch.fx.Node, x: Value, *rest: Any, **kw: Any) -> Value:
    """Nearest upsampling by whole factors (U-Net, FPN and YOLO decoders): every input cell
    repeated sh x sw times, as a reshape to [N, C, H, 1, W, 1], a broadcast and a reshape."""
    v = imp.value(x)
    n, c, h, w = shape_of(v)
    rtype = imp.meta_type(node)
    oh, ow = rtype.get_shape()[2:]
    if oh % h or ow % w:
        raise Unsupported(f"nearest upsampling of {h}x{w} to {oh}x{ow} (not by whole factors)")
    cells = imp.emit(nn.ReshapeOp(v, retype(v, [n, c, h, 1, w, 1])))
    repeated = broadcast_to(imp, cells, [n, c, h, oh // h, w, ow // w])
    return imp.emit(nn.ReshapeOp(repeated, retype(v, [n, c, oh, ow])))
