"""A reference interpreter for `nn` programs: what an `nn` op computes, stated in numpy.

Built on xDSL's interpreter framework (`xdsl.interpreter`): `NNFunctions` holds one `@impl` method
per `nn` op, `McmFunctions` one per `mcm` op, and values are numpy arrays. Adding an `nn` op means
adding one method to `NNFunctions` (a test fails for every registered op without one).

Numerics are float32 whatever the IR declares: element types (`i8` weights, `bf16` activations)
drive the cost model, not the values. Floating-point data is computed in float32, integer data
(token ids, indices) in int64 and booleans stay booleans.

Parameters are supplied by name (`nn.param "layers.0.attn.q.weight"`): the importer's names are the
PyTorch state-dict names, and an `nn.param` with a `torch_view` attribute (`permute(1, 0)` for a
linear layer's weight stored `[in, out]`) reads the state-dict tensor through that view.

`run` executes a `func.func` or a placed-and-split `mcm.program`: chiplets run interleaved, each
until it waits for a message not yet sent, with `mcm.send` / `mcm.recv` pairs as channels; the
results are bit-identical to the unsplit function's because every op sees the same inputs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    DenseArrayBase,
    IndexType,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    StringAttr,
    TensorType,
)
from xdsl.interpreter import (
    Interpreter,
    InterpreterFunctions,
    PythonValues,
    ReturnedValues,
    TerminatorValue,
    impl,
    impl_callable,
    impl_terminator,
    register_impls,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.utils.exceptions import InterpretationError

from chiplex.errors import ChiplexError
from chiplex.ir import mcm, nn
from chiplex.ir.host_lookup import host_inputs, host_lookups
from chiplex.ir.nn import SHARD_AXIS_ATTR, SHARD_OF_ATTR, SHARD_OFFSET_ATTR

__all__ = [
    "McmFunctions",
    "NNFunctions",
    "compare_outputs",
    "erf",
    "random_inputs",
    "random_parameters",
    "run",
]

ArrayLike = Any
"""Anything `np.asarray` accepts (a numpy array, a torch tensor on the CPU, nested lists)."""


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


def _is_integer(elem: Attribute) -> bool:
    return isinstance(elem, IntegerType | IndexType)


def _is_bool(elem: Attribute) -> bool:
    return isinstance(elem, IntegerType) and elem.width.data == 1


def _as_value(data: ArrayLike) -> np.ndarray:
    """The interpreter's representation: float32 for any float, int64 for any integer, bool."""
    array = np.asarray(data)
    if array.dtype == np.bool_:
        return array
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64, copy=False)
    return array.astype(np.float32, copy=False)


def _float(x: np.ndarray) -> np.ndarray:
    return x if x.dtype == np.float32 else x.astype(np.float32)


def _shape(v: SSAValue) -> tuple[int, ...]:
    return tuple(cast(TensorType, v.type).get_shape())


def _elem(v: SSAValue) -> Attribute:
    return cast(TensorType, v.type).get_element_type()


def _ints(attr: Attribute) -> tuple[int, ...]:
    return tuple(cast(DenseArrayBase, attr).get_values())  # type: ignore[arg-type]


