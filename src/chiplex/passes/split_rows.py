"""`split-rows{chunks=2}`: token-parallel tiling of feed-forward blocks, so that no op of the block
needs the whole hidden activation in a chip's memory at once.

A transformer's feed-forward block `y = act(x @ W1 + b1) @ W2` widens each token's vector 4x in
the middle: BERT-base at 128 tokens holds a 128 x 3072 bf16 activation (0.75 MiB) and its GELU
reads one and writes another, a working set of 1.5 MiB; at 197 tokens (ViT-base) 2.31 MiB. Every
chip that holds a feed-forward block must keep that much free beside its weights, and on a module
whose SRAM is 80% weights (BERT-base on tpu-ring8) that is what makes a placement fail. Every op of
the block works on each token (row) independently, so the block computes the same function on
slices of rows:

    y = concat_i( act(x[rows_i] @ W1 + b1) @ W2 )        along the row axis (-2)

Each chunk's ops touch 1/chunks of the widened activation; the weights are the same `nn.param`
values, read by every chunk and stored once on a chip that holds several chunks (the shared
parameter rule). Flops are exactly equal (a matmul's and an elementwise op's flops are linear in
the rows; slices and the concat have none), parameter bytes are unchanged, and the results'
shapes and types are the same.

What is split: a chain that starts at an `nn.matmul` of an activation `x` (rank >= 2) by a
parameter, goes through single-use row-wise elementwise ops (unary ones, and binary ones whose
other operand is a parameter or constant without the row axis, such as a bias), and ends at an
`nn.matmul` of the chain's value by a parameter; or, for attention, from an `nn.batch_matmul`
(the scores) through the scale, the mask and the softmax over keys to the `nn.batch_matmul` by
the values. An operand of the chain that has the rows too (an attention bias, the other branch of
a gated MLP such as LLaMA's `silu(x W1) * (x W3)`) is read a slice of rows at a time.

`chiplex compile` runs this pass only when the default pipeline finds no placement without it
(and says so); in a pipeline of your own, put it before `annotate-costs`. `min_bytes` splits only
blocks whose largest working set (activation bytes in + out of one op) exceeds it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, TensorType, i64
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from chiplex.errors import ChiplexError
from chiplex.ir import nn
from chiplex.ir.graph import STATIONARY_OPS, single_function
from chiplex.ir.types import tensor_bytes
from chiplex.passes.common import clone_resized
from chiplex.passes.options import ByteSize

SPLIT_ROWS_ATTR = "chiplex.split_rows"
"""Module attribute: how many feed-forward blocks `split-rows` split, and into how many chunks."""


def describe_split(module: ModuleOp) -> list[str]:
    """The compile summary's line when the module's feed-forward blocks were split."""
    attr = module.attributes.get(SPLIT_ROWS_ATTR)
    if not isinstance(attr, IntegerAttr):
        return []
    return [
        f"split-rows: {attr.value.data} blocks (feed-forward, attention) run in row slices (so that "
        "their widened activations fit a chip; `compile`'s notes say why it added the pass)"
    ]


def _stationary(v: SSAValue) -> bool:
    owner = v.owner
    return isinstance(owner, Operation) and owner.name in STATIONARY_OPS


def _shape(v: SSAValue) -> tuple[int, ...]:
    return cast(TensorType, v.type).get_shape()


def _row_axis(v: SSAValue) -> int:
    """The axis of `v` aligned (from the right) with a chain value's row axis (-1: none)."""
    return len(_shape(v)) - 2


def _rows_of(v: SSAValue) -> int:
    """The size of `v`'s row axis when read beside a chain value (1 when it has none)."""
    axis = _row_axis(v)
    return _shape(v)[axis] if axis >= 0 else 1


def _rowwise(op: Operation, inside: set[Operation], rows: int) -> bool:
    """`op` works on each row alone, reading values of the block (`inside`) and others that have
    no row axis (a bias, a scale, a key mask) or the block's rows (an attention bias, sliced with
    the rows): an elementwise op, a softmax over the last axis, or a reshape of leading unit axes."""
    out = _shape(op.results[0]) if len(op.results) == 1 else ()
    if len(out) < 2 or out[-2] != rows:
        return False
    if isinstance(op, nn.SoftmaxOp):
        return op.axis.value.data in (-1, len(out) - 1)
    if isinstance(op, nn.ReshapeOp):
        # Adding or removing leading unit axes (GPT-2's Conv1D works on [tokens, features]).
        return _shape(op.input)[-2:] == out[-2:] and math.prod(_shape(op.input)[:-2]) == 1 == (
            math.prod(out[:-2])
        )
    if not isinstance(op, nn.ElementwiseUnaryOp | nn.ElementwiseBinaryOp):
        return False
    return all(o.owner in inside or _rows_of(o) in (1, rows) for o in op.operands)


def _opens(op: Operation) -> bool:
    """A block starts at a linear layer (activation x parameter) or at attention's scores
    (a batched product of two activations)."""
    if isinstance(op, nn.MatmulOp):
        return _stationary(op.rhs) and not _stationary(op.lhs) and len(_shape(op.rhs)) == 2
    return isinstance(op, nn.BatchMatmulOp) and not _stationary(op.lhs)


def _closes(op: Operation, value: SSAValue) -> bool:
    """A block ends at a product that reads the chain's value as its rows (lhs)."""
    if isinstance(op, nn.MatmulOp):
        return op.lhs is value and _stationary(op.rhs) and len(_shape(op.rhs)) == 2
    return isinstance(op, nn.BatchMatmulOp) and op.lhs is value and op.rhs is not value


