"""The order-encoded MIP (`order-mip`) against the MiniZinc model of record and the Python checker.

`chiplex.targets.order_mip` restates legality.mzn's rules in the order encoding; these tests hold it to
the .mzn model and the checker:
- every legal placement is a solution of the MIP (its implied gaps and bounds cut off nothing legal),
  and a placement the checker rejects is not (on random instances with shared params and target rules);
- its proved repair optimum equals the one Gecode proves from repair.mzn, on instances too large for
  brute force, and its feasibility answer equals Gecode's on satisfy.mzn, including infeasible ones;
- an infeasible instance is proved so with a reason in chips and MiB, and a claim is never false;
- the race of two HiGHS settings (`order-mip-race`) proves the same optima, and claims a proof only
  when one child proved it or the larger bound meets the better incumbent.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chiplex.ir.graph import Graph
from chiplex.targets import flatzinc, heuristics, order_mip, solver
from chiplex.targets.legality import RULES, chip_memory, is_legal, resolve_rules
from chiplex.targets.target import Target
from chiplex.testing import (
    graph_and_target,
    nn_graph,
    placements,
    target_for,
    transformer_graph,
    with_capacity,
)

pytestmark = pytest.mark.skipif(not solver.minizinc_available(), reason="MiniZinc is not installed")
FEW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def repair_data(graph: Graph, target: Target, candidate: np.ndarray) -> dict[str, object]:
    problem = heuristics.problem_for(graph, resolve_rules(graph, target))
    data, _ = solver._base_data(problem, active=solver.ALL_ACTIVE)
    data.update(
        candidate=candidate.tolist(),
        guide=np.clip(candidate, 0, target.num_chips - 1).tolist(),
        change_weight=heuristics.change_weight(problem, candidate),
        distance_weight=1,
        objective_limit=solver.INT_LIMIT,
        improve_only=False,
    )
    return data


def violated_rows(model: order_mip.OrderModel, placement: np.ndarray) -> int:
    """Rows and column bounds the placement (with its auxiliaries completed) breaks."""
    values = order_mip.start_values(model, placement)
    rows = model.rows
    if not rows.count:
        return 0
    row_of, cols = np.concatenate(rows.rows), np.concatenate(rows.cols)
    activity = np.bincount(
        row_of, weights=np.concatenate(rows.vals) * values[cols], minlength=rows.count
    )
    bad = (activity < np.concatenate(rows.lower) - 1e-6) | (
        activity > np.concatenate(rows.upper) + 1e-6
    )
    off = (values < model.col_lower - 1e-9) | (values > model.col_upper + 1e-9)
    return int(bad.sum() + off.sum())


@FEW
@given(graph_and_target(min_ops=2, max_ops=30, max_chips=6), st.data())
def test_the_mip_admits_exactly_the_legal_placements(
    case: tuple[Graph, Target], data: st.DataObject
) -> None:
    graph, target = case
    placement = np.clip(data.draw(placements(graph, target)), 0, target.num_chips - 1)
    model = order_mip.build("satisfy.mzn", repair_data(graph, target, placement))
    legal = is_legal(graph, target, placement)
    assert (not model.infeasible and violated_rows(model, placement) == 0) == legal


@FEW
@given(graph_and_target(min_ops=8, max_ops=24, max_chips=5), st.data())
def test_the_mip_and_gecode_prove_the_same_repair(
    case: tuple[Graph, Target], data: st.DataObject
) -> None:
    graph, target = case
    candidate = data.draw(placements(graph, target))
    answers = {}
    for backend in ("order-mip", "order-mip-race", "gecode"):
        result = solver.repair(graph, target, candidate, exact=True, time_limit=30, solver=backend)
        assert is_legal(graph, target, result.placement), backend
        answers[backend] = (result.changed, result.distance, result.proved_optimal)
    if all(proved for _, _, proved in answers.values()):
        assert answers["order-mip"] == answers["order-mip-race"] == answers["gecode"]


@FEW
@given(graph_and_target(min_ops=4, max_ops=24, max_chips=5, feasible=False))
def test_the_mip_and_gecode_decide_feasibility_alike(case: tuple[Graph, Target]) -> None:
    graph, target = case
    problem = heuristics.problem_for(graph, resolve_rules(graph, target))
    if solver._cheap_checks(problem, "SRAM"):
        return  # decided before any solver runs
    every_rule = frozenset(RULES)
    mip = solver._satisfiable(problem, every_rule, 30, "order-mip")
    gecode = solver._satisfiable(problem, every_rule, 30, "gecode")
    assert mip is not None and gecode is not None
    assert mip == gecode


def test_an_infeasible_instance_is_proved_with_its_reason() -> None:
    # 60 ops whose weights and one working set fit 4 chips in total, but not spread over 4 chips.
    graph = transformer_graph(60, seed=0)
    capacity = (int(graph.weight_bytes.sum()) + int(graph.working_set_bytes.max())) // 4 + 1
    target = with_capacity(target_for(graph, 4), capacity)
    messages = solver.explain(graph, target, time_limit=20, solver="order-mip")
    assert len(messages) == 1 and "4 chips hold at most" in messages[0], messages
    assert "MiB" in messages[0] or "KiB" in messages[0]
    with pytest.raises(solver.InfeasibleError, match="can hold more than"):
        solver.repair(
            graph, target, np.zeros(graph.num_nodes, dtype=np.int64), exact=True, solver="order-mip"
        )


@FEW
@given(graph_and_target(min_ops=8, max_ops=30, max_chips=6), st.data())
def test_a_proved_claim_is_never_false(case: tuple[Graph, Target], data: st.DataObject) -> None:
    """A repair the MIP calls proved optimal has no legal placement nearer the candidate: Gecode,
    given the MIP's answer as the bound, finds nothing strictly better (or proves it first)."""
    graph, target = case
    candidate = data.draw(placements(graph, target))
    mine = solver.repair(graph, target, candidate, exact=True, time_limit=30, solver="order-mip")
    assert is_legal(graph, target, mine.placement)
    if not mine.proved_optimal or mine.method == "unchanged":
        return
    other = solver.repair(graph, target, candidate, exact=True, time_limit=30, solver="gecode")
    assert (other.changed, other.distance) >= (mine.changed, mine.distance)


