"""The `mcm` dialect: chip placement and the per-chiplet programs of a multi-chip module.

A placed graph carries `{mcm.chip = #mcm.chip<N>}` on each op. After splitting, an
`mcm.program` holds one isolated `mcm.chiplet N { ... }` per chip; values cross chips only
through matching `mcm.send` / `mcm.recv` pairs (same `msg` id) and enter or leave the module
through `mcm.input` / `mcm.output`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from xdsl.dialects.builtin import (
    I64,
    IntAttr,
    IntegerAttr,
    StringAttr,
    SymbolNameConstraint,
    TensorType,
    UnrankedTensorType,
    i64,
)
from xdsl.ir import Attribute, Block, Dialect, Operation, ParametrizedAttribute, Region, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    base,
    irdl_attr_definition,
    irdl_op_definition,
    lazy_traits_def,
    operand_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
)
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.traits import (
    HasParent,
    IsolatedFromAbove,
    IsTerminator,
    NoTerminator,
    SingleBlockImplicitTerminator,
    SymbolOpInterface,
    ensure_terminator,
)
from xdsl.utils.exceptions import VerifyException

from chiplex.ir.types import check_static, tensor_bytes

CHIP_ATTR_NAME = "mcm.chip"
MAX_CHIP_ID = 2**31 - 1
"""Chip ids above this are rejected while parsing (they would overflow the int64 arrays downstream);
ids that merely exceed the target's chips are the checker's `chip-range` violation."""
"""Discardable attribute holding an op's placement."""
COST_ATTR_NAME = "mcm.cost"
"""Discardable attribute holding an op's roofline cost on the target (set by annotate-costs)."""

_I64Attr = IntegerAttr[I64]
# Unranked tensors pass the type constraint so check_static can reject them by name.
_Tensor = base(TensorType) | base(UnrankedTensorType)


@irdl_attr_definition
class ChipAttr(ParametrizedAttribute):
    """`#mcm.chip<3>`: the chiplet an op is placed on."""

    name = "mcm.chip"
    id: IntAttr

    def __init__(self, chip: int | IntAttr) -> None:
        super().__init__(IntAttr(chip) if isinstance(chip, int) else chip)

    @property
    def chip(self) -> int:
        return self.id.data

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            start = parser.pos
            chip = parser.parse_integer(allow_boolean=False, allow_negative=True)
            if chip < 0:
                parser.raise_error(f"#mcm.chip id must be >= 0, got {chip}", start, parser.pos)
            if chip > MAX_CHIP_ID:
                parser.raise_error(
                    f"#mcm.chip id {chip} is absurd (at most {MAX_CHIP_ID})", start, parser.pos
                )
        return (IntAttr(chip),)

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f"<{self.id.data}>")

    def verify(self) -> None:
        if not 0 <= self.id.data <= MAX_CHIP_ID:
            raise VerifyException(f"#mcm.chip id must be in 0..{MAX_CHIP_ID}, got {self.id.data}")


def get_chip(op: Operation) -> int | None:
    """The chip an op is placed on, or None if unplaced."""
    attr = op.attributes.get(CHIP_ATTR_NAME)
    return attr.chip if isinstance(attr, ChipAttr) else None


def set_chip(op: Operation, chip: int) -> None:
    op.attributes[CHIP_ATTR_NAME] = ChipAttr(chip)


def _int(attr: Attribute) -> int:
    return cast(IntegerAttr, attr).value.data


def _check_non_negative(op: Operation, **values: int) -> None:
    for key, value in values.items():
        if value < 0:
            raise VerifyException(f"{op.name}: {key} must be >= 0, got {value}")


@irdl_op_definition
class YieldOp(IRDLOperation):
    """Implicit terminator of `mcm.chiplet`; never printed in the custom syntax."""

    name = "mcm.yield"
    traits = lazy_traits_def(lambda: (IsTerminator(), HasParent(ChipletOp)))
    assembly_format = "attr-dict"

    def __init__(self) -> None:
        super().__init__()


