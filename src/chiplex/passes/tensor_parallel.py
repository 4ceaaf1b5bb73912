"""`tensor-parallel{chunks=2 max_bytes=N}`: Megatron-style splitting of feed-forward blocks by
their hidden features, so that no op reads a whole weight matrix or the whole widened activation.

A feed-forward block `y = act(x @ W1 + b1) @ W2` (ViT-base: W1 768 x 3072, W2 3072 x 768, 2.25
MiB each in int8) is the unit of weights the placer cannot cut: each matrix goes to one chip
whole, and the GELU between them holds a 197 x 3072 activation in and out. Each hidden feature j
is computed from column j of W1 (and b1[j]) alone and contributes through row j of W2 alone
(Shoeybi et al., Megatron-LM, 2019), so with the hidden features cut into consecutive ranges N_i

    y = sum_i act(x @ W1[:, N_i] + b1[N_i]) @ W2[N_i, :]

computes the same function: chunk i reads a column shard of W1 (and of b1) and the matching row
shard of W2, and its activation is 1/chunks of the whole. The shards are the `nn.param` shards
`shard-params` makes (`insert_shards`: `shard_of`, `shard_axis`, `shard_offset`, read by the
interpreter and by whoever loads real weights); the blocks are the regions `split-rows` finds
(`row_blocks`: a product, row-wise ops, a product), restricted to elementwise ops in between.

Exactness: parameter elements and bytes are unchanged (the shards partition each matrix and
bias); the matrix flops are exactly equal (flops are linear in the output columns of the first
product and in the contraction of the second); the elementwise ops' flops are linear in the
features, so equal too; the partial products are summed by `chunks - 1` `nn.add` ops, exactly
`(chunks - 1) * numel(y)` flops more (stated in the compile summary). The results' types are
unchanged. Values: the same up to the order of the float sums over the contraction (the
interpreter's check uses a tolerance, not bit identity).

What is split: a region from an `nn.matmul` of an activation by a 2-D `nn.param` through
elementwise ops whose other operands are the region's own values, or parameters that are either
per-feature (last axis = the hidden width: a bias, split with the columns) or constant along it
(last axis 1, a scale), to an `nn.matmul` of the region's value by a 2-D `nn.param`. A parameter
read elsewhere too is split only when every reader is such a block, with the same chunks
(ALBERT's shared layers); otherwise the block is left whole.

`chiplex compile` adds this pass only when the default pipeline and its `split-rows` retry find no
placement (and says so); in a pipeline of your own, put it before `split-rows` and
`annotate-costs`. `max_bytes` cuts a block into more chunks where needed so that each weight
shard is at most that many bytes; `min_bytes` leaves blocks whose matrices are smaller whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, TensorType, i64
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from chiplex.errors import ChiplexError
from chiplex.ir import nn
from chiplex.ir.graph import single_function
from chiplex.ir.types import tensor_bytes
from chiplex.passes.common import clone_resized
from chiplex.passes.options import ByteSize
from chiplex.passes.shard_params import insert_shards, split_sizes
from chiplex.passes.split_rows import Block, row_blocks

TENSOR_PARALLEL_ATTR = "chiplex.tensor_parallel"
"""Module attribute: how many feed-forward blocks `tensor-parallel` split."""
TENSOR_PARALLEL_ADDS_ATTR = "chiplex.tensor_parallel_add_flops"
"""Module attribute: the flops of the `nn.add` ops that sum the partial products."""


def describe_tensor_parallel(module: ModuleOp) -> list[str]:
    """The compile summary's line when the module's feed-forward blocks were split by features."""
    blocks = module.attributes.get(TENSOR_PARALLEL_ATTR)
    adds = module.attributes.get(TENSOR_PARALLEL_ADDS_ATTR)
    if not isinstance(blocks, IntegerAttr):
        return []
    added = (
        f", + {adds.value.data:,} flops for the partial sums"
        if isinstance(adds, IntegerAttr)
        else ""
    )
    return [
        f"tensor-parallel: {blocks.value.data} feed-forward blocks split by hidden features into "
        f"column/row weight shards{added} (so that no chip holds a whole weight matrix; "
        "`compile`'s notes say why it added the pass)"
    ]


def _shape(v: SSAValue) -> tuple[int, ...]:
    return cast(TensorType, v.type).get_shape()


def _param(v: SSAValue) -> nn.ParamOp | None:
    owner = v.owner
    return owner if isinstance(owner, nn.ParamOp) and len(_shape(v)) >= 1 else None


@dataclass(frozen=True)
class FeatureBlock:
    """A feed-forward block and what its split reads: the two matrices and the per-feature
    parameters of the ops between them (operand positions that take a column shard)."""

    block: Block
    w1: nn.ParamOp
    w2: nn.ParamOp
    per_feature: tuple[tuple[Operation, int], ...]
    """(op, operand index) of every per-feature parameter read in the chain."""

    @property
    def width(self) -> int:
        return _shape(self.w1.result)[1]

    def weight_bytes(self) -> int:
        return max(tensor_bytes(self.w1.result.type), tensor_bytes(self.w2.result.type))

    def readers(self) -> dict[nn.ParamOp, set[tuple[Operation, int]]]:
        """Each parameter the split shards, with the operand positions of this block reading it."""
        found: dict[nn.ParamOp, set[tuple[Operation, int]]] = {}
        found.setdefault(self.w1, set()).add((self.block.first, 1))
        found.setdefault(self.w2, set()).add((self.block.last, 1))
        for op, index in self.per_feature:
            param = _param(op.operands[index])
            assert param is not None
            found.setdefault(param, set()).add((op, index))
        return found


def feature_block(block: Block) -> FeatureBlock | None:
    """`block` as a feed-forward block that can be split by features, or None."""
    first, last = block.first, block.last
    if not isinstance(first, nn.MatmulOp) or not isinstance(last, nn.MatmulOp):
        return None
    w1, w2 = _param(first.rhs), _param(last.rhs)
    if w1 is None or w2 is None or len(_shape(w1.result)) != 2 or len(_shape(w2.result)) != 2:
        return None
    width = _shape(w1.result)[1]
    if width < 2 or _shape(w2.result)[0] != width:
        return None
    inside = {first, *block.chain}
    per_feature: list[tuple[Operation, int]] = []
    for op in block.chain:
        if not isinstance(op, nn.ElementwiseUnaryOp | nn.ElementwiseBinaryOp):
            return None  # a softmax mixes features; a reshape may move them
        if _shape(op.results[0])[-1] != width:
            return None
        for index, operand in enumerate(op.operands):
            if operand.owner in inside:
                continue
            shape = _shape(operand)
            if not shape or shape[-1] == 1:
                if _param(operand) is None and not isinstance(operand.owner, nn.ConstantOp):
                    return None  # an activation from outside: not split with the features
                continue
            if shape[-1] != width or _param(operand) is None:
                return None
            per_feature.append((op, index))
    return FeatureBlock(block, w1, w2, tuple(per_feature))


def _split(fb: FeatureBlock, chunks: int, shards: dict[nn.ParamOp, tuple[SSAValue, ...]]) -> int:
    """Rewrite one block into `chunks` feature chunks; return the flops of the added sums."""
    block = fb.block
    sizes = split_sizes(fb.width, chunks)
    column_reads = {(op, index) for op, index in fb.per_feature}
    for param, axis in ((fb.w1, 1), (fb.w2, 0)):
        if param not in shards:
            shards[param] = insert_shards(param, axis, sizes)
    for op, index in fb.per_feature:
        param = cast(nn.ParamOp, _param(op.operands[index]))
        if param not in shards:
            shards[param] = insert_shards(param, len(_shape(param.result)) - 1, sizes)
    result_type = cast(TensorType, block.last.result.type)
    new_ops: list[Operation] = []
    total: SSAValue | None = None
    added = 0
    for i, size in enumerate(sizes):
        local: dict[SSAValue, SSAValue] = {}
        for old in (block.first, *block.chain):
            operands: list[SSAValue] = []
            for index, operand in enumerate(old.operands):
                if old is block.first and index == 1:
                    operands.append(shards[fb.w1][i])
                elif (old, index) in column_reads:
                    operands.append(shards[cast(nn.ParamOp, operand.owner)][i])
                else:
                    operands.append(local.get(operand, operand))
            new = clone_resized(old, operands, -1, size, f"cols{i}")
            new_ops.append(new)
            local[old.results[0]] = new.results[0]
        product = nn.MatmulOp(local[block.last.lhs], shards[fb.w2][i], result_type)
        hint = block.last.result.name_hint
        product.result.name_hint = f"{hint}.rows{i}" if hint else None
        new_ops.append(product)
        if total is None:
            total = product.result
        else:
            add = nn.AddOp(total, product.result, result_type)
            add.result.name_hint = f"{hint}.sum{i}" if hint else None
            new_ops.append(add)
            added += add.flops()
            total = add.result
    assert total is not None
    Rewriter.insert_op(new_ops, InsertPoint.before(block.last))
    block.last.result.replace_all_uses_with(total)
    for old in reversed((block.first, *block.chain, block.last)):
        Rewriter.erase_op(old)
    return added


@dataclass(frozen=True)
class TensorParallel(ModulePass):
    name = "tensor-parallel"
    chunks: int = 2
    """Feature chunks per feed-forward block (fewer when the block is narrower)."""
    max_bytes: ByteSize | None = None
    """More chunks where needed, so that every weight shard is at most this many bytes."""
    min_bytes: ByteSize = 0
    """Split only blocks whose larger weight matrix exceeds this many bytes."""

    def chunks_for(self, fb: FeatureBlock) -> int:
        chunks = self.chunks
        if self.max_bytes is not None:
            chunks = max(chunks, math.ceil(fb.weight_bytes() / self.max_bytes))
        return min(chunks, fb.width)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.chunks < 2:
            raise ChiplexError(f"{self.name}: chunks must be >= 2, got {self.chunks}")
        if self.min_bytes < 0:
            raise ChiplexError(f"{self.name}: min_bytes must be >= 0, got {self.min_bytes}")
        if self.max_bytes is not None and self.max_bytes <= 0:
            raise ChiplexError(f"{self.name}: max_bytes must be > 0, got {self.max_bytes}")
        candidates = [
            fb
            for block in row_blocks(single_function(op))
            if (fb := feature_block(block)) is not None and fb.weight_bytes() > self.min_bytes
        ]
        # A parameter is replaced by its shards, so every reader of it must be rewritten, and
        # with the same cut: drop blocks until each shared parameter's readers all qualify.
        while True:
            reads: dict[nn.ParamOp, set[tuple[Operation, int]]] = {}
            cuts: dict[nn.ParamOp, set[int]] = {}
            for fb in candidates:
                for param, positions in fb.readers().items():
                    reads.setdefault(param, set()).update(positions)
                    cuts.setdefault(param, set()).add(self.chunks_for(fb))
            unsplittable = {
                param
                for param, positions in reads.items()
                if len(cuts[param]) > 1
                or {(use.operation, use.index) for use in param.result.uses} != positions
            }
            kept = [fb for fb in candidates if not unsplittable & fb.readers().keys()]
            if len(kept) == len(candidates):
                break
            candidates = kept
        shards: dict[nn.ParamOp, tuple[SSAValue, ...]] = {}
        added = sum(_split(fb, self.chunks_for(fb), shards) for fb in candidates)
        for param in shards:
            assert not param.result.uses
            Rewriter.erase_op(param)
        if candidates:
            op.attributes[TENSOR_PARALLEL_ATTR] = IntegerAttr(len(candidates), i64)
            op.attributes[TENSOR_PARALLEL_ADDS_ATTR] = IntegerAttr(added, i64)