def test_the_rule_names_match_the_checker() -> None:
    from chiplex.targets import order_mip
    from chiplex.targets.legality import RULES

    assert order_mip._RULES == RULES


def test_the_race_claims_a_proof_only_when_a_bound_meets_the_best_incumbent() -> None:
    answer = order_mip.OrderAnswer
    found = answer("SATISFIED", {"chip": [0, 1]}, bound=90.0, objective=100.0)
    close = answer("SATISFIED", {"chip": [1, 1]}, bound=99.5, objective=103.0)
    short = answer("SATISFIED", {"chip": [1, 1]}, bound=99.4, objective=103.0)
    both = order_mip.combine([found, close])
    assert (both.status, both.values, both.bound, both.objective) == (
        "OPTIMAL_SOLUTION",
        {"chip": [0, 1]},
        99.5,
        100.0,
    )
    assert order_mip.combine([found, short]).status == "SATISFIED"
    assert order_mip.combine([short, found]).bound == 99.4
    # A child's own proof counts for its incumbent only; ties go to the first child.
    proved = answer("OPTIMAL_SOLUTION", {"chip": [1, 0]}, bound=100.0, objective=100.0)
    assert order_mip.combine([found, proved]).status == "OPTIMAL_SOLUTION"
    assert order_mip.combine([found, proved]).values == {"chip": [0, 1]}
    assert order_mip.combine([proved, found]).values == {"chip": [1, 0]}
    assert order_mip.combine([found, None]).status == "SATISFIED"
    assert order_mip.combine([None, None]).status == "UNKNOWN"
    bound_only = answer("UNKNOWN", None, bound=42.0)
    assert order_mip.combine([bound_only, None]) == answer("UNKNOWN", None, 42.0)
    assert order_mip.combine([found, answer("UNSATISFIABLE", None)]).status == "UNSATISFIABLE"


