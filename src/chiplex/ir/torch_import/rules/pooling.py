"""Pooling (NCHW): max, average, and adaptive average and max pooling."""

from __future__ import annotations

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
    pair,
    shape_of,
)
from chiplex.ir.torch_import.registry import (
    aten_rule,
    packet,
)
from chiplex.ir.torch_import.values import (
    Const,
    Unsupported,
    Value,
)


def _pool_params(kernel: Any, stride: Any, padding: Any) -> tuple[list[int], list[int], list[int]]:
    k = pair(kernel)
    s = pair(stride, default=k) if stride is not None else k
    return k, s, pair(padding)


def _check_pool(
    imp: Importer, node: torch.fx.Node, v: SSAValue, k: list[int], s: list[int], p: list[int]
) -> TensorType:
    rtype = imp.meta_type(node)
    expected = nn.pool2d_shape(cast(TensorType, v.type), k, s, p)
    if tuple(rtype.get_shape()) != tuple(expected):
        raise Unsupported("ceil_mode pooling that adds an output row or column")
    return rtype


@aten_rule("max_pool2d", "max_pool2d_with_indices")
def _max_pool(
    imp: Importer,
    node: torch.fx.Node,
    x: Value,
    kernel: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> Value:
    if any(d != 1 for d in pair(dilation)):
        raise Unsupported("dilated pooling")
    v = imp.value(x)
    k, s, p = _pool_params(kernel, stride, padding)
    out = imp.emit(nn.MaxPool2dOp(v, k, s, p, _check_pool(imp, node, v, k, s, p)))
    if packet(node.target) == "max_pool2d_with_indices":
        return (out, None)
    return out


@aten_rule("avg_pool2d")
def _avg_pool(
    imp: Importer,
    node: torch.fx.Node,
    x: Value,
    kernel: Any,
    stride: Any = None,
    padding: Any = 0,
    *rest: Any,
    **kw: Any,
) -> SSAValue:
    names = ["ceil_mode", "count_include_pad", "divisor_override"]
    options = {"count_include_pad": True, "divisor_override": None}
    options |= dict(zip(names, rest, strict=False)) | kw
    if options["divisor_override"] is not None:
        raise Unsupported("avg_pool2d with divisor_override")
    v = imp.value(x)
    k, s, p = _pool_params(kernel, stride, padding)
    shape = shape_of(v)
    rtype = imp.meta_type(node)
    if (
        len(shape) == 4
        and tuple(rtype.get_shape()[2:]) == (1, 1)
        and not any(p)
        and k[0] >= shape[2]
        and k[1] >= shape[3]
    ):
        # One window over the whole input (EfficientNet's `AvgPool2d(hidden, ceil_mode=True)`):
        # torch divides by the cells inside the input, so this is the global mean.
        return imp.emit(nn.GlobalAvgPool2dOp(v, rtype))
    rtype = _check_pool(imp, node, v, k, s, p)
    out = imp.emit(nn.AvgPool2dOp(v, k, s, p, rtype))
    if options["count_include_pad"] and any(p):
        # nn.avg_pool2d divides by the cells inside the input; torch's default divides by the
        # whole window: scale each output by (cells inside / window cells), a constant map.
        h, w = shape[2:]
        ones = torch.ones(1, 1, h, w)
        inside = torch.nn.functional.avg_pool2d(ones, k, s, p, count_include_pad=True)
        name = f"{imp.path}.pad_fraction" if imp.path else "avg_pool2d.pad_fraction"
        out = imp.emit(nn.MulOp(out, imp.value(Const(inside, name)), rtype))
    return out


def _adaptive_window(v: SSAValue, size: Any) -> list[int]:
    """The one window (= stride) adaptive pooling of NCHW `v` to `size` uses: whole windows only."""
    shape = shape_of(v)
    if len(shape) != 4:
        raise Unsupported(f"input of rank {len(shape)} (NCHW expected)")
    oh, ow = pair(size)
    h, w = shape[2], shape[3]
    if h % oh or w % ow:
        raise Unsupported(f"adaptive pooling of {h}x{w} to {oh}x{ow} (uneven windows)")
    return [h // oh, w // ow]


@aten_rule("adaptive_avg_pool2d", "_adaptive_avg_pool2d")
def _adaptive_avg_pool(imp: Importer, node: torch.fx.Node, x: Value, size: Any) -> SSAValue:
    v = imp.value(x)
    if pair(size) == [1, 1] and len(shape_of(v)) == 4:
        return imp.emit(nn.GlobalAvgPool2dOp(v, imp.meta_type(node)))
    k = _adaptive_window(v, size)
    return imp.emit(nn.AvgPool2dOp(v, k, k, [0, 0], imp.meta_type(node)))


@aten_rule("adaptive_max_pool2d")
def _adaptive_max_pool(imp: Importer, node: torch.fx.Node, x: Value, size: Any) -> Value:
    """One max-pooling window per output cell; `AdaptiveMaxPool1d` reaches here through a view
    to NCHW. Returns (values, no indices) like `max_pool2d_with_indices`."""
    v = imp.value(x)
    k = _adaptive_window(v, size)
    return (imp.emit(nn.MaxPool2dOp(v, k, k, [0, 0], imp.meta_type(node))), None)
