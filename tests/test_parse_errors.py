"""parse_module / load_module: every failure is a ChiplexError located at file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest
from xdsl.dialects.builtin import ModuleOp

from chiplex.errors import ChiplexError
from chiplex.ir.parse import load_module, make_context, parse_module

GOOD = """\
func.func @mlp(%x: tensor<8x16xbf16>) -> tensor<8x4xf32> {
  %w = nn.param "fc.weight" : tensor<16x4xi8>
  %y = nn.matmul %x, %w : tensor<8x16xbf16>, tensor<16x4xi8> -> tensor<8x4xf32>
  %z = nn.relu %y : tensor<8x4xf32>
  func.return %z : tensor<8x4xf32>
}
"""


def error_of(text: str, filename: str = "name.mlir") -> str:
    with pytest.raises(ChiplexError) as info:
        parse_module(text, filename)
    return str(info.value)


def test_good_module_parses_and_verifies() -> None:
    module = parse_module(GOOD, "good.mlir")
    assert isinstance(module, ModuleOp)
    assert "nn.matmul" in str(module)


def test_context_has_the_dialects() -> None:
    ctx = make_context()
    for name in ("builtin.module", "func.func", "arith.constant", "nn.matmul", "mcm.send"):
        assert ctx.get_optional_op(name) is not None, name
    assert not ctx.allow_unregistered


def test_syntax_error_is_located() -> None:
    text = GOOD.replace("nn.relu %y :", "nn.relu %y")
    message = error_of(text)
    assert message.startswith("name.mlir:4:19: error: ")
    # The offending line is quoted under the message, with a caret under the column.
    lines = message.splitlines()
    assert lines[1] == "  %z = nn.relu %y tensor<8x4xf32>"
    assert lines[2] == " " * 18 + "^" * len("tensor")


def test_unknown_op_is_located_at_its_name() -> None:
    text = GOOD.replace("nn.relu", "nn.foo")
    message = error_of(text)
    assert message.startswith("name.mlir:4:8: error: unknown operation 'nn.foo'")


def test_unknown_generic_op() -> None:
    message = error_of('%0 = "nn.bar"() : () -> tensor<2xf32>\n')
    assert message.startswith("name.mlir:1:6: error: unknown operation 'nn.bar'")


def test_wrong_shapes_point_at_the_failing_op() -> None:
    text = GOOD.replace("tensor<16x4xi8>", "tensor<15x4xi8>")
    message = error_of(text, "model.mlir")
    assert message.startswith(
        "model.mlir:3:3: error: nn.matmul: contraction dims differ: lhs tensor<8x16xbf16> has "
        "K=16 but rhs tensor<15x4xi8> has K=15"
    )


def test_dynamic_shape_is_located() -> None:
    text = GOOD.replace("%z = nn.relu %y : tensor<8x4xf32>", "%z = nn.relu %q : tensor<?x4xf32>")
    text = text.replace("(%x: tensor<8x16xbf16>)", "(%x: tensor<8x16xbf16>, %q: tensor<?x4xf32>)")
    text = text.replace("func.return %z : tensor<8x4xf32>", "func.return %y : tensor<8x4xf32>")
    message = error_of(text)
    assert message.startswith(
        "name.mlir:4:3: error: nn.relu: input has dynamic shape tensor<?x4xf32>: "
        "nn ops need static shapes"
    )


def test_type_mismatch_with_use_is_a_located_parse_error() -> None:
    text = GOOD.replace("%z = nn.relu %y : tensor<8x4xf32>", "%z = nn.relu %y : tensor<8x5xf32>")
    message = error_of(text)
    assert message.startswith("name.mlir:4:")
    assert "error: " in message.splitlines()[0]


def test_non_nn_verifier_error_is_located() -> None:
    # func.return's operand type differs from the declared result: func's own verifier.
    text = GOOD.replace("func.return %z : tensor<8x4xf32>", "func.return %x : tensor<8x16xbf16>")
    message = error_of(text)
    assert message.startswith("name.mlir:")
    assert "error: " in message


def test_bad_constant_is_located() -> None:
    message = error_of("%c = nn.constant 0.5 : tensor<4xi32>\n")
    assert message.startswith("name.mlir:1:18: error: nn.constant: 0.5 is not an integer")


def test_undefined_value() -> None:
    message = error_of("%z = nn.relu %nothere : tensor<4xf32>\n")
    assert message.startswith("name.mlir:")
    assert "nothere" in message


def test_empty_input() -> None:
    assert error_of("", "empty.mlir").startswith("empty.mlir:1:1: error: ")


def test_load_module(tmp_path: Path) -> None:
    path = tmp_path / "ok.mlir"
    path.write_text(GOOD)
    assert "nn.relu" in str(load_module(path))
    bad = tmp_path / "bad.mlir"
    bad.write_text(GOOD.replace("nn.relu", "nn.foo"))
    with pytest.raises(ChiplexError, match=f"^{bad}:4:8: error: unknown operation 'nn.foo'"):
        load_module(bad)


def test_load_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.mlir"
    with pytest.raises(ChiplexError, match="missing.mlir: error: no such file"):
        load_module(missing)


def test_a_five_thousand_op_function_parses_and_verifies() -> None:
    lines = [
        "func.func @f(%x0: tensor<1x128x768xbf16>) -> tensor<1x128x768xbf16> {",
        '  %w = nn.param "w" : tensor<768x768xi8>',
        '  %g = nn.param "g" : tensor<768xf32>',
    ]
    t = "tensor<1x128x768xbf16>"
    prev = "%x0"
    for i in range(1, 1251):
        lines += [
            f"  %m{i} = nn.matmul {prev}, %w : {t}, tensor<768x768xi8> -> {t}",
            f"  %a{i} = nn.add %m{i}, {prev} : {t}, {t} -> {t}",
            f"  %n{i} = nn.layer_norm %a{i}, %g, %g : {t}, tensor<768xf32>, tensor<768xf32>",
            f"  %x{i} = nn.gelu %n{i} : {t}",
        ]
        prev = f"%x{i}"
    lines += [f"  func.return {prev} : {t}", "}"]
    # Parse speed is measured in benchmarks/compile_speed.py, not asserted here.
    module = parse_module("\n".join(lines), "big.mlir")
    assert sum(1 for _ in module.walk()) == 5005


def test_undefined_value_points_at_first_use() -> None:
    message = error_of('%a = nn.param "a" : tensor<4xf32>\n%z = nn.relu %nothere : tensor<4xf32>\n')
    assert message.startswith("name.mlir:2:14: error: values used but not defined: [%nothere]")


def test_unranked_tensor_rejected_by_name() -> None:
    message = error_of('%x = nn.param "x" : tensor<*xf32>\n')
    assert message.startswith(
        "name.mlir:1:1: error: nn.param: result #0 has dynamic shape tensor<*xf32>"
    )
