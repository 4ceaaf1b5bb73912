"""Placement strategies: functions (graph, target, seed) -> placement, registered by name for `place`.

`dp` is the PipeDream / Alpa-style dynamic program: cut the topological order into at most K contiguous
stages, stage s on chip s, minimising the pipeline period max(slowest stage, slowest boundary link)
under the memory limit. Contiguous stages in a topological order satisfy acyclic dataflow and
no-skipping by construction; when the DP finds no contiguous split, or the target's extra rules
(hop span, pinned, colocated) are broken, the constraint solver repairs its answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from chiplex.errors import ChiplexError
from chiplex.ir.graph import Graph
from chiplex.targets.cost import compute_times, estimate, op_times
from chiplex.targets.legality import (
    PlacementRules,
    check_placement,
    memory_data,
    resolve_rules,
)
from chiplex.targets.target import Target

Strategy = Callable[[Graph, Target, int], np.ndarray]


@dataclass(frozen=True)
class StageCosts:
    """Per-node prefix sums shared by the contiguous-stage strategies."""

    time_prefix: np.ndarray
    cut_bytes: np.ndarray
    """cut_bytes[i]: bytes of results produced before node i and read at or after it (boundary at i)."""


def stage_costs(graph: Graph, target: Target) -> StageCosts:
    n = graph.num_nodes
    times = op_times(graph, target)
    # cut[i] = sum of out[u] for u < i <= last consumer of u: a difference array over [u+1, last].
    last_consumer = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last_consumer, graph.src, graph.dst)
    producers = np.flatnonzero(last_consumer >= 0)
    diff = np.zeros(n + 1, dtype=np.float64)
    np.add.at(diff, producers + 1, graph.output_bytes[producers])
    np.add.at(diff, last_consumer[producers] + 1, -graph.output_bytes[producers])
    return StageCosts(
        time_prefix=np.concatenate([[0.0], np.cumsum(times)]),
        cut_bytes=np.cumsum(diff)[: n + 1],
    )


def _boundary_time(costs: StageCosts, target: Target) -> np.ndarray:
    link = (
        min(target.links, key=lambda item: (item.bandwidth, -item.latency))
        if target.links
        else None
    )
    if link is None:
        return np.zeros_like(costs.cut_bytes)
    serial = costs.cut_bytes / link.bandwidth
    # The link's busy time, or a receive buffer's round trip over the buffers per edge (the estimate's
    # terms, `chiplex.targets.cost.estimate`): with double buffering latency hides behind the transfer.
    round_trip = (serial + link.latency) / target.chip.buffers_per_edge
    return np.where(costs.cut_bytes > 0, np.maximum(serial, round_trip), 0.0)


def _streaming_extra(graph: Graph, target: Target) -> np.ndarray:
    """Prefix sums over ops of the extra seconds an op takes when its weights stream from DRAM."""
    chip = target.chip
    if not chip.dram_bytes:
        return np.zeros(graph.num_nodes + 1)
    sram_part = (graph.activation_in_bytes + graph.output_bytes) / chip.sram_bandwidth
    streaming = np.maximum(
        compute_times(graph, target), sram_part + graph.weight_bytes / chip.dram_bandwidth
    )
    return np.concatenate([[0.0], np.cumsum(np.maximum(streaming - op_times(graph, target), 0))])


def streaming_time(
    extra_prefix: np.ndarray,
    read_prefix: np.ndarray,
    starts: np.ndarray,
    end: int,
    budget: np.ndarray,
) -> np.ndarray:
    """Extra seconds of the stages [starts, end) for weights streamed from DRAM, given each stage's SRAM
    budget for weights: the ops from the first whose cumulative weights exceed the budget on stream."""
    first = np.searchsorted(read_prefix, read_prefix[starts] + budget, side="right") - 1
    first = np.minimum(np.maximum(first, starts), end)  # np.clip's value, without its overhead
    return extra_prefix[end] - extra_prefix[first]


DP_REFINE_ROUNDS = 3
"""Rounds of re-running the DP on the order its best split induces (each round: one DP per order)."""


def place_dp(graph: Graph, target: Target, seed: int = 0) -> np.ndarray:
    """The best optimal contiguous split over a few topological orders (then repaired if the target's
    rules need it).

    A contiguous split of any topological order is acyclic and skips no chip, but which cuts exist
    depends on the order: in a residual block with a projection shortcut, the importer's order puts the
    shortcut after the main path, so every cut inside the block sends the block's (large) input; an
    order that runs the shortcut first can cut after it and send two smaller results. dp runs the DP on
    the graph's order and on `_candidate_orders`' alternatives, and keeps the split whose analytic
    estimate (`chiplex.targets.cost.estimate`, the model the simulator agrees with) is fastest; ties go
    to the graph's own order, so dp changes its answer only where another order is strictly better."""
    del seed  # deterministic
    n = graph.num_nodes
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rules = resolve_rules(graph, target)
    from chiplex.targets.solver import InfeasibleError, quick_infeasibility

    infeasible = quick_infeasibility(graph, target, rules)  # before the quadratic programme
    if infeasible:
        raise InfeasibleError(infeasible)
    best: tuple[float, np.ndarray] | None = None

    def try_order(order: np.ndarray | None) -> bool:
        nonlocal best
        reordered = graph if order is None else reorder_graph(graph, order)
        split = _dp_split(
            reordered, target, rules if order is None else resolve_rules(reordered, target)
        )
        if split is None:
            return False
        placement = split if order is None else split[np.argsort(order)]
        if check_placement(graph, target, placement, rules, limit_per_rule=1):
            return False
        period = estimate(graph, target, placement).period_s
        if best is None or period < best[0] * (1 - 1e-9):
            best = (period, placement)
            return True
        return False

    orders = _candidate_orders(graph)
    for order in orders:
        try_order(order)
    # Refinement: the best split so far, read as an order (by chip, then each candidate's levels),
    # lets the DP move ops that the split's own order kept apart; repeated while it gains (ResNet-50
    # on simba-6x6: 2,744.8 -> 2,749.8 samples/s in one round, cp's answer and the pipeline-cut bound).
    levels = [np.arange(graph.num_nodes)] + [np.argsort(order) for order in orders[1:]]
    for _ in range(DP_REFINE_ROUNDS):
        if best is None:
            break
        chips = best[1]
        gained = False
        for level in levels:
            order = np.lexsort((level, chips)).astype(np.int64)
            position = np.argsort(order)
            # By chip, then a topological level: topological whenever no edge runs to a lower chip.
            if (position[graph.src] < position[graph.dst]).all():
                gained |= try_order(order)
        if not gained:
            break
    if best is None:
        first = _dp_split(graph, target, rules)
        placement = place_greedy(graph, target) if first is None else first
        return _legalize(graph, target, placement, rules)
    return best[1]