def test_a_raced_child_stops_when_its_sibling_closes_the_gap(tmp_path: Path) -> None:
    """The sibling's published (bound, incumbent) reaches the child through its progress file: one
    that says the gap is closed stops it at its first check, with its start placement unproved."""
    graph = transformer_graph(60, seed=3)
    target = target_for(graph, 6, slack=1.2)
    candidate = np.random.default_rng(0).integers(0, 6, size=graph.num_nodes)
    data = repair_data(graph, target, candidate)
    problem = heuristics.problem_for(graph, resolve_rules(graph, target))
    start = heuristics.heuristic_repair(problem, candidate)
    assert start is not None
    data_path = tmp_path / "data.json"
    data_path.write_text(json.dumps(data))
    sibling = tmp_path / "sibling"
    sibling.write_text("1e300 -1e300")  # a bound above any incumbent: the pair has a proof
    request = {
        "model": "repair.mzn",
        "data": str(data_path),
        "deadline": time.time() + 60,
        "seed": 0,
        "start": start.tolist(),
        "options": {"presolve": "off"},
        "progress": str(tmp_path / "mine"),
        "sibling": str(sibling),
    }
    reply = flatzinc.run_child(
        "chiplex.targets.order_mip", [], stdin=json.dumps(request), time_limit=60
    )
    assert reply is not None and reply["status"] == "SATISFIED"
    assert reply["values"]["chip"] == start.tolist()
    assert (tmp_path / "mine").exists()  # it published its own progress before stopping


def tight_buffer_cases(count: int) -> list[tuple[Graph, Target, np.ndarray]]:
    """Small graphs at the smallest capacity the block order fits with 3 receive buffers per edge:
    there the buffers of several cross-chip inputs compete for a chip's memory, the regime in which
    the order encoding's relaxation is weakest and a wrong redundant row would show."""
    cases = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        graph = nn_graph(lambda lo, hi, r=rng: int(r.integers(lo, hi + 1)), 7, name=f"tight{seed}")
        target = target_for(graph, 3, slack=1.0, buffers_per_edge=3)
        cases.append((graph, target, rng.integers(0, 3, size=graph.num_nodes)))
    return cases


def test_no_row_cuts_off_a_legal_placement_where_receive_buffers_compete() -> None:
    """Exhaustively, on tight-memory instances: every legal placement satisfies every row of the repair
    MIP (the rules and the redundant rows: implied bounds and gaps, the per-chip weight bound), and
    the proved repair optimum is brute force's. The memory rule must
    change the optimum in some of them, or the cases would not test what they are for."""
    binding = cut_parted = 0
    for graph, target, candidate in tight_buffer_cases(6):
        rules = resolve_rules(graph, target)
        roomy = with_capacity(target, 100 * target.chip.capacity_bytes)
        every = [np.array(p, dtype=np.int64) for p in itertools.product(range(3), repeat=7)]
        legal = [p for p in every if is_legal(graph, target, p, rules)]
        assert legal, graph.name
        model = order_mip.build("repair.mzn", repair_data(graph, target, candidate))
        assert not model.infeasible, graph.name
        for placement in legal:
            assert violated_rows(model, placement) == 0, (graph.name, placement)

        def cost(p: np.ndarray, candidate: np.ndarray = candidate) -> tuple[int, int]:
            return int((p != candidate).sum()), int(np.abs(p - candidate).sum())

        best = min(cost(p) for p in legal)
        relaxed = min(cost(p) for p in every if is_legal(graph, roomy, p))
        binding += relaxed < best
        result = solver.repair(
            graph, target, candidate, exact=True, time_limit=30, solver="order-mip"
        )
        assert (result.changed, result.distance) == best, graph.name
        assert result.proved_optimal, graph.name
        _, _, _, capacity, cut, together = floor_parts(graph, target)
        cut_parted += int((cut[together] > capacity).sum())
    assert binding >= 2, binding
    assert cut_parted >= 3, cut_parted  # pairs only the minimum cut parts: its rows are tested too


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_and_target(min_ops=2, max_ops=40, max_chips=6), st.data())
def test_the_shared_chip_floor_never_exceeds_a_chips_memory(
    case: tuple[Graph, Target], data: st.DataObject
) -> None:
    """`_shared_chip_floor[u, v]` and the minimum cut's floor (what parts a pair in the implied gaps)
    are at most the memory of any chip holding both, in every forward placement, legal under the
    memory rule or not; grouped thresholds are no stronger."""
    graph, target = case
    problem = heuristics.problem_for(graph, resolve_rules(graph, target))
    n, k = problem.n, problem.k
    reach = np.eye(n, dtype=bool)
    for u in range(n - 1, -1, -1):
        if len(problem.succs[u]):
            reach[u] |= reach[problem.succs[u]].any(axis=0)
    arrays = (
        reach,
        problem.src,
        problem.dst,
        problem.weight.astype(np.float64),
        problem.output.astype(np.float64),
        problem.working_set.astype(np.float64),
    )
    floor = order_mip._shared_chip_floor(*arrays)
    preds = [problem.preds[v].tolist() for v in range(n)]
    succs = [problem.succs[v].tolist() for v in range(n)]
    _, path_w, path_ws, _ = order_mip._chip_floor_parts(*arrays)
    for u, v in zip(
        *np.nonzero(reach), strict=True
    ):  # the minimum cut's floor, as _implied_gaps adds it
        floor[u, v] = max(
            floor[u, v],
            path_w[u, v]
            + path_ws[u, v]
            + order_mip._feeding_floor(u, v, reach, preds, succs, arrays[3], arrays[4]),
        )
    cells = order_mip.TAU_CELLS
    try:  # the grouped thresholds of graphs with many distinct working sets: valid and no stronger
        order_mip.TAU_CELLS = 2
        grouped = order_mip._shared_chip_floor(*arrays)
    finally:
        order_mip.TAU_CELLS = cells
    assert (grouped <= order_mip._shared_chip_floor(*arrays) + 1e-6).all()
    chips = data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    placement = np.sort(np.array(chips, dtype=np.int64))  # ops are in topological order: forward
    memory = chip_memory(graph, placement, k, target.chip.buffers_per_edge)
    total = memory.weights + memory.receive + memory.working_set
    for c in range(k):
        on = np.flatnonzero(placement == c)
        pairs = reach[np.ix_(on, on)]
        if pairs.any():
            assert floor[np.ix_(on, on)][pairs].max() <= total[c] + 1e-6, c


