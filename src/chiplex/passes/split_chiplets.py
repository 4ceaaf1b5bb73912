"""`split-chiplets`: one isolated `mcm.chiplet` region per chip, ops in schedule (block) order.

The function becomes `mcm.program @name`. Params and constants are copied into every chiplet that
uses them; function arguments become `mcm.input N` in each chiplet that reads them and results
`mcm.output %v N` in the chiplet that produces them. Chips without ops keep an empty chiplet so
program ids match the target's chips.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, StringAttr, i64
from xdsl.ir import BlockArgument, Operation, SSAValue
from xdsl.passes import ModulePass

from chiplex.errors import ChiplexError
from chiplex.ir.graph import STATIONARY_OPS, samples_per_microbatch, single_function
from chiplex.ir.mcm import CHIP_ATTR_NAME, ChipletOp, InputOp, OutputOp, ProgramOp, get_chip
from chiplex.passes.common import TARGET_ATTR, resolve_target


@dataclass(frozen=True)
class SplitChiplets(ModulePass):
    name = "split-chiplets"
    target: str | None = None

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        function = single_function(op)
        target = resolve_target(op, self.target, self.name)
        samples = samples_per_microbatch(function)
        block = function.body.block
        chiplets = {c: ChipletOp(c) for c in range(target.num_chips)}
        mapping: dict[int, dict[SSAValue, SSAValue]] = {c: {} for c in chiplets}

        def local(value: SSAValue, chip: int) -> SSAValue:
            table = mapping[chip]
            if value in table:
                return table[value]
            if isinstance(value, BlockArgument):
                load = InputOp(value.index, value.type)
                load.results[0].name_hint = value.name_hint
                emit(load, chip)
                table[value] = load.results[0]
                return table[value]
            owner = value.owner
            if isinstance(owner, Operation) and owner.name in STATIONARY_OPS:
                copy = owner.clone()
                copy.attributes.pop(CHIP_ATTR_NAME, None)
                copy.results[0].name_hint = value.name_hint
                emit(copy, chip)
                table[value] = copy.results[0]
                return table[value]
            raise ChiplexError(
                f"split-chiplets: %{value.name_hint or '?'} is used on chip {chip} but produced on another "
                "chip without a transfer; run insert-transfers first"
            )

        def emit(new: Operation, chip: int) -> None:
            chiplets[chip].block.insert_op_before(new, chiplets[chip].block.last_op)

        for old in block.ops:
            if old.name in STATIONARY_OPS:
                continue
            if isinstance(old, func.ReturnOp):
                for index, value in enumerate(old.operands):
                    chip = self._producer_chip(value)
                    emit(OutputOp(local(value, chip), index), chip)
                continue
            chip = get_chip(old)
            if chip is None or chip not in chiplets:
                raise ChiplexError(
                    f"split-chiplets: op {old.name} has no valid mcm.chip; run place first"
                )
            new = old.clone()
            new.attributes.pop(CHIP_ATTR_NAME, None)
            for index, operand in enumerate(old.operands):
                new.operands[index] = local(operand, chip)
            for old_result, new_result in zip(old.results, new.results, strict=True):
                new_result.name_hint = old_result.name_hint
                mapping[chip][old_result] = new_result
            emit(new, chip)
        attributes = {
            "samples_per_microbatch": IntegerAttr(samples, i64),
            "target": op.attributes.get(TARGET_ATTR) or StringAttr(target.name),
        }
        program = ProgramOp(function.sym_name.data, list(chiplets.values()), attributes)
        op.body.block.insert_op_before(program, function)
        op.body.block.erase_op(function)

    @staticmethod
    def _producer_chip(value: SSAValue) -> int:
        if isinstance(value, BlockArgument):
            return 0
        chip = get_chip(value.owner) if isinstance(value.owner, Operation) else None
        return chip if chip is not None else 0
