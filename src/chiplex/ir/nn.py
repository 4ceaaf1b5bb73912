"""The `nn` dialect: tensor ops on ranked, statically shaped tensors.

Only shapes are verified: element types may differ between operands (int8 weights with
bf16 activations) and a result's element type is whatever the IR declares.

Every op derives from `NNOp`, whose `flops()` is the cost model the partitioner reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import ClassVar, NoReturn, cast

from xdsl.dialects.builtin import (
    I64,
    DenseArrayBase,
    Float64Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    StringAttr,
    TensorType,
    UnitAttr,
    UnrankedTensorType,
    f64,
    i64,
)
from xdsl.ir import Attribute, Dialect, Operation, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    VarConstraint,
    base,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from chiplex.ir.types import check_static

# Cost factors (flops per result element unless stated). Transcendentals are weighted so the
# partitioner sees that a GELU is not as cheap as an add on vector units.
MATMUL_FLOPS_PER_MAC = 2
ELEMENTWISE_FLOPS = 1
TRANSCENDENTAL_FLOPS = 4
SOFTMAX_FLOPS = 5
LAYER_NORM_FLOPS = 8
BATCH_NORM_FLOPS = 2
REDUCE_FLOPS_PER_INPUT = 1

Shape = tuple[int, ...]

_I64Attr = IntegerAttr[I64]
_I64Array = DenseArrayBase.constr(i64)
# Unranked tensors pass the type constraint so check_static can reject them by name.
_Tensor = base(TensorType) | base(UnrankedTensorType)


# ---------------------------------------------------------------------------------------------
# Shape helpers. Each raises VerifyException with a message that lacks the op name; NNOp adds it
# so builders and verifiers report the same text.
# ---------------------------------------------------------------------------------------------


def _fmt(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _shape(v: SSAValue | Attribute) -> Shape:
    t = v.type if isinstance(v, SSAValue) else v
    return cast(TensorType, t).get_shape()


def _elem(v: SSAValue) -> Attribute:
    return cast(TensorType, v.type).get_element_type()


def _fail(msg: str) -> NoReturn:
    raise VerifyException(msg)


def _norm_axis(axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < rank:
        _fail(f"{what} {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _array(values: Sequence[int]) -> DenseArrayBase[IntegerType]:
    return DenseArrayBase.from_list(i64, list(values))


def _ints(attr: Attribute) -> tuple[int, ...]:
    return cast(DenseArrayBase[IntegerType], attr).get_values()


def _tensor_of(shape: Sequence[int], like: SSAValue) -> TensorType:
    return TensorType(_elem(like), list(shape))


def broadcast_shapes(lhs: TensorType, rhs: TensorType) -> Shape:
    """Numpy broadcasting: align trailing dims, each pair equal or one of them 1."""
    a, b = lhs.get_shape(), rhs.get_shape()
    rank = max(len(a), len(b))
    a1 = (1,) * (rank - len(a)) + a
    b1 = (1,) * (rank - len(b)) + b
    out: list[int] = []
    for i, (x, y) in enumerate(zip(a1, b1, strict=True)):
        if x != y and x != 1 and y != 1:
            _fail(
                f"shapes do not broadcast: lhs {lhs} and rhs {rhs} differ in dim "
                f"{i - rank} ({x} vs {y})"
            )
        out.append(max(x, y) if x != 0 and y != 0 else 0)
    return tuple(out)


def matmul_shape(lhs: TensorType, rhs: TensorType) -> Shape:
    a, b = lhs.get_shape(), rhs.get_shape()
    if len(a) < 2:
        _fail(f"lhs {lhs} must have rank >= 2 ([*, M, K])")
    if len(b) != 2:
        _fail(f"rhs {rhs} must have rank 2 ([K, N])")
    if a[-1] != b[0]:
        _fail(f"contraction dims differ: lhs {lhs} has K={a[-1]} but rhs {rhs} has K={b[0]}")
    return a[:-1] + (b[1],)


def batch_matmul_shape(lhs: TensorType, rhs: TensorType) -> Shape:
    a, b = lhs.get_shape(), rhs.get_shape()
    if len(a) < 3 or len(b) < 3:
        _fail(f"operands must have rank >= 3 ([*B, M, K] x [*B, K, N]), got {lhs} and {rhs}")
    if a[:-2] != b[:-2]:
        _fail(f"batch dims differ: lhs {lhs} has {_fmt(a[:-2])} but rhs {rhs} has {_fmt(b[:-2])}")
    if a[-1] != b[-2]:
        _fail(f"contraction dims differ: lhs {lhs} has K={a[-1]} but rhs {rhs} has K={b[-2]}")
    return a[:-1] + (b[-1],)


def _check_pair(values: Sequence[int], what: str, minimum: int) -> None:
    if len(values) != 2:
        _fail(f"{what} must have 2 entries (H, W), got {list(values)}")
    if any(v < minimum for v in values):
        _fail(f"{what} entries must be >= {minimum}, got {list(values)}")


def _window_out(
    size: int, kernel: int, stride: int, pad: int, dilation: int, dim: str, input_t: TensorType
) -> int:
    span = dilation * (kernel - 1) + 1
    if size + 2 * pad < span:
        _fail(
            f"window of {span} (kernel {kernel}, dilation {dilation}) does not fit "
            f"{dim}={size} with padding {pad} of input {input_t}"
        )
    return (size + 2 * pad - span) // stride + 1


def conv2d_shape(
    input_t: TensorType,
    weight_t: TensorType,
    strides: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
) -> Shape:
    x, w = input_t.get_shape(), weight_t.get_shape()
    if len(x) != 4:
        _fail(f"input {input_t} must be NCHW (rank 4)")
    if len(w) != 4:
        _fail(f"weight {weight_t} must be OIHW (rank 4)")
    _check_pair(strides, "strides", 1)
    _check_pair(padding, "padding", 0)
    _check_pair(dilation, "dilation", 1)
    if groups < 1:
        _fail(f"groups must be >= 1, got {groups}")
    n, c, h, wd = x
    oc, icg, kh, kw = w
    if c % groups or oc % groups:
        _fail(
            f"groups={groups} must divide input channels {c} of {input_t} "
            f"and output channels {oc} of {weight_t}"
        )
    if icg != c // groups:
        _fail(
            f"weight {weight_t} has I={icg} but input {input_t} has {c} channels / "
            f"{groups} groups = {c // groups}"
        )
    oh = _window_out(h, kh, strides[0], padding[0], dilation[0], "H", input_t)
    ow = _window_out(wd, kw, strides[1], padding[1], dilation[1], "W", input_t)
    return (n, oc, oh, ow)


def pool2d_shape(
    input_t: TensorType, kernel: Sequence[int], strides: Sequence[int], padding: Sequence[int]
) -> Shape:
    x = input_t.get_shape()
    if len(x) != 4:
        _fail(f"input {input_t} must be NCHW (rank 4)")
    _check_pair(kernel, "kernel", 1)
    _check_pair(strides, "strides", 1)
    _check_pair(padding, "padding", 0)
    n, c, h, w = x
    oh = _window_out(h, kernel[0], strides[0], padding[0], 1, "H", input_t)
    ow = _window_out(w, kernel[1], strides[1], padding[1], 1, "W", input_t)
    return (n, c, oh, ow)


def reduce_shape(input_t: TensorType, axes: Sequence[int], keepdims: bool) -> Shape:
    x = input_t.get_shape()
    norm = [_norm_axis(a, len(x), "reduction axis") for a in axes]
    if len(set(norm)) != len(norm):
        _fail(f"reduction axes {list(axes)} repeat an axis of {input_t}")
    if not norm:
        _fail("reduction needs at least one axis")
    if keepdims:
        return tuple(1 if i in norm else d for i, d in enumerate(x))
    return tuple(d for i, d in enumerate(x) if i not in norm)


def transpose_shape(input_t: TensorType, perm: Sequence[int]) -> Shape:
    x = input_t.get_shape()
    if sorted(perm) != list(range(len(x))):
        _fail(f"perm {list(perm)} is not a permutation of 0..{len(x) - 1} for {input_t}")
    return tuple(x[p] for p in perm)


def concat_shape(inputs: Sequence[TensorType], axis: int) -> Shape:
    if not inputs:
        _fail("needs at least one input")
    first = inputs[0].get_shape()
    ax = _norm_axis(axis, len(first))
    total = 0
    for t in inputs:
        s = t.get_shape()
        if len(s) != len(first) or any(
            a != b for i, (a, b) in enumerate(zip(s, first, strict=True)) if i != ax
        ):
            _fail(f"input {t} does not match {inputs[0]} outside the concatenation axis {axis}")
        total += s[ax]
    return first[:ax] + (total,) + first[ax + 1 :]


def slice_shape(
    input_t: TensorType, starts: Sequence[int], sizes: Sequence[int], strides: Sequence[int]
) -> Shape:
    x = input_t.get_shape()
    if not len(starts) == len(sizes) == len(strides) == len(x):
        _fail(
            f"starts {list(starts)}, sizes {list(sizes)} and strides {list(strides)} "
            f"must each have one entry per dim of {input_t}"
        )
    for i, (d, st, sz, sd) in enumerate(zip(x, starts, sizes, strides, strict=True)):
        if st < 0 or sz < 1 or sd < 1:
            _fail(f"dim {i}: need start >= 0, size >= 1, stride >= 1, got {st}, {sz}, {sd}")
        if st + (sz - 1) * sd >= d:
            _fail(
                f"dim {i}: slice start {st} size {sz} stride {sd} reads index "
                f"{st + (sz - 1) * sd} past the end of {input_t} (size {d})"
            )
    return tuple(sizes)


def gather_shape(data: TensorType, indices: TensorType, axis: int) -> Shape:
    d = data.get_shape()
    if not isinstance(indices.get_element_type(), IntegerType | IndexType):
        _fail(f"indices {indices} must have an integer element type")
    ax = _norm_axis(axis, len(d))
    return d[:ax] + indices.get_shape() + d[ax + 1 :]


def embedding_shape(table: TensorType, ids: TensorType) -> Shape:
    t = table.get_shape()
    if len(t) != 2:
        _fail(f"table {table} must have rank 2 ([V, D])")
    if not isinstance(ids.get_element_type(), IntegerType | IndexType):
        _fail(f"ids {ids} must have an integer element type")
    return ids.get_shape() + (t[1],)


# ---------------------------------------------------------------------------------------------
# Base classes
# ---------------------------------------------------------------------------------------------


class NNOp(IRDLOperation):
    """Base of every nn op: static-shape checks, shape verification and the flops contract."""

    def flops(self) -> int:
        """Floating point operations of one execution (0 for pure data movement)."""
        return 0

    def expected_shape(self) -> Shape | None:
        """The result shape implied by operands and properties; None if any shape is allowed."""
        return None

    def verify_(self) -> None:
        for what, value in self._named_values():
            check_static(value.type, f"{self.name}: {what}")
        try:
            self.verify_shapes()
            expected = self.expected_shape()
        except VerifyException as e:
            raise VerifyException(f"{self.name}: {e}") from None
        if expected is not None and self.results:
            got = _shape(self.results[0])
            if got != expected:
                inputs = ", ".join(str(o.type) for o in self.operands)
                raise VerifyException(
                    f"{self.name}: result {self.results[0].type} has shape {_fmt(got)}, "
                    f"expected {_fmt(expected)} from operands ({inputs})"
                )

    def verify_shapes(self) -> None:
        """Extra shape rules beyond the result shape; raise VerifyException without op name."""

    def _named_values(self) -> list[tuple[str, SSAValue]]:
        defs = type(self).get_irdl_definition()
        names: list[tuple[str, SSAValue]] = []
        if len(defs.operands) == len(self.operands):
            names += [(n, v) for (n, _), v in zip(defs.operands, self.operands, strict=True)]
        else:
            names += [(f"operand #{i}", v) for i, v in enumerate(self.operands)]
        names += [(f"result #{i}", v) for i, v in enumerate(self.results)]
        return names

    @classmethod
    def _infer(cls, fn: Callable[..., Shape], *args: object) -> Shape:
        """Run a shape function for a builder, with the same message the verifier gives."""
        try:
            return fn(*args)
        except VerifyException as e:
            raise VerifyException(f"{cls.name}: {e}") from None


def _numel(v: SSAValue) -> int:
    return math.prod(_shape(v))


class _TwoOperandOp(NNOp):
    """Shared fields and format of ops reading `lhs, rhs`; subclasses set `_shape_fn`."""

    lhs = operand_def(_Tensor)
    rhs = operand_def(_Tensor)
    result = result_def(_Tensor)
    traits = traits_def(Pure())
    assembly_format = "$lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)"

    def __init__(
        self,
        lhs: SSAValue | Operation,
        rhs: SSAValue | Operation,
        result_type: Attribute | None = None,
    ) -> None:
        lhs_v, rhs_v = SSAValue.get(lhs), SSAValue.get(rhs)
        if result_type is None:
            shape = self._infer(self._shape_fn, lhs_v.type, rhs_v.type)
            result_type = _tensor_of(shape, lhs_v)
        super().__init__(operands=[lhs_v, rhs_v], result_types=[result_type])

    @staticmethod
    def _shape_fn(lhs: TensorType, rhs: TensorType) -> Shape:
        raise NotImplementedError

    def expected_shape(self) -> Shape:
        return self._shape_fn(cast(TensorType, self.lhs.type), cast(TensorType, self.rhs.type))


class ElementwiseBinaryOp(_TwoOperandOp):
    """Numpy broadcasting; the result shape must be the broadcast shape."""

    @staticmethod
    def _shape_fn(lhs: TensorType, rhs: TensorType) -> Shape:
        return broadcast_shapes(lhs, rhs)

    def flops(self) -> int:
        return ELEMENTWISE_FLOPS * _numel(self.result)


class ElementwiseUnaryOp(NNOp):
    """Same shape and element type in and out: the format needs one type."""

    T: ClassVar = VarConstraint("T", _Tensor)
    input = operand_def(T)
    result = result_def(T)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input)"

    FLOPS_PER_ELEMENT: ClassVar[int] = ELEMENTWISE_FLOPS

    def __init__(self, input: SSAValue | Operation) -> None:
        v = SSAValue.get(input)
        super().__init__(operands=[v], result_types=[v.type])

    def flops(self) -> int:
        return self.FLOPS_PER_ELEMENT * _numel(self.result)


class _TranscendentalOp(ElementwiseUnaryOp):
    FLOPS_PER_ELEMENT: ClassVar[int] = TRANSCENDENTAL_FLOPS


# ---------------------------------------------------------------------------------------------
# Leaves: parameters and constants
# ---------------------------------------------------------------------------------------------


@irdl_op_definition
class ParamOp(NNOp):
    """A named weight: its shape and dtype, never its data."""

    name = "nn.param"
    param_name = prop_def(StringAttr)
    result = result_def(_Tensor)
    traits = traits_def(Pure())
    assembly_format = "$param_name attr-dict `:` type($result)"

    def __init__(self, param_name: str, result_type: Attribute) -> None:
        super().__init__(
            properties={"param_name": StringAttr(param_name)}, result_types=[result_type]
        )

    def verify_shapes(self) -> None:
        if not self.param_name.data:
            _fail("parameter name must not be empty")


@irdl_op_definition
class ConstantOp(NNOp):
    """A splat constant: every element equals `value` (typed with the element type)."""

    name = "nn.constant"
    value = prop_def(base(IntegerAttr) | base(FloatAttr))
    result = result_def(_Tensor)
    traits = traits_def(Pure())

    def __init__(self, value: float | int, result_type: TensorType) -> None:
        super().__init__(
            properties={"value": _splat_attr(value, result_type.get_element_type())},
            result_types=[result_type],
        )

    @property
    def scalar(self) -> float | int:
        return cast(IntegerAttr | FloatAttr, self.value).value.data

    def verify_shapes(self) -> None:
        elem = cast(TensorType, self.result.type).get_element_type()
        vtype = cast(IntegerAttr | FloatAttr, self.value).type
        if vtype != elem:
            _fail(f"value type {vtype} differs from the element type {elem} of the result")

    @classmethod
    def parse(cls, parser: Parser) -> ConstantOp:
        pos = parser.pos
        if (flag := parser.parse_optional_boolean()) is not None:
            raw: float | int = int(flag)
        else:
            raw = parser.parse_number()
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        result_type = parser.parse_type()
        if not isinstance(result_type, TensorType):
            parser.raise_error(f"nn.constant needs a tensor type, got {result_type}")
        try:
            op = cls(raw, result_type)
        except ValueError as e:
            parser.raise_error(str(e), pos, pos + 1)
        op.attributes |= attrs
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        value = cast(IntegerAttr | FloatAttr, self.value)
        if isinstance(value, FloatAttr) and (text := _short_float(value)):
            printer.print_string(text)
        else:
            value.print_without_type(printer)
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.result.type)


def _short_float(attr: FloatAttr) -> str | None:
    """Shortest text that parses back to the value at the attribute's precision.

    FloatAttr rounds to its type (bf16 0.1 is stored as 0.10009765625), so `repr` would print
    the rounded double; trying increasing precision finds `0.1` again.
    """
    value = attr.value.data
    if not math.isfinite(value):
        return None
    for digits in range(1, 18):
        candidate = float(f"{value:.{digits}g}")
        try:
            if FloatAttr(candidate, attr.type).value.data == value:
                break
        except OverflowError:  # rounded past the type's largest value (f32 min as a mask fill)
            continue
    else:
        candidate = value
    mantissa, _, exponent = repr(candidate).partition("e")
    if "." not in mantissa:
        # MLIR float literals need a dot: `1e-05` would lex as the integer 1.
        mantissa += ".0"
    return f"{mantissa}e{exponent}" if exponent else mantissa


def _splat_attr(value: float | int, elem: Attribute) -> IntegerAttr | FloatAttr:
    if isinstance(elem, IntegerType | IndexType):
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"nn.constant: {value} is not an integer but elements are {elem}")
            value = int(value)
        return IntegerAttr(value, elem)
    try:
        return FloatAttr(float(value), cast(Float64Type, elem))
    except OverflowError:  # xDSL packs f16 with struct: "float too large to pack with e format"
        raise ValueError(f"nn.constant: {value} is out of range for {elem}") from None


# ---------------------------------------------------------------------------------------------
# Contractions
# ---------------------------------------------------------------------------------------------


@irdl_op_definition
class MatmulOp(_TwoOperandOp):
    """A linear layer: [*, M, K] x [K, N] -> [*, M, N]."""

    name = "nn.matmul"

    @staticmethod
    def _shape_fn(lhs: TensorType, rhs: TensorType) -> Shape:
        return matmul_shape(lhs, rhs)

    def flops(self) -> int:
        k = _shape(self.rhs)[0]
        return MATMUL_FLOPS_PER_MAC * _numel(self.result) * k


@irdl_op_definition
class BatchMatmulOp(_TwoOperandOp):
    """[*B, M, K] x [*B, K, N] -> [*B, M, N] with identical batch dims."""

    name = "nn.batch_matmul"

    @staticmethod
    def _shape_fn(lhs: TensorType, rhs: TensorType) -> Shape:
        return batch_matmul_shape(lhs, rhs)

    def flops(self) -> int:
        k = _shape(self.lhs)[-1]
        return MATMUL_FLOPS_PER_MAC * _numel(self.result) * k


@irdl_op_definition
class Conv2dOp(NNOp):
    """NCHW input, OIHW weight (I = C / groups); `padding` is symmetric: [pad_h, pad_w]."""

    name = "nn.conv2d"
    input = operand_def(_Tensor)
    weight = operand_def(_Tensor)
    result = result_def(_Tensor)
    strides = opt_prop_def(_I64Array, default_value=_array([1, 1]))
    padding = opt_prop_def(_I64Array, default_value=_array([0, 0]))
    dilation = opt_prop_def(_I64Array, default_value=_array([1, 1]))
    groups = opt_prop_def(_I64Attr, default_value=IntegerAttr(1, i64))
    traits = traits_def(Pure())
    assembly_format = (
        "$input `,` $weight (`strides` `=` $strides^)? (`padding` `=` $padding^)? "
        "(`dilation` `=` $dilation^)? (`groups` `=` $groups^)? attr-dict "
        "`:` type($input) `,` type($weight) `->` type($result)"
    )

    def __init__(
        self,
        input: SSAValue | Operation,
        weight: SSAValue | Operation,
        strides: Sequence[int] = (1, 1),
        padding: Sequence[int] = (0, 0),
        dilation: Sequence[int] = (1, 1),
        groups: int = 1,
        result_type: Attribute | None = None,
    ) -> None:
        x, w = SSAValue.get(input), SSAValue.get(weight)
        if result_type is None:
            shape = self._infer(conv2d_shape, x.type, w.type, strides, padding, dilation, groups)
            result_type = _tensor_of(shape, x)
        super().__init__(
            operands=[x, w],
            result_types=[result_type],
            properties={
                "strides": _array(strides),
                "padding": _array(padding),
                "dilation": _array(dilation),
                "groups": IntegerAttr(groups, i64),
            },
        )

    def _props(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], int]:
        return (
            _ints(self.strides),
            _ints(self.padding),
            _ints(self.dilation),
            self.groups.value.data,
        )

    def expected_shape(self) -> Shape:
        return conv2d_shape(
            cast(TensorType, self.input.type), cast(TensorType, self.weight.type), *self._props()
        )

    def flops(self) -> int:
        _, icg, kh, kw = _shape(self.weight)
        return MATMUL_FLOPS_PER_MAC * _numel(self.result) * icg * kh * kw


# ---------------------------------------------------------------------------------------------
# Elementwise
# ---------------------------------------------------------------------------------------------


@irdl_op_definition
class AddOp(ElementwiseBinaryOp):
    name = "nn.add"


@irdl_op_definition
class SubOp(ElementwiseBinaryOp):
    name = "nn.sub"


@irdl_op_definition
class MulOp(ElementwiseBinaryOp):
    name = "nn.mul"


@irdl_op_definition
class DivOp(ElementwiseBinaryOp):
    name = "nn.div"


@irdl_op_definition
class MaxOp(ElementwiseBinaryOp):
    name = "nn.max"


@irdl_op_definition
class MinOp(ElementwiseBinaryOp):
    name = "nn.min"


@irdl_op_definition
class PowOp(ElementwiseBinaryOp):
    name = "nn.pow"


@irdl_op_definition
class ReluOp(ElementwiseUnaryOp):
    name = "nn.relu"


@irdl_op_definition
class GeluOp(_TranscendentalOp):
    name = "nn.gelu"


@irdl_op_definition
class TanhOp(_TranscendentalOp):
    name = "nn.tanh"


@irdl_op_definition
class SigmoidOp(_TranscendentalOp):
    name = "nn.sigmoid"


@irdl_op_definition
class ExpOp(_TranscendentalOp):
    name = "nn.exp"


@irdl_op_definition
class LogOp(_TranscendentalOp):
    name = "nn.log"


@irdl_op_definition
class SqrtOp(ElementwiseUnaryOp):
    name = "nn.sqrt"


@irdl_op_definition
class RsqrtOp(ElementwiseUnaryOp):
    name = "nn.rsqrt"


@irdl_op_definition
class NegOp(ElementwiseUnaryOp):
    name = "nn.neg"


@irdl_op_definition
class ErfOp(_TranscendentalOp):
    name = "nn.erf"


@irdl_op_definition
class SiluOp(_TranscendentalOp):
    name = "nn.silu"


@irdl_op_definition
class CastOp(NNOp):
    """Element type conversion; the shape is unchanged. Costs 0 (folded into data movement)."""

    name = "nn.cast"
    input = operand_def(_Tensor)
    result = result_def(_Tensor)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def __init__(self, input: SSAValue | Operation, result_type: Attribute) -> None:
        super().__init__(operands=[SSAValue.get(input)], result_types=[result_type])

    def expected_shape(self) -> Shape:
        return _shape(self.input)


# ---------------------------------------------------------------------------------------------
# Normalisations
# ---------------------------------------------------------------------------------------------


@irdl_op_definition
class SoftmaxOp(NNOp):
    name = "nn.softmax"
    T: ClassVar = VarConstraint("T", _Tensor)
    input = operand_def(T)
    result = result_def(T)
    axis = prop_def(_I64Attr)
    traits = traits_def(Pure())
    assembly_format = "$input `axis` `=` $axis attr-dict `:` type($input)"

    def __init__(self, input: SSAValue | Operation, axis: int = -1) -> None:
        v = SSAValue.get(input)
        super().__init__(
            operands=[v], result_types=[v.type], properties={"axis": IntegerAttr(axis, i64)}
        )

    def verify_shapes(self) -> None:
        _norm_axis(self.axis.value.data, len(_shape(self.input)))

    def flops(self) -> int:
        return SOFTMAX_FLOPS * _numel(self.result)


_DEFAULT_EPS = FloatAttr(1e-5, f64)


@irdl_op_definition
class LayerNormOp(NNOp):
    """Normalises over the trailing dims that gamma's shape names; beta has gamma's shape."""

    name = "nn.layer_norm"
    T: ClassVar = VarConstraint("T", _Tensor)
    input = operand_def(T)
    gamma = operand_def(_Tensor)
    beta = operand_def(_Tensor)
    result = result_def(T)
    epsilon = opt_prop_def(FloatAttr.constr(f64), default_value=_DEFAULT_EPS)
    traits = traits_def(Pure())
    assembly_format = (
        "$input `,` $gamma `,` $beta (`epsilon` `=` $epsilon^)? attr-dict "
        "`:` type($input) `,` type($gamma) `,` type($beta)"
    )

    def __init__(
        self,
        input: SSAValue | Operation,
        gamma: SSAValue | Operation,
        beta: SSAValue | Operation,
        epsilon: float = 1e-5,
    ) -> None:
        v = SSAValue.get(input)
        super().__init__(
            operands=[v, SSAValue.get(gamma), SSAValue.get(beta)],
            result_types=[v.type],
            properties={"epsilon": FloatAttr(epsilon, f64)},
        )

    def verify_shapes(self) -> None:
        x, g, b = _shape(self.input), _shape(self.gamma), _shape(self.beta)
        if not 1 <= len(g) <= len(x) or x[len(x) - len(g) :] != g:
            _fail(
                f"gamma {self.gamma.type} must match the trailing dims of input {self.input.type}"
            )
        if b != g:
            _fail(f"beta {self.beta.type} must have the shape of gamma {self.gamma.type}")
        if self.epsilon.value.data <= 0:
            _fail(f"epsilon must be > 0, got {self.epsilon.value.data}")

    def flops(self) -> int:
        return LAYER_NORM_FLOPS * _numel(self.result)


@irdl_op_definition
class BatchNormOp(NNOp):
    """Inference batch norm, already folded: y = x * scale[c] + bias[c] with c = axis 1."""

    name = "nn.batch_norm"
    T: ClassVar = VarConstraint("T", _Tensor)
    input = operand_def(T)
    scale = operand_def(_Tensor)
    bias = operand_def(_Tensor)
    result = result_def(T)
    traits = traits_def(Pure())
    assembly_format = (
        "$input `,` $scale `,` $bias attr-dict `:` type($input) `,` type($scale) `,` type($bias)"
    )

    def __init__(
        self, input: SSAValue | Operation, scale: SSAValue | Operation, bias: SSAValue | Operation
    ) -> None:
        v = SSAValue.get(input)
        super().__init__(
            operands=[v, SSAValue.get(scale), SSAValue.get(bias)], result_types=[v.type]
        )

    def verify_shapes(self) -> None:
        x = _shape(self.input)
        if len(x) < 2:
            _fail(f"input {self.input.type} must have a channel axis (rank >= 2, NC...)")
        for what, v in (("scale", self.scale), ("bias", self.bias)):
            if _shape(v) != (x[1],):
                _fail(f"{what} {v.type} must have shape {x[1]} (channels of {self.input.type})")

    def flops(self) -> int:
        return BATCH_NORM_FLOPS * _numel(self.result)


# ---------------------------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------------------------


class ReduceOp(NNOp):
    input = operand_def(_Tensor)
    result = result_def(_Tensor)
    axes = prop_def(_I64Array)
    keepdims = opt_prop_def(UnitAttr)
    traits = traits_def(Pure())
    assembly_format = (
        "$input `axes` `=` $axes (`keepdims` $keepdims^)? attr-dict "
        "`:` type($input) `->` type($result)"
    )

    def __init__(
        self,
        input: SSAValue | Operation,
        axes: Sequence[int],
        keepdims: bool = False,
        result_type: Attribute | None = None,
    ) -> None:
        v = SSAValue.get(input)
        if result_type is None:
            result_type = _tensor_of(self._infer(reduce_shape, v.type, axes, keepdims), v)
        props: dict[str, Attribute] = {"axes": _array(axes)}
        if keepdims:
            props["keepdims"] = UnitAttr()
        super().__init__(operands=[v], result_types=[result_type], properties=props)

    def expected_shape(self) -> Shape:
        return reduce_shape(
            cast(TensorType, self.input.type), _ints(self.axes), self.keepdims is not None
        )

    def flops(self) -> int:
        return REDUCE_FLOPS_PER_INPUT * _numel(self.input)


@irdl_op_definition
class ReduceSumOp(ReduceOp):
    name = "nn.reduce_sum"


@irdl_op_definition
class ReduceMeanOp(ReduceOp):
    name = "nn.reduce_mean"


@irdl_op_definition
class ReduceMaxOp(ReduceOp):
    name = "nn.reduce_max"


# ---------------------------------------------------------------------------------------------
# Data movement (0 flops)
# ---------------------------------------------------------------------------------------------


@irdl_op_definition
class ReshapeOp(NNOp):
    name = "nn.reshape"
    input = operand_def(_Tensor)
    result = result_def(_Tensor)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def __init__(self, input: SSAValue | Operation, result_type: Attribute) -> None:
        super().__init__(operands=[SSAValue.get(input)], result_types=[result_type])

    def verify_shapes(self) -> None:
        a, b = _numel(self.input), _numel(self.result)
        if a != b:
            _fail(
                f"element count changes: input {self.input.type} has {a} elements "
                f"but result {self.result.type} has {b}"
            )


@irdl_op_definition
class TransposeOp(NNOp):
    """result.shape[i] = input.shape[perm[i]]."""

    name = "nn.transpose"
    input = operand_def(_Tensor)
    result = result_def(_Tensor)
    perm = prop_def(_I64Array)
    traits = traits_def(Pure())
    assembly_format = "$input `perm` `=` $perm attr-dict `:` type($input) `->` type($result)"

    def __init__(
        self,
        input: SSAValue | Operation,
        perm: Sequence[int],
        result_type: Attribute | None = None,
    ) -> None:
        v = SSAValue.get(input)
        if result_type is None:
            result_type = _tensor_of(self._infer(transpose_shape, v.type, perm), v)
        super().__init__(
            operands=[v], result_types=[result_type], properties={"perm": _array(perm)}
        )

    def expected_shape(self) -> Shape:
        return transpose_shape(cast(TensorType, self.input.type), _ints(self.perm))


@irdl_op_definition
class ConcatOp(NNOp):
    name = "nn.concat"
    inputs = var_operand_def(_Tensor)
    result = result_def(_Tensor)
    axis = prop_def(_I64Attr)
    traits = traits_def(Pure())
    assembly_format = "$inputs `axis` `=` $axis attr-dict `:` type($inputs) `->` type($result)"

    def __init__(
        self,
        inputs: Sequence[SSAValue | Operation],
        axis: int,
        result_type: Attribute | None = None,
    ) -> None:
        vs = [SSAValue.get(i) for i in inputs]
        if result_type is None:
            result_type = _tensor_of(self._infer(concat_shape, [v.type for v in vs], axis), vs[0])
        super().__init__(
            operands=[vs], result_types=[result_type], properties={"axis": IntegerAttr(axis, i64)}
        )

    def expected_shape(self) -> Shape:
        return concat_shape([cast(TensorType, v.type) for v in self.inputs], self.axis.value.data)


@irdl_op_definition
class SliceOp(NNOp):
    """Element i of dim d is input[starts[d] + i * strides[d]]; result shape = sizes."""

    name = "nn.slice"
    input = operand_def(_Tensor)
    result = result_def(_Tensor)
    starts = prop_def(_I64Array)
    sizes = prop_def(_I64Array)
    strides = opt_prop_def(_I64Array)
    traits = traits_def(Pure())
    assembly_format = (
        "$input `starts` `=` $starts `sizes` `=` $sizes (`strides` `=` $strides^)? attr-dict "
        "`:` type($input) `->` type($result)"
    )

    def __init__(
        self,
        input: SSAValue | Operation,
        starts: Sequence[int],
        sizes: Sequence[int],
        strides: Sequence[int] | None = None,
        result_type: Attribute | None = None,
    ) -> None:
        v = SSAValue.get(input)
        if result_type is None:
            result_type = _tensor_of(sizes, v)
        props: dict[str, Attribute] = {"starts": _array(starts), "sizes": _array(sizes)}
        if strides is not None and any(s != 1 for s in strides):
            props["strides"] = _array(strides)
        super().__init__(operands=[v], result_types=[result_type], properties=props)

    def stride_values(self) -> tuple[int, ...]:
        if self.strides is None:
            return (1,) * len(_shape(self.input))
        return _ints(self.strides)

    def expected_shape(self) -> Shape:
        return slice_shape(
            cast(TensorType, self.input.type),
            _ints(self.starts),
            _ints(self.sizes),
            self.stride_values(),
        )


@irdl_op_definition
class GatherOp(NNOp):
    """result = data.shape[:axis] + indices.shape + data.shape[axis+1:]."""

    name = "nn.gather"
    data = operand_def(_Tensor)
    indices = operand_def(_Tensor)
    result = result_def(_Tensor)
    axis = prop_def(_I64Attr)
    traits = traits_def(Pure())
    assembly_format = (
        "$data `,` $indices `axis` `=` $axis attr-dict "
        "`:` type($data) `,` type($indices) `->` type($result)"
    )

    def __init__(
        self,
        data: SSAValue | Operation,
        indices: SSAValue | Operation,
        axis: int,
        result_type: Attribute | None = None,
    ) -> None:
        d, i = SSAValue.get(data), SSAValue.get(indices)
        if result_type is None:
            result_type = _tensor_of(self._infer(gather_shape, d.type, i.type, axis), d)
        super().__init__(
            operands=[d, i], result_types=[result_type], properties={"axis": IntegerAttr(axis, i64)}
        )

    def expected_shape(self) -> Shape:
        return gather_shape(
            cast(TensorType, self.data.type),
            cast(TensorType, self.indices.type),
            self.axis.value.data,
        )


@irdl_op_definition
class EmbeddingOp(NNOp):
    """Row lookup: table [V, D], integer ids [...] -> [..., D]."""

    name = "nn.embedding"
    table = operand_def(_Tensor)
    ids = operand_def(_Tensor)
    result = result_def(_Tensor)
    traits = traits_def(Pure())
    assembly_format = "$table `,` $ids attr-dict `:` type($table) `,` type($ids) `->` type($result)"

    def __init__(
        self,
        table: SSAValue | Operation,
        ids: SSAValue | Operation,
        result_type: Attribute | None = None,
    ) -> None:
        t, i = SSAValue.get(table), SSAValue.get(ids)
        if result_type is None:
            result_type = _tensor_of(self._infer(embedding_shape, t.type, i.type), t)
        super().__init__(operands=[t, i], result_types=[result_type])

    def expected_shape(self) -> Shape:
        return embedding_shape(cast(TensorType, self.table.type), cast(TensorType, self.ids.type))


# ---------------------------------------------------------------------------------------------
# Pooling (NCHW)
# ---------------------------------------------------------------------------------------------


class Pool2dOp(NNOp):
    """`padding` is symmetric [pad_h, pad_w]; padded cells never win a max nor count in avg."""

    input = operand_def(_Tensor)
    result = result_def(_Tensor)
    kernel = prop_def(_I64Array)
    strides = prop_def(_I64Array)
    padding = opt_prop_def(_I64Array, default_value=_array([0, 0]))
    traits = traits_def(Pure())
    assembly_format = (
        "$input `kernel` `=` $kernel `strides` `=` $strides (`padding` `=` $padding^)? "
        "attr-dict `:` type($input) `->` type($result)"
    )

    def __init__(
        self,
        input: SSAValue | Operation,
        kernel: Sequence[int],
        strides: Sequence[int],
        padding: Sequence[int] = (0, 0),
        result_type: Attribute | None = None,
    ) -> None:
        v = SSAValue.get(input)
        if result_type is None:
            result_type = _tensor_of(self._infer(pool2d_shape, v.type, kernel, strides, padding), v)
        super().__init__(
            operands=[v],
            result_types=[result_type],
            properties={
                "kernel": _array(kernel),
                "strides": _array(strides),
                "padding": _array(padding),
            },
        )

    def expected_shape(self) -> Shape:
        return pool2d_shape(
            cast(TensorType, self.input.type),
            _ints(self.kernel),
            _ints(self.strides),
            _ints(self.padding),
        )

    def flops(self) -> int:
        return _numel(self.result) * math.prod(_ints(self.kernel))


@irdl_op_definition
class MaxPool2dOp(Pool2dOp):
    name = "nn.max_pool2d"


@irdl_op_definition
class AvgPool2dOp(Pool2dOp):
    name = "nn.avg_pool2d"


@irdl_op_definition
class GlobalAvgPool2dOp(NNOp):
    """NCHW -> NC11: keeps rank 4 so a following conv2d or batch_norm applies unchanged."""

    name = "nn.global_avg_pool2d"
    input = operand_def(_Tensor)
    result = result_def(_Tensor)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def __init__(self, input: SSAValue | Operation, result_type: Attribute | None = None) -> None:
        v = SSAValue.get(input)
        if result_type is None:
            shape = _shape(v)
            result_type = _tensor_of(shape[:2] + (1, 1), v)
        super().__init__(operands=[v], result_types=[result_type])

    def expected_shape(self) -> Shape:
        x = _shape(self.input)
        if len(x) != 4:
            _fail(f"input {self.input.type} must be NCHW (rank 4)")
        return (x[0], x[1], 1, 1)

    def flops(self) -> int:
        return _numel(self.input)


# ---------------------------------------------------------------------------------------------
# Comparisons, scans, element gathers, padding and slice updates (added for imported models)
# ---------------------------------------------------------------------------------------------

COMPARE_PREDICATES = ("eq", "ne", "lt", "le", "gt", "ge")
"""`nn.compare` predicates, as in `torch.eq`, `torch.ne`, ..."""


@irdl_op_definition
class CompareOp(NNOp):
    """Elementwise `lhs <predicate> rhs` with numpy broadcasting; the result is boolean (i1)."""

    name = "nn.compare"
    predicate = prop_def(StringAttr)
    lhs = operand_def(_Tensor)
    rhs = operand_def(_Tensor)
    result = result_def(_Tensor)
    traits = traits_def(Pure())
    assembly_format = (
        "$predicate $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)"
    )

    def __init__(
        self,
        predicate: str,
        lhs: SSAValue | Operation,
        rhs: SSAValue | Operation,
        result_type: Attribute | None = None,
    ) -> None:
        lhs_v, rhs_v = SSAValue.get(lhs), SSAValue.get(rhs)
        if result_type is None:
            shape = self._infer(broadcast_shapes, lhs_v.type, rhs_v.type)
            result_type = TensorType(IntegerType(1), list(shape))
        super().__init__(
            operands=[lhs_v, rhs_v],
            result_types=[result_type],
            properties={"predicate": StringAttr(predicate)},
        )

    def verify_shapes(self) -> None:
        if self.predicate.data not in COMPARE_PREDICATES:
            _fail(
                f"predicate '{self.predicate.data}' is not one of {', '.join(COMPARE_PREDICATES)}"
            )
        elem = cast(TensorType, self.result.type).get_element_type()
        if elem != IntegerType(1):
            _fail(f"result {self.result.type} must have element type i1")

    def expected_shape(self) -> Shape:
        return broadcast_shapes(cast(TensorType, self.lhs.type), cast(TensorType, self.rhs.type))

    def flops(self) -> int:
        return ELEMENTWISE_FLOPS * _numel(self.result)


@irdl_op_definition
class CumsumOp(NNOp):
    """Inclusive prefix sum along `axis`: result[..., i, ...] = sum of input[..., :i+1, ...]."""

    name = "nn.cumsum"
    input = operand_def(_Tensor)
    result = result_def(_Tensor)
    axis = prop_def(_I64Attr)
    traits = traits_def(Pure())
    assembly_format = "$input `axis` `=` $axis attr-dict `:` type($input) `->` type($result)"

    def __init__(
        self, input: SSAValue | Operation, axis: int, result_type: Attribute | None = None
    ) -> None:
        v = SSAValue.get(input)
        super().__init__(
            operands=[v],
            result_types=[result_type or v.type],
            properties={"axis": IntegerAttr(axis, i64)},
        )

    def verify_shapes(self) -> None:
        _norm_axis(self.axis.value.data, len(_shape(self.input)))

    def expected_shape(self) -> Shape:
        return _shape(self.input)

    def flops(self) -> int:
        # One add per element (the first of each row adds to zero; counted like every other).
        return ELEMENTWISE_FLOPS * _numel(self.result)


def gather_elements_shape(data: TensorType, indices: TensorType, axis: int) -> Shape:
    d, i = data.get_shape(), indices.get_shape()
    if not isinstance(indices.get_element_type(), IntegerType | IndexType):
        _fail(f"indices {indices} must have an integer element type")
    if len(d) != len(i):
        _fail(f"indices {indices} must have the rank of data {data}")
    ax = _norm_axis(axis, len(d))
    for k, (dd, ii) in enumerate(zip(d, i, strict=True)):
        if k != ax and ii > dd:
            _fail(f"indices {indices} are larger than data {data} in dim {k} ({ii} > {dd})")
    return i


@irdl_op_definition
class GatherElementsOp(NNOp):
    """`torch.gather`: result[i][j] = data[indices[i][j]][j] for axis 0; result shape = indices'."""

    name = "nn.gather_elements"
    data = operand_def(_Tensor)
    indices = operand_def(_Tensor)
    result = result_def(_Tensor)
    axis = prop_def(_I64Attr)
    traits = traits_def(Pure())
    assembly_format = (
        "$data `,` $indices `axis` `=` $axis attr-dict "
        "`:` type($data) `,` type($indices) `->` type($result)"
    )

    def __init__(
        self,
        data: SSAValue | Operation,
        indices: SSAValue | Operation,
        axis: int,
        result_type: Attribute | None = None,
    ) -> None:
        d, i = SSAValue.get(data), SSAValue.get(indices)
        if result_type is None:
            result_type = _tensor_of(self._infer(gather_elements_shape, d.type, i.type, axis), d)
        super().__init__(
            operands=[d, i], result_types=[result_type], properties={"axis": IntegerAttr(axis, i64)}
        )

    def expected_shape(self) -> Shape:
        return gather_elements_shape(
            cast(TensorType, self.data.type),
            cast(TensorType, self.indices.type),
            self.axis.value.data,
        )