@irdl_op_definition
class ChipletOp(IRDLOperation):
    """`mcm.chiplet 0 { ... }`: the program one chip runs, isolated from every other chip."""

    name = "mcm.chiplet"
    chip = prop_def(_I64Attr)
    body = region_def("single_block")
    traits = lazy_traits_def(
        lambda: (
            IsolatedFromAbove(),
            SingleBlockImplicitTerminator(YieldOp),
            HasParent(ProgramOp),
        )
    )

    def __init__(self, chip: int, body: Region | Block | Sequence[Operation] | None = None) -> None:
        if body is None:
            body = Region(Block())
        elif isinstance(body, Block):
            body = Region(body)
        elif not isinstance(body, Region):
            body = Region(Block(list(body)))
        super().__init__(properties={"chip": IntegerAttr(chip, i64)}, regions=[body])
        for trait in self.get_traits_of_type(SingleBlockImplicitTerminator):
            ensure_terminator(self, trait)

    @property
    def chip_id(self) -> int:
        return _int(self.chip)

    @property
    def block(self) -> Block:
        return self.body.block

    def verify_(self) -> None:
        _check_non_negative(self, chip=self.chip_id)

    @classmethod
    def parse(cls, parser: Parser) -> ChipletOp:
        chip = parser.parse_integer(allow_boolean=False, allow_negative=False)
        attrs = parser.parse_optional_attr_dict_with_keyword()
        region = parser.parse_region()
        if not region.blocks:
            region.add_block(Block())
        op = cls(chip, region)
        if attrs is not None:
            op.attributes |= attrs.data
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(f" {self.chip_id}")
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False, print_block_terminators=False)


@irdl_op_definition
class ProgramOp(IRDLOperation):
    """`mcm.program @bert attributes {...} { mcm.chiplet 0 {...} ... }`."""

    name = "mcm.program"
    sym_name = prop_def(SymbolNameConstraint())
    body = region_def("single_block")
    traits = traits_def(NoTerminator(), SymbolOpInterface(), IsolatedFromAbove())

    def __init__(
        self,
        sym_name: str,
        chiplets: Sequence[ChipletOp] = (),
        attributes: dict[str, Attribute] | None = None,
    ) -> None:
        super().__init__(
            properties={"sym_name": StringAttr(sym_name)},
            regions=[Region(Block(list(chiplets)))],
            attributes=attributes or {},
        )

    @property
    def chiplets(self) -> list[ChipletOp]:
        return [op for op in self.body.block.ops if isinstance(op, ChipletOp)]

    def chiplet(self, chip: int) -> ChipletOp | None:
        return next((c for c in self.chiplets if c.chip_id == chip), None)

    def verify_(self) -> None:
        previous = -1
        for op in self.body.block.ops:
            if not isinstance(op, ChipletOp):
                raise VerifyException(
                    f"mcm.program @{self.sym_name.data}: may only hold mcm.chiplet ops, "
                    f"found {op.name}"
                )
            if op.chip_id <= previous:
                raise VerifyException(
                    f"mcm.program @{self.sym_name.data}: chiplet ids must be unique and "
                    f"increasing, chiplet {op.chip_id} follows chiplet {previous}"
                )
            previous = op.chip_id

    @classmethod
    def parse(cls, parser: Parser) -> ProgramOp:
        name = parser.parse_symbol_name()
        attrs = parser.parse_optional_attr_dict_with_keyword()
        region = parser.parse_region()
        if not region.blocks:
            region.add_block(Block())
        op = cls(name.data, attributes=attrs.data if attrs is not None else None)
        op.body.detach_block(0)
        op.body.add_block(region.detach_block(0))
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_symbol_name(self.sym_name.data)
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False)


def _enclosing_chip(op: Operation) -> int | None:
    parent = op.parent_op()
    while parent is not None:
        if isinstance(parent, ChipletOp):
            return parent.chip_id
        parent = parent.parent_op()
    return None