def _fmt(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _where(op: Operation) -> str:
    hint = op.results[0].name_hint if op.results else None
    return f"{op.name} %{hint}" if hint else op.name


# erfc(z) = t * exp(-z^2 + P(t)) with t = 1 / (1 + z / 2): P's coefficients, highest degree first.
_ERFC_CHEBYSHEV = (
    0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807,
    -0.18628806, 0.09678418, 0.37409196, 1.00002368, -1.26551223,
)  # fmt: skip


def erf(x: np.ndarray) -> np.ndarray:
    """The error function in float32, to within 2e-7 relative error (numpy has none).

    A Taylor series for |x| < 0.5, where 1 - erfc would lose the leading digits, and the
    Chebyshev fit of erfc from Numerical Recipes (fractional error < 1.2e-7) elsewhere; both in
    float64. scipy's would do, but one function is not worth a dependency.
    """
    x64 = np.asarray(x, dtype=np.float64)
    z = np.abs(x64)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.polyval(_ERFC_CHEBYSHEV, t)
    large = np.sign(x64) * (1.0 - t * np.exp(-z * z + poly))
    # erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)); 10 terms reach 1e-12 at 0.5.
    x2 = x64 * x64
    term = x64.copy()
    small = x64.copy()
    for n in range(1, 10):
        term = term * -x2 / n
        small = small + term / (2 * n + 1)
    small *= 2.0 / math.sqrt(math.pi)
    return np.where(z < 0.5, small, large).astype(np.float32)


def _blas(x: np.ndarray) -> np.ndarray:
    """A float32 C-contiguous copy if needed: numpy's matmul calls BLAS only on such operands and
    falls back to a slower loop on some transposed views (2x on a head-split attention)."""
    return np.ascontiguousarray(_float(x))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return _float(1.0 / (1.0 + np.exp(-x)))


def _binary_operands(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mixed float and integer operands compute in float32 (as torch does), never in float64."""
    if a.dtype != b.dtype and (a.dtype == np.float32 or b.dtype == np.float32):
        return _float(a), _float(b)
    return a, b


_COMPARISONS: dict[str, Any] = {
    "eq": np.equal,
    "ne": np.not_equal,
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
}
"""`nn.compare` predicates as numpy ufuncs (broadcasting, boolean result)."""


_VIEW = re.compile(r"(permute|reshape)\(([^)]*)\)")


def _apply_torch_view(data: np.ndarray, view: str) -> np.ndarray:
    """`permute(1, 0).reshape(64, 1, 1)`: the layout the importer stored a parameter in."""
    for kind, args in _VIEW.findall(view):
        dims = [int(a) for a in args.split(",") if a.strip()]
        data = np.transpose(data, dims) if kind == "permute" else data.reshape(dims)
    return data


def _windows(
    x: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    fill: float,
) -> np.ndarray:
    """NCHW -> [N, C, OH, OW, KH, KW]: every output position's input window (a strided view)."""
    (ph, pw), (kh, kw), (dh, dw), (sh, sw) = padding, kernel, dilation, strides
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    view = np.lib.stride_tricks.sliding_window_view(x, span, axis=(2, 3))
    return view[:, :, ::sh, ::sw, ::dh, ::dw]


# ---------------------------------------------------------------------------------------------
# nn
# ---------------------------------------------------------------------------------------------


@register_impls
@dataclass
class NNFunctions(InterpreterFunctions):
    """One method per `nn` op: the op's meaning (docs/dialects.md quotes these as definitions)."""

    parameters: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Parameter data by `nn.param` name (state-dict tensors, before any `torch_view`)."""

    # -- leaves ----------------------------------------------------------------------------

    @impl(nn.ParamOp)
    def run_param(
        self, interpreter: Interpreter, op: nn.ParamOp, args: PythonValues
    ) -> PythonValues:
        return (_load_parameter(op, self.parameters),)

    @impl(nn.ConstantOp)
    def run_constant(
        self, interpreter: Interpreter, op: nn.ConstantOp, args: PythonValues
    ) -> PythonValues:
        elem = _elem(op.result)
        dtype = np.bool_ if _is_bool(elem) else np.int64 if _is_integer(elem) else np.float32
        return (np.full(_shape(op.result), op.scalar, dtype=dtype),)

    # -- contractions ------------------------------------------------------------------------

    @impl(nn.MatmulOp)
    def run_matmul(
        self, interpreter: Interpreter, op: nn.MatmulOp, args: PythonValues
    ) -> PythonValues:
        return (np.matmul(_blas(args[0]), _blas(args[1])),)

    @impl(nn.BatchMatmulOp)
    def run_batch_matmul(
        self, interpreter: Interpreter, op: nn.BatchMatmulOp, args: PythonValues
    ) -> PythonValues:
        return (np.matmul(_blas(args[0]), _blas(args[1])),)

    @impl(nn.Conv2dOp)
    def run_conv2d(
        self, interpreter: Interpreter, op: nn.Conv2dOp, args: PythonValues
    ) -> PythonValues:
        x, w = _float(args[0]), _float(args[1])
        strides, padding, dilation, groups = op._props()
        n, c = x.shape[:2]
        oc, icg, kh, kw = w.shape
        win = _windows(x, (kh, kw), strides, padding, dilation, 0.0)  # [N, C, OH, OW, KH, KW]
        oh, ow = win.shape[2:4]
        # im2col per group: [N, G, OH*OW, C/G*KH*KW] @ [G, C/G*KH*KW, O/G] -> [N, G, OH*OW, O/G].
        cols = win.reshape(n, groups, icg, oh, ow, kh, kw).transpose(0, 1, 3, 4, 2, 5, 6)
        cols = cols.reshape(n, groups, oh * ow, icg * kh * kw)
        kernels = w.reshape(groups, oc // groups, icg * kh * kw).transpose(0, 2, 1)
        out = np.matmul(cols, kernels)  # [N, G, OH*OW, O/G]
        out = out.transpose(0, 1, 3, 2).reshape(n, oc, oh, ow)
        return (np.ascontiguousarray(out),)

    # -- elementwise -------------------------------------------------------------------------

    @impl(nn.AddOp)
    def run_add(self, interpreter: Interpreter, op: nn.AddOp, args: PythonValues) -> PythonValues:
        return (np.add(*_binary_operands(*args)),)

    @impl(nn.SubOp)
    def run_sub(self, interpreter: Interpreter, op: nn.SubOp, args: PythonValues) -> PythonValues:
        return (np.subtract(*_binary_operands(*args)),)

    @impl(nn.MulOp)
    def run_mul(self, interpreter: Interpreter, op: nn.MulOp, args: PythonValues) -> PythonValues:
        return (np.multiply(*_binary_operands(*args)),)

    @impl(nn.DivOp)
    def run_div(self, interpreter: Interpreter, op: nn.DivOp, args: PythonValues) -> PythonValues:
        # True division, like torch's `/`: integers divide to a float.
        return (np.true_divide(_float(args[0]), _float(args[1])),)

    @impl(nn.MaxOp)
    def run_max(self, interpreter: Interpreter, op: nn.MaxOp, args: PythonValues) -> PythonValues:
        return (np.maximum(*_binary_operands(*args)),)

    @impl(nn.MinOp)
    def run_min(self, interpreter: Interpreter, op: nn.MinOp, args: PythonValues) -> PythonValues:
        return (np.minimum(*_binary_operands(*args)),)

    @impl(nn.PowOp)
    def run_pow(self, interpreter: Interpreter, op: nn.PowOp, args: PythonValues) -> PythonValues:
        return (np.power(*_binary_operands(*args)),)

    @impl(nn.ReluOp)
    def run_relu(self, interpreter: Interpreter, op: nn.ReluOp, args: PythonValues) -> PythonValues:
        return (np.maximum(args[0], 0),)

    @impl(nn.GeluOp)
    def run_gelu(self, interpreter: Interpreter, op: nn.GeluOp, args: PythonValues) -> PythonValues:
        # The exact GELU: x * Phi(x) = x / 2 * (1 + erf(x / sqrt(2))).
        x = _float(args[0])
        return (x * np.float32(0.5) * (np.float32(1) + erf(x * np.float32(1 / math.sqrt(2)))),)

    @impl(nn.TanhOp)
    def run_tanh(self, interpreter: Interpreter, op: nn.TanhOp, args: PythonValues) -> PythonValues:
        return (np.tanh(_float(args[0])),)

    @impl(nn.SigmoidOp)
    def run_sigmoid(
        self, interpreter: Interpreter, op: nn.SigmoidOp, args: PythonValues
    ) -> PythonValues:
        return (_sigmoid(_float(args[0])),)

    @impl(nn.ExpOp)
    def run_exp(self, interpreter: Interpreter, op: nn.ExpOp, args: PythonValues) -> PythonValues:
        return (np.exp(_float(args[0])),)

    @impl(nn.LogOp)
    def run_log(self, interpreter: Interpreter, op: nn.LogOp, args: PythonValues) -> PythonValues:
        return (np.log(_float(args[0])),)

    @impl(nn.SqrtOp)
    def run_sqrt(self, interpreter: Interpreter, op: nn.SqrtOp, args: PythonValues) -> PythonValues:
        return (np.sqrt(_float(args[0])),)

    @impl(nn.RsqrtOp)
    def run_rsqrt(
        self, interpreter: Interpreter, op: nn.RsqrtOp, args: PythonValues
    ) -> PythonValues:
        return (np.float32(1) / np.sqrt(_float(args[0])),)

    @impl(nn.NegOp)
    def run_neg(self, interpreter: Interpreter, op: nn.NegOp, args: PythonValues) -> PythonValues:
        return (np.negative(args[0]),)

    @impl(nn.ErfOp)
    def run_erf(self, interpreter: Interpreter, op: nn.ErfOp, args: PythonValues) -> PythonValues:
        return (erf(args[0]),)

    @impl(nn.SiluOp)
    def run_silu(self, interpreter: Interpreter, op: nn.SiluOp, args: PythonValues) -> PythonValues:
        x = _float(args[0])
        return (x * _sigmoid(x),)

    @impl(nn.CastOp)
    def run_cast(self, interpreter: Interpreter, op: nn.CastOp, args: PythonValues) -> PythonValues:
        # Casts between float types are identities (all floats are float32 here); to an integer
        # type they truncate toward zero like torch's `.to(torch.int64)`, to i1 they test != 0.
        x, elem = args[0], _elem(op.result)
        if _is_bool(elem):
            return (x != 0,)
        if _is_integer(elem):
            return (np.trunc(x).astype(np.int64) if x.dtype == np.float32 else x.astype(np.int64),)
        return (_float(x),)

    @impl(nn.CompareOp)
    def run_compare(
        self, interpreter: Interpreter, op: nn.CompareOp, args: PythonValues
    ) -> PythonValues:
        compare = _COMPARISONS[op.predicate.data]
        return (compare(*_binary_operands(*args)),)

    @impl(nn.CumsumOp)
    def run_cumsum(
        self, interpreter: Interpreter, op: nn.CumsumOp, args: PythonValues
    ) -> PythonValues:
        # Inclusive prefix sum; the result's element type decides (torch sums booleans and
        # integers as int64).
        summed = np.cumsum(args[0], axis=op.axis.value.data)
        elem = _elem(op.result)
        if _is_bool(elem):
            return (summed != 0,)
        if _is_integer(elem):
            return (summed.astype(np.int64, copy=False),)
        return (_float(summed),)

    # -- normalisations ----------------------------------------------------------------------

    @impl(nn.SoftmaxOp)
    def run_softmax(
        self, interpreter: Interpreter, op: nn.SoftmaxOp, args: PythonValues
    ) -> PythonValues:
        x, axis = _float(args[0]), op.axis.value.data
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return (e / np.sum(e, axis=axis, keepdims=True),)

    @impl(nn.LayerNormOp)
    def run_layer_norm(
        self, interpreter: Interpreter, op: nn.LayerNormOp, args: PythonValues
    ) -> PythonValues:
        x, gamma, beta = (_float(a) for a in args)
        axes = tuple(range(x.ndim - gamma.ndim, x.ndim))
        mean = np.mean(x, axis=axes, keepdims=True)
        centred = x - mean
        var = np.mean(centred * centred, axis=axes, keepdims=True)
        eps = np.float32(op.epsilon.value.data)
        return (centred / np.sqrt(var + eps) * gamma + beta,)

    @impl(nn.BatchNormOp)
    def run_batch_norm(
        self, interpreter: Interpreter, op: nn.BatchNormOp, args: PythonValues
    ) -> PythonValues:
        x, scale, bias = (_float(a) for a in args)
        channel = (1, -1) + (1,) * (x.ndim - 2)
        return (x * scale.reshape(channel) + bias.reshape(channel),)

    # -- reductions --------------------------------------------------------------------------

    @impl(nn.ReduceSumOp)
    def run_reduce_sum(
        self, interpreter: Interpreter, op: nn.ReduceSumOp, args: PythonValues
    ) -> PythonValues:
        return (np.sum(args[0], axis=_ints(op.axes), keepdims=op.keepdims is not None),)

    @impl(nn.ReduceMeanOp)
    def run_reduce_mean(
        self, interpreter: Interpreter, op: nn.ReduceMeanOp, args: PythonValues
    ) -> PythonValues:
        x = _float(args[0])
        return (np.mean(x, axis=_ints(op.axes), keepdims=op.keepdims is not None),)

    @impl(nn.ReduceMaxOp)
    def run_reduce_max(
        self, interpreter: Interpreter, op: nn.ReduceMaxOp, args: PythonValues
    ) -> PythonValues:
        return (np.max(args[0], axis=_ints(op.axes), keepdims=op.keepdims is not None),)

    # -- data movement -----------------------------------------------------------------------

    @impl(nn.ReshapeOp)
    def run_reshape(
        self, interpreter: Interpreter, op: nn.ReshapeOp, args: PythonValues
    ) -> PythonValues:
        # Row-major (C order), like torch's reshape.
        return (np.reshape(args[0], _shape(op.result)),)

    @impl(nn.TransposeOp)
    def run_transpose(
        self, interpreter: Interpreter, op: nn.TransposeOp, args: PythonValues
    ) -> PythonValues:
        return (np.transpose(args[0], _ints(op.perm)),)

    @impl(nn.ConcatOp)
    def run_concat(
        self, interpreter: Interpreter, op: nn.ConcatOp, args: PythonValues
    ) -> PythonValues:
        return (np.concatenate(args, axis=op.axis.value.data),)

    @impl(nn.SliceOp)
    def run_slice(
        self, interpreter: Interpreter, op: nn.SliceOp, args: PythonValues
    ) -> PythonValues:
        index = tuple(
            slice(start, start + (size - 1) * stride + 1, stride)
            for start, size, stride in zip(
                _ints(op.starts), _ints(op.sizes), op.stride_values(), strict=True
            )
        )
        return (args[0][index],)

    @impl(nn.GatherOp)
    def run_gather(
        self, interpreter: Interpreter, op: nn.GatherOp, args: PythonValues
    ) -> PythonValues:
        data, indices = args
        axis = op.axis.value.data % data.ndim
        _check_indices(op, indices, data.shape[axis], "indices")
        return (np.take(data, indices, axis=axis),)

    @impl(nn.EmbeddingOp)
    def run_embedding(
        self, interpreter: Interpreter, op: nn.EmbeddingOp, args: PythonValues
    ) -> PythonValues:
        table, ids = args
        _check_indices(op, ids, table.shape[0], "ids")
        return (table[ids],)

    @impl(nn.GatherElementsOp)
    def run_gather_elements(
        self, interpreter: Interpreter, op: nn.GatherElementsOp, args: PythonValues
    ) -> PythonValues:
        # torch.gather: result[i][j] = data[indices[i][j]][j] (axis 0). Outside `axis` the indices
        # may be smaller than data: only data's leading part of those dims is read.
        data, indices = args
        axis = op.axis.value.data % data.ndim
        _check_indices(op, indices, data.shape[axis], "indices")
        window = tuple(
            slice(None) if k == axis else slice(0, size) for k, size in enumerate(indices.shape)
        )
        return (np.take_along_axis(data[window], indices, axis=axis),)

    @impl(nn.PadOp)
    def run_pad(self, interpreter: Interpreter, op: nn.PadOp, args: PythonValues) -> PythonValues:
        x = args[0]
        widths = list(zip(_ints(op.low), _ints(op.high), strict=True))
        fill = np.asarray(op.value.value.data).astype(x.dtype)
        return (np.pad(x, widths, mode="constant", constant_values=fill),)

    @impl(nn.InsertSliceOp)
    def run_insert_slice(
        self, interpreter: Interpreter, op: nn.InsertSliceOp, args: PythonValues
    ) -> PythonValues:
        # The inverse of nn.slice: a copy of dest with source written into the strided slice.
        source, dest = args
        index = tuple(
            slice(start, start + (size - 1) * stride + 1, stride)
            for start, size, stride in zip(
                _ints(op.starts), source.shape, op.stride_values(), strict=True
            )
        )
        out = dest.copy()
        out[index] = source
        return (out,)

    @impl(nn.EmbeddingShardOp)
    def run_embedding_shard(
        self, interpreter: Interpreter, op: nn.EmbeddingShardOp, args: PythonValues
    ) -> PythonValues:
        # Rows row_offset .. row_offset + V - 1 of a split table: ids in the shard read their row,
        # the others keep `partial` (zero for the first shard of a chain).
        table, ids = args[0], args[1]
        rows = table.shape[0]
        local = ids - op.row_offset.value.data
        inside = (local >= 0) & (local < rows)
        looked_up = table[np.clip(local, 0, max(rows - 1, 0))]
        partial = args[2] if len(args) > 2 else np.zeros_like(looked_up)
        return (np.where(inside[..., None], looked_up, partial),)

    # -- pooling -----------------------------------------------------------------------------

    @impl(nn.MaxPool2dOp)
    def run_max_pool2d(
        self, interpreter: Interpreter, op: nn.MaxPool2dOp, args: PythonValues
    ) -> PythonValues:
        # Padded cells hold -inf: they never win.
        kernel, strides, padding = _ints(op.kernel), _ints(op.strides), _ints(op.padding)
        win = _windows(_float(args[0]), kernel, strides, padding, (1, 1), -np.inf)
        return (win.max(axis=(4, 5)),)

    @impl(nn.AvgPool2dOp)
    def run_avg_pool2d(
        self, interpreter: Interpreter, op: nn.AvgPool2dOp, args: PythonValues
    ) -> PythonValues:
        # Padded cells count neither in the sum nor in the divisor.
        x = _float(args[0])
        kernel, strides, padding = _ints(op.kernel), _ints(op.strides), _ints(op.padding)
        total = _windows(x, kernel, strides, padding, (1, 1), 0.0).sum(axis=(4, 5))
        ones = np.ones((1, 1) + x.shape[2:], dtype=np.float32)
        count = _windows(ones, kernel, strides, padding, (1, 1), 0.0).sum(axis=(4, 5))
        return (total / count,)

    @impl(nn.GlobalAvgPool2dOp)
    def run_global_avg_pool2d(
        self, interpreter: Interpreter, op: nn.GlobalAvgPool2dOp, args: PythonValues
    ) -> PythonValues:
        return (np.mean(_float(args[0]), axis=(2, 3), keepdims=True),)


def _check_indices(op: Operation, indices: np.ndarray, bound: int, what: str) -> None:
    if indices.size and (indices.min() < 0 or indices.max() >= bound):
        bad = indices.min() if indices.min() < 0 else indices.max()
        raise ChiplexError(f"{_where(op)}: {what} hold {bad}, outside 0..{bound - 1}")


def _data_name(op: nn.ParamOp) -> str:
    """The parameter whose data `op` reads: its own, or for a shard the whole one it is part of
    (`shard_of`, set by `shard-params`)."""
    whole = op.attributes.get(SHARD_OF_ATTR)
    return whole.data if isinstance(whole, StringAttr) else op.param_name.data


def _shard_window(op: nn.ParamOp, data: np.ndarray) -> np.ndarray:
    """A shard's part of its whole parameter's stored layout: `shard_offset` onwards along
    `shard_axis`, as many as the shard declares."""
    axis_attr = op.attributes.get(SHARD_AXIS_ATTR)
    offset_attr = op.attributes.get(SHARD_OFFSET_ATTR)
    if not isinstance(axis_attr, IntegerAttr) or not isinstance(offset_attr, IntegerAttr):
        raise ChiplexError(
            f"parameter '{op.param_name.data}' is a shard ({SHARD_OF_ATTR}) without integer "
            f"{SHARD_AXIS_ATTR} and {SHARD_OFFSET_ATTR} attributes"
        )
    axis, offset = axis_attr.value.data, offset_attr.value.data
    size = _shape(op.result)[axis]
    if not 0 <= axis < data.ndim or offset + size > data.shape[axis]:
        raise ChiplexError(
            f"parameter '{op.param_name.data}': shard {offset}..{offset + size - 1} along axis "
            f"{axis} lies outside '{_data_name(op)}' ({_fmt(data.shape)})"
        )
    return np.take(data, np.arange(offset, offset + size), axis=axis)


def _load_parameter(op: nn.ParamOp, parameters: Mapping[str, np.ndarray]) -> np.ndarray:
    name = _data_name(op)
    declared = cast(TensorType, op.result.type)
    if name not in parameters:
        raise ChiplexError(f"parameter '{name}' ({declared}) was not supplied")
    data = parameters[name]
    view = op.attributes.get("torch_view")
    if isinstance(view, StringAttr):
        try:
            data = _apply_torch_view(data, view.data)
        except ValueError:
            raise ChiplexError(
                f"parameter '{name}' has shape {_fmt(data.shape)}, which torch_view "
                f"'{view.data}' cannot turn into {_fmt(declared.get_shape())} ({declared})"
            ) from None
    if name != op.param_name.data:
        data = _shard_window(op, data)
    if tuple(data.shape) != tuple(declared.get_shape()):
        seen = f" after torch_view '{view.data}'" if isinstance(view, StringAttr) else ""
        raise ChiplexError(
            f"parameter '{name}' has shape {_fmt(data.shape)}{seen}, but the IR declares "
            f"{_fmt(declared.get_shape())} ({declared})"
        )
    return data


# ---------------------------------------------------------------------------------------------
# func and mcm
# ---------------------------------------------------------------------------------------------


@register_impls
class FuncFunctions(InterpreterFunctions):
    """`func.func` and `func.return` (xDSL's own versions also want `func.call` support we skip)."""

    @impl_terminator(func.ReturnOp)
    def run_return(
        self, interpreter: Interpreter, op: func.ReturnOp, args: PythonValues
    ) -> tuple[TerminatorValue, PythonValues]:
        return ReturnedValues(args), ()

    @impl_callable(func.FuncOp)
    def call_func(
        self, interpreter: Interpreter, op: func.FuncOp, args: PythonValues
    ) -> PythonValues:
        return interpreter.run_ssacfg_region(op.body, args, op.sym_name.data)


@register_impls
@dataclass
class McmFunctions(InterpreterFunctions):
    """`mcm` ops: host inputs and outputs, and send / recv over channels keyed by message id.

    In a placed function (after insert-transfers) a send precedes its recv in block order; in an
    `mcm.program` the scheduler in `run` runs a recv only once its message is pending.
    """

    inputs: Sequence[np.ndarray] = ()
    outputs: dict[int, np.ndarray] = field(default_factory=dict)
    pending: dict[int, tuple[int | None, np.ndarray]] = field(default_factory=dict)
    """Messages sent and not yet received, by message id: (sending chip, value)."""

    @impl(mcm.SendOp)
    def run_send(
        self, interpreter: Interpreter, op: mcm.SendOp, args: PythonValues
    ) -> PythonValues:
        msg = op.msg.value.data
        if msg in self.pending:
            raise ChiplexError(f"mcm.send: message {msg} is sent twice before it is received")
        self.pending[msg] = (_chip_of(op), args[0])
        return ()

    @impl(mcm.RecvOp)
    def run_recv(
        self, interpreter: Interpreter, op: mcm.RecvOp, args: PythonValues
    ) -> PythonValues:
        msg, peer = op.msg.value.data, op.peer.value.data
        if msg not in self.pending:
            raise ChiplexError(f"mcm.recv: message {msg} from chip {peer} was never sent")
        sender, value = self.pending.pop(msg)
        if sender is not None and sender != peer:
            raise ChiplexError(
                f"mcm.recv: message {msg} expected from chip {peer} came from chip {sender}"
            )
        if tuple(value.shape) != _shape(op.result):
            raise ChiplexError(
                f"mcm.recv: message {msg} carries {_fmt(value.shape)}, expected "
                f"{_fmt(_shape(op.result))}"
            )
        return (value,)

    @impl(mcm.InputOp)
    def run_input(
        self, interpreter: Interpreter, op: mcm.InputOp, args: PythonValues
    ) -> PythonValues:
        index = op.index.value.data
        if index >= len(self.inputs):
            raise ChiplexError(
                f"mcm.input {index}: the program was given {len(self.inputs)} inputs"
            )
        return (self.inputs[index],)

    @impl(mcm.OutputOp)
    def run_output(
        self, interpreter: Interpreter, op: mcm.OutputOp, args: PythonValues
    ) -> PythonValues:
        self.outputs[op.index.value.data] = args[0]
        return ()

    @impl_terminator(mcm.YieldOp)
    def run_yield(
        self, interpreter: Interpreter, op: mcm.YieldOp, args: PythonValues
    ) -> tuple[TerminatorValue, PythonValues]:
        return ReturnedValues(()), ()


def _chip_of(op: Operation) -> int | None:
    """The chip an op runs on: its enclosing chiplet, or its placement attribute."""
    parent = op.parent_op()
    if isinstance(parent, mcm.ChipletOp):
        return parent.chip_id
    return mcm.get_chip(op)


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


def _entry(module: ModuleOp | Operation, name: str | None) -> func.FuncOp | mcm.ProgramOp:
    if isinstance(module, func.FuncOp | mcm.ProgramOp):
        return module
    candidates = [op for op in module.walk() if isinstance(op, func.FuncOp | mcm.ProgramOp)]
    if name is not None:
        candidates = [op for op in candidates if op.sym_name.data == name]
    if len(candidates) != 1:
        what = f"named @{name}" if name is not None else "(give its name)"
        found = ", ".join(f"@{op.sym_name.data}" for op in candidates) or "none"
        raise ChiplexError(f"expected one func.func or mcm.program {what} to run, found {found}")
    return candidates[0]


def _arg_types(entry: func.FuncOp | mcm.ProgramOp) -> list[TensorType | None]:
    """The argument types; in a program, None for an argument no chiplet reads (an id argument
    whose table the host looks up), which keeps its position."""
    if isinstance(entry, func.FuncOp):
        return [cast(TensorType, t) for t in entry.function_type.inputs.data]
    found: dict[int, TensorType] = {}
    for op in entry.walk():
        if isinstance(op, mcm.InputOp):
            found[op.index.value.data] = cast(TensorType, op.result.type)
    return [found.get(i) for i in range(max(found, default=-1) + 1)]


def _check_inputs(entry: func.FuncOp | mcm.ProgramOp, inputs: Sequence[np.ndarray]) -> None:
    types = _arg_types(entry)
    if len(inputs) != len(types):
        raise ChiplexError(
            f"@{entry.sym_name.data} takes {len(types)} input(s), {len(inputs)} given"
        )
    for i, (value, t) in enumerate(zip(inputs, types, strict=True)):
        if t is not None and tuple(value.shape) != tuple(t.get_shape()):
            raise ChiplexError(
                f"input {i} of @{entry.sym_name.data} has shape {_fmt(value.shape)}, "
                f"expected {_fmt(t.get_shape())} ({t})"
            )


def _with_host_inputs(
    module: ModuleOp | Operation,
    entry: func.FuncOp | mcm.ProgramOp,
    values: list[np.ndarray],
    params: Mapping[str, np.ndarray],
) -> list[np.ndarray]:
    """Given only the original arguments of a module whose host looks up some tables
    (`host-embeddings`), run the host step first: it appends the gathered rows."""
    root = module if isinstance(module, ModuleOp) else entry.get_toplevel_object()
    lookups = host_lookups(root if isinstance(root, ModuleOp) else None)
    if not lookups or len(values) != len(_arg_types(entry)) - len(lookups):
        return values
    return host_inputs(lookups, values, params, _apply_torch_view)


def _check_parameters(entry: Operation, parameters: Mapping[str, np.ndarray]) -> None:
    """Every parameter present, before any work: one error listing all that are missing."""
    missing = sorted(
        {
            f"'{op.param_name.data}' ({op.result.type})"
            for op in entry.walk()
            if isinstance(op, nn.ParamOp) and _data_name(op) not in parameters
        }
    )
    if missing:
        raise ChiplexError(
            f"{len(missing)} parameter(s) of @{cast(Any, entry).sym_name.data} not supplied: "
            + ", ".join(missing[:8])
            + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        )


def run(
    module: ModuleOp | Operation,
    inputs: Sequence[ArrayLike],
    parameters: Mapping[str, ArrayLike] | None = None,
    *,
    name: str | None = None,
) -> tuple[np.ndarray, ...]:
    """Run a `func.func` or an `mcm.program` of `module` (the only one, or the one named `name`).

    `inputs` are the function's arguments in order; `parameters` maps each `nn.param` name to its
    data (state-dict tensors: a `torch_view` on the op is applied here). Returns the results as
    numpy arrays (float32, int64 or bool). Bad inputs and parameters raise ChiplexError.
    """
    entry = _entry(module, name)
    values = [_as_value(x) for x in inputs]
    params = {k: _as_value(v) for k, v in (parameters or {}).items()}
    values = _with_host_inputs(module, entry, values, params)
    _check_inputs(entry, values)
    _check_parameters(entry, params)
    root = module if isinstance(module, ModuleOp) else cast(ModuleOp, entry.get_toplevel_object())
    interpreter = Interpreter(root)
    mcm_functions = McmFunctions(values)
    for functions in (NNFunctions(params), FuncFunctions(), mcm_functions):
        interpreter.register_implementations(functions)
    with np.errstate(all="ignore"):  # inf and nan propagate as in torch; no warnings
        try:
            if isinstance(entry, func.FuncOp):
                results = interpreter.call_op(entry, tuple(values))
            else:
                results = _run_program(interpreter, entry, mcm_functions)
        except InterpretationError as e:
            raise ChiplexError(f"cannot interpret @{entry.sym_name.data}: {e}") from None
    return tuple(np.asarray(r) for r in results)


def _run_program(
    interpreter: Interpreter, program: mcm.ProgramOp, functions: McmFunctions
) -> tuple[np.ndarray, ...]:
    """Run every chiplet, interleaved: each runs until its next recv waits for an unsent message."""
    cursors: dict[int, Operation | None] = {c.chip_id: c.block.first_op for c in program.chiplets}
    pending = functions.pending
    while any(op is not None for op in cursors.values()):
        progressed = False
        for chip, op in cursors.items():
            while op is not None and not isinstance(op, mcm.YieldOp):
                if isinstance(op, mcm.RecvOp) and op.msg.value.data not in pending:
                    break
                results = interpreter.run_op(op, interpreter.get_values(op.operands))
                interpreter.set_values(zip(op.results, results, strict=True))
                op = op.next_op
                progressed = True
            if isinstance(op, mcm.YieldOp):
                op = None
            cursors[chip] = op
        if not progressed:
            waiting = ", ".join(
                f"chiplet {chip} waits for message {cast(mcm.RecvOp, op).msg.value.data}"
                for chip, op in cursors.items()
                if op is not None
            )
            raise ChiplexError(f"mcm.program @{program.sym_name.data} deadlocks: {waiting}")
    if pending:
        raise ChiplexError(
            f"mcm.program @{program.sym_name.data}: message(s) {sorted(pending)} sent but never received"
        )
    outputs = functions.outputs
    missing = [i for i in range(len(outputs)) if i not in outputs]
    if missing:
        raise ChiplexError(f"mcm.program @{program.sym_name.data}: no mcm.output {missing[0]}")
    return tuple(outputs[i] for i in range(len(outputs)))


# ---------------------------------------------------------------------------------------------
# Random data and comparison (tests, `--verify`, the pass-preservation helper)
# ---------------------------------------------------------------------------------------------


def _supplied_shape(op: nn.ParamOp) -> tuple[int, ...]:
    """A shape of data to supply for `op`: the declared one with its `torch_view` undone.

    A reshape hides the shape before it; any shape with as many elements (and the rank the view
    before it needs) works there, so `(n, 1, ..., 1)` stands in for it.
    """
    shape = _shape(op.result)
    view = op.attributes.get("torch_view")
    if not isinstance(view, StringAttr):
        return shape
    steps = [
        (kind, [int(a) for a in args.split(",") if a.strip()])
        for kind, args in _VIEW.findall(view.data)
    ]
    for i in range(len(steps) - 1, -1, -1):
        kind, dims = steps[i]
        if kind == "permute":
            inverse = [0] * len(dims)
            for j, p in enumerate(dims):
                inverse[p] = j
            shape = tuple(shape[j] for j in inverse)
        else:
            before = steps[i - 1] if i > 0 else None
            rank = len(before[1]) if before is not None and before[0] == "permute" else 1
            shape = (math.prod(shape),) + (1,) * (rank - 1)
    return shape


def random_parameters(module: ModuleOp | Operation, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded random data for every parameter, in the shape the interpreter expects to be given.

    Floats are normal with standard deviation 1 / sqrt(fan-in) for matmul and conv weights (1
    otherwise), so deep graphs stay in range. A parameter read as indices (by an embedding or a gather) holds
    integers within the table. Integer element types otherwise stand for quantised float weights.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for op in module.walk():
        if not isinstance(op, nn.ParamOp) or op.param_name.data in out:
            continue
        shape = _supplied_shape(op)
        bound = _index_bound(op.result)
        if bound is not None:
            out[op.param_name.data] = rng.integers(0, bound, size=shape)
            continue
        declared = _shape(op.result)
        # A matmul weight is stored [in, out], a conv weight [out, in/groups, kh, kw].
        fan_in = (
            declared[0]
            if len(declared) == 2
            else math.prod(declared[1:])
            if len(declared) == 4
            else 1
        )
        scale = 1.0 / math.sqrt(max(fan_in, 1))
        out[op.param_name.data] = (rng.standard_normal(shape) * scale).astype(np.float32)
    # Tables the host looks up (`host-embeddings`) are no nn.param of the function any more.
    root = module if isinstance(module, ModuleOp) else module.get_toplevel_object()
    for lookup in host_lookups(root if isinstance(root, ModuleOp) else None):
        if lookup.table not in out and lookup.torch_view is None:
            out[lookup.table] = rng.standard_normal(lookup.table_type.get_shape()).astype(
                np.float32
            )
    return out


def _index_bound(value: SSAValue) -> int | None:
    """The exclusive upper bound of the integers `value` may hold, from the ops that read it."""
    bounds: list[int] = []
    # The shards of a split table together cover rows 0 .. the last shard's end.
    shard_ends: list[int] = []
    for use in value.uses:
        user = use.operation
        if isinstance(user, nn.EmbeddingOp) and use.index == 1:
            bounds.append(_shape(user.table)[0])
        elif isinstance(user, nn.EmbeddingShardOp) and use.index == 1:
            shard_ends.append(user.row_offset.value.data + _shape(user.table)[0])
        elif isinstance(user, nn.GatherOp | nn.GatherElementsOp) and use.index == 1:
            data = _shape(user.data)
            bounds.append(data[user.axis.value.data % len(data)])
        elif isinstance(user, nn.ReshapeOp | nn.TransposeOp | nn.SliceOp | nn.ConcatOp):
            inner = _index_bound(user.results[0])
            if inner is not None:
                bounds.append(inner)
    if shard_ends:
        bounds.append(max(shard_ends))
    return min(bounds) if bounds else None


def random_inputs(
    module: ModuleOp | Operation, seed: int = 0, *, name: str | None = None
) -> tuple[np.ndarray, ...]:
    """Seeded random arguments for the function: standard normal floats; integers that index a
    table or gather stay within its bounds (else 0..15); booleans are fair coin flips."""
    entry = _entry(module, name)
    rng = np.random.default_rng(seed)
    args: Iterable[SSAValue | None]
    if isinstance(entry, func.FuncOp):
        args = list(entry.body.block.args)
    else:
        by_index = {
            op.index.value.data: op.result for op in entry.walk() if isinstance(op, mcm.InputOp)
        }
        args = [by_index[i] for i in sorted(by_index)]
    out: list[np.ndarray] = []
    for arg in cast(list[SSAValue], args):
        shape, elem = _shape(arg), _elem(arg)
        if _is_bool(elem):
            out.append(rng.random(shape) < 0.5)
        elif _is_integer(elem):
            bound = _index_bound(arg)
            out.append(rng.integers(0, bound if bound is not None else 16, size=shape))
        else:
            out.append(rng.standard_normal(shape).astype(np.float32))
    return tuple(out)


@dataclass(frozen=True)
class Comparison:
    """How far `got` is from `expected`, output by output."""

    max_abs: float
    """Largest absolute difference over every element of every output."""
    max_rel: float
    """Largest over the outputs of (largest absolute difference / largest |expected|)."""
    worst_output: int

    def within(self, rtol: float) -> bool:
        return self.max_rel <= rtol


def compare_outputs(got: Sequence[ArrayLike], expected: Sequence[ArrayLike]) -> Comparison:
    """Absolute and (norm-wise) relative error of `got` against `expected`.

    The relative error of one output is its largest absolute error divided by its largest
    magnitude, so elements near zero do not dominate; NaN in the same places counts as equal.
    """
    if len(got) != len(expected):
        raise ChiplexError(f"{len(got)} outputs, expected {len(expected)}")
    max_abs = max_rel = 0.0
    worst = 0
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        g64 = np.asarray(g, dtype=np.float64)
        e64 = np.asarray(e, dtype=np.float64)
        if g64.shape != e64.shape:
            raise ChiplexError(
                f"output {i} has shape {_fmt(g64.shape)}, expected {_fmt(e64.shape)}"
            )
        agree = (np.isnan(g64) & np.isnan(e64)) | (np.isinf(g64) & (g64 == e64))
        with np.errstate(invalid="ignore"):  # inf - inf: a disagreement, counted as inf below
            diff = np.where(agree, 0.0, np.abs(g64 - e64))
        diff = np.where(np.isnan(diff), np.inf, diff)
        abs_err = float(diff.max()) if diff.size else 0.0
        finite = np.abs(e64[np.isfinite(e64)])
        scale = float(finite.max()) if finite.size else 0.0
        rel_err = abs_err / scale if scale > 0 else (0.0 if abs_err == 0 else math.inf)
        max_abs = max(max_abs, abs_err)
        if rel_err > max_rel:
            max_rel, worst = rel_err, i
    return Comparison(max_abs, max_rel, worst)
