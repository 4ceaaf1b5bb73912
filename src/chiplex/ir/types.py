"""Size and shape helpers for builtin tensor types, shared by the dialects and the passes."""

from __future__ import annotations

import math

from xdsl.dialects.builtin import (
    BFloat16Type,
    Float16Type,
    Float32Type,
    Float64Type,
    IndexType,
    IntegerType,
    TensorType,
    bf16,
    f16,
    f32,
    f64,
    i8,
    i16,
    i32,
    i64,
)
from xdsl.ir import Attribute
from xdsl.utils.exceptions import VerifyException

from chiplex.errors import ChiplexError

DYNAMIC: int = -1
"""How xDSL stores a `?` dimension in `TensorType.get_shape()`."""

_DTYPE_ALIASES: dict[str, Attribute] = {
    "i8": i8,
    "int8": i8,
    "i16": i16,
    "int16": i16,
    "i32": i32,
    "int32": i32,
    "i64": i64,
    "int64": i64,
    "bf16": bf16,
    "bfloat16": bf16,
    "f16": f16,
    "fp16": f16,
    "float16": f16,
    "half": f16,
    "f32": f32,
    "fp32": f32,
    "float32": f32,
    "float": f32,
    "f64": f64,
    "float64": f64,
}
DTYPE_NAMES: tuple[str, ...] = ("i8", "i16", "i32", "i64", "bf16", "f16", "f32", "f64")
"""The canonical names accepted for `weight_dtype` and `activation_dtype` (aliases also work)."""


def canonical_dtype_name(name: str) -> str | None:
    """The canonical name (`i8`) of an element type or its alias (`int8`, `INT8`); None if unknown."""
    dtype = _DTYPE_ALIASES.get(name.lower())
    return (
        None
        if dtype is None
        else DTYPE_NAMES[[_DTYPE_ALIASES[n] for n in DTYPE_NAMES].index(dtype)]
    )


def parse_dtype(name: str | None) -> Attribute | None:
    """The IR element type named `name` (`i8`, `bf16`, `int8`, ...); None or "keep" keeps torch's."""
    if name is None or name.lower() in ("keep", "none"):
        return None
    try:
        return _DTYPE_ALIASES[name.lower()]
    except KeyError:
        raise ChiplexError(
            f"unknown dtype '{name}': expected one of {', '.join(DTYPE_NAMES)} or 'keep'"
        ) from None


def element_bytes(t: Attribute) -> int:
    """Bytes per element on the wire; i1 is stored as a whole byte (no bit packing)."""
    if isinstance(t, IntegerType):
        width = t.width.data
        if width in (1, 8):
            return 1
        if width in (16, 32, 64):
            return width // 8
    elif isinstance(t, Float16Type | BFloat16Type):
        return 2
    elif isinstance(t, Float32Type):
        return 4
    elif isinstance(t, Float64Type):
        return 8
    elif isinstance(t, IndexType):
        # Indices travel as 64-bit integers between chiplets.
        return 8
    raise ValueError(f"unsupported element type {t}: no known size in bytes")


def static_shape(t: TensorType) -> tuple[int, ...]:
    """The shape of `t`; raises ValueError if any dimension is dynamic."""
    shape = t.get_shape()
    if any(d < 0 for d in shape):
        raise ValueError(f"{t} has a dynamic shape")
    return shape


def numel(t: TensorType) -> int:
    """Number of elements of a statically shaped tensor (1 for a rank-0 tensor)."""
    return math.prod(static_shape(t))


def tensor_bytes(t: TensorType) -> int:
    """Size in bytes of a statically shaped tensor."""
    return numel(t) * element_bytes(t.get_element_type())


def is_static(t: Attribute) -> bool:
    return isinstance(t, TensorType) and all(d >= 0 for d in t.get_shape())


MAX_TENSOR_BYTES = 2**50
"""1 PiB: a larger tensor is a typo, and its sizes would overflow the int64 arrays of the graph."""

ELEMENT_TYPE_NAMES = "i1, i8, i16, i32, i64, index, f16, bf16, f32, f64"
"""The element types `element_bytes` knows, in the words of an error message."""


def check_static(t: Attribute, what: str) -> None:
    """Raise a VerifyException naming `what` unless `t` is a ranked tensor with a static shape, no
    zero dimension and an element type of known size (the cost model needs every tensor's bytes)."""
    if not is_static(t):
        raise VerifyException(f"{what} has dynamic shape {t}: nn ops need static shapes")
    assert isinstance(t, TensorType)
    if 0 in t.get_shape():
        # An empty tensor costs nothing and moves nothing: in a hand-written model it is a typo.
        raise VerifyException(
            f"{what} {t} has a zero dimension: nn tensors need at least one element"
        )
    try:
        nbytes = tensor_bytes(t)
    except ValueError:
        raise VerifyException(
            f"{what} {t} has element type {t.get_element_type()}, which chiplex has no size for: "
            f"use one of {ELEMENT_TYPE_NAMES}"
        ) from None
    if nbytes > MAX_TENSOR_BYTES:
        raise VerifyException(
            f"{what} {t} holds {nbytes:.3g} bytes, more than the {MAX_TENSOR_BYTES / 2**50:g} PiB "
            "chiplex accepts (a typo in a dimension?)"
        )
