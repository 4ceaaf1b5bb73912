"""Contractions: `linear`, `addmm`, `mm`, `bmm`, `matmul` and convolutions."""

from __future__ import annotations

from typing import Any

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
    retype,
    retype_elem,
    shape_of,
)
from chiplex.ir.torch_import.registry import (
    aten_rule,
    packet,
)
from chiplex.ir.torch_import.rules.shape import permute_value, reshape_to
from chiplex.ir.torch_import.values import (
    ParamRef,
    Unsupported,
    Value,
    View,
)

# -- contractions ------------------------------------------------------------------------------


def _rhs_matrix(imp: Importer, w: Value, transpose: bool) -> SSAValue:
    """The [K, N] operand of nn.matmul; a parameter's transpose is folded into its layout."""
    shape = shape_of(w)
    if len(shape) != 2:
        raise Unsupported(f"weight of rank {len(shape)}")
    if not transpose:
        return imp.value(w)
    if isinstance(w, ParamRef):
        return imp.materialize_param(w.view(View((shape[1], shape[0]), (1, 0))))
    return imp.emit(nn.TransposeOp(imp.value(w), [1, 0]))


def _matmul_2d_rhs(
    imp: Importer, node: torch.fx.Node, x: Value, rhs: SSAValue, rtype: TensorType
) -> SSAValue:
    lhs = imp.value(x)
    xs = shape_of(lhs)
    if len(xs) == 1:
        lhs = imp.emit(nn.ReshapeOp(lhs, retype(lhs, (1, xs[0]))))
        out = imp.emit(nn.MatmulOp(lhs, rhs, retype_elem(rtype, (1, rtype.get_shape()[-1]))))
        return imp.emit(nn.ReshapeOp(out, rtype))
    return imp.emit(nn.MatmulOp(lhs, rhs, rtype))


@aten_rule("linear")
def _linear(
    imp: Importer, node: torch.fx.Node, x: Value, w: Value, b: Value | None = None
) -> SSAValue:
    rtype = imp.meta_type(node)
    out = _matmul_2d_rhs(imp, node, x, _rhs_matrix(imp, w, transpose=True), rtype)
    if b is not None:
        out = imp.emit(nn.AddOp(out, imp.value(b), rtype))
    return out


@aten_rule("addmm")
def _addmm(
    imp: Importer,
    node: torch.fx.Node,
    b: Value,
    x: Value,
    w: Value,
    *,
    beta: float = 1,
    alpha: float = 1,
) -> SSAValue:
    if beta != 1 or alpha != 1:
        raise Unsupported("alpha or beta other than 1")
    rtype = imp.meta_type(node)
    out = _matmul_2d_rhs(imp, node, x, _rhs_matrix(imp, w, transpose=False), rtype)
    return imp.emit(nn.AddOp(out, imp.value(b), rtype))


@aten_rule("mm")
def _mm(imp: Importer, node: torch.fx.Node, a: Value, b: Value) -> SSAValue:
    return imp.emit(nn.MatmulOp(imp.value(a), imp.value(b), imp.meta_type(node)))


@aten_rule("bmm")
def _bmm(imp: Importer, node: torch.fx.Node, a: Value, b: Value) -> SSAValue:
    return imp.emit(nn.BatchMatmulOp(imp.value(a), imp.value(b), imp.meta_type(node)))


@aten_rule("matmul")
def _matmul(imp: Importer, node: torch.fx.Node, a: Value, b: Value) -> SSAValue:
    rtype = imp.meta_type(node)
    sa, sb = shape_of(a), shape_of(b)
    if len(sb) == 2 and len(sa) >= 1:
        return _matmul_2d_rhs(imp, node, a, _rhs_matrix(imp, b, transpose=False), rtype)
    if len(sa) < 2 or len(sb) < 2:
        raise Unsupported(f"matmul of ranks {len(sa)} and {len(sb)}")
    lhs, rhs = imp.value(a), imp.value(b)
    batch = tuple(torch.broadcast_shapes(torch.Size(sa[:-2]), torch.Size(sb[:-2])))
    lhs = broadcast_to(imp, lhs, batch + sa[-2:])
    rhs = broadcast_to(imp, rhs, batch + sb[-2:])
    return imp.emit(nn.BatchMatmulOp(lhs, rhs, rtype))


def _spatial(v: Any, rank: int, fill: int) -> list[int]:
    """A stride/padding/dilation argument as one entry per spatial dim (an int means all)."""
    if isinstance(v, int):
        return [v] * rank
    vals = [int(x) for x in v]
    return vals * rank if len(vals) == 1 else (vals or [fill] * rank)


