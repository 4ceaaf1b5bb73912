"""The nn dialect: syntax round-trips, shape verifiers, flops and Python builders."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp, TensorType, bf16, f32, i8, i32
from xdsl.ir import Block
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from chiplex.errors import ChiplexError
from chiplex.ir import nn
from chiplex.ir.parse import parse_module
from chiplex.ir.types import check_static, element_bytes, numel, static_shape, tensor_bytes

X = "tensor<1x128x768xbf16>"
W = "tensor<768x3072xi8>"
IMG = "tensor<2x16x32x32xf32>"

# (argument types, op line in canonical printed form). Operands are %a, %b, %c in order.
ROUND_TRIP: list[tuple[list[str], str]] = [
    ([], '%r = nn.param "encoder.0.attn.q.weight" : tensor<768x768xi8>'),
    ([], "%r = nn.constant 0.125 : tensor<f32>"),
    ([], "%r = nn.constant -3 : tensor<2x2xi32>"),
    ([], "%r = nn.constant 1.0e-05 : tensor<4xbf16>"),
    ([], "%r = nn.constant true : tensor<3xi1>"),
    ([X, W], f"%r = nn.matmul %a, %b : {X}, {W} -> tensor<1x128x3072xbf16>"),
    (
        ["tensor<2x12x128x64xbf16>", "tensor<2x12x64x128xbf16>"],
        "%r = nn.batch_matmul %a, %b : tensor<2x12x128x64xbf16>, tensor<2x12x64x128xbf16> "
        "-> tensor<2x12x128x128xf32>",
    ),
    (
        [IMG, "tensor<32x16x3x3xi8>"],
        f"%r = nn.conv2d %a, %b : {IMG}, tensor<32x16x3x3xi8> -> tensor<2x32x30x30xf32>",
    ),
    (
        [IMG, "tensor<32x4x3x3xf32>"],
        "%r = nn.conv2d %a, %b strides = [2, 2] padding = [1, 1] dilation = [2, 2] "
        f"groups = 4 : {IMG}, tensor<32x4x3x3xf32> -> tensor<2x32x15x15xf32>",
    ),
    *[
        ([X, "tensor<768xf32>"], f"%r = nn.{op} %a, %b : {X}, tensor<768xf32> -> {X}")
        for op in ("add", "sub", "mul", "div", "max", "min", "pow")
    ],
    *[
        ([X], f"%r = nn.{op} %a : {X}")
        for op in (
            "relu",
            "gelu",
            "tanh",
            "sigmoid",
            "exp",
            "log",
            "sqrt",
            "rsqrt",
            "neg",
            "erf",
            "silu",
        )
    ],
    ([X], f"%r = nn.cast %a : {X} -> tensor<1x128x768xf32>"),
    ([X], f"%r = nn.softmax %a axis = -1 : {X}"),
    (
        [X, "tensor<768xf32>", "tensor<768xf32>"],
        f"%r = nn.layer_norm %a, %b, %c : {X}, tensor<768xf32>, tensor<768xf32>",
    ),
    (
        [X, "tensor<128x768xf32>", "tensor<128x768xf32>"],
        f"%r = nn.layer_norm %a, %b, %c epsilon = 1.000000e-12 : {X}, tensor<128x768xf32>, "
        "tensor<128x768xf32>",
    ),
    (
        [IMG, "tensor<16xf32>", "tensor<16xf32>"],
        f"%r = nn.batch_norm %a, %b, %c : {IMG}, tensor<16xf32>, tensor<16xf32>",
    ),
    ([X], f"%r = nn.reduce_sum %a axes = [-1] : {X} -> tensor<1x128xbf16>"),
    ([X], f"%r = nn.reduce_mean %a axes = [2] keepdims : {X} -> tensor<1x128x1xf32>"),
    ([X], f"%r = nn.reduce_max %a axes = [0, 1] : {X} -> tensor<768xbf16>"),
    ([X], f"%r = nn.reshape %a : {X} -> tensor<1x128x12x64xbf16>"),
    ([X], f"%r = nn.transpose %a perm = [0, 2, 1] : {X} -> tensor<1x768x128xbf16>"),
    (
        [X, "tensor<1x128x256xbf16>"],
        f"%r = nn.concat %a, %b axis = -1 : {X}, tensor<1x128x256xbf16> -> tensor<1x128x1024xbf16>",
    ),
    ([X], f"%r = nn.concat %a axis = 0 : {X} -> {X}"),
    (
        [X],
        f"%r = nn.slice %a starts = [0, 0, 64] sizes = [1, 128, 64] : {X} -> tensor<1x128x64xbf16>",
    ),
    (
        [X],
        f"%r = nn.slice %a starts = [0, 1, 0] sizes = [1, 64, 768] strides = [1, 2, 1] : {X} "
        "-> tensor<1x64x768xbf16>",
    ),
    (
        ["tensor<30522x768xbf16>", "tensor<4x128xi32>"],
        "%r = nn.gather %a, %b axis = 0 : tensor<30522x768xbf16>, tensor<4x128xi32> -> "
        "tensor<4x128x768xbf16>",
    ),
    (
        ["tensor<30522x768xi8>", "tensor<4x128xi64>"],
        "%r = nn.embedding %a, %b : tensor<30522x768xi8>, tensor<4x128xi64> -> "
        "tensor<4x128x768xbf16>",
    ),
    (
        [IMG],
        f"%r = nn.max_pool2d %a kernel = [3, 3] strides = [2, 2] padding = [1, 1] : {IMG} -> "
        "tensor<2x16x16x16xf32>",
    ),
    (
        [IMG],
        f"%r = nn.avg_pool2d %a kernel = [2, 2] strides = [2, 2] : {IMG} -> tensor<2x16x16x16xf32>",
    ),
    ([IMG], f"%r = nn.global_avg_pool2d %a : {IMG} -> tensor<2x16x1x1xf32>"),
    ([X], f'%r = nn.gelu %a {{mcm.chip = #mcm.chip<3>, note = "x"}} : {X}'),
    (
        ["tensor<4x128xi64>", "tensor<i64>"],
        '%r = nn.compare "ne" %a, %b : tensor<4x128xi64>, tensor<i64> -> tensor<4x128xi1>',
    ),
    (["tensor<4x128xi32>"], "%r = nn.cumsum %a axis = 1 : tensor<4x128xi32> -> tensor<4x128xi64>"),
    (
        ["tensor<4x10xf32>", "tensor<4x3xi64>"],
        "%r = nn.gather_elements %a, %b axis = 1 : tensor<4x10xf32>, tensor<4x3xi64> -> "
        "tensor<4x3xf32>",
    ),
    (
        ["tensor<1x4x9xbf16>"],
        "%r = nn.pad %a low = [0, 0, 2] high = [0, 0, 1] value = 5.000000e-01 : "
        "tensor<1x4x9xbf16> -> tensor<1x4x12xbf16>",
    ),
    (
        ["tensor<2x3xf32>", "tensor<2x6xf32>"],
        "%r = nn.insert_slice %a into %b starts = [0, 1] strides = [1, 2] : "
        "tensor<2x3xf32>, tensor<2x6xf32> -> tensor<2x6xf32>",
    ),
    (
        ["tensor<1000x768xi8>", "tensor<4x128xi64>", "tensor<4x128x768xbf16>"],
        "%r = nn.embedding_shard %a, %b, %c row_offset = 1000 : tensor<1000x768xi8>, "
        "tensor<4x128xi64>, tensor<4x128x768xbf16> -> tensor<4x128x768xbf16>",
    ),
    (
        ["tensor<1000x768xi8>", "tensor<4x128xi64>"],
        "%r = nn.embedding_shard %a, %b row_offset = 0 : tensor<1000x768xi8>, "
        "tensor<4x128xi64> -> tensor<4x128x768xbf16>",
    ),
]


def wrap(arg_types: list[str], line: str) -> str:
    args = ", ".join(f"%{'abc'[i]}: {t}" for i, t in enumerate(arg_types))
    return f"func.func @f({args}) {{\n  {line}\n  func.return\n}}\n"


def only_op(module: ModuleOp) -> nn.NNOp:
    ops = [op for op in module.walk() if isinstance(op, nn.NNOp)]
    assert len(ops) == 1
    return ops[0]


def test_every_op_is_covered_by_round_trip() -> None:
    covered = {line.split("= ", 1)[1].split(" ", 1)[0] for _, line in ROUND_TRIP}
    assert covered == {op.name for op in nn.NN_OPS}


@pytest.mark.parametrize(("args", "line"), ROUND_TRIP, ids=[line for _, line in ROUND_TRIP])
def test_round_trip(args: list[str], line: str) -> None:
    text = wrap(args, line)
    first = str(parse_module(text))
    assert f"    {line}\n" in first, first
    assert str(parse_module(first)) == first


def test_generic_form_round_trips_to_custom() -> None:
    text = wrap([X], f'%r = "nn.softmax"(%a) <{{axis = 1 : i64}}> : ({X}) -> {X}')
    assert f"nn.softmax %a axis = 1 : {X}" in str(parse_module(text))


def test_every_op_is_an_nnop_and_pure_except_none() -> None:
    from xdsl.traits import Pure

    for op in nn.NN_OPS:
        assert issubclass(op, nn.NNOp)
        assert op.has_trait(Pure), op.name


def test_nn_dialect_lists_all_ops() -> None:
    names = {op.name for op in nn.NN.operations}
    assert len(names) == 45
    assert "nn.global_avg_pool2d" in names


# --- verifier rejections ---------------------------------------------------------------------

REJECT: list[tuple[list[str], str, str]] = [
    (
        ["tensor<4xi64>", "tensor<4xi64>"],
        '%r = nn.compare "neq" %a, %b : tensor<4xi64>, tensor<4xi64> -> tensor<4xi1>',
        "nn.compare: predicate 'neq' is not one of eq, ne, lt, le, gt, ge",
    ),
    (
        ["tensor<4xi64>", "tensor<4xi64>"],
        '%r = nn.compare "eq" %a, %b : tensor<4xi64>, tensor<4xi64> -> tensor<4xi64>',
        "nn.compare: result tensor<4xi64> must have element type i1",
    ),
    (
        ["tensor<4x3xf32>", "tensor<4x5xi64>"],
        "%r = nn.gather_elements %a, %b axis = 0 : tensor<4x3xf32>, tensor<4x5xi64> -> "
        "tensor<4x5xf32>",
        "nn.gather_elements: indices tensor<4x5xi64> are larger than data tensor<4x3xf32> in dim 1",
    ),
    (
        ["tensor<4x3xf32>"],
        "%r = nn.pad %a low = [0, -1] high = [0, 0] : tensor<4x3xf32> -> tensor<4x2xf32>",
        "nn.pad: padding must be >= 0",
    ),
    (
        ["tensor<2x3xf32>", "tensor<2x6xf32>"],
        "%r = nn.insert_slice %a into %b starts = [0, 1] strides = [1, 3] : "
        "tensor<2x3xf32>, tensor<2x6xf32> -> tensor<2x6xf32>",
        "nn.insert_slice: dim 1: source tensor<2x3xf32> written at 1 with stride 3 ends past",
    ),
    (
        ["tensor<10x8xi8>", "tensor<4xi64>", "tensor<4x7xf32>"],
        "%r = nn.embedding_shard %a, %b, %c row_offset = 0 : tensor<10x8xi8>, tensor<4xi64>, "
        "tensor<4x7xf32> -> tensor<4x7xf32>",
        "nn.embedding_shard: partial tensor<4x7xf32> must have the lookup's shape 4x8",
    ),
    (
        ["tensor<1x128x768xf32>", "tensor<512x3072xi8>"],
        "%r = nn.matmul %a, %b : tensor<1x128x768xf32>, tensor<512x3072xi8> -> "
        "tensor<1x128x3072xf32>",
        "nn.matmul: contraction dims differ: lhs tensor<1x128x768xf32> has K=768 but rhs "
        "tensor<512x3072xi8> has K=512",
    ),
    (
        ["tensor<768xf32>", "tensor<768x3xf32>"],
        "%r = nn.matmul %a, %b : tensor<768xf32>, tensor<768x3xf32> -> tensor<3xf32>",
        "nn.matmul: lhs tensor<768xf32> must have rank >= 2",
    ),
    (
        [X, W],
        f"%r = nn.matmul %a, %b : {X}, {W} -> tensor<1x128x768xbf16>",
        "nn.matmul: result tensor<1x128x768xbf16> has shape 1x128x768, expected 1x128x3072",
    ),
    (
        ["tensor<2x4x8xf32>", "tensor<3x8x5xf32>"],
        "%r = nn.batch_matmul %a, %b : tensor<2x4x8xf32>, tensor<3x8x5xf32> -> tensor<2x4x5xf32>",
        "nn.batch_matmul: batch dims differ",
    ),
    (
        [IMG, "tensor<32x8x3x3xf32>"],
        f"%r = nn.conv2d %a, %b : {IMG}, tensor<32x8x3x3xf32> -> tensor<2x32x30x30xf32>",
        "nn.conv2d: weight tensor<32x8x3x3xf32> has I=8 but input",
    ),
    (
        [IMG, "tensor<32x16x3x3xf32>"],
        f"%r = nn.conv2d %a, %b padding = [1, 1] : {IMG}, tensor<32x16x3x3xf32> -> "
        "tensor<2x32x30x30xf32>",
        "expected 2x32x32x32",
    ),
    (
        [IMG, "tensor<32x16x3x3xf32>"],
        f"%r = nn.conv2d %a, %b strides = [0, 1] : {IMG}, tensor<32x16x3x3xf32> -> "
        "tensor<2x32x30x30xf32>",
        "strides entries must be >= 1",
    ),
    (
        ["tensor<4x3xf32>", "tensor<4x2xf32>"],
        "%r = nn.add %a, %b : tensor<4x3xf32>, tensor<4x2xf32> -> tensor<4x3xf32>",
        "nn.add: shapes do not broadcast: lhs tensor<4x3xf32> and rhs tensor<4x2xf32> differ in "
        "dim -1 (3 vs 2)",
    ),
    (
        ["tensor<4x1xf32>", "tensor<3xf32>"],
        "%r = nn.mul %a, %b : tensor<4x1xf32>, tensor<3xf32> -> tensor<4x1xf32>",
        "expected 4x3",
    ),
    (
        [X],
        f'%r = "nn.relu"(%a) : ({X}) -> tensor<1x128x767xbf16>',
        "nn.relu: result",
    ),
    (
        [X],
        f"%r = nn.cast %a : {X} -> tensor<128x768xf32>",
        "nn.cast: result tensor<128x768xf32> has shape 128x768, expected 1x128x768",
    ),
    ([X], f"%r = nn.softmax %a axis = 3 : {X}", "nn.softmax: axis 3 is out of range for rank 3"),
    (
        [X, "tensor<128xf32>", "tensor<128xf32>"],
        f"%r = nn.layer_norm %a, %b, %c : {X}, tensor<128xf32>, tensor<128xf32>",
        "nn.layer_norm: gamma tensor<128xf32> must match the trailing dims",
    ),
    (
        [X, "tensor<768xf32>", "tensor<767xf32>"],
        f"%r = nn.layer_norm %a, %b, %c : {X}, tensor<768xf32>, tensor<767xf32>",
        "beta tensor<767xf32> must have the shape of gamma",
    ),
    (
        [IMG, "tensor<3xf32>", "tensor<16xf32>"],
        f"%r = nn.batch_norm %a, %b, %c : {IMG}, tensor<3xf32>, tensor<16xf32>",
        "nn.batch_norm: scale tensor<3xf32> must have shape 16",
    ),
    (
        [X],
        f"%r = nn.reduce_sum %a axes = [1, -2] : {X} -> tensor<1x768xbf16>",
        "repeat an axis",
    ),
    (
        [X],
        f"%r = nn.reduce_max %a axes = [2] : {X} -> tensor<1x128x1xbf16>",
        "expected 1x128",
    ),
    (
        [X],
        f"%r = nn.reshape %a : {X} -> tensor<128x767xbf16>",
        "nn.reshape: element count changes: input tensor<1x128x768xbf16> has 98304 elements",
    ),
    (
        [X],
        f"%r = nn.transpose %a perm = [0, 1, 1] : {X} -> {X}",
        "nn.transpose: perm [0, 1, 1] is not a permutation of 0..2",
    ),
    (
        [X, "tensor<1x64x256xbf16>"],
        f"%r = nn.concat %a, %b axis = 2 : {X}, tensor<1x64x256xbf16> -> tensor<1x128x1024xbf16>",
        "nn.concat: input tensor<1x64x256xbf16> does not match",
    ),
    (
        [X],
        f"%r = nn.slice %a starts = [0, 100, 0] sizes = [1, 64, 768] : {X} -> "
        "tensor<1x64x768xbf16>",
        "nn.slice: dim 1: slice start 100 size 64 stride 1 reads index 163 past the end",
    ),
    (
        [X],
        f"%r = nn.slice %a starts = [0, 0] sizes = [1, 64] : {X} -> tensor<1x64xbf16>",
        "one entry per dim",
    ),
    (
        ["tensor<100x8xf32>", "tensor<4xf32>"],
        "%r = nn.gather %a, %b axis = 0 : tensor<100x8xf32>, tensor<4xf32> -> tensor<4x8xf32>",
        "nn.gather: indices tensor<4xf32> must have an integer element type",
    ),
    (
        ["tensor<100x8xf32>", "tensor<4xi32>"],
        "%r = nn.gather %a, %b axis = 1 : tensor<100x8xf32>, tensor<4xi32> -> tensor<4x8xf32>",
        "expected 100x4",
    ),
    (
        ["tensor<100xf32>", "tensor<4xi32>"],
        "%r = nn.embedding %a, %b : tensor<100xf32>, tensor<4xi32> -> tensor<4xf32>",
        "nn.embedding: table tensor<100xf32> must have rank 2",
    ),
    (
        [IMG],
        f"%r = nn.max_pool2d %a kernel = [3, 3] strides = [2, 2] : {IMG} -> tensor<2x16x16x16xf32>",
        "expected 2x16x15x15",
    ),
    (
        ["tensor<2x16x2x2xf32>"],
        "%r = nn.avg_pool2d %a kernel = [3, 3] strides = [1, 1] : tensor<2x16x2x2xf32> -> "
        "tensor<2x16x1x1xf32>",
        "does not fit H=2",
    ),
    (
        [X],
        f"%r = nn.global_avg_pool2d %a : {X} -> tensor<1x128x1x1xbf16>",
        "must be NCHW",
    ),
    ([], '%r = nn.param "" : tensor<2xf32>', "nn.param: parameter name must not be empty"),
]


@pytest.mark.parametrize(("args", "line", "message"), REJECT, ids=[m for _, _, m in REJECT])
def test_verifier_rejects(args: list[str], line: str, message: str) -> None:
    with pytest.raises(ChiplexError) as info:
        parse_module(wrap(args, line), "bad.mlir")
    assert message in str(info.value)
    assert str(info.value).startswith("bad.mlir:2:3: error: ")


@pytest.mark.parametrize(
    "line",
    [
        "%r = nn.relu %a : tensor<?x768xf32>",
        "%r = nn.matmul %a, %a : tensor<?x768xf32>, tensor<?x768xf32> -> tensor<?x768xf32>",
        "%r = nn.reshape %a : tensor<?x768xf32> -> tensor<768xf32>",
    ],
)
def test_dynamic_shapes_rejected(line: str) -> None:
    with pytest.raises(ChiplexError, match="has dynamic shape tensor<\\?x768xf32>: nn ops need"):
        parse_module(wrap(["tensor<?x768xf32>"], line))


def test_check_static_on_unranked() -> None:
    from xdsl.dialects.builtin import UnrankedTensorType

    with pytest.raises(VerifyException, match="x has dynamic shape tensor<\\*xf32>"):
        check_static(UnrankedTensorType(f32), "x")


# --- flops -----------------------------------------------------------------------------------


def flops_of(args: list[str], line: str) -> int:
    return only_op(parse_module(wrap(args, line))).flops()


def test_flops_matmul() -> None:
    line = f"%r = nn.matmul %a, %b : {X}, {W} -> tensor<1x128x3072xbf16>"
    assert flops_of([X, W], line) == 2 * 128 * 3072 * 768


def test_flops_batch_matmul() -> None:
    line = (
        "%r = nn.batch_matmul %a, %b : tensor<2x12x128x64xbf16>, tensor<2x12x64x128xbf16> "
        "-> tensor<2x12x128x128xbf16>"
    )
    args = ["tensor<2x12x128x64xbf16>", "tensor<2x12x64x128xbf16>"]
    assert flops_of(args, line) == 2 * 128 * 128 * 64 * 24


def test_flops_conv2d_grouped() -> None:
    line = (
        f"%r = nn.conv2d %a, %b strides = [2, 2] padding = [1, 1] groups = 4 : {IMG}, "
        "tensor<32x4x3x3xf32> -> tensor<2x32x16x16xf32>"
    )
    # 2 * N * OH * OW * OC * (IC / groups) * KH * KW
    assert flops_of([IMG, "tensor<32x4x3x3xf32>"], line) == 2 * 2 * 16 * 16 * 32 * 4 * 3 * 3


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"%r = nn.softmax %a axis = -1 : {X}", 5 * 98304),
        (f"%r = nn.relu %a : {X}", 98304),
        (f"%r = nn.neg %a : {X}", 98304),
        (f"%r = nn.rsqrt %a : {X}", 98304),
        (f"%r = nn.gelu %a : {X}", 4 * 98304),
        (f"%r = nn.exp %a : {X}", 4 * 98304),
        (f"%r = nn.silu %a : {X}", 4 * 98304),
        (f"%r = nn.cast %a : {X} -> tensor<1x128x768xf32>", 0),
        (f"%r = nn.reduce_sum %a axes = [2] : {X} -> tensor<1x128xbf16>", 98304),
        (f"%r = nn.reshape %a : {X} -> tensor<128x768xbf16>", 0),
        (f"%r = nn.transpose %a perm = [2, 1, 0] : {X} -> tensor<768x128x1xbf16>", 0),
        (
            f"%r = nn.slice %a starts = [0, 0, 0] sizes = [1, 1, 768] : {X} -> "
            "tensor<1x1x768xbf16>",
            0,
        ),
    ],
)
def test_flops_unary_like(line: str, expected: int) -> None:
    assert flops_of([X], line) == expected


def test_flops_binary_uses_result() -> None:
    line = "%r = nn.add %a, %b : tensor<4x1xf32>, tensor<3xf32> -> tensor<4x3xf32>"
    assert flops_of(["tensor<4x1xf32>", "tensor<3xf32>"], line) == 12


def test_flops_norms_and_pools() -> None:
    g = "tensor<768xf32>"
    assert flops_of([X, g, g], f"%r = nn.layer_norm %a, %b, %c : {X}, {g}, {g}") == 8 * 98304
    c = "tensor<16xf32>"
    assert flops_of([IMG, c, c], f"%r = nn.batch_norm %a, %b, %c : {IMG}, {c}, {c}") == (
        2 * 2 * 16 * 32 * 32
    )
    pool = (
        f"%r = nn.max_pool2d %a kernel = [3, 3] strides = [2, 2] padding = [1, 1] : {IMG} -> "
        "tensor<2x16x16x16xf32>"
    )
    assert flops_of([IMG], pool) == 2 * 16 * 16 * 16 * 9
    assert flops_of([IMG], f"%r = nn.global_avg_pool2d %a : {IMG} -> tensor<2x16x1x1xf32>") == (
        2 * 16 * 32 * 32
    )


def test_flops_data_movement_is_zero() -> None:
    assert flops_of([], '%r = nn.param "w" : tensor<768x768xi8>') == 0
    assert flops_of([], "%r = nn.constant 1.0 : tensor<768xf32>") == 0
    line = "%r = nn.embedding %a, %b : tensor<100x8xf32>, tensor<4xi32> -> tensor<4x8xf32>"
    assert flops_of(["tensor<100x8xf32>", "tensor<4xi32>"], line) == 0


# --- Python builders -------------------------------------------------------------------------


def test_builders_infer_shapes_and_verify() -> None:
    x = nn.ParamOp("x", TensorType(bf16, [1, 128, 768]))
    w = nn.ParamOp("w", TensorType(i8, [768, 3072]))
    mm = nn.MatmulOp(x, w)
    assert mm.result.type == TensorType(bf16, [1, 128, 3072])
    act = nn.GeluOp(mm)
    red = nn.ReduceMeanOp(act, [-1], keepdims=True)
    tr = nn.TransposeOp(x, [0, 2, 1])
    sl = nn.SliceOp(x, [0, 0, 0], [1, 64, 768], [1, 2, 1])
    cat = nn.ConcatOp([x, x], axis=1)
    sm = nn.SoftmaxOp(x)
    ids = nn.ParamOp("ids", TensorType(i32, [4, 16]))
    emb = nn.EmbeddingOp(w, ids)
    gat = nn.GatherOp(w, ids, axis=1)
    img = nn.ParamOp("img", TensorType(f32, [1, 3, 224, 224]))
    k = nn.ParamOp("k", TensorType(f32, [64, 3, 7, 7]))
    conv = nn.Conv2dOp(img, k, strides=(2, 2), padding=(3, 3))
    pool = nn.MaxPool2dOp(conv, kernel=(3, 3), strides=(2, 2), padding=(1, 1))
    gap = nn.GlobalAvgPool2dOp(pool)
    const = nn.ConstantOp(0.5, TensorType(f32, []))
    add = nn.AddOp(gap, const)
    ops = [x, w, mm, act, red, tr, sl, cat, sm, ids, emb, gat, img, k, conv, pool, gap]
    ops += [const, add]
    module = ModuleOp([])
    module.body.block.add_ops(ops)
    module.verify()
    assert red.result.type == TensorType(bf16, [1, 128, 1])
    assert sl.result.type == TensorType(bf16, [1, 64, 768])
    assert cat.result.type == TensorType(bf16, [1, 256, 768])
    assert emb.result.type == TensorType(i8, [4, 16, 3072])
    assert gat.result.type == TensorType(i8, [768, 4, 16])
    assert conv.result.type == TensorType(f32, [1, 64, 112, 112])
    assert pool.result.type == TensorType(f32, [1, 64, 56, 56])
    assert gap.result.type == TensorType(f32, [1, 64, 1, 1])
    # The printed builder output parses back to the same text.
    assert str(parse_module(str(module))) == str(module)


def test_builder_rejects_bad_shapes_with_op_name() -> None:
    x = nn.ParamOp("x", TensorType(f32, [4, 8]))
    w = nn.ParamOp("w", TensorType(f32, [7, 2]))
    with pytest.raises(VerifyException, match="nn.matmul: contraction dims differ"):
        nn.MatmulOp(x, w)


def test_printer_is_usable_on_single_op() -> None:
    x = nn.ParamOp("x", TensorType(f32, [4, 8]))
    block = Block([x, r := nn.ReluOp(x)])
    assert block.last_op is r
    import io

    out = io.StringIO()
    Printer(stream=out).print_op(r)
    assert "nn.relu" in out.getvalue()


# --- types helpers ---------------------------------------------------------------------------


def test_type_helpers() -> None:
    from xdsl.dialects.builtin import IntegerType, f16, f64, i1, i16, i64

    assert [element_bytes(t) for t in (i1, i8, i16, f16, bf16, i32, f32, i64, f64)] == [
        1,
        1,
        1 * 2,
        2,
        2,
        4,
        4,
        8,
        8,
    ]
    with pytest.raises(ValueError):
        element_bytes(IntegerType(3))
    t = TensorType(bf16, [1, 128, 768])
    assert static_shape(t) == (1, 128, 768)
    assert numel(t) == 98304
    assert tensor_bytes(t) == 196608
    assert numel(TensorType(f32, [])) == 1


# --- property tests for the shape rules ------------------------------------------------------

_dims = st.lists(st.integers(1, 5), min_size=0, max_size=4)


@st.composite
def broadcast_pairs(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    base = draw(_dims)

    # Drop leading dims and replace some with 1 on each side: always broadcastable.
    def variant() -> list[int]:
        cut = draw(st.integers(0, len(base)))
        return [1 if draw(st.booleans()) else d for d in base[cut:]]

    return variant(), variant()


def _tensor(shape: list[int] | tuple[int, ...]) -> str:
    return "tensor<" + "".join(f"{d}x" for d in shape) + "f32>"


@settings(max_examples=40, deadline=None)
@given(broadcast_pairs())
def test_broadcast_matches_numpy(pair: tuple[list[int], list[int]]) -> None:
    a, b = pair
    expected = np.broadcast_shapes(tuple(a), tuple(b))
    assert nn.broadcast_shapes(TensorType(f32, a), TensorType(f32, b)) == expected
    line = f"%r = nn.add %a, %b : {_tensor(a)}, {_tensor(b)} -> {_tensor(expected)}"
    parse_module(wrap([_tensor(a), _tensor(b)], line))


@settings(max_examples=40, deadline=None)
@given(_dims, _dims)
def test_broadcast_rejects_exactly_what_numpy_rejects(a: list[int], b: list[int]) -> None:
    try:
        expected: tuple[int, ...] | None = np.broadcast_shapes(tuple(a), tuple(b))
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(VerifyException, match="do not broadcast"):
            nn.broadcast_shapes(TensorType(f32, a), TensorType(f32, b))
    else:
        assert nn.broadcast_shapes(TensorType(f32, a), TensorType(f32, b)) == expected


@settings(max_examples=40, deadline=None)
@given(_dims, _dims)
def test_reshape_accepts_iff_numel_equal(a: list[int], b: list[int]) -> None:
    line = f"%r = nn.reshape %a : {_tensor(a)} -> {_tensor(b)}"
    if math.prod(a) == math.prod(b):
        parse_module(wrap([_tensor(a)], line))
    else:
        with pytest.raises(ChiplexError, match="nn.reshape: element count changes"):
            parse_module(wrap([_tensor(a)], line))
