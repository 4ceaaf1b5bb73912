"""What a legal placement is: the checker, the oracle every solver and search is tested against.

A placement is an int array mapping each graph node to a chip in pipeline order 0..K-1. The rules, with
the one name each carries everywhere (checker messages, MiniZinc constraint items, docs):

- `chip-range`         every op sits on a chip 0..K-1
- `acyclic-dataflow`   for every edge u -> v, chip(u) <= chip(v)
- `no-skipping-chips`  the chips in use are 0..m with none empty inside the range
- `memory`             per chip: weights + receive buffers + the largest op working set <= capacity
- `hop-span`           for every edge, chip(v) - chip(u) <= the target's max_hop_span (when set)
- `pinned`             ops the target pins to a chip sit on it
- `colocated`          ops the target groups together share a chip

Memory of chip c (a conservative model the MiniZinc model, dp and the repair heuristic share; its data
comes from `memory_data`, one place):
    weights(c)        bytes of every param (nn.param / nn.constant) read by an op on c, each param once
                      per chip however many of the chip's ops read it (`chip_weights`)
  + receive(c)        buffers_per_edge x the output_bytes of every op u off c that has a consumer on c
                      (once per u; the target's `[chip] buffers_per_edge`, 2 = double buffering)
  + working_set(c)    max over ops v on c of (activation input bytes + output bytes of v)
"""

from __future__ import annotations

import difflib
import fnmatch
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from chiplex.errors import ChiplexError, ChiplexWarning
from chiplex.ir.graph import Graph
from chiplex.targets.target import Target

RULES = (
    "chip-range",
    "acyclic-dataflow",
    "no-skipping-chips",
    "memory",
    "hop-span",
    "pinned",
    "colocated",
)


def format_bytes(nbytes: float) -> str:
    """Bytes for messages: MiB from 1 MiB up, KiB from 1 KiB up, else bytes."""
    nbytes = float(nbytes)
    if nbytes >= 2**20:
        return f"{nbytes / 2**20:.2f} MiB"
    if nbytes >= 2**10:
        return f"{nbytes / 2**10:.2f} KiB"
    return f"{int(nbytes)} B"


def bytes_apart(smaller: float, larger: float) -> tuple[str, str]:
    """`format_bytes` of both, with exact byte counts when the rounded sizes would read the same
    (a chip that needs "0.04 MiB" against a capacity of "0.04 MiB" says by how much)."""
    a, b = format_bytes(smaller), format_bytes(larger)
    if a == b and smaller != larger:
        return f"{a} ({int(smaller):,} B)", f"{b} ({int(larger):,} B)"
    return a, b


@dataclass(frozen=True)
class Violation:
    """One broken rule, as data: the rule's name, a message in words, the ops (graph node indices and
    their names), the chips and the numbers involved (`memory`: needed, capacity, weights, receive,
    working_set; `hop-span`: span, max_hop_span)."""

    rule: str
    message: str
    ops: tuple[int, ...] = ()
    chips: tuple[int, ...] = ()
    numbers: dict[str, float] = field(default_factory=dict)
    op_names: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"[{self.rule}] {self.message}"


@dataclass(frozen=True, eq=False)
class PlacementRules:
    """The target's rules resolved against one graph."""

    num_chips: int
    capacity_bytes: int
    max_hop_span: int | None
    pinned: np.ndarray
    """int[n]: the chip an op is pinned to, or -1."""
    colocated: tuple[np.ndarray, ...]
    """Groups of node indices that must share a chip."""
    buffers_per_edge: int = 2
    """Receive buffers per value arriving from another chip (the target's `[chip] buffers_per_edge`)."""


class RuleWarning(ChiplexWarning):
    """A target rule's op-name glob matches nothing in the graph being placed."""


