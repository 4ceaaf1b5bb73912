"""Fused attention (`scaled_dot_product_attention`), expanded into `nn` ops."""

from __future__ import annotations

import math
from typing import Any, cast

import torch
import torch.fx
from xdsl.dialects.builtin import (
    TensorType,
    i1,
)
from xdsl.ir import SSAValue

from chiplex.ir import nn
from chiplex.ir.torch_import.builder import (
    Importer,
    broadcast_to,
    elem_of,
    retype,
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


@aten_rule("scaled_dot_product_attention", "_scaled_dot_product_flash_attention_for_cpu")
def _sdpa(
    imp: Importer, node: torch.fx.Node, q: Value, k: Value, v: Value, *args: Any, **kw: Any
) -> Value:
    name = packet(node.target)
    if name == "scaled_dot_product_attention":
        names = ["attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa"]
    else:
        names = ["dropout_p", "is_causal", "attn_mask", "scale"]
    p: dict[str, Any] = {"attn_mask": None, "is_causal": False, "scale": None, "enable_gqa": False}
    p |= dict(zip(names, args, strict=False)) | kw
    qv, kv, vv = imp.value(q), imp.value(k), imp.value(v)
    qs, ks = shape_of(qv), shape_of(kv)
    if len(qs) < 3 or len(ks) != len(qs) or len(shape_of(vv)) != len(qs):
        raise Unsupported("attention with query and key/value of different ranks")
    kv, vv = (_heads_like_query(imp, t, qs, bool(p["enable_gqa"])) for t in (kv, vv))
    ks = shape_of(kv)
    scale = p["scale"] if p["scale"] is not None else 1.0 / math.sqrt(qs[-1])
    rank = len(qs)
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    kt = imp.emit(nn.TransposeOp(kv, perm))
    scores = imp.emit(nn.BatchMatmulOp(qv, kt))
    elem = cast(TensorType, scores.type).get_element_type()
    scores = imp.emit(nn.MulOp(scores, imp.scalar(float(scale), elem)))
    mask = p["attn_mask"]
    if p["is_causal"]:
        size_l, size_s = qs[-2], ks[-2]
        causal = torch.ones(size_l, size_s, dtype=torch.bool).tril().logical_not()
        mask = Const(torch.zeros(size_l, size_s).masked_fill(causal, float("-inf")), "causal_mask")
    if mask is not None:
        if isinstance(mask, Const) and mask.tensor.dtype == torch.bool:
            mask = Const(
                torch.zeros(mask.tensor.shape).masked_fill(~mask.tensor, float("-inf")), mask.name
            )
        elif elem_of(imp, mask) == i1:
            raise Unsupported("a boolean attention mask computed from the inputs")
        scores = imp.emit(nn.AddOp(scores, imp.value(mask)))
    probs = imp.emit(nn.SoftmaxOp(scores, -1))
    out = imp.emit(nn.BatchMatmulOp(probs, vv))
    rtype_node = node.meta.get("val")
    if isinstance(rtype_node, tuple | list):
        return (out, None)
    return out


def _heads_like_query(imp: Importer, t: SSAValue, qs: tuple[int, ...], gqa: bool) -> SSAValue:
    """Key or value with the query's batch and head dims (nn.batch_matmul does not broadcast).

    Multi-query attention (Falcon: one key/value head, [B, 1, S, D]) broadcasts; grouped-query
    attention (`enable_gqa`, Hk heads for H query heads) repeats each key/value head H / Hk
    times in a row, as torch does: [B, Hk, 1, S, D] broadcast to [B, Hk, H / Hk, S, D], reshaped.
    """
    ts = shape_of(t)
    if ts[:-2] == qs[:-2]:
        return t
    target = tuple(qs[:-2]) + tuple(ts[-2:])
    if gqa and len(qs) >= 4 and ts[:-3] == qs[:-3] and ts[-3] != 1 and qs[-3] % ts[-3] == 0:
        grouped = ts[:-2] + (1,) + ts[-2:]
        t = imp.emit(nn.ReshapeOp(t, retype(t, grouped)))
        t = broadcast_to(imp, t, ts[:-2] + (qs[-3] // ts[-3],) + ts[-2:])
        return imp.emit(nn.ReshapeOp(t, retype(t, target)))
    try:
        torch.broadcast_shapes(torch.Size(ts[:-2]), torch.Size(qs[:-2]))
    except RuntimeError:
        raise Unsupported(
            f"attention with key/value batch and heads {list(ts[:-2])} for query {list(qs[:-2])}"
        ) from None
    return broadcast_to(imp, t, target)