@dataclass(frozen=True)
class Block:
    first: nn.MatmulOp | nn.BatchMatmulOp
    chain: tuple[Operation, ...]
    last: nn.MatmulOp | nn.BatchMatmulOp

    def working_set(self) -> int:
        ops = (self.first, *self.chain, self.last)
        return max(
            sum(tensor_bytes(o.type) for o in op.operands if not _stationary(o))
            + tensor_bytes(op.results[0].type)
            for op in ops
        )


def _region(first: nn.MatmulOp | nn.BatchMatmulOp) -> Block | None:
    """The row-wise ops from `first` to the one product that closes them, when every value they
    make is read only inside (GPT-2's tanh GELU reads its input four times: a region, not a chain)."""
    rows = _shape(first.lhs)[-2]
    inside: set[Operation] = {first}
    closing: Operation | None = None
    work: list[Operation] = [first]
    while work:
        op = work.pop()
        for use in list(op.results[0].uses):
            user = use.operation
            if user in inside or user is closing:
                continue
            if _closes(user, op.results[0]) and user.operands[1].owner not in inside:
                if closing is not None:
                    return None
                closing = user
                continue
            if not _rowwise(user, inside, rows):
                return None
            inside.add(user)
            work.append(user)
    if closing is None or len(inside) < 2:  # two products in a row are no widened block
        return None
    order = {op: i for i, op in enumerate(first.parent_block().ops)}  # type: ignore[union-attr]
    chain = tuple(sorted(inside - {first}, key=order.__getitem__))
    return Block(first, chain, cast(Any, closing))


def row_blocks(function: Operation) -> list[Block]:
    """Every product -> row-wise ops -> product region (a feed-forward block, attention's scores
    -> softmax -> weighted sum), in program order; an op belongs to one block at most."""
    blocks: list[Block] = []
    claimed: set[Operation] = set()
    for op in function.walk():
        if not _opens(op) or op in claimed:
            continue
        first = cast(nn.MatmulOp | nn.BatchMatmulOp, op)
        rank = len(_shape(first.lhs))
        if rank < 2 or len(_shape(first.result)) != rank:
            continue
        block = _region(first)
        if block is None:
            continue
        ops = {block.first, *block.chain, block.last}
        if not ops & claimed:
            blocks.append(block)
            claimed |= ops
    return blocks


def _split(total: int, pieces: int) -> list[int]:
    base, extra = divmod(total, pieces)
    return [base + (1 if i < extra else 0) for i in range(pieces)]


def split_block(block: Block, chunks: int) -> None:
    x = block.first.lhs
    shape = _shape(x)
    rows = shape[-2]
    sizes = _split(rows, min(chunks, rows))
    new_ops: list[Operation] = []
    outputs: list[SSAValue] = []
    offset = 0
    for i, size in enumerate(sizes):
        starts = [0] * len(shape)
        starts[-2] = offset
        sliced = nn.SliceOp(x, starts, [*shape[:-2], size, shape[-1]])
        new_ops.append(sliced)
        value: SSAValue = sliced.result
        local: dict[SSAValue, SSAValue] = {x: sliced.result}
        inside = {block.first, *block.chain}
        for old in (block.first, *block.chain, block.last):
            operands: list[SSAValue] = []
            for o in old.operands:
                if o in local and (o.owner in inside or old is block.first):
                    operands.append(local[o])
                elif old in block.chain and _rows_of(o) > 1:
                    # An operand with the rows too (an attention bias): its rows of this slice.
                    o_shape = list(_shape(o))
                    o_starts = [0] * len(o_shape)
                    o_starts[_row_axis(o)] = offset
                    o_shape[_row_axis(o)] = size
                    rows_of = nn.SliceOp(o, o_starts, o_shape)
                    new_ops.append(rows_of)
                    operands.append(rows_of.result)
                else:
                    operands.append(o)
            new = clone_resized(old, operands, -2, size, f"rows{i}")
            new_ops.append(new)
            local[old.results[0]] = new.results[0]
            value = new.results[0]
        outputs.append(value)
        offset += size
    concat = nn.ConcatOp(outputs, len(_shape(block.last.result)) - 2, block.last.result.type)
    hint = block.last.result.name_hint
    concat.result.name_hint = f"{hint}.rows" if hint else None
    new_ops.append(concat)
    Rewriter.insert_op(new_ops, InsertPoint.before(block.last))
    block.last.result.replace_all_uses_with(concat.result)
    for old in reversed((block.first, *block.chain, block.last)):
        Rewriter.erase_op(old)


@dataclass(frozen=True)
class SplitRows(ModulePass):
    name = "split-rows"
    chunks: int = 2
    """Row slices per feed-forward block (fewer when the block has fewer rows)."""
    min_bytes: ByteSize = 0
    """Split only blocks whose largest one-op working set exceeds this many bytes."""
    max_bytes: ByteSize | None = None
    """More slices where needed, so that each block's largest working set, divided among its
    slices, is at most this many bytes (Whisper's 1500 x 1500 attention scores)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.chunks < 2:
            raise ChiplexError(f"{self.name}: chunks must be >= 2, got {self.chunks}")
        if self.min_bytes < 0:
            raise ChiplexError(f"{self.name}: min_bytes must be >= 0, got {self.min_bytes}")
        blocks = [
            b
            for b in row_blocks(single_function(op))
            if b.working_set() > self.min_bytes and _shape(b.first.lhs)[-2] >= 2
        ]
        if self.max_bytes is not None and self.max_bytes <= 0:
            raise ChiplexError(f"{self.name}: max_bytes must be > 0, got {self.max_bytes}")
        for block in blocks:
            chunks = self.chunks
            if self.max_bytes is not None:
                chunks = max(chunks, math.ceil(block.working_set() / self.max_bytes))
            split_block(block, chunks)
        if blocks:
            op.attributes[SPLIT_ROWS_ATTR] = IntegerAttr(len(blocks), i64)
