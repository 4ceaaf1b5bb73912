"""Mistakes a user makes writing `nn` IR by hand: each is a located error, never a traceback."""

from __future__ import annotations

import pytest

from chiplex.errors import ChiplexError
from chiplex.ir.parse import parse_module

RELU = """\
func.func @f(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %y = nn.relu %x : tensor<8x64xf32>
  func.return %y : tensor<8x64xf32>
}
"""


def error_of(text: str, filename: str = "m.mlir") -> str:
    with pytest.raises(ChiplexError) as info:
        parse_module(text, filename)
    return str(info.value)


@pytest.mark.parametrize("element", ["i3", "complex<f32>", "f8E4M3FN"])
def test_element_type_without_a_size_is_located(element: str) -> None:
    # Before: verified, then an internal error (exit 4) when the cost model asked for its bytes.
    message = error_of(RELU.replace("xf32>", f"x{element}>"))
    assert message.startswith(
        f"m.mlir:2:3: error: nn.relu: input tensor<8x64x{element}> has element type {element}, "
        "which chiplex has no size for: use one of i1, i8, i16, i32, i64, index, f16, bf16, f32, f64"
    )


def test_zero_dimension_is_located() -> None:
    message = error_of(RELU.replace("8x64", "8x0"))
    assert message.startswith(
        "m.mlir:2:3: error: nn.relu: input tensor<8x0xf32> has a zero dimension: "
        "nn tensors need at least one element"
    )


def test_function_signature_is_checked_where_no_nn_op_reads_it() -> None:
    # %u is only returned: no nn op verifies it, so the signature check must.
    text = """\
func.func @f(%x: tensor<8x64xf32>, %u: tensor<3xi3>) -> (tensor<8x64xf32>, tensor<3xi3>) {
  %y = nn.relu %x : tensor<8x64xf32>
  func.return %y, %u : tensor<8x64xf32>, tensor<3xi3>
}
"""
    message = error_of(text)
    assert message.startswith(
        "m.mlir:1:36: error: func.func @f: argument %u tensor<3xi3> has element type i3"
    )
    assert message.splitlines()[2] == " " * 35 + "^^"
    empty_result = text.replace("tensor<3xi3>", "tensor<0x3xf32>")
    assert error_of(empty_result).startswith(
        "m.mlir:1:36: error: func.func @f: argument %u tensor<0x3xf32> has a zero dimension"
    )