@aten_rule("conv1d", "conv2d", "convolution", "_convolution")
def _conv(imp: Importer, node: torch.fx.Node, x: Value, w: Value, *args: Any, **kw: Any) -> Value:
    """2-D convolutions map to `nn.conv2d`; a 1-D one is the 2-D one over a height of 1 (a free
    reshape of input and weight, same flops) and is reshaped back."""
    name = packet(node.target)
    if name in ("conv1d", "conv2d"):
        names = ["bias", "stride", "padding", "dilation", "groups"]
        defaults: dict[str, Any] = {"bias": None, "stride": 1, "padding": 0, "dilation": 1}
        defaults["groups"] = 1
    else:
        names = ["bias", "stride", "padding", "dilation", "transposed", "output_padding", "groups"]
        defaults = {"bias": None, "transposed": False, "groups": 1}
    p = defaults | dict(zip(names, args, strict=False)) | kw
    wshape = shape_of(w)
    dims = len(wshape) - 2
    if dims not in (1, 2):
        raise Unsupported(f"{dims}-D convolution (only 1-D and 2-D are supported)")
    if p.get("transposed"):
        return _transposed_conv(imp, node, x, w, p, dims)
    if len(shape_of(x)) != dims + 2:
        raise Unsupported("an unbatched convolution input")
    dilation = _spatial(p["dilation"], dims, 1)
    padding = p["padding"]
    if isinstance(padding, str):
        if padding == "valid":
            padding = [0] * dims
        else:
            # "same" with stride 1: symmetric padding only when the kernel is odd.
            total = [d * (k - 1) for d, k in zip(dilation, wshape[2:], strict=True)]
            if any(t % 2 for t in total):
                raise Unsupported("padding='same' with an even kernel (asymmetric padding)")
            padding = [t // 2 for t in total]
    stride, padding = _spatial(p["stride"], dims, 1), _spatial(padding, dims, 0)
    rtype = imp.meta_type(node)
    if dims == 1:
        n, c, length = shape_of(x)
        x = reshape_to(imp, x, (n, c, 1, length))
        w = reshape_to(imp, w, (wshape[0], wshape[1], 1, wshape[2]))
        stride, padding, dilation = [1, *stride], [0, *padding], [1, *dilation]
        out_shape = rtype.get_shape()
        conv_type = retype_elem(rtype, (out_shape[0], out_shape[1], 1, out_shape[2]))
    else:
        conv_type = rtype
    xv, wv = imp.value(x), imp.value(w)
    conv = nn.Conv2dOp(xv, wv, stride, padding, dilation, int(p["groups"]), conv_type)
    out: Value = imp.emit(conv)
    bias = p["bias"]
    if bias is not None:
        channels = shape_of(bias)[0]
        # The bias [C] broadcasts over NCHW as [C, 1, 1]: a free re-layout of the stored param.
        bv = imp.value(reshape_to(imp, bias, (channels, 1, 1)))
        out = imp.emit(nn.AddOp(out, bv, conv_type))
    if dims == 1:
        out = reshape_to(imp, out, rtype.get_shape())
    return out


def _transposed_conv(
    imp: Importer, node: torch.fx.Node, x: Value, w: Value, p: dict[str, Any], dims: int
) -> Value:
    """A transposed convolution whose stride equals its kernel (U-Net's `ConvTranspose2d(c, c //
    2, 2, stride=2)`) writes every output pixel from exactly one input pixel: it is the 1x1
    convolution to `O * kh * kw` channels followed by a pixel shuffle (reshape, transpose,
    reshape). Exact, and the same multiply-accumulates. The weight `[C, O, kh, kw]` is stored as
    the `[O * kh * kw, C, 1, 1]` the 1x1 convolution reads (a free view of the parameter)."""
    kernel = list(shape_of(w)[2:])
    stride = _spatial(p["stride"], dims, 1)
    padding = _spatial(p["padding"], dims, 0)
    output_padding = _spatial(p.get("output_padding", 0), dims, 0)
    dilation = _spatial(p["dilation"], dims, 1)
    groups = int(p["groups"])
    if (
        stride != kernel
        or any(padding)
        or any(output_padding)
        or set(dilation) != {1}
        or groups != 1
    ):
        raise Unsupported(
            f"transposed convolution with kernel {kernel}, stride {stride}, padding {padding}, "
            f"output_padding {output_padding}, dilation {dilation}, groups {groups}: only a "
            "stride equal to the kernel without padding, dilation or groups maps to nn (a 1x1 "
            "convolution and a pixel shuffle); use that, or nearest/bilinear upsampling and a "
            "convolution"
        )
    rtype = imp.meta_type(node)
    if dims == 1:
        n, c, length = shape_of(x)
        x = reshape_to(imp, x, (n, c, 1, length))
        w = reshape_to(imp, w, (*shape_of(w)[:2], 1, kernel[0]))
        kernel = [1, kernel[0]]
    n, c, h, width = shape_of(x)
    kh, kw = kernel
    out_channels = shape_of(w)[1]
    weight = reshape_to(imp, permute_value(imp, w, (1, 2, 3, 0)), (out_channels * kh * kw, c, 1, 1))
    elem = rtype.get_element_type()
    conv_type = TensorType(elem, [n, out_channels * kh * kw, h, width])
    xv = imp.value(x)
    out: Value = imp.emit(nn.Conv2dOp(xv, imp.value(weight), [1, 1], [0, 0], [1, 1], 1, conv_type))
    out = reshape_to(imp, out, (n, out_channels, kh, kw, h, width))
    out = permute_value(imp, out, (0, 1, 4, 2, 5, 3))
    out = reshape_to(imp, out, (n, out_channels, h * kh, width * kw))
    bias = p["bias"]
    if bias is not None:
        bv = imp.value(reshape_to(imp, bias, (out_channels, 1, 1)))
        out = imp.emit(nn.AddOp(imp.value(out), bv))
    return reshape_to(imp, out, rtype.get_shape())