def pad_shape(input_t: TensorType, low: Sequence[int], high: Sequence[int]) -> Shape:
    x = input_t.get_shape()
    if not len(low) == len(high) == len(x):
        _fail(
            f"low {list(low)} and high {list(high)} must each have one entry per dim of {input_t}"
        )
    if any(v < 0 for v in (*low, *high)):
        _fail(f"padding must be >= 0, got low {list(low)} and high {list(high)}")
    return tuple(d + lo + hi for d, lo, hi in zip(x, low, high, strict=True))


_ZERO = FloatAttr(0.0, f64)


@irdl_op_definition
class PadOp(NNOp):
    """Constant padding: `low[d]` elements of `value` before dim d and `high[d]` after it."""

    name = "nn.pad"
    input = operand_def(_Tensor)
    result = result_def(_Tensor)
    low = prop_def(_I64Array)
    high = prop_def(_I64Array)
    value = opt_prop_def(FloatAttr.constr(f64), default_value=_ZERO)
    traits = traits_def(Pure())
    assembly_format = (
        "$input `low` `=` $low `high` `=` $high (`value` `=` $value^)? attr-dict "
        "`:` type($input) `->` type($result)"
    )

    def __init__(
        self,
        input: SSAValue | Operation,
        low: Sequence[int],
        high: Sequence[int],
        value: float = 0.0,
        result_type: Attribute | None = None,
    ) -> None:
        v = SSAValue.get(input)
        if result_type is None:
            result_type = _tensor_of(self._infer(pad_shape, v.type, low, high), v)
        super().__init__(
            operands=[v],
            result_types=[result_type],
            properties={"low": _array(low), "high": _array(high), "value": FloatAttr(value, f64)},
        )

    def expected_shape(self) -> Shape:
        return pad_shape(cast(TensorType, self.input.type), _ints(self.low), _ints(self.high))