def reorder_graph(graph: Graph, order: np.ndarray) -> Graph:
    """The same graph with its nodes renumbered so that node i is `order[i]` (a topological order)."""
    order = np.asarray(order, dtype=np.int64)
    new_index = np.empty_like(order)
    new_index[order] = np.arange(len(order))
    src, dst = new_index[graph.src], new_index[graph.dst]
    edges = np.lexsort((dst, src))
    return replace(
        graph,
        op_names=tuple(graph.op_names[v] for v in order),
        kinds=tuple(graph.kinds[v] for v in order),
        dtypes=tuple(graph.dtypes[v] for v in order),
        is_matrix=graph.is_matrix[order],
        flops=graph.flops[order],
        output_bytes=graph.output_bytes[order],
        input_bytes=graph.input_bytes[order],
        weight_bytes=graph.weight_bytes[order],
        activation_in_bytes=graph.activation_in_bytes[order],
        src=src[edges].astype(graph.src.dtype),
        dst=dst[edges].astype(graph.dst.dtype),
        param_names=tuple(graph.param_names[v] for v in order),
        ops=tuple(graph.ops[v] for v in order) if graph.ops else (),
        read_node=new_index[graph.read_node],
    )


def _candidate_orders(graph: Graph) -> list[np.ndarray | None]:
    """The graph's own order (None) and the distinct alternatives: the ready op that leaves the fewest
    bytes live (results with a consumer still to run; what a cut there would send), depth first (a
    branch is finished before the next starts; ties go to the most recently readied op), as soon as
    possible (by the longest path from an input: BERT-base on tpu-ring16, 4,302.7 -> 4,321.0 samples/s,
    cp's optimum) and as late as possible (by the longest path still to run, so a side branch such as a
    projection shortcut sits next to the op that joins it and the join's stage can take it: ResNet-50
    on simba-6x6, 2,728.5 -> 2,744.8, above cp's 2,735.0 in 25 s)."""
    n = graph.num_nodes
    preds = graph.predecessors()
    succs = graph.successors()
    out = graph.output_bytes.astype(np.int64)
    orders: list[np.ndarray | None] = [None]
    seen = {tuple(range(n))}
    for priority in ("fewest-live-bytes", "depth-first"):
        waiting = np.array([len(p) for p in preds], dtype=np.int64)
        consumers_left = np.array([len(c) for c in succs], dtype=np.int64)
        ready = [v for v in range(n) if waiting[v] == 0]
        ready_at = dict.fromkeys(ready, 0)
        order = []
        while ready:
            if priority == "fewest-live-bytes":
                changes = {x: _live_change(x, preds, succs, out, consumers_left) for x in ready}
                v = min(ready, key=lambda x: (changes[x], -ready_at[x], x))
            else:
                v = max(ready, key=lambda x: (ready_at[x], -x))
            ready.remove(v)
            order.append(v)
            for u in set(preds[v].tolist()):
                consumers_left[u] -= 1
            for w in succs[v].tolist():
                waiting[w] -= 1
                if waiting[w] == 0:
                    ready.append(w)
                    ready_at[w] = len(order)
        key = tuple(order)
        if key not in seen:
            seen.add(key)
            orders.append(np.array(order, dtype=np.int64))
    # Nodes are numbered in a topological order, so one sweep each way gives the longest path from a
    # source (as soon as possible) and to a sink (as late as possible).
    done = np.zeros(n, dtype=np.int64)
    for v in range(n):
        if len(preds[v]):
            done[v] = 1 + int(done[preds[v]].max())
    remaining = np.zeros(n, dtype=np.int64)
    for v in range(n - 1, -1, -1):
        if len(succs[v]):
            remaining[v] = 1 + int(remaining[succs[v]].max())
    for level in (done, -remaining):
        order = np.lexsort((np.arange(n), level)).astype(np.int64)
        key = tuple(order.tolist())
        if key not in seen:
            seen.add(key)
            orders.append(order)
    return orders