def floor_parts(
    graph: Graph, target: Target
) -> tuple[np.ndarray, list[list[int]], list[list[int]], float, np.ndarray, np.ndarray]:
    """(reach, preds, succs, capacity, the feeding floor with the paths' own memory, the pairs the
    relaxed floor leaves together), in the model's units."""
    data = repair_data(graph, target, np.zeros(graph.num_nodes, dtype=np.int64))
    n = int(data["n"])  # type: ignore[arg-type]
    src = np.array(data["src"], dtype=np.int64) - 1  # type: ignore[arg-type]
    dst = np.array(data["dst"], dtype=np.int64) - 1  # type: ignore[arg-type]
    weight = np.array(data["weight"], dtype=np.float64)  # type: ignore[arg-type]
    output = np.array(data["output_bytes"], dtype=np.float64)  # type: ignore[arg-type]
    working = np.array(data["working_set"], dtype=np.float64)  # type: ignore[arg-type]
    reach = np.eye(n, dtype=bool)
    succs: list[list[int]] = [[] for _ in range(n)]
    preds: list[list[int]] = [[] for _ in range(n)]
    for a, b in zip(src.tolist(), dst.tolist(), strict=True):
        succs[a].append(b)
        preds[b].append(a)
    for u in range(n - 1, -1, -1):
        if succs[u]:
            reach[u] |= reach[succs[u]].any(axis=0)
    floor, path_w, path_ws, _ = order_mip._chip_floor_parts(
        reach, src, dst, weight, output, working
    )
    capacity = float(data["capacity"])  # type: ignore[arg-type]
    together = reach & ~np.eye(n, dtype=bool) & (floor <= capacity)
    cut = np.zeros((n, n))
    for u, v in zip(*np.nonzero(reach), strict=True):
        cut[u, v] = path_w[u, v] + path_ws[u, v]
        cut[u, v] += order_mip._feeding_floor(u, v, reach, preds, succs, weight, output)
    return reach, preds, succs, capacity, cut, together


def least_memory_off_the_paths(
    u: int,
    v: int,
    reach: np.ndarray,
    succs: list[list[int]],
    weight: list[float],
    output: list[float],
) -> float:
    """By enumeration: the least weight of the ops a chip holding u and v holds besides the u ~> v
    paths, plus the receive buffers of producers it does not hold, over every set of ops reaching v
    that contains the paths and is closed forward towards v."""
    n = len(weight)
    toward = reach[:, v]
    on_paths = reach[u] & toward
    free = [x for x in range(n) if toward[x] and not on_paths[x]]
    best = np.inf
    for bits in itertools.product((False, True), repeat=len(free)):
        held = on_paths.copy()
        held[free] = bits
        if any(held[y] and toward[x] and not held[x] for y in range(n) for x in succs[y]):
            continue
        cost = sum(weight[x] for x in free if held[x])
        cost += sum(output[p] for p in range(n) if not held[p] and held[succs[p]].any())
        best = min(best, cost)
    return float(best)


