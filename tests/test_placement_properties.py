"""Property tests of the core placement contract: dp is always legal when a legal placement exists, and
the checker catches every rule broken by hand."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chiplex.ir.graph import Graph
from chiplex.passes.strategies import place_dp, place_greedy
from chiplex.targets.heuristics import first_fit_packing, problem_for
from chiplex.targets.legality import check_placement, chip_memory, resolve_rules
from chiplex.targets.target import Target, TargetRules
from chiplex.testing import graph_and_target

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(graph_and_target(max_ops=40, max_chips=6))
def test_dp_is_legal_whenever_a_legal_placement_exists(case: tuple[Graph, Target]) -> None:
    graph, target = case
    placement = place_dp(graph, target)
    assert check_placement(graph, target, placement) == []


@PROPERTY
@given(graph_and_target(max_ops=40, max_chips=6))
def test_greedy_is_legal_whenever_a_legal_placement_exists(case: tuple[Graph, Target]) -> None:
    graph, target = case
    assert check_placement(graph, target, place_greedy(graph, target)) == []


def rules_of(graph: Graph, target: Target, placement: np.ndarray) -> set[str]:
    return {v.rule for v in check_placement(graph, target, placement)}


def with_rules(target: Target, **rules: object) -> Target:
    return dataclasses.replace(target, rules=TargetRules(**rules))  # type: ignore[arg-type]


@PROPERTY
@given(
    graph_and_target(min_ops=2, max_ops=30, min_chips=2, max_chips=6, with_rules=False), st.data()
)
def test_the_checker_catches_every_hand_broken_rule(
    case: tuple[Graph, Target], data: st.DataObject
) -> None:
    graph, target = case
    legal = place_dp(graph, target)
    assert check_placement(graph, target, legal) == []
    k, n = target.num_chips, graph.num_nodes
    node = data.draw(st.integers(0, n - 1))

    broken = legal.copy()
    broken[node] = data.draw(st.sampled_from([-1, k, k + 3]))
    assert "chip-range" in rules_of(graph, target, broken)

    if graph.num_edges:
        edge = data.draw(st.integers(0, graph.num_edges - 1))
        u, v = int(graph.src[edge]), int(graph.dst[edge])
        backwards = legal.copy()
        backwards[u], backwards[v] = max(legal[v], 1), min(legal[u], max(legal[v], 1) - 1)
        assert "acyclic-dataflow" in rules_of(graph, target, backwards)

    used = int(legal.max())
    if used + 1 < k:
        gap = data.draw(st.integers(0, used))
        skipped = np.where(legal >= gap, legal + 1, legal)
        assert "no-skipping-chips" in rules_of(graph, target, skipped)

    memory = chip_memory(graph, legal, k, target.chip.buffers_per_edge).total
    if memory.max() > 1:
        small = dataclasses.replace(
            target,
            chip=dataclasses.replace(target.chip, sram_bytes=int(memory.max()) - 1, dram_bytes=0),
        )
        assert "memory" in rules_of(graph, small, legal)

    spans = legal[graph.dst] - legal[graph.src]
    if graph.num_edges and spans.max() > 0:
        tight = with_rules(target, max_hop_span=int(spans.max()) - 1)
        assert "hop-span" in rules_of(graph, tight, legal)

    elsewhere = (int(legal[node]) + 1) % k
    pinned = with_rules(target, pinned=((graph.op_names[node], elsewhere),))
    assert "pinned" in rules_of(graph, pinned, legal)
    assert "pinned" not in rules_of(
        graph, with_rules(target, pinned=((graph.op_names[node], int(legal[node])),)), legal
    )

    apart = np.flatnonzero(legal != legal[node])
    if len(apart):
        other = int(apart[0])
        group = with_rules(target, colocated=((graph.op_names[node], graph.op_names[other]),))
        assert "colocated" in rules_of(graph, group, legal)


@PROPERTY
# Memory packing only: since the kit draws pins and colocation off the block cuts, a packing that
# honours them need not be monotone first fit.
@given(graph_and_target(max_ops=30, max_chips=6, with_rules=False))
def test_first_fit_packing_fits_each_chip_and_is_first_fit(case: tuple[Graph, Target]) -> None:
    graph, target = case
    capacity = target.chip.capacity_bytes
    packing = first_fit_packing(problem_for(graph, resolve_rules(graph, target)))
    if packing is None:
        # Only when some op cannot sit on a chip even with its inputs from elsewhere.
        alone = [
            chip_memory(
                graph,
                np.where(np.arange(graph.num_nodes) == v, 0, 1),
                2,
                target.chip.buffers_per_edge,
            ).total[0]
            for v in range(graph.num_nodes)
        ]
        assert max(alone) > capacity
        return
    chips = int(packing.max()) + 1
    assert (np.diff(packing) >= 0).all() and set(packing.tolist()) == set(range(chips))
    buffers = target.chip.buffers_per_edge
    assert (chip_memory(graph, packing, chips, buffers).total <= capacity).all()
    # First fit: the first op of every later chip would overflow the chip before it.
    for chip in range(1, chips):
        first = int(np.flatnonzero(packing == chip)[0])
        moved = packing.copy()
        moved[first] = chip - 1
        assert chip_memory(graph, moved, chips, buffers).total[chip - 1] > capacity