def _live_change(
    node: int,
    preds: list[np.ndarray],
    succs: list[np.ndarray],
    out: np.ndarray,
    consumers_left: np.ndarray,
) -> int:
    """Bytes live after running `node` minus before: its result, less the inputs it reads last."""
    freed = sum(int(out[u]) for u in set(preds[node].tolist()) if consumers_left[u] == 1)
    return (int(out[node]) if len(succs[node]) else 0) - freed


def _dp_split(graph: Graph, target: Target, rules: PlacementRules) -> np.ndarray | None:
    """The DP: the optimal contiguous split of the graph's node order under dp's period model, or None
    when no contiguous split fits the memory rule."""
    n, k = graph.num_nodes, target.num_chips
    costs = stage_costs(graph, target)
    boundary = _boundary_time(costs, target)
    extra_prefix = _streaming_extra(graph, target)
    read_prefix = np.concatenate([[0], np.cumsum(graph.weight_bytes)])
    capacity = rules.capacity_bytes
    preds = graph.predecessors()
    memory_terms = memory_data(graph, rules.buffers_per_edge)
    working = memory_terms.working_set.astype(np.float64)
    weight_prefix = np.concatenate([[0], np.cumsum(memory_terms.weight)])
    # Shared params read by each node, and the latest reader of each seen so far (-1: none yet).
    shared_of: list[list[int]] = [[] for _ in range(n)]
    for s, readers in enumerate(memory_terms.shared_readers):
        for v in readers.tolist():
            shared_of[v].append(s)
    last_reader = np.full(len(memory_terms.shared_readers), -1, dtype=np.int64)
    shared = np.zeros(n + 1, dtype=np.float64)  # shared[i]: shared param bytes of the stage [i, j)
    inf = np.inf
    # best[s, j]: the smallest period that places nodes [0, j) on chips 0..s-1 (stage s-1 ends at j).
    best = np.full((k + 1, n + 1), inf)
    best[0, 0] = 0.0
    choice = np.zeros((k + 1, n + 1), dtype=np.int64)
    receive = np.zeros(n + 1, dtype=np.float64)  # receive[i] for the stage [i, j) of the current j
    last_use = np.arange(n, dtype=np.int64)  # latest consumer of u seen so far (u itself when none)
    max_working = np.zeros(n + 1, dtype=np.float64)
    # first_count[i]: the fewest stages that place nodes [0, i) (k + 1: none do). Counts below the
    # window's fewest stay unreachable at j too, so their rows are skipped (about half the rows).
    first_count = np.full(n + 1, k + 1, dtype=np.int64)
    first_count[0] = 0
    for j in range(1, n + 1):
        node = j - 1
        # Stages [i, j) whose own weights exceed the capacity never fit, and neither do they for a
        # later j (weights only grow): only the window [lo, j) is computed, O(n x window) not O(n^2)
        # (a 48-layer GPT-2 on 36 chips: a window of a tenth of the ops). Values inside the window
        # are the same sums in the same order as over every start.
        lo = min(int(np.searchsorted(weight_prefix, weight_prefix[j] - capacity, side="left")), j)
        # Node j-1 joins every stage [i, j): producers u < i it reads become receive buffers of
        # stages starting after u's previous consumer (or u itself).
        for u in preds[node].tolist():
            start = max(last_use[u] + 1, lo)
            receive[start:j] += memory_terms.receive[u]
            last_use[u] = node
        # A shared param joins the stages that start after its previous reader (once per stage).
        for s in shared_of[node]:
            shared[max(last_reader[s] + 1, lo) : j] += memory_terms.shared_bytes[s]
            last_reader[s] = node
        max_working[lo:j] = np.maximum(max_working[lo:j], working[node])
        starts = np.arange(lo, j)
        weights = weight_prefix[j] - weight_prefix[lo:j] + shared[lo:j]
        memory = weights + receive[lo:j] + max_working[lo:j]
        fits = memory <= capacity
        fewest = int(first_count[lo:j].min())  # row `fewest` of best: stage count fewest + 1
        if fewest >= k or not fits.any():
            continue
        stage = costs.time_prefix[j] - costs.time_prefix[lo:j]
        if target.chip.dram_bytes:
            # The cost model's rule (`cost.op_durations`): a stage's ops take SRAM for their weights
            # in order until the budget is full; every later op with weights streams them.
            budget = target.chip.sram_bytes - receive[lo:j] - max_working[lo:j]
            stage = stage + streaming_time(extra_prefix, read_prefix, starts, j, budget)
        stage = np.where(fits, np.maximum(stage, boundary[starts] * (starts > 0)), inf)
        # Row s-1 -> stage count s; rows above `fewest` stay inf (and choice 0, as an argmin over
        # every start and count gave).
        candidates = np.maximum(best[fewest:k, lo:j], stage[None, :])
        chosen = np.argmin(candidates, axis=1)
        periods = candidates[np.arange(k - fewest), chosen]
        best[fewest + 1 :, j] = periods
        reached = np.isfinite(periods)
        choice[fewest + 1 :, j] = np.where(reached, chosen + lo, 0)
        if reached.any():
            first_count[j] = fewest + 1 + int(np.argmax(reached))
    stages = int(np.argmin(best[:, n]))
    if not np.isfinite(best[stages, n]):
        return None
    placement = np.empty(n, dtype=np.int64)
    j = n
    for s in range(stages, 0, -1):
        i = int(choice[s, j])
        placement[i:j] = s - 1
        j = i
    return placement