def test_the_feeding_floor_is_the_least_memory_a_chip_holding_the_pair_needs_off_its_paths() -> (
    None
):
    """`_feeding_floor` (a minimum cut) is exactly the enumerated least weight of other ops plus
    receive buffers of a chip holding u and v, on small tight graphs: a cut too high would part pairs
    that fit (invalid rows), one too low would part fewer."""
    compared = 0
    for graph, target, _ in tight_buffer_cases(12):
        reach, preds, succs, _, _, _ = floor_parts(graph, target)
        data = repair_data(graph, target, np.zeros(graph.num_nodes, dtype=np.int64))
        weight = [float(x) for x in data["weight"]]  # type: ignore[union-attr]
        output = [float(x) for x in data["output_bytes"]]  # type: ignore[union-attr]
        for u, v in zip(*np.nonzero(reach), strict=True):
            cut = order_mip._feeding_floor(
                u, v, reach, preds, succs, np.array(weight), np.array(output)
            )
            assert cut == pytest.approx(
                least_memory_off_the_paths(u, v, reach, succs, weight, output)
            ), (graph.name, u, v)
            compared += 1
    assert compared > 100


def test_a_weight_class_counts_the_most_ops_of_the_class_one_chip_holds() -> None:
    """`_weight_classes`: three 512-unit ops fit a 1533-unit chip only two at a time (the knapsack
    row alone admits 2.99 of them), four of the five ops of at least 128 units; with a 512-unit
    working set on each op, one and three. On the tight seven-op cases every class is reached by a
    legal placement (a count one lower would cut it off), and the exhaustive test above checks that
    no legal placement breaks the class rows or the gaps they imply."""
    weight = np.array([512.0, 512.0, 512.0, 128.0, 128.0, 0.0])
    working = np.zeros(6)
    classes = order_mip._weight_classes(weight, working, 1533.0, 1533.0)
    assert [(ops.tolist(), most) for ops, most in classes] == [([0, 1, 2], 2), ([0, 1, 2, 3, 4], 4)]
    working[:5] = 512.0  # 1533 - 512 leaves 1021 units: 512, or 128 + 128 + 512
    classes = order_mip._weight_classes(weight, working, 1533.0, 1533.0)
    assert [(ops.tolist(), most) for ops, most in classes] == [([0, 1, 2], 1), ([0, 1, 2, 3, 4], 3)]
    classes = order_mip._weight_classes(weight, working, 700.0, 1533.0)  # max_chip_weight 700
    assert [(ops.tolist(), most) for ops, most in classes] == [([0, 1, 2], 1), ([0, 1, 2, 3, 4], 2)]
    reached = 0
    for graph, target, candidate in tight_buffer_cases(6):
        data = repair_data(graph, target, candidate)
        capacity = float(data["capacity"])  # type: ignore[arg-type]
        held = min(float(data["max_chip_weight"]), capacity)  # type: ignore[arg-type]
        rules = resolve_rules(graph, target)
        every = (np.array(p, dtype=np.int64) for p in itertools.product(range(3), repeat=7))
        legal = [p for p in every if is_legal(graph, target, p, rules)]
        weights = np.array(data["weight"], dtype=np.float64)  # type: ignore[arg-type]
        working_sets = np.array(data["working_set"], dtype=np.float64)  # type: ignore[arg-type]
        for ops, most in order_mip._weight_classes(weights, working_sets, held, capacity):
            assert max(int(np.bincount(p[ops], minlength=3).max()) for p in legal) == most
            reached += 1
    assert reached >= 5, reached


def test_only_direct_edges_carry_dataflow_rows() -> None:
    """`_direct_edges`: an edge beside a longer path (0 -> 2 beside 0 -> 1 -> 2) adds no row; a
    doubled edge and edges without a detour keep theirs."""
    src = np.array([0, 1, 0, 2, 2, 3])
    dst = np.array([1, 2, 2, 3, 3, 4])
    assert order_mip._direct_edges(5, src, dst).tolist() == [0, 1, 3, 4, 5]
