"""A user lowering pass: `nn.layer_norm` and `nn.gelu` -> primitive ops, checked to keep meaning.

    chiplex compile examples/models/bert_layer.mlir --plugin examples/passes/decompose_norms.py \
        --pipeline 'decompose-norms,annotate-costs{target=tpu-ring8},place,legalize-placement,insert-transfers,split-chiplets'

LayerNorm over the trailing axes A: m = mean(x, A), v = mean((x - m)^2, A),
y = (x - m) * rsqrt(v + eps) * gamma + beta. GELU: x * 0.5 * (1 + erf(x / sqrt(2))), the exact form
`nn.gelu` stands for. `tests/test_semantics.py` checks with `assert_pipeline_preserves_semantics` that
the rewritten programs compute what the originals do (docs/semantics.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType, f32
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from chiplex.ir import nn


def _scalar(value: float) -> nn.ConstantOp:
    # f32 scalars: a bf16 constant would round 1/sqrt(2) and epsilon and change the result.
    return nn.ConstantOp(value, TensorType(f32, []))


class LayerNormToPrimitives(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.LayerNormOp, rewriter: PatternRewriter, /) -> None:
        rank = len(cast(TensorType, op.input.type).get_shape())
        axes = list(range(rank - len(cast(TensorType, op.gamma.type).get_shape()), rank))
        mean = nn.ReduceMeanOp(op.input, axes, keepdims=True)
        centred = nn.SubOp(op.input, mean)
        square = nn.MulOp(centred, centred)
        var = nn.ReduceMeanOp(square, axes, keepdims=True)
        eps = _scalar(op.epsilon.value.data)
        shifted = nn.AddOp(var, eps)
        inv_std = nn.RsqrtOp(shifted)
        normed = nn.MulOp(centred, inv_std)
        scaled = nn.MulOp(normed, op.gamma)
        out = nn.AddOp(scaled, op.beta)
        rewriter.replace(
            op, [mean, centred, square, var, eps, shifted, inv_std, normed, scaled, out]
        )


class GeluToPrimitives(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.GeluOp, rewriter: PatternRewriter, /) -> None:
        inv_sqrt2, half, one = _scalar(1 / math.sqrt(2)), _scalar(0.5), _scalar(1.0)
        scaled = nn.MulOp(op.input, inv_sqrt2)
        erf = nn.ErfOp(scaled)
        plus_one = nn.AddOp(erf, one)
        halved = nn.MulOp(op.input, half)
        out = nn.MulOp(halved, plus_one)
        rewriter.replace(op, [inv_sqrt2, half, one, scaled, erf, plus_one, halved, out])


@dataclass(frozen=True)
class DecomposeNorms(ModulePass):
    name = "decompose-norms"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        patterns = [LayerNormToPrimitives(), GeluToPrimitives()]
        walker = PatternRewriteWalker(GreedyRewritePatternApplier(patterns, dce_enabled=False))
        walker.rewrite_module(op)