def insert_slice_shape(
    source: TensorType, dest: TensorType, starts: Sequence[int], strides: Sequence[int]
) -> Shape:
    s, d = source.get_shape(), dest.get_shape()
    if len(s) != len(d):
        _fail(f"source {source} must have the rank of dest {dest}")
    if not len(starts) == len(strides) == len(d):
        _fail(f"starts {list(starts)} and strides {list(strides)} need one entry per dim of {dest}")
    for k, (size, dim, st, sd) in enumerate(zip(s, d, starts, strides, strict=True)):
        if st < 0 or sd < 1:
            _fail(f"dim {k}: need start >= 0 and stride >= 1, got {st}, {sd}")
        if size and st + (size - 1) * sd >= dim:
            _fail(
                f"dim {k}: source {source} written at {st} with stride {sd} ends past "
                f"dest {dest} (size {dim})"
            )
    return d


@irdl_op_definition
class InsertSliceOp(NNOp):
    """`dest` with `source` written into the strided slice `starts`, `strides` (`slice_scatter`).

    Element i of dim d of `source` lands at `starts[d] + i * strides[d]`; the result has dest's
    shape. The inverse of `nn.slice`.
    """

    name = "nn.insert_slice"
    source = operand_def(_Tensor)
    dest = operand_def(_Tensor)
    result = result_def(_Tensor)
    starts = prop_def(_I64Array)
    strides = opt_prop_def(_I64Array)
    traits = traits_def(Pure())
    assembly_format = (
        "$source `into` $dest `starts` `=` $starts (`strides` `=` $strides^)? attr-dict "
        "`:` type($source) `,` type($dest) `->` type($result)"
    )

    def __init__(
        self,
        source: SSAValue | Operation,
        dest: SSAValue | Operation,
        starts: Sequence[int],
        strides: Sequence[int] | None = None,
        result_type: Attribute | None = None,
    ) -> None:
        s, d = SSAValue.get(source), SSAValue.get(dest)
        props: dict[str, Attribute] = {"starts": _array(starts)}
        if strides is not None and any(v != 1 for v in strides):
            props["strides"] = _array(strides)
        super().__init__(operands=[s, d], result_types=[result_type or d.type], properties=props)

    def stride_values(self) -> tuple[int, ...]:
        if self.strides is None:
            return (1,) * len(_shape(self.dest))
        return _ints(self.strides)

    def expected_shape(self) -> Shape:
        return insert_slice_shape(
            cast(TensorType, self.source.type),
            cast(TensorType, self.dest.type),
            _ints(self.starts),
            self.stride_values(),
        )