class _TransferOp(IRDLOperation):
    peer = prop_def(_I64Attr)
    msg = prop_def(_I64Attr)
    bytes = prop_def(_I64Attr)

    def _verify_transfer(self, t: Attribute) -> None:
        check_static(t, f"{self.name}: payload")
        _check_non_negative(self, peer=_int(self.peer), msg=_int(self.msg))
        expected = tensor_bytes(cast(TensorType, t))
        if _int(self.bytes) != expected:
            raise VerifyException(
                f"{self.name}: bytes = {_int(self.bytes)} but {t} holds {expected} bytes"
            )
        if _enclosing_chip(self) == _int(self.peer):
            raise VerifyException(f"{self.name}: chiplet {_int(self.peer)} talks to itself")


def _transfer_props(peer: int, msg: int, nbytes: int) -> dict[str, Attribute]:
    return {
        "peer": IntegerAttr(peer, i64),
        "msg": IntegerAttr(msg, i64),
        "bytes": IntegerAttr(nbytes, i64),
    }


@irdl_op_definition
class SendOp(_TransferOp):
    """`mcm.send %v to 3 msg 7 bytes 196608 : tensor<...>`: ship a value to chip `peer`."""

    name = "mcm.send"
    value = operand_def(_Tensor)
    assembly_format = "$value `to` $peer `msg` $msg `bytes` $bytes attr-dict `:` type($value)"

    def __init__(self, value: SSAValue | Operation, peer: int, msg: int) -> None:
        v = SSAValue.get(value)
        nbytes = tensor_bytes(cast(TensorType, v.type))
        super().__init__(operands=[v], properties=_transfer_props(peer, msg, nbytes))

    def verify_(self) -> None:
        self._verify_transfer(self.value.type)


@irdl_op_definition
class RecvOp(_TransferOp):
    """`%r = mcm.recv from 0 msg 7 bytes 196608 : tensor<...>`: the value chip `peer` sent."""

    name = "mcm.recv"
    result = result_def(_Tensor)
    assembly_format = "`from` $peer `msg` $msg `bytes` $bytes attr-dict `:` type($result)"

    def __init__(self, result_type: TensorType, peer: int, msg: int) -> None:
        super().__init__(
            result_types=[result_type],
            properties=_transfer_props(peer, msg, tensor_bytes(result_type)),
        )

    def verify_(self) -> None:
        self._verify_transfer(self.result.type)


@irdl_op_definition
class InputOp(IRDLOperation):
    """`%x = mcm.input 0 : tensor<...>`: function argument `index`, loaded from the host."""

    name = "mcm.input"
    index = prop_def(_I64Attr)
    result = result_def(_Tensor)
    assembly_format = "$index attr-dict `:` type($result)"

    def __init__(self, index: int, result_type: Attribute) -> None:
        super().__init__(properties={"index": IntegerAttr(index, i64)}, result_types=[result_type])

    def verify_(self) -> None:
        check_static(self.result.type, f"{self.name}: result")
        _check_non_negative(self, index=_int(self.index))


@irdl_op_definition
class OutputOp(IRDLOperation):
    """`mcm.output %v 0 : tensor<...>`: function result `index`, stored to the host."""

    name = "mcm.output"
    value = operand_def(_Tensor)
    index = prop_def(_I64Attr)
    assembly_format = "$value $index attr-dict `:` type($value)"

    def __init__(self, value: SSAValue | Operation, index: int) -> None:
        super().__init__(
            operands=[SSAValue.get(value)], properties={"index": IntegerAttr(index, i64)}
        )

    def verify_(self) -> None:
        check_static(self.value.type, f"{self.name}: operand")
        _check_non_negative(self, index=_int(self.index))


MCM = Dialect(
    "mcm",
    [ProgramOp, ChipletOp, YieldOp, SendOp, RecvOp, InputOp, OutputOp],
    [ChipAttr],
)