def resolve_rules(graph: Graph, target: Target) -> PlacementRules:
    """Match the target's op-name globs against node names (with or without the SSA name's `%`)
    and the params each node reads. A glob that matches nothing is a RuleWarning: one target file
    serves many models, so it is not an error, but a typo would otherwise go unnoticed."""

    def matches(pattern: str, node: int) -> bool:
        op_name = graph.op_names[node]
        names = (op_name, op_name.removeprefix("%"), *graph.param_names[node])
        return any(fnmatch.fnmatchcase(name, pattern) for name in names)

    def nodes_of(pattern: str, table: str) -> list[int]:
        found = [node for node in range(graph.num_nodes) if matches(pattern, node)]
        if not found and graph.num_nodes:
            warnings.warn(
                f"target {target.name}: [rules] {table} pattern {pattern!r} matches no op or "
                f"parameter of {graph.name} (op names look like "
                f"{graph.op_names[0].removeprefix('%')!r})",
                RuleWarning,
                stacklevel=3,
            )
        return found

    pinned = np.full(graph.num_nodes, -1, dtype=np.int64)
    for pattern, chip in target.rules.pinned:
        pinned[nodes_of(pattern, "pinned")] = chip
    groups = []
    for group in target.rules.colocated:
        members = sorted({n for p in group for n in nodes_of(p, "colocated")})
        if len(members) > 1:
            groups.append(np.array(members, dtype=np.int64))
    return PlacementRules(
        num_chips=target.num_chips,
        capacity_bytes=target.chip.capacity_bytes,
        max_hop_span=target.rules.max_hop_span,
        pinned=pinned,
        colocated=tuple(groups),
        buffers_per_edge=target.chip.buffers_per_edge,
    )


@dataclass(frozen=True)
class ChipMemory:
    weights: np.ndarray
    receive: np.ndarray
    working_set: np.ndarray
    working_set_op: np.ndarray
    """The op with the largest working set per chip (-1 for an empty chip)."""

    @property
    def total(self) -> np.ndarray:
        return self.weights + self.receive + self.working_set


@dataclass(frozen=True)
class MemoryData:
    """The memory rule's data, computed in one place for every implementation of the rule (the checker,
    the MiniZinc models, dp, the repair heuristic): a chip's memory is the sum of `weight` over its ops,
    plus `shared_bytes[s]` once if any of `shared_readers[s]` is on it, plus `receive[u]` once per op u
    off the chip with a consumer on it, plus the largest `working_set` of its ops."""

    weight: np.ndarray
    """int64[n]: bytes of the params only this op reads."""
    receive: np.ndarray
    """int64[n]: the receive buffers a consumer chip reserves for this op's result
    (output bytes x buffers per edge)."""
    working_set: np.ndarray
    """int64[n]: activation inputs + output while the op runs."""
    shared_bytes: np.ndarray
    """int64[s]: bytes of each param read by two or more ops."""
    shared_readers: tuple[np.ndarray, ...]
    """The ops reading each shared param (ascending)."""


def memory_data(graph: Graph, buffers_per_edge: int) -> MemoryData:
    _, shared_bytes, pairs = graph.shared_params
    order = np.lexsort((pairs[1], pairs[0]))
    params, nodes = pairs[0][order], pairs[1][order]
    splits = np.flatnonzero(np.diff(params)) + 1
    readers = tuple(np.split(nodes.astype(np.int64), splits)) if len(params) else ()
    return MemoryData(
        weight=graph.private_weight_bytes.astype(np.int64),
        receive=graph.output_bytes.astype(np.int64) * int(buffers_per_edge),
        working_set=graph.working_set_bytes.astype(np.int64),
        shared_bytes=shared_bytes.astype(np.int64),
        shared_readers=readers,
    )


def chip_weights(graph: Graph, placement: np.ndarray, num_chips: int) -> np.ndarray:
    """int64[K]: bytes of params stored on each chip, every param once per chip that has a reader of it
    (the one place the memory rule's weight term is computed from a placement)."""
    placement = np.asarray(placement, dtype=np.int64)
    if not len(graph.read_node):
        return np.zeros(num_chips, dtype=np.int64)
    num_params = max(len(graph.param_bytes), 1)
    keys = np.unique(placement[graph.read_node] * num_params + graph.read_param)
    chips, params = keys // num_params, keys % num_params
    return np.bincount(chips, weights=graph.param_bytes[params], minlength=num_chips)[
        :num_chips
    ].astype(np.int64)


