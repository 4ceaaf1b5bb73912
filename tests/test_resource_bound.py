"""The proved resource bound (`chiplex.targets.resource_bound`): the MIP's optimum is the true minimum of
the serialised-resource period over legal placements (brute force on small graphs), and the simulator
never runs a placement faster in steady state than its resources allow."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from chiplex.ir.graph import Graph
from chiplex.runtime_sim.evaluate import Evaluator
from chiplex.targets.legality import chip_memory, is_legal
from chiplex.targets.resource_bound import min_resource_period, resource_period
from chiplex.testing import nn_graph, target_for


def small_graph(seed: int, num_ops: int) -> Graph:
    rng = np.random.default_rng(seed)
    return nn_graph(lambda lo, hi: int(rng.integers(lo, hi + 1)), num_ops, name=f"g{seed}")


def monotone_placements(graph: Graph, num_chips: int) -> list[np.ndarray]:
    """Every placement with chip(u) <= chip(v) on every edge (brute force)."""
    grid = np.array(list(itertools.product(range(num_chips), repeat=graph.num_nodes)))
    forward = (grid[:, graph.src] <= grid[:, graph.dst]).all(axis=1)
    return list(grid[forward])


@pytest.mark.parametrize(("seed", "num_ops", "num_chips"), [(0, 8, 3), (1, 9, 3), (2, 7, 4)])
@pytest.mark.parametrize("memory", [False, True])
def test_the_mip_minimises_the_resource_period_exactly(
    seed: int, num_ops: int, num_chips: int, memory: bool
) -> None:
    graph = small_graph(seed, num_ops)
    target = target_for(graph, num_chips, slack=1.3)
    candidates = monotone_placements(graph, num_chips)
    if memory:
        capacity = target.chip.capacity_bytes
        buffers = target.chip.buffers_per_edge
        candidates = [
            p
            for p in candidates
            if (chip_memory(graph, p, num_chips, buffers).total <= capacity).all()
        ]
    best = min(resource_period(graph, target, p) for p in candidates)
    bound = min_resource_period(graph, target, time_limit=30, memory=memory)
    assert bound.proved_optimal
    # The dual bound is a lower bound of every placement's period and (proved optimal) tight.
    assert bound.period_s <= best * (1 + 1e-9)
    assert bound.period_s == pytest.approx(best, rel=1e-5)
    assert bound.placement is not None
    assert resource_period(graph, target, bound.placement) == pytest.approx(best, rel=1e-5)


def test_the_simulator_is_never_faster_than_the_resources_in_steady_state() -> None:
    graph = small_graph(3, 12)
    target = target_for(graph, 3, slack=1.5)
    bound = min_resource_period(graph, target, time_limit=30)
    evaluator = Evaluator(graph, target)
    rng = np.random.default_rng(0)
    legal = [p for p in monotone_placements(graph, 3) if is_legal(graph, target, p)]
    assert bound.placement is not None and len(legal) > 10
    chosen = [bound.placement] + [legal[i] for i in rng.choice(len(legal), 10, replace=False)]
    for placement in chosen:
        result = evaluator(placement, 64)
        assert result.ok and not result.repaired
        # The simulator reports the steady state (the drain at the end left out): no slack needed.
        steady = graph.samples_per_microbatch / resource_period(graph, target, placement)
        assert result.throughput <= steady * (1 + 1e-9)
        assert result.throughput <= bound.throughput * (1 + 1e-9)
