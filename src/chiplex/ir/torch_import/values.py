"""What the importer tracks per FX node: parameters seen through views, constants known at
import time, poisoned values downstream of a failure; and the torch-dtype <-> IR element-type map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.fx
from xdsl.dialects.builtin import (
    BFloat16Type,
    Float16Type,
    Float32Type,
    Float64Type,
    FloatAttr,
    IntegerType,
    Signedness,
    bf16,
    f16,
    f32,
    f64,
    i1,
    i8,
    i16,
    i32,
    i64,
)
from xdsl.ir import Attribute

# ---------------------------------------------------------------------------------------------
# Dtypes
# ---------------------------------------------------------------------------------------------


TORCH_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "f32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "f16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "float64": torch.float64,
    "f64": torch.float64,
    "double": torch.float64,
    "int64": torch.int64,
    "i64": torch.int64,
    "long": torch.int64,
    "int32": torch.int32,
    "i32": torch.int32,
    "int": torch.int32,
    "int16": torch.int16,
    "i16": torch.int16,
    "int8": torch.int8,
    "i8": torch.int8,
    "uint8": torch.uint8,
    "u8": torch.uint8,
    "bool": torch.bool,
}


def torch_elem(dtype: torch.dtype) -> Attribute:
    """The IR element type that keeps a torch dtype as it is."""
    if dtype == torch.bool:
        return i1
    if dtype == torch.uint8:
        return IntegerType(8, Signedness.UNSIGNED)
    table: dict[torch.dtype, Attribute] = {
        torch.float32: f32,
        torch.float16: f16,
        torch.bfloat16: bf16,
        torch.float64: f64,
        torch.int8: i8,
        torch.int16: i16,
        torch.int32: i32,
        torch.int64: i64,
    }
    if dtype not in table:
        raise Unsupported(f"dtype {dtype}")
    return table[dtype]


def is_float_elem(t: Attribute) -> bool:
    return isinstance(t, Float16Type | BFloat16Type | Float32Type | Float64Type)


def fits_integer(value: float | int, elem: Attribute) -> bool:
    """Whether `value` is a whole number within the range of the integer type `elem` (signless
    types take both the signed and the unsigned range, as xDSL's IntegerAttr does)."""
    if isinstance(value, float) and not value.is_integer():
        return False
    width = cast(IntegerType, elem).width.data
    return -(2 ** (width - 1)) <= value < 2**width


def rounds(value: float, elem: Attribute) -> bool:
    """Whether storing `value` in the float type `elem` changes it (beyond float32 rounding)."""
    try:
        stored = FloatAttr(float(value), cast(Float64Type, elem)).value.data
    except OverflowError:  # beyond the type's range (1e7 in f16)
        return True
    return stored != value and stored != float(torch.tensor(value, dtype=torch.float32).item())


# ---------------------------------------------------------------------------------------------
# Values the importer tracks per FX node
# ---------------------------------------------------------------------------------------------


class Unsupported(Exception):
    """A node the importer cannot map; the message says why (collected, reported together)."""


@dataclass(frozen=True)
class View:
    """A reshape (`perm` None) or a permutation applied to a parameter, folded into its layout."""

    shape: tuple[int, ...]
    perm: tuple[int, ...] | None = None


@dataclass(frozen=True)
class ParamRef:
    """A parameter, possibly seen through views; becomes an `nn.param` at its first compute use."""

    name: str
    base_shape: tuple[int, ...]
    dtype: torch.dtype
    views: tuple[View, ...] = ()

    @property
    def shape(self) -> tuple[int, ...]:
        return self.views[-1].shape if self.views else self.base_shape

    def view(self, v: View) -> ParamRef:
        if v.shape == self.shape and (v.perm is None or v.perm == tuple(range(len(v.shape)))):
            return self
        return ParamRef(self.name, self.base_shape, self.dtype, self.views + (v,))


@dataclass(eq=False)
class Const:
    """A tensor known at import time (buffer, lifted constant, or folded from those)."""

    tensor: torch.Tensor
    name: str
    from_params: tuple[str, ...] = ()
    """The parameters it was computed from (weight preprocessing folded at import, such as weight
    normalisation): then it is a weight, stored in the weight dtype."""
    declared: torch.dtype | None = None
    """The module's dtype for the value when `tensor` holds it wider: half-precision tensors are
    folded in float32 (the IR's numerics, what `verify_import` compares with) but typed as torch
    types them."""

    @property
    def dtype(self) -> torch.dtype:
        return self.declared or self.tensor.dtype


class Poison:
    """The value of a node that could not be imported: its users are skipped, not reported."""


POISON = Poison()

Value = Any  # SSAValue | ParamRef | Const | python scalar | tuple/list of those | Poison
