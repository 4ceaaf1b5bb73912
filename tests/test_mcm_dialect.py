"""The mcm dialect: placement attribute, per-chiplet programs and transfers."""

from __future__ import annotations

import pytest
from xdsl.dialects.builtin import ModuleOp, StringAttr, TensorType, bf16, f32

from chiplex.errors import ChiplexError
from chiplex.ir import mcm, nn
from chiplex.ir.parse import parse_module

T = "tensor<1x128x768xbf16>"

PROGRAM = f"""\
builtin.module {{
  mcm.program @bert attributes {{samples_per_microbatch = 4 : i64, target = "tpu-ring8"}} {{
    mcm.chiplet 0 {{
      %x = mcm.input 0 : {T}
      %w = nn.param "encoder.0.ffn.weight" {{mcm.chip = #mcm.chip<0>}} : tensor<768x768xi8>
      %y = nn.matmul %x, %w {{mcm.chip = #mcm.chip<0>}} : {T}, tensor<768x768xi8> -> {T}
      mcm.send %y to 1 msg 7 bytes 196608 : {T}
    }}
    mcm.chiplet 1 {{
      %r = mcm.recv from 0 msg 7 bytes 196608 : {T}
      %g = nn.gelu %r {{mcm.chip = #mcm.chip<1>}} : {T}
      mcm.output %g 0 : {T}
    }}
  }}
}}"""


def test_program_round_trips_exactly() -> None:
    module = parse_module(PROGRAM, "prog.mlir")
    assert str(module) == PROGRAM
    assert str(parse_module(str(module))) == PROGRAM


def test_program_structure_and_chip_attr() -> None:
    module = parse_module(PROGRAM)
    program = next(op for op in module.ops if isinstance(op, mcm.ProgramOp))
    assert program.sym_name.data == "bert"
    assert program.attributes["target"] == StringAttr("tpu-ring8")
    assert [c.chip_id for c in program.chiplets] == [0, 1]
    chiplet1 = program.chiplet(1)
    assert chiplet1 is not None and program.chiplet(5) is None
    # The implicit terminator exists in memory but is never printed.
    assert isinstance(chiplet1.block.last_op, mcm.YieldOp)
    assert "mcm.yield" not in str(module)
    gelu = next(op for op in chiplet1.block.ops if isinstance(op, nn.GeluOp))
    assert mcm.get_chip(gelu) == 1
    recv = chiplet1.block.first_op
    assert isinstance(recv, mcm.RecvOp)
    assert mcm.get_chip(recv) is None


def test_set_chip_prints_in_attr_dict() -> None:
    op = nn.ParamOp("w", TensorType(f32, [2, 2]))
    mcm.set_chip(op, 3)
    assert mcm.get_chip(op) == 3
    module = ModuleOp([op])
    assert '%0 = nn.param "w" {mcm.chip = #mcm.chip<3>} : tensor<2x2xf32>' in str(module)
    assert str(parse_module(str(module))) == str(module)


def test_chip_attr_syntax() -> None:
    assert str(mcm.ChipAttr(3)) == "#mcm.chip<3>"
    assert mcm.ChipAttr(3).chip == 3


def test_build_program_with_python_api() -> None:
    t = TensorType(bf16, [1, 128, 768])
    x = mcm.InputOp(0, t)
    send = mcm.SendOp(x, peer=1, msg=0)
    recv = mcm.RecvOp(t, peer=0, msg=0)
    out = mcm.OutputOp(recv, 0)
    program = mcm.ProgramOp("tiny", [mcm.ChipletOp(0, [x, send]), mcm.ChipletOp(1, [recv, out])])
    module = ModuleOp([program])
    module.verify()
    assert send.bytes.value.data == 196608
    text = str(module)
    assert "mcm.send %0 to 1 msg 0 bytes 196608 : tensor<1x128x768xbf16>" in text
    assert str(parse_module(text)) == text


def test_empty_chiplet_round_trips() -> None:
    text = "mcm.program @p {\n  mcm.chiplet 0 {\n  }\n}\n"
    module = parse_module(text)
    assert str(parse_module(str(module))) == str(module)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            f"mcm.chiplet 0 {{\n  %x = mcm.input 0 : {T}\n"
            f"  mcm.send %x to 1 msg 7 bytes 100 : {T}\n}}",
            f"mcm.send: bytes = 100 but {T} holds 196608 bytes",
        ),
        (
            f"mcm.chiplet 0 {{\n  %r = mcm.recv from 1 msg 7 bytes 4 : {T}\n}}",
            f"mcm.recv: bytes = 4 but {T} holds 196608 bytes",
        ),
        (
            f"mcm.chiplet 0 {{\n  %x = mcm.input 0 : {T}\n"
            f"  mcm.send %x to 0 msg 7 bytes 196608 : {T}\n}}",
            "mcm.send: chiplet 0 talks to itself",
        ),
        (
            "mcm.chiplet 1 {\n}\n  mcm.chiplet 0 {\n}",
            "chiplet ids must be unique and increasing, chiplet 0 follows chiplet 1",
        ),
        (
            "mcm.chiplet 1 {\n}\n  mcm.chiplet 1 {\n}",
            "chiplet 1 follows chiplet 1",
        ),
        (
            'mcm.chiplet 0 {\n}\n  %w = nn.param "w" : tensor<2xf32>',
            "may only hold mcm.chiplet ops, found nn.param",
        ),
        (
            "mcm.chiplet 0 {\n  %x = mcm.input 0 : tensor<?x4xf32>\n}",
            "mcm.input: result has dynamic shape tensor<?x4xf32>",
        ),
    ],
)
def test_mcm_verifier_rejects(body: str, message: str) -> None:
    text = f"mcm.program @p {{\n  {body}\n}}\n"
    with pytest.raises(ChiplexError, match="error: ") as info:
        parse_module(text, "p.mlir")
    assert message in str(info.value)


def test_chiplet_is_isolated_from_above() -> None:
    text = f"""\
func.func @f(%a: {T}) {{
  mcm.program @p {{
    mcm.chiplet 0 {{
      mcm.output %a 0 : {T}
    }}
  }}
  func.return
}}
"""
    with pytest.raises(
        ChiplexError,
        match="p.mlir:3:5: error: mcm.chiplet: Operation using value defined out of its "
        "IsolatedFromAbove",
    ):
        parse_module(text, "p.mlir")


def test_chiplet_outside_program_rejected() -> None:
    with pytest.raises(ChiplexError, match="expects parent op 'mcm.program'"):
        parse_module("mcm.chiplet 0 {\n}\n", "p.mlir")
