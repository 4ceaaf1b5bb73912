"""Helpers shared by the chiplex passes: the target of a module, its graph, its placement, and the
op rewriting the tiling passes share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
from xdsl.dialects.builtin import ModuleOp, StringAttr, TensorType
from xdsl.ir import Operation, SSAValue

from chiplex.errors import ChiplexError
from chiplex.ir.graph import Graph
from chiplex.ir.mcm import get_chip
from chiplex.targets.target import Target, load_target

TARGET_ATTR = "mcm.target"
"""Module attribute naming the target (preset or TOML path) once `annotate-costs` has run."""


def resolve_target(module: ModuleOp, option: str | None, pass_name: str) -> Target:
    """The pass option wins; otherwise the target recorded on the module by `annotate-costs`."""
    name = option
    if not name:
        attr = module.attributes.get(TARGET_ATTR)
        if not isinstance(attr, StringAttr):
            raise ChiplexError(
                f"{pass_name}: no target: pass target=NAME or run annotate-costs{{target=NAME}} first"
            )
        name = attr.data
    return load_target(name)


def placement_of(graph: Graph, pass_name: str) -> np.ndarray:
    chips = [get_chip(op) for op in graph.ops]
    missing = [graph.op_names[i] for i, chip in enumerate(chips) if chip is None]
    if missing:
        raise ChiplexError(
            f"{pass_name}: {len(missing)} ops have no mcm.chip (first: {missing[0]}); run place first"
        )
    return np.array(chips, dtype=np.int64)


def resized(t: TensorType, axis: int, size: int) -> TensorType:
    """`t` with dimension `axis` set to `size`."""
    shape = list(t.get_shape())
    shape[axis] = size
    return TensorType(t.get_element_type(), shape)


def clone_resized(
    old: Operation, operands: Sequence[SSAValue], axis: int, size: int, suffix: str
) -> Operation:
    """`old` on other operands (a tile of its inputs), its result's `axis` resized to `size`, its SSA
    name `<old's>.<suffix>`; the caller inserts it."""
    new = type(old).create(
        operands=list(operands),
        result_types=[resized(cast(TensorType, old.results[0].type), axis, size)],
        properties=dict(old.properties),
        attributes=dict(old.attributes),
    )
    hint = old.results[0].name_hint
    new.results[0].name_hint = f"{hint}.{suffix}" if hint else None
    return new