def place_greedy(graph: Graph, target: Target, seed: int = 0) -> np.ndarray:
    """Fill chips in topological order up to an equal share of the work or the memory limit."""
    del seed
    n, k = graph.num_nodes, target.num_chips
    times = op_times(graph, target)
    share = times.sum() / k
    capacity = target.chip.capacity_bytes
    params_of: list[list[int]] = [[] for _ in range(n)]
    for v, p in zip(graph.read_node.tolist(), graph.read_param.tolist(), strict=True):
        params_of[v].append(p)
    placement = np.zeros(n, dtype=np.int64)
    chip, chip_time, chip_weights, chip_peak = 0, 0.0, 0, 0
    on_chip: set[int] = set()  # params already stored on the current chip (a shared one once)
    for node in range(n):
        new_params = [p for p in params_of[node] if p not in on_chip]
        weight = int(graph.param_bytes[new_params].sum())
        peak = max(chip_peak, int(graph.working_set_bytes[node]))
        over_memory = chip_weights + weight + peak > capacity
        over_time = chip_time > 0 and chip_time + times[node] / 2 > share
        if chip < k - 1 and chip_time > 0 and (over_memory or over_time):
            chip, chip_time, chip_weights, peak = (
                chip + 1,
                0.0,
                0,
                int(graph.working_set_bytes[node]),
            )
            on_chip.clear()
            weight = int(graph.weight_bytes[node])
        on_chip.update(params_of[node])
        placement[node] = chip
        chip_time += times[node]
        chip_weights += weight
        chip_peak = peak
    return _legalize(graph, target, placement, resolve_rules(graph, target))