SHARD_OF_ATTR = "shard_of"
"""On a shard's `nn.param` (made by `shard-params`): the name of the parameter it is a part of."""
SHARD_AXIS_ATTR = "shard_axis"
SHARD_OFFSET_ATTR = "shard_offset"
"""Where the shard starts along `shard_axis` of the (stored layout of the) whole parameter."""


def embedding_shard_shape(table: TensorType, ids: TensorType, partial: TensorType | None) -> Shape:
    expected = embedding_shape(table, ids)
    if partial is not None and partial.get_shape() != expected:
        _fail(f"partial {partial} must have the lookup's shape {_fmt(expected)}")
    return expected


@irdl_op_definition
class EmbeddingShardOp(NNOp):
    """One shard of a vocabulary-split embedding: rows `row_offset .. row_offset + V - 1`.

    result[..., :] = table[ids[...] - row_offset] where `row_offset <= ids[...] < row_offset + V`,
    else partial[..., :], or zero without a partial. Chaining the shards of a table, each reading
    the previous one's result, gives the full lookup (`shard-params` builds such chains).
    """

    name = "nn.embedding_shard"
    table = operand_def(_Tensor)
    ids = operand_def(_Tensor)
    partial = opt_operand_def(_Tensor)
    result = result_def(_Tensor)
    row_offset = prop_def(_I64Attr)
    traits = traits_def(Pure())
    assembly_format = (
        "$table `,` $ids (`,` $partial^)? `row_offset` `=` $row_offset attr-dict "
        "`:` type($table) `,` type($ids) (`,` type($partial)^)? `->` type($result)"
    )

    def __init__(
        self,
        table: SSAValue | Operation,
        ids: SSAValue | Operation,
        partial: SSAValue | Operation | None,
        row_offset: int,
        result_type: Attribute | None = None,
    ) -> None:
        t, i = SSAValue.get(table), SSAValue.get(ids)
        p = SSAValue.get(partial) if partial is not None else None
        if result_type is None:
            result_type = p.type if p is not None else None
        if result_type is None:
            result_type = _tensor_of(self._infer(embedding_shape, t.type, i.type), t)
        super().__init__(
            operands=[t, i, [p] if p is not None else []],
            result_types=[result_type],
            properties={"row_offset": IntegerAttr(row_offset, i64)},
        )

    def verify_shapes(self) -> None:
        if self.row_offset.value.data < 0:
            _fail(f"row_offset must be >= 0, got {self.row_offset.value.data}")

    def expected_shape(self) -> Shape:
        partial = cast(TensorType, self.partial.type) if self.partial is not None else None
        return embedding_shard_shape(
            cast(TensorType, self.table.type), cast(TensorType, self.ids.type), partial
        )


NN_OPS: tuple[type[NNOp], ...] = (
    ParamOp,
    ConstantOp,
    MatmulOp,
    BatchMatmulOp,
    Conv2dOp,
    AddOp,
    SubOp,
    MulOp,
    DivOp,
    MaxOp,
    MinOp,
    PowOp,
    ReluOp,
    GeluOp,
    TanhOp,
    SigmoidOp,
    ExpOp,
    LogOp,
    SqrtOp,
    RsqrtOp,
    NegOp,
    ErfOp,
    SiluOp,
    CastOp,
    SoftmaxOp,
    LayerNormOp,
    BatchNormOp,
    ReduceSumOp,
    ReduceMeanOp,
    ReduceMaxOp,
    ReshapeOp,
    TransposeOp,
    ConcatOp,
    SliceOp,
    GatherOp,
    EmbeddingOp,
    MaxPool2dOp,
    AvgPool2dOp,
    GlobalAvgPool2dOp,
    CompareOp,
    CumsumOp,
    GatherElementsOp,
    PadOp,
    InsertSliceOp,
    EmbeddingShardOp,
)

NN = Dialect("nn", list(NN_OPS), [])
