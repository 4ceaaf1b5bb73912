"""Property tests of the solver layer against the checker (the oracle) and brute force.

- repair's output always passes the checker; a legal candidate comes back unchanged;
- on tiny instances (<= 8 ops, <= 3 chips) exact repair moves exactly the brute-force minimum of ops
  (ties: total distance) and optimize reaches the brute-force optimum, both proved;
- the MiniZinc model and the checker agree on which rules a random placement breaks;
- explain is empty exactly when brute force finds a legal placement;
- the implied bounds handed to the models never exclude a legal placement.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chiplex.ir.graph import Graph
from chiplex.targets import heuristics, solver
from chiplex.targets.legality import check_placement, is_legal, resolve_rules
from chiplex.targets.period_model import period_model
from chiplex.targets.target import Target
from chiplex.testing import graph_and_target, placements

pytestmark = pytest.mark.skipif(not solver.minizinc_available(), reason="MiniZinc is not installed")

QUICK = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""numpy-only properties: cheap, many examples."""
SOLVER = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""Properties calling MiniZinc (0.05-0.3 s a call on these sizes)."""


def legal_placements(graph: Graph, target: Target) -> np.ndarray:
    """Every legal placement, by brute force (tiny instances only)."""
    rules = resolve_rules(graph, target)
    found = [
        p
        for p in itertools.product(range(target.num_chips), repeat=graph.num_nodes)
        if is_legal(graph, target, np.array(p), rules)
    ]
    return np.array(found, dtype=np.int64).reshape(-1, graph.num_nodes)


@QUICK
@given(graph_and_target(max_ops=40, max_chips=8), st.data())
def test_repair_is_always_legal(case: tuple[Graph, Target], data: st.DataObject) -> None:
    graph, target = case
    candidate = data.draw(placements(graph, target))
    result = solver.repair(graph, target, candidate, time_limit=5)
    assert check_placement(graph, target, result.placement) == []
    assert result.changed == int((result.placement != candidate).sum())
    assert result.distance == int(np.abs(result.placement - candidate).sum())


@QUICK
@given(graph_and_target(max_ops=40, max_chips=8), st.data())
def test_a_legal_candidate_is_returned_unchanged(
    case: tuple[Graph, Target], data: st.DataObject
) -> None:
    graph, target = case
    candidate = solver.repair(graph, target, data.draw(placements(graph, target))).placement
    again = solver.repair(graph, target, candidate, exact=data.draw(st.booleans()))
    assert again.method == "unchanged" and again.changed == 0
    assert np.array_equal(again.placement, candidate)


@SOLVER
@given(graph_and_target(max_ops=8, max_chips=3), st.data())
def test_exact_repair_moves_the_brute_force_minimum(
    case: tuple[Graph, Target], data: st.DataObject
) -> None:
    graph, target = case
    candidate = data.draw(placements(graph, target))
    legal = legal_placements(graph, target)
    assert len(legal), "graph_and_target promises a legal placement"
    changed = (legal != candidate).sum(axis=1)
    distance = np.abs(legal - candidate).sum(axis=1)
    best = min(zip(changed.tolist(), distance.tolist(), strict=True))
    result = solver.repair(graph, target, candidate, exact=True, time_limit=10)
    assert result.proved_optimal
    assert (result.changed, result.distance) == best
    assert is_legal(graph, target, result.placement)


@SOLVER
@given(graph_and_target(max_ops=8, max_chips=3))
def test_optimize_reaches_the_brute_force_optimum(case: tuple[Graph, Target]) -> None:
    graph, target = case
    legal = legal_placements(graph, target)
    model = period_model(graph, target)  # cp's objective: dp's stage model
    periods = [model.period(p) for p in legal]
    result = solver.optimize(graph, target, time_limit=10)
    assert result.proved_optimal and is_legal(graph, target, result.placement)
    # Times are integers in units of total/2^30 inside the model: rounding is below 1e-6 relative.
    assert result.period_s == pytest.approx(min(periods), rel=1e-6)
    assert result.bound_s == pytest.approx(result.period_s, rel=1e-6)


@SOLVER
@given(graph_and_target(max_ops=16, max_chips=5, feasible=False), st.data())
def test_the_model_and_the_checker_agree(case: tuple[Graph, Target], data: st.DataObject) -> None:
    graph, target = case
    placement = data.draw(placements(graph, target))
    checker = list(dict.fromkeys(v.rule for v in check_placement(graph, target, placement)))
    assert solver.check_with_minizinc(graph, target, placement) == checker


@SOLVER
@given(graph_and_target(max_ops=7, max_chips=3, feasible=False))
def test_explain_is_empty_exactly_when_a_legal_placement_exists(case: tuple[Graph, Target]) -> None:
    graph, target = case
    exists = len(legal_placements(graph, target)) > 0
    messages = solver.explain(graph, target, time_limit=10)
    assert (messages == []) == exists, messages


@QUICK
@given(graph_and_target(max_ops=30, max_chips=6), st.data())
def test_implied_bounds_keep_every_legal_placement(
    case: tuple[Graph, Target], data: st.DataObject
) -> None:
    graph, target = case
    rules = resolve_rules(graph, target)
    problem = heuristics.problem_for(graph, rules)
    legal = solver.repair(graph, target, data.draw(placements(graph, target)), rules=rules)
    lower, upper = solver.implied_bounds(problem, solver.ALL_ACTIVE)
    assert (lower <= legal.placement).all() and (legal.placement <= upper).all()