def _legalize(
    graph: Graph, target: Target, placement: np.ndarray, rules: PlacementRules
) -> np.ndarray:
    if not check_placement(graph, target, placement, rules, limit_per_rule=1):
        return placement
    from chiplex.targets.solver import repair

    return repair(graph, target, placement, rules=rules).placement


def dp_start(graph: Graph, target: Target) -> np.ndarray | None:
    """dp's split, the answer cp's solver must beat (None when dp finds none). Started from its own
    heuristic instead, the solver stopped at its time limit on a 48-layer GPT-2 over a 64-chip DRAM
    mesh with 2,260 samples/s where dp's split gives 3,194."""
    try:
        return place_dp(graph, target)
    except ChiplexError:
        return None


def place_cp(graph: Graph, target: Target, seed: int = 0) -> np.ndarray:
    from chiplex.targets.solver import optimize

    return optimize(graph, target, seed=seed, start=dp_start(graph, target)).placement


STRATEGIES: dict[str, Strategy] = {"greedy": place_greedy, "dp": place_dp, "cp": place_cp}


SEARCH_ONLY = ("random", "anneal")
"""Strategies of `chiplex search` that have no place in `place{strategy=...}`: they need a budget."""


def get_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        # `learned` is handled by the place pass itself (chiplex.passes.learned).
        known = ", ".join([*sorted(STRATEGIES), "learned"])
        hint = (
            f" ({name} is a search strategy: `chiplex search IN --strategy {name} -o placed.mlir`, "
            "then compile placed.mlir with a pipeline without place)"
            if name in SEARCH_ONLY
            else ""
        )
        raise ChiplexError(f"unknown placement strategy {name!r}; expected one of {known}{hint}")
    return STRATEGIES[name]
