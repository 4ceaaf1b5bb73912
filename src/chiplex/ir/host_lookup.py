"""Embedding tables looked up by the host: the record a module carries once `host-embeddings` ran.

When a table is too large for a chip and its ids are a function argument (the token ids a user
feeds), the host can do the lookup itself and send the gathered rows instead of the ids, as TPU
"embedding on host" does. The `nn.embedding` then leaves the function: its result becomes a new
function argument, and the module records, per such argument, which table and which id argument
the host reads (`chiplex.host_lookups`, an array of dictionaries on the `builtin.module`):

    {table = "word_embeddings.weight", table_type = tensor<30522x768xi8>, ids = 0 : i64,
     arg = 1 : i64, torch_view = "..."}   // torch_view only when the param had one

The function keeps every original argument (an id argument nobody reads any more costs nothing:
the graph counts host bytes per reader), so callers pass the same inputs as before; the
interpreter runs the host step (`host_inputs`) when it is given only those.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    TensorType,
    i64,
)
from xdsl.ir import Attribute

from chiplex.errors import ChiplexError
from chiplex.ir.types import tensor_bytes

HOST_LOOKUPS_ATTR = "chiplex.host_lookups"


@dataclass(frozen=True)
class HostLookup:
    """The host gathers rows of `table` at the ids of argument `ids` and passes them as `arg`."""

    table: str
    table_type: TensorType
    ids: int
    arg: int
    rows_type: TensorType
    torch_view: str | None = None

    @property
    def table_bytes(self) -> int:
        return tensor_bytes(self.table_type)

    @property
    def rows_bytes(self) -> int:
        return tensor_bytes(self.rows_type)

    def to_attr(self) -> DictionaryAttr:
        entries: dict[str, Attribute] = {
            "table": StringAttr(self.table),
            "table_type": self.table_type,
            "ids": IntegerAttr(self.ids, i64),
            "arg": IntegerAttr(self.arg, i64),
            "rows_type": self.rows_type,
        }
        if self.torch_view is not None:
            entries["torch_view"] = StringAttr(self.torch_view)
        return DictionaryAttr(entries)

    @staticmethod
    def from_attr(attr: Attribute) -> HostLookup:
        try:
            d = cast(DictionaryAttr, attr).data
            view = d.get("torch_view")
            return HostLookup(
                table=cast(StringAttr, d["table"]).data,
                table_type=cast(TensorType, d["table_type"]),
                ids=cast(IntegerAttr, d["ids"]).value.data,
                arg=cast(IntegerAttr, d["arg"]).value.data,
                rows_type=cast(TensorType, d["rows_type"]),
                torch_view=view.data if isinstance(view, StringAttr) else None,
            )
        except (AttributeError, KeyError, TypeError):
            raise ChiplexError(
                f"module attribute {HOST_LOOKUPS_ATTR}: each entry must be a dictionary with "
                f"table, table_type, ids, arg and rows_type, got {attr}"
            ) from None


def host_lookups(module: ModuleOp | None) -> list[HostLookup]:
    """The host lookups the module records (none when `host-embeddings` moved nothing)."""
    if module is None:
        return []
    attr = module.attributes.get(HOST_LOOKUPS_ATTR)
    if attr is None:
        return []
    if not isinstance(attr, ArrayAttr):
        raise ChiplexError(f"module attribute {HOST_LOOKUPS_ATTR} must be an array, got {attr}")
    return [HostLookup.from_attr(a) for a in attr.data]


def record_host_lookups(module: ModuleOp, lookups: Sequence[HostLookup]) -> None:
    existing = host_lookups(module)
    module.attributes[HOST_LOOKUPS_ATTR] = ArrayAttr(
        [x.to_attr() for x in existing + list(lookups)]
    )


def host_inputs(
    lookups: Sequence[HostLookup],
    inputs: Sequence[np.ndarray],
    parameters: Mapping[str, np.ndarray],
    apply_view: object,
) -> list[np.ndarray]:
    """The arguments the host appends: `table[ids]` for each lookup, in argument order.

    `inputs` are the original arguments; `apply_view(data, view)` applies a param's torch_view
    (the interpreter's, passed in so this module needs no interpreter import)."""
    out = list(inputs)
    for lookup in sorted(lookups, key=lambda x: x.arg):
        if lookup.table not in parameters:
            raise ChiplexError(
                f"the host looks up rows of table '{lookup.table}' ({lookup.table_type}): "
                "supply it with the parameters"
            )
        table = np.asarray(parameters[lookup.table])
        if lookup.torch_view is not None:
            table = apply_view(table, lookup.torch_view)  # type: ignore[operator]
        ids = np.asarray(out[lookup.ids])
        if ids.size and (ids.min() < 0 or ids.max() >= table.shape[0]):
            raise ChiplexError(
                f"host lookup of '{lookup.table}': ids outside 0..{table.shape[0] - 1} "
                f"(min {ids.min()}, max {ids.max()})"
            )
        if lookup.arg != len(out):
            raise ChiplexError(
                f"module attribute {HOST_LOOKUPS_ATTR}: argument {lookup.arg} expected after "
                f"{len(out)} arguments"
            )
        out.append(table[ids])
    return out


def describe(lookups: Sequence[HostLookup], samples_per_microbatch: int) -> list[str]:
    """One line per lookup for the compile summary: what moved, why, what the host now sends."""
    lines = []
    for x in lookups:
        shape = "x".join(map(str, x.table_type.get_shape()))
        rows = "x".join(map(str, x.rows_type.get_shape()))
        per_sample = x.rows_bytes / max(samples_per_microbatch, 1)
        lines.append(
            f"host lookup: table '{x.table}' ({shape} {x.table_type.get_element_type()}, "
            f"{x.table_bytes / 2**20:.2f} MiB) stays on the host, which gathers the rows of "
            f"input {x.ids} and sends them as input {x.arg} ({rows} "
            f"{x.rows_type.get_element_type()}): {per_sample / 1024:.1f} KiB per sample "
            "(the simulator does not model host input traffic)"
        )
    return lines
