"""`shard-params{target=NAME}`: split every parameter too large for one chip into shards that fit.

A worked example of an `nn`-level lowering pass, in xDSL's style (see docs/sharding.md):

1. the pass is a frozen dataclass whose fields are its options (`target`, `fraction`, `max_bytes`,
   `linear_split`), parsed from the pipeline text `shard-params{target=tpu-ring8 fraction=0.25}`;
2. an analysis decides, per too-large `nn.param`, the axis and the shard sizes, and checks that
   every op reading it can be rewritten (else a ChiplexError names the parameter, its size and
   what would fit);
3. one `RewritePattern` per op kind that reads such a parameter (`nn.embedding`, `nn.matmul`)
   replaces the op by its sharded form;
4. one `PatternRewriteWalker` applies the patterns; the unsharded parameters, now unused, go.

The sharded forms compute the same function with the same parameter bytes:

* **vocabulary-parallel embedding** (split along rows, axis 0): shard i holds rows
  `offset_i .. offset_i + V_i - 1`; `nn.embedding_shard` gathers the rows it owns and passes the
  others through from the previous shard's result, so the chain of shards gives the full lookup.
  0 flops, as the lookup itself.
* **column-split linear layer** (the output features N): `y_i = x @ W[:, N_i]`, concatenated
  along the last axis. The matrix flops add up to the original exactly; the concat is free.
* **row-split linear layer** (the contraction K, `linear_split=row`): `y = sum_i x[..., K_i] @
  W[K_i, :]`; the partial sums cost exactly `(shards - 1) * numel(y)` flops more.

A parameter read through `nn.transpose` (a tied LM head reads the embedding table as `[D, V]`) is
split once: the embedding along its rows, the head along its output columns, from the same shards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, StringAttr, TensorType, i64
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint, Rewriter

from chiplex.errors import ChiplexError
from chiplex.ir import nn
from chiplex.ir.graph import single_function
from chiplex.ir.nn import SHARD_AXIS_ATTR, SHARD_OF_ATTR, SHARD_OFFSET_ATTR
from chiplex.ir.types import tensor_bytes
from chiplex.passes.common import resized, resolve_target
from chiplex.passes.options import ByteSize

# The attributes of a shard's `nn.param` live with the dialect (the interpreter reads them too).
__all__ = [
    "SHARD_AXIS_ATTR",
    "SHARD_OFFSET_ATTR",
    "SHARD_OF_ATTR",
    "ShardParams",
    "insert_shards",
    "split_sizes",
]


def _mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:.2f} MiB"


@dataclass(frozen=True)
class ShardPlan:
    """How one parameter is split: along `axis`, into consecutive pieces of `sizes`."""

    name: str
    axis: int
    sizes: tuple[int, ...]
    shards: tuple[SSAValue, ...]

    @property
    def offsets(self) -> tuple[int, ...]:
        return tuple(sum(self.sizes[:i]) for i in range(len(self.sizes)))


def split_sizes(total: int, pieces: int) -> tuple[int, ...]:
    """`total` as `pieces` nearly equal consecutive sizes, the larger ones first."""
    base, extra = divmod(total, pieces)
    return tuple(base + (1 if i < extra else 0) for i in range(pieces))


def _shape(v: SSAValue) -> tuple[int, ...]:
    return cast(TensorType, v.type).get_shape()


def _name(op: Operation, value: SSAValue, suffix: str) -> None:
    base = op.results[0].name_hint or op.name.removeprefix("nn.")
    value.name_hint = f"{base}.{suffix}"


def insert_shards(param: nn.ParamOp, axis: int, sizes: Sequence[int]) -> tuple[SSAValue, ...]:
    """New `nn.param` shards of `param` along `axis`, of consecutive `sizes`, inserted before it.

    Each is `"<name>.shard<i>"` with `shard_of`, `shard_axis` and `shard_offset` (and the
    original `torch_view`): whoever loads real weights, and the interpreter, slice them from the
    whole parameter's data. The caller rewrites the readers and erases `param`."""
    name = param.param_name.data
    ptype = cast(TensorType, param.result.type)
    shards: list[SSAValue] = []
    offset = 0
    for i, size in enumerate(sizes):
        shard = nn.ParamOp(f"{name}.shard{i}", resized(ptype, axis, size))
        shard.attributes |= {k: v for k, v in param.attributes.items() if k == "torch_view"}
        shard.attributes[SHARD_OF_ATTR] = StringAttr(name)
        shard.attributes[SHARD_AXIS_ATTR] = IntegerAttr(axis, i64)
        shard.attributes[SHARD_OFFSET_ATTR] = IntegerAttr(offset, i64)
        # The SSA name builds on the parameter's own hint: its name may not be a valid one ("0.fc1.weight").
        shard.result.name_hint = f"{param.result.name_hint or 'param'}.shard{i}"
        Rewriter.insert_op(shard, InsertPoint.before(param))
        shards.append(shard.result)
        offset += size
    return tuple(shards)


# -- the patterns: one per op kind that reads a sharded parameter -------------------------------


