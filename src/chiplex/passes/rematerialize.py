"""`rematerialize`: a value computed from parameters and constants alone by data movement (a
lookup, transposes, reshapes) is recomputed next to each of its readers instead of being sent.

MPNet computes its relative position bias once (an `nn.embedding` of a 32 x 12 table at constant
bucket ids, then a transpose and a reshape: 12 x 128 x 128 bf16 = 0.375 MiB) and every layer adds
it to its attention scores. Placed on 8 chips, that one value crosses to every chip, and each keeps
two receive buffers for it (0.75 MiB), beside its weights. Recomputing it costs no flops (the ops
only move data) and needs only the tiny table and the constant ids, stored once on each chip that
reads them (the shared-parameter rule).

The rewrite: an op is *derived* when it is a compute op with no flops whose operands are params,
constants or derived ops. For each derived value read by two or more ops that are not derived,
every such reader after the first gets its own copy of the derived ops it needs, inserted just
before it. Flops and parameter bytes are unchanged; the results are the same values.

A copy is made only when the params and constants it reads take no more bytes than two copies of
the value: a chip that receives the value keeps two buffers of its size (the memory rule's double
buffering), a chip that recomputes it stores those inputs instead, so the copy never costs a chip
memory. (A transposed tied weight is no bigger than its weight, so it qualifies; a few rows of a
large table do not.)

Besides memory, the copies matter for throughput: a value sent from the first stage to every later
one ties the whole pipeline together (the first chip can run only as many micro-batches ahead as the
last reader has buffers), so MPNet on simba-6x6 ran at 84 samples/s with the value sent and at 546
with it recomputed. The default pipeline therefore runs the pass first; in a pipeline of your own,
put it before `annotate-costs`.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, TensorType, i64
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from chiplex.ir import nn
from chiplex.ir.graph import STATIONARY_OPS, single_function
from chiplex.ir.types import tensor_bytes

RECEIVE_BUFFERS = 2
"""Buffers of a received value a chip keeps (the memory rule's double buffering)."""
REMATERIALIZED_ATTR = "chiplex.rematerialized"
"""Module attribute: how many readers got their own copy of a derived value."""


def describe_rematerialized(module: ModuleOp) -> list[str]:
    """The compile summary's line when readers got their own copies of derived values."""
    attr = module.attributes.get(REMATERIALIZED_ATTR)
    if not isinstance(attr, IntegerAttr):
        return []
    return [
        f"rematerialize: {attr.value.data} readers recompute a value derived from parameters "
        "alone (no flops) instead of receiving it"
    ]


def derived_ops(block_ops: list[Operation]) -> set[Operation]:
    """Compute ops without flops that read only params, constants and other such ops."""
    derived: set[Operation] = set()
    for op in block_ops:
        if op.name in STATIONARY_OPS or not isinstance(op, nn.NNOp) or op.flops() != 0:
            continue
        owners = [v.owner for v in op.operands]
        if owners and all(
            isinstance(o, Operation) and (o.name in STATIONARY_OPS or o in derived) for o in owners
        ):
            derived.add(op)
    return derived


def stationary_inputs(op: Operation, derived: set[Operation]) -> set[Operation]:
    """The params and constants a derived op is computed from."""
    found: set[Operation] = set()
    stack = [op]
    seen: set[Operation] = set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        for value in current.operands:
            owner = value.owner
            if isinstance(owner, Operation) and owner in derived:
                stack.append(owner)
            elif isinstance(owner, Operation):
                found.add(owner)
    return found


def _result_bytes(op: Operation) -> int:
    result_type = op.results[0].type
    assert isinstance(result_type, TensorType), op
    return tensor_bytes(result_type)


def _copy(
    op: Operation, derived: set[Operation], before: Operation, memo: dict[Operation, SSAValue]
) -> SSAValue:
    if op in memo:
        return memo[op]
    operands = [
        _copy(v.owner, derived, before, memo)
        if isinstance(v.owner, Operation) and v.owner in derived
        else v
        for v in op.operands
    ]
    new = type(op).create(
        operands=operands,
        result_types=[r.type for r in op.results],
        properties=dict(op.properties),
        attributes=dict(op.attributes),
    )
    hint = op.results[0].name_hint
    new.results[0].name_hint = f"{hint}.copy" if hint else None
    Rewriter.insert_op(new, InsertPoint.before(before))
    memo[op] = new.results[0]
    return new.results[0]


@dataclass(frozen=True)
class Rematerialize(ModulePass):
    name = "rematerialize"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        block = single_function(op).body.block
        ops = list(block.ops)
        derived = derived_ops(ops)
        copies = 0
        position = {o: i for i, o in enumerate(ops)}
        for value_op in [o for o in ops if o in derived]:
            inputs = stationary_inputs(value_op, derived)
            if sum(_result_bytes(o) for o in inputs) > RECEIVE_BUFFERS * _result_bytes(value_op):
                continue
            # The first reader in program order keeps the original (computed just before it).
            readers = sorted(
                (u for u in value_op.results[0].uses if u.operation not in derived),
                key=lambda u: (position[u.operation], u.index),
            )
            for use in readers[1:]:
                copy = _copy(value_op, derived, use.operation, {})
                use.operation.operands[use.index] = copy
                copies += 1
        if copies:
            op.attributes[REMATERIALIZED_ATTR] = IntegerAttr(copies, i64)