def chip_memory(
    graph: Graph, placement: np.ndarray, num_chips: int, buffers_per_edge: int = 2
) -> ChipMemory:
    """Per-chip memory under the rule; pass the target's `chip.buffers_per_edge`."""
    placement = np.asarray(placement, dtype=np.int64)
    weights = chip_weights(graph, placement, num_chips)
    crossing = placement[graph.src] != placement[graph.dst]
    receive = np.zeros(num_chips, dtype=np.float64)
    if crossing.any():
        pairs = np.unique(
            np.stack([graph.src[crossing], placement[graph.dst[crossing]]], axis=1), axis=0
        )
        np.add.at(receive, pairs[:, 1], graph.output_bytes[pairs[:, 0]] * buffers_per_edge)
    working = graph.working_set_bytes
    working_set = np.zeros(num_chips, dtype=np.float64)
    working_op = np.full(num_chips, -1, dtype=np.int64)
    order = np.lexsort((-working, placement))  # per chip, largest working set first
    first = np.ones(len(order), dtype=bool)
    first[1:] = placement[order][1:] != placement[order][:-1]
    for node in order[first]:
        working_set[placement[node]] = working[node]
        working_op[placement[node]] = node
    return ChipMemory(
        weights.astype(np.int64), receive.astype(np.int64), working_set.astype(np.int64), working_op
    )


Placement = np.ndarray | Sequence[int] | Mapping[str, int]
"""An int array (op index -> chip), a list of chips, or a dict of op name -> chip."""


def placement_array(graph: Graph, placement: Placement) -> np.ndarray:
    """`placement` as an int64 array indexed like the graph's nodes. A mapping names every op (as
    `graph.op_names` writes it, with or without a leading `%`) with its chip; an unknown or a missing
    name is a ChiplexError that says which."""
    if not isinstance(placement, Mapping):
        return np.asarray(placement, dtype=np.int64)
    index = {name: node for node, name in enumerate(graph.op_names)}
    index.update({name.removeprefix("%"): node for name, node in list(index.items())})
    out = np.full(graph.num_nodes, -1, dtype=np.int64)
    placed: set[int] = set()
    unknown = []
    for name, chip in placement.items():
        node = index.get(name, index.get(str(name).removeprefix("%")))
        if node is None:
            unknown.append(name)
            continue
        if isinstance(chip, bool) or not isinstance(chip, (int, np.integer)):
            raise ChiplexError(f"placement: op {name!r} maps to {chip!r}, not a chip number")
        out[node] = chip
        placed.add(node)
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), list(index), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ChiplexError(
            f"placement names {len(unknown)} op{'s' if len(unknown) > 1 else ''} that "
            f"{graph.name} does not have: {', '.join(map(repr, unknown[:6]))}{hint}; its ops are "
            f"{', '.join(graph.op_names[:4])}{', ...' if graph.num_nodes > 4 else ''}"
        )
    missing = [graph.op_names[node] for node in range(graph.num_nodes) if node not in placed]
    if missing:
        raise ChiplexError(
            f"placement gives no chip for {len(missing)} of the {graph.num_nodes} ops of "
            f"{graph.name}: {', '.join(missing[:6])}{', ...' if len(missing) > 6 else ''}"
        )
    return out