@dataclass
class ShardEmbedding(RewritePattern):
    """`nn.embedding` of a row-split table -> a chain of `nn.embedding_shard`; of a column-split
    table -> one `nn.embedding` per shard, concatenated along the feature axis."""

    plans: dict[SSAValue, ShardPlan]

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.EmbeddingOp, rewriter: PatternRewriter, /) -> None:
        plan = self.plans.get(op.table)
        if plan is None:
            return
        result_type = cast(TensorType, op.result.type)
        new_ops: list[Operation] = []
        if plan.axis == 0:
            partial: SSAValue | None = None
            for i, (shard, offset) in enumerate(zip(plan.shards, plan.offsets, strict=True)):
                lookup = nn.EmbeddingShardOp(shard, op.ids, partial, offset, result_type)
                _name(op, lookup.result, f"shard{i}")
                new_ops.append(lookup)
                partial = lookup.result
        else:
            axis = len(result_type.get_shape()) - 1
            pieces = []
            for i, (shard, size) in enumerate(zip(plan.shards, plan.sizes, strict=True)):
                piece = nn.EmbeddingOp(shard, op.ids, resized(result_type, axis, size))
                _name(op, piece.result, f"shard{i}")
                pieces.append(piece)
            new_ops += pieces
            new_ops.append(nn.ConcatOp(pieces, axis, result_type))
        rewriter.replace(op, new_ops)


@dataclass
class ShardMatmul(RewritePattern):
    """`nn.matmul` whose weight (or its transpose) is split: along the output features N ->
    one matmul per shard and a concat; along the contraction K -> sliced inputs, one matmul per
    shard and a sum of the partial products."""

    plans: dict[SSAValue, ShardPlan]

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.MatmulOp, rewriter: PatternRewriter, /) -> None:
        rhs = op.rhs
        transposed = isinstance(rhs.owner, nn.TransposeOp)
        plan = self.plans.get(rhs.owner.input if transposed else rhs)  # type: ignore[union-attr]
        if plan is None:
            return
        new_ops: list[Operation] = []
        weights: list[SSAValue] = []
        for shard in plan.shards:
            if transposed:
                flip = nn.TransposeOp(shard, [1, 0])
                new_ops.append(flip)
                weights.append(flip.result)
            else:
                weights.append(shard)
        # The weight's axis that is the matmul's N (output features): 1 as stored, 0 transposed.
        n_axis = 0 if transposed else 1
        result_type = cast(TensorType, op.result.type)
        last = len(result_type.get_shape()) - 1
        if plan.axis == n_axis:
            pieces = []
            for i, (w, size) in enumerate(zip(weights, plan.sizes, strict=True)):
                piece = nn.MatmulOp(op.lhs, w, resized(result_type, last, size))
                _name(op, piece.result, f"shard{i}")
                pieces.append(piece)
            new_ops += pieces
            new_ops.append(nn.ConcatOp(pieces, last, result_type))
        else:
            lhs_shape = _shape(op.lhs)
            total: SSAValue | None = None
            for i, (w, size, offset) in enumerate(
                zip(weights, plan.sizes, plan.offsets, strict=True)
            ):
                starts = [0] * len(lhs_shape)
                sizes = list(lhs_shape)
                starts[-1], sizes[-1] = offset, size
                part = nn.SliceOp(op.lhs, starts, sizes)
                product = nn.MatmulOp(part, w, result_type)
                _name(op, product.result, f"shard{i}")
                new_ops += [part, product]
                if total is not None:
                    add = nn.AddOp(total, product, result_type)
                    new_ops.append(add)
                    total = add.result
                else:
                    total = product.result
        rewriter.replace(op, new_ops)


@dataclass
class ShardSlice(RewritePattern):
    """`nn.slice` of a split parameter (a position table read up to the sequence length) -> the
    same slice of each shard it overlaps, concatenated along the split axis."""

    plans: dict[SSAValue, ShardPlan]

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.SliceOp, rewriter: PatternRewriter, /) -> None:
        plan = self.plans.get(op.input)
        if plan is None:
            return
        starts, sizes = list(op.starts.get_values()), list(op.sizes.get_values())
        axis = plan.axis
        begin, end = starts[axis], starts[axis] + sizes[axis]
        new_ops: list[Operation] = []
        for shard, offset, size in zip(plan.shards, plan.offsets, plan.sizes, strict=True):
            lo, hi = max(begin, offset), min(end, offset + size)
            if lo >= hi:
                continue
            local_starts, local_sizes = list(starts), list(sizes)
            local_starts[axis], local_sizes[axis] = lo - offset, hi - lo
            piece = nn.SliceOp(shard, local_starts, local_sizes)
            _name(op, piece.result, f"shard{len(new_ops)}")
            new_ops.append(piece)
        if len(new_ops) > 1:
            new_ops.append(nn.ConcatOp(new_ops, axis, op.result.type))
        rewriter.replace(op, new_ops)


