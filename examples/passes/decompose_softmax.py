"""A user lowering pass in one file: `nn.softmax` -> max, sub, exp, sum, div (numerically stable).

Use it from the command line with `--plugin` (every ModulePass defined in the file is registered by name):

    chiplex compile examples/models/bert_layer.mlir --plugin examples/passes/decompose_softmax.py \
        --pipeline 'decompose-softmax,annotate-costs{target=tpu-ring8},place,legalize-placement,insert-transfers,split-chiplets'

or from Python: `chiplex.passes.register_pass(DecomposeSoftmax)`.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from chiplex.ir import nn


class SoftmaxToPrimitives(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.SoftmaxOp, rewriter: PatternRewriter, /) -> None:
        axis = op.axis.value.data
        peak = nn.ReduceMaxOp(op.input, [axis], keepdims=True)
        shifted = nn.SubOp(op.input, peak)
        exps = nn.ExpOp(shifted)
        total = nn.ReduceSumOp(exps, [axis], keepdims=True)
        probs = nn.DivOp(exps, total)
        rewriter.replace(op, [peak, shifted, exps, total, probs])


@dataclass(frozen=True)
class DecomposeSoftmax(ModulePass):
    name = "decompose-softmax"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        # dce_enabled=False: a lowering must never delete ops it did not match.
        patterns = GreedyRewritePatternApplier([SoftmaxToPrimitives()], dce_enabled=False)
        PatternRewriteWalker(patterns).rewrite_module(op)