def check_placement(
    graph: Graph,
    target: Target,
    placement: Placement,
    rules: PlacementRules | None = None,
    *,
    limit_per_rule: int = 20,
) -> list[Violation]:
    """Every violated rule, with the ops, chips and numbers involved; empty when legal. `placement`
    is an array (op index -> chip) or a dict of op name -> chip (`placement_array`)."""
    rules = rules or resolve_rules(graph, target)
    placement = placement_array(graph, placement)
    names = graph.op_names
    k = rules.num_chips
    out: list[Violation] = []
    if placement.shape != (graph.num_nodes,):
        return [
            Violation(
                "chip-range",
                f"placement has {placement.shape[0] if placement.ndim else 0} entries for "
                f"{graph.num_nodes} ops",
            )
        ]
    bad = np.flatnonzero((placement < 0) | (placement >= k))
    for node in bad[:limit_per_rule]:
        out.append(
            Violation(
                "chip-range",
                f"op {names[node]} is on chip {placement[node]}, but the target has chips 0..{k - 1}",
                (int(node),),
                (int(placement[node]),),
            )
        )
    if len(bad):
        return out  # the other rules are meaningless with chips out of range

    pu, pv = placement[graph.src], placement[graph.dst]
    for e in np.flatnonzero(pu > pv)[:limit_per_rule]:
        u, v = int(graph.src[e]), int(graph.dst[e])
        out.append(
            Violation(
                "acyclic-dataflow",
                f"edge {names[u]} -> {names[v]} flows backwards from chip {pu[e]} to chip {pv[e]}",
                (u, v),
                (int(pu[e]), int(pv[e])),
            )
        )

    used = np.bincount(placement, minlength=k)
    if graph.num_nodes:
        last = int(placement.max())
        empty = [c for c in range(last + 1) if used[c] == 0]
        if empty:
            out.append(
                Violation(
                    "no-skipping-chips",
                    f"{'chips' if len(empty) > 1 else 'chip'} {', '.join(map(str, empty))} "
                    f"{'are' if len(empty) > 1 else 'is'} empty inside the used range 0..{last}",
                    (),
                    tuple(empty),
                )
            )

    memory = chip_memory(graph, placement, k, rules.buffers_per_edge)
    for c in np.flatnonzero(memory.total > rules.capacity_bytes)[:limit_per_rule]:
        c = int(c)
        ws_op = int(memory.working_set_op[c])
        capacity, needs = bytes_apart(rules.capacity_bytes, memory.total[c])
        out.append(
            Violation(
                "memory",
                f"chip {c} needs {needs} (weights {format_bytes(memory.weights[c])} + receive "
                f"buffers {format_bytes(memory.receive[c])} ({rules.buffers_per_edge} per edge) + "
                f"working set {format_bytes(memory.working_set[c])} of {names[ws_op]}) > capacity "
                f"{capacity}",
                (ws_op,),
                (c,),
                {
                    "needed": float(memory.total[c]),
                    "capacity": float(rules.capacity_bytes),
                    "weights": float(memory.weights[c]),
                    "receive": float(memory.receive[c]),
                    "working_set": float(memory.working_set[c]),
                },
            )
        )

    if rules.max_hop_span is not None:
        span = pv - pu
        for e in np.flatnonzero(span > rules.max_hop_span)[:limit_per_rule]:
            u, v = int(graph.src[e]), int(graph.dst[e])
            out.append(
                Violation(
                    "hop-span",
                    f"edge {names[u]} -> {names[v]} spans {span[e]} chips ({pu[e]} -> {pv[e]}), "
                    f"more than the target's max_hop_span {rules.max_hop_span}",
                    (u, v),
                    (int(pu[e]), int(pv[e])),
                    {"span": float(span[e]), "max_hop_span": float(rules.max_hop_span)},
                )
            )

    wrong = np.flatnonzero((rules.pinned >= 0) & (placement != rules.pinned))
    for node in wrong[:limit_per_rule]:
        out.append(
            Violation(
                "pinned",
                f"op {names[node]} is pinned to chip {rules.pinned[node]} but placed on chip "
                f"{placement[node]}",
                (int(node),),
                (int(rules.pinned[node]), int(placement[node])),
            )
        )

    for group in rules.colocated:
        chips = sorted(set(placement[group].tolist()))
        if len(chips) > 1:
            out.append(
                Violation(
                    "colocated",
                    f"ops {', '.join(names[g] for g in group[:6])} must share a chip but sit on "
                    f"chips {', '.join(map(str, chips))}",
                    tuple(int(g) for g in group),
                    tuple(chips),
                )
            )
    return [replace(v, op_names=tuple(names[op] for op in v.ops)) for v in out]


def is_legal(
    graph: Graph, target: Target, placement: Placement, rules: PlacementRules | None = None
) -> bool:
    return not check_placement(graph, target, placement, rules, limit_per_rule=1)