# -- the pass -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardParams(ModulePass):
    """Shard every `nn.param` larger than one chip's memory (or than `max_bytes`) into shards of
    at most `fraction` of a chip (or `max_bytes`)."""

    name = "shard-params"
    target: str | None = None
    fraction: float = 0.25
    """The largest share of one chip's memory (SRAM + DRAM) one parameter shard may take: the
    rest holds other weights, receive buffers and working sets."""
    max_bytes: ByteSize | None = None
    """An explicit byte budget per parameter shard (overrides `fraction`)."""
    linear_split: str = "column"
    """How a too-large `nn.matmul` weight is split: `column` (output features, exact flops) or
    `row` (the contraction, plus the partial sums)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.linear_split not in ("column", "row"):
            raise ChiplexError(
                f"{self.name}: linear_split must be 'column' or 'row', got '{self.linear_split}'"
            )
        if not 0 < self.fraction <= 1:
            raise ChiplexError(f"{self.name}: fraction must be in (0, 1], got {self.fraction}")
        target = resolve_target(op, self.target, self.name)
        capacity = target.chip.capacity_bytes
        # Only a parameter larger than a chip is split (or larger than `max_bytes` when given),
        # into shards of at most `fraction` of a chip: a model whose parameters fit is unchanged.
        limit = self.max_bytes if self.max_bytes is not None else capacity
        budget = self.max_bytes if self.max_bytes is not None else int(self.fraction * capacity)
        where = (
            f"max_bytes={budget}"
            if self.max_bytes is not None
            else f"{self.fraction:g} of one {target.name} chip's {_mib(capacity)}"
        )
        function = single_function(op)
        too_large = [
            p
            for p in function.walk()
            if isinstance(p, nn.ParamOp) and tensor_bytes(p.result.type) > limit
        ]
        if not too_large:
            return
        plans: dict[SSAValue, ShardPlan] = {}
        for param in too_large:
            plan = self._plan(param, budget, where, target.num_chips * capacity)
            plans[param.result] = plan
        patterns = GreedyRewritePatternApplier(
            [ShardEmbedding(plans), ShardMatmul(plans), ShardSlice(plans)], dce_enabled=False
        )
        PatternRewriteWalker(patterns, apply_recursively=False).rewrite_module(op)
        for value in plans:
            param = cast(nn.ParamOp, value.owner)
            for use in list(value.uses):
                # The transposes the rewritten matmuls read through are now unused.
                if isinstance(use.operation, nn.TransposeOp) and not use.operation.result.uses:
                    Rewriter.erase_op(use.operation)
            Rewriter.erase_op(param)

    def _plan(self, param: nn.ParamOp, budget: int, where: str, module_bytes: int) -> ShardPlan:
        name = param.param_name.data
        ptype = cast(TensorType, param.result.type)
        nbytes = tensor_bytes(ptype)
        shape = ptype.get_shape()
        what = f"parameter '{name}' ({_mib(nbytes)}, {'x'.join(map(str, shape))})"
        if nbytes > module_bytes:
            raise ChiplexError(
                f"{self.name}: {what} is larger than the whole module's memory "
                f"({_mib(module_bytes)}): sharding cannot help; a smaller weight dtype or a target "
                f"with more memory would"
            )
        axis = self._axis(param, what, budget, where)
        pieces = math.ceil(nbytes / budget)
        if pieces > shape[axis]:
            slab = nbytes // shape[axis]
            raise ChiplexError(
                f"{self.name}: {what} exceeds the budget of {_mib(budget)} ({where}) even split "
                f"into its {shape[axis]} slices of {_mib(slab)} along axis {axis}; a budget of "
                f"at least {_mib(slab)} would fit"
            )
        sizes = split_sizes(shape[axis], pieces)
        return ShardPlan(name, axis, sizes, insert_shards(param, axis, sizes))

    def _axis(self, param: nn.ParamOp, what: str, budget: int, where: str) -> int:
        """The split axis every reader of the parameter can be rewritten for."""
        column = self.linear_split == "column"
        wanted: list[int] = []
        for use in param.result.uses:
            user = use.operation
            if isinstance(user, nn.EmbeddingOp) and use.index == 0:
                wanted.append(0)  # vocabulary-parallel
                continue
            if isinstance(user, nn.MatmulOp) and use.index == 1:
                wanted.append(1 if column else 0)
                continue
            if isinstance(user, nn.SliceOp) and user.strides is None:
                continue  # any axis: each shard gives the part of the slice it holds
            if (
                isinstance(user, nn.TransposeOp)
                and tuple(user.perm.get_values()) == (1, 0)
                and all(
                    isinstance(u.operation, nn.MatmulOp) and u.index == 1 for u in user.result.uses
                )
            ):
                wanted.append(0 if column else 1)
                continue
            reader = user.results[0].name_hint if user.results else None
            raise ChiplexError(
                f"{self.name}: {what} does not fit the budget of {_mib(budget)} ({where}) and "
                f"cannot be sharded: it is read by {user.name}"
                f"{f' (%{reader})' if reader else ''}; only nn.embedding tables, nn.matmul "
                f"weights and their unit-stride slices are sharded. A parameter of at most {_mib(budget)} would fit"
            )
        return wanted[0] if wanted else 0
