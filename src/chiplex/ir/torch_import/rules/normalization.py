"""Normalisations: softmax, layer norm, inference batch norm."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.fx
from xdsl.dialects.builtin import (
    TensorType,
    f32,
)
from xdsl.ir import Attribute, SSAValue

from chiplex.ir import nn
from chiplex.ir.torch_import.builder import (
    Importer,
    retype,
    shape_of,
)
from chiplex.ir.torch_import.registry import (
    aten_rule,
    packet,
)
from chiplex.ir.torch_import.rules.shape import reshape_to
from chiplex.ir.torch_import.values import (
    Const,
    ParamRef,
    Unsupported,
    Value,
)

# -- normalisation -----------------------------------------------------------------------------


@aten_rule("softmax", "_softmax", "_safe_softmax")
def _softmax(
    imp: Importer, node: torch.fx.Node, x: Value, dim: int, *rest: Any, **kw: Any
) -> SSAValue:
    v = imp.value(x)
    out = imp.emit(nn.SoftmaxOp(v, dim))
    rtype = imp.meta_type(node)
    if out.type != rtype:
        out = imp.emit(nn.CastOp(out, rtype))
    return out


@aten_rule("log_softmax", "_log_softmax")
def _log_softmax(
    imp: Importer, node: torch.fx.Node, x: Value, dim: int, *rest: Any, **kw: Any
) -> SSAValue:
    return imp.emit(nn.LogOp(_softmax(imp, node, x, dim)))


def _ones_or(
    imp: Importer, v: Value | None, shape: Sequence[int], fill: float, elem: Attribute
) -> SSAValue:
    if v is not None:
        return imp.value(v)
    return imp.emit(nn.ConstantOp(fill, TensorType(elem, list(shape))), "cst")


@aten_rule("layer_norm", "native_layer_norm")
def _layer_norm(
    imp: Importer,
    node: torch.fx.Node,
    x: Value,
    shape: Sequence[int],
    weight: Value | None = None,
    bias: Value | None = None,
    eps: float = 1e-5,
    *rest: Any,
) -> Value:
    elem = imp.weight_type or f32
    gamma = _ones_or(imp, weight, shape, 1.0, elem)
    beta = _ones_or(imp, bias, shape, 0.0, elem)
    out = imp.emit(nn.LayerNormOp(imp.value(x), gamma, beta, float(eps)))
    if packet(node.target) == "native_layer_norm":
        return (out, None, None)
    return out


@aten_rule("batch_norm", "_native_batch_norm_legit_no_training", "_native_batch_norm_legit")
def _batch_norm(
    imp: Importer,
    node: torch.fx.Node,
    x: Value,
    weight: Value | None,
    bias: Value | None,
    running_mean: Value | None,
    running_var: Value | None,
    *rest: Any,
    **kw: Any,
) -> Value:
    name = packet(node.target)
    if name == "_native_batch_norm_legit" and isinstance(running_mean, bool):
        # The `.no_stats` overload (functionalised track_running_stats=False): (input, weight,
        # bias, training, momentum, eps), no statistics.
        rest = (running_mean, running_var, *rest)
        running_mean = running_var = None
    training = rest[0] if name in ("batch_norm", "_native_batch_norm_legit") and rest else False
    # eps follows momentum: (momentum, eps) for _no_training, (training, momentum, eps) otherwise.
    eps_at = 1 if name == "_native_batch_norm_legit_no_training" else 2
    eps = float(kw.get("eps", rest[eps_at] if len(rest) > eps_at else 1e-5))
    if training or running_mean is None or running_var is None:
        # Normalised by the batch's own statistics: track_running_stats=False (in eval mode too),
        # or an explicit F.batch_norm(..., training=True).
        out = _batch_statistics_norm(imp, imp.value(x), weight, bias, eps)
        return out if name == "batch_norm" else (out, None, None)
    # Inference batch norm folds into a per-channel scale and bias: the affine parameters stand
    # for the folded tensors (same shape, same names); without them the statistics do. The folded
    # data goes to the importer's constants so that the IR can be run (chiplex.ir.interpret).
    scale_data, shift_data = _fold_batch_norm(imp, weight, bias, running_mean, running_var, eps)
    scale = imp.value(weight if weight is not None else Const(scale_data, running_var.name))
    shift = imp.value(bias if bias is not None else Const(shift_data, running_mean.name))
    for ref, data in ((weight, scale_data), (bias, shift_data)):
        if isinstance(ref, ParamRef):
            imp.const_values[ref.name] = data
    out = imp.emit(nn.BatchNormOp(imp.value(x), scale, shift))
    if name == "batch_norm":
        return out
    return (out, None, None)


def _batch_statistics_norm(
    imp: Importer, v: SSAValue, weight: Value | None, bias: Value | None, eps: float
) -> SSAValue:
    """Batch norm by the batch's statistics: each channel normalised over the batch and spatial
    dims (biased variance), as a layer norm of `[C, N * spatial]` (channels moved first), moved
    back, then the per-channel affine as a multiply and an add."""
    shape = shape_of(v)
    channels = shape[1]
    perm = [1, 0, *range(2, len(shape))]
    moved_shape = [shape[p] for p in perm]
    moved = imp.emit(nn.TransposeOp(v, perm))
    rows = imp.emit(nn.ReshapeOp(moved, retype(v, (channels, math.prod(moved_shape[1:])))))
    elem = imp.weight_type or f32
    size = math.prod(moved_shape[1:])
    gamma = _ones_or(imp, None, [size], 1.0, elem)
    beta = _ones_or(imp, None, [size], 0.0, elem)
    normed = imp.emit(nn.LayerNormOp(rows, gamma, beta, eps))
    back = imp.emit(nn.ReshapeOp(normed, retype(v, moved_shape)))
    out: SSAValue = imp.emit(nn.TransposeOp(back, perm))
    channel_shape = (channels,) + (1,) * (len(shape) - 2)
    for param, cls in ((weight, nn.MulOp), (bias, nn.AddOp)):
        if param is not None:
            factor = imp.value(reshape_to(imp, param, channel_shape))
            out = imp.emit(cls(out, factor, out.type))
    return out


def _fold_batch_norm(
    imp: Importer,
    weight: Value | None,
    bias: Value | None,
    running_mean: Value,
    running_var: Value,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """scale = weight / sqrt(var + eps), shift = bias - mean * scale (float32)."""

    def data(v: Value | None, fill: float, like: torch.Tensor) -> torch.Tensor:
        if v is None:
            return torch.full_like(like, fill)
        if isinstance(v, Const):
            return v.tensor.float()
        if isinstance(v, ParamRef) and not v.views and v.name in imp.ep.state_dict:
            return imp.ep.state_dict[v.name].detach().float()
        raise Unsupported("batch norm with computed statistics or affine parameters")

    if not isinstance(running_mean, Const) or not isinstance(running_var, Const):
        raise Unsupported("batch norm with computed running statistics")
    var = running_var.tensor.float()
    scale = data(weight, 1.0, var) / torch.sqrt(var + eps)
    shift = data(bias, 0.0, var) - running_mean.tensor.float() * scale
    return scale, shift


@aten_rule("group_norm", "native_group_norm")
def _group_norm(imp: Importer, node: torch.fx.Node, x: Value, *args: Any, **kw: Any) -> Value:
    """Group norm = layer norm of each group's elements (`[N, G, C/G * spatial]`, no affine),
    then the per-channel affine as a multiply and an add (wav2vec2's feature encoder)."""
    v = imp.value(x)
    if packet(node.target) == "group_norm":
        names = ["num_groups", "weight", "bias", "eps"]
        p: dict[str, Any] = {"weight": None, "bias": None, "eps": 1e-5}
    else:
        names = ["weight", "bias", "N", "C", "HxW", "num_groups", "eps"]
        p = {}
    p |= dict(zip(names, args, strict=False)) | kw
    out = _normalize_groups(imp, v, int(p["num_groups"]), p["weight"], p["bias"], float(p["eps"]))
    return out if packet(node.target) == "group_norm" else (out, None, None)


@aten_rule("instance_norm")
def _instance_norm(
    imp: Importer,
    node: torch.fx.Node,
    x: Value,
    weight: Value | None = None,
    bias: Value | None = None,
    running_mean: Value | None = None,
    running_var: Value | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
    *rest: Any,
) -> Value:
    """Instance norm (style transfer, CycleGAN) normalises each sample's channel over its spatial
    dims with its own statistics: group norm with one group per channel."""
    if not use_input_stats:
        raise Unsupported(
            "instance norm with running statistics (track_running_stats=True): construct it "
            "with track_running_stats=False, or use BatchNorm with the same statistics"
        )
    v = imp.value(x)
    return _normalize_groups(imp, v, shape_of(v)[1], weight, bias, float(eps))


def _normalize_groups(
    imp: Importer, v: SSAValue, groups: int, weight: Value | None, bias: Value | None, eps: float
) -> SSAValue:
    shape = shape_of(v)
    n, c = shape[0], shape[1]
    size = math.prod(shape[1:]) // groups
    grouped = imp.emit(nn.ReshapeOp(v, retype(v, (n, groups, size))))
    elem = imp.weight_type or f32
    gamma = _ones_or(imp, None, [size], 1.0, elem)
    beta = _ones_or(imp, None, [size], 0.0, elem)
    normed = imp.emit(nn.LayerNormOp(grouped, gamma, beta, eps))
    out: SSAValue = imp.emit(nn.ReshapeOp(normed, retype(v, shape)))
    channel_shape = (c,) + (1,) * (len(shape) - 2)
    for param, cls in ((weight, nn.MulOp), (bias, nn.AddOp)):
        if param is not None:
            factor = imp.value(reshape_to(imp, param, channel_shape))
            out = imp.emit(cls(out, factor, out.type))
    return out
