"""The fastest steady state any legal placement can have on the simulator's serialised resources, proved
by a MIP (HiGHS).

The simulator (`chiplex.runtime_sim.simulator`) runs each chip's compute steps one at a time on its one
engine, each for its cost-model duration, and every directed link carries one packet at a time. So per
micro-batch in steady state

- chip c is busy for the sum of its ops' durations, at least their roofline times with every weight
  in SRAM (`op_times`; DRAM streaming only lengthens an op, `op_durations`);
- link l is busy for the bytes routed over it (`target.route_links`, every value once per chip that
  reads it, `cost.transfers`) over its bandwidth;
- a value sent from chip a to chip d waits, with B receive buffers, for the receive of the micro-batch
  B before it, which cannot complete before its transfer (`cost.transfer_time`, uncontended): at least
  that time over B per micro-batch;

and the period is at least the largest of these (`resource_period`). `min_resource_period` minimises
it exactly over every legal placement (`acyclic-dataflow` through nested downsets, the `memory` rule
term by term as `chip_memory` computes it; `no-skipping-chips`, `hop-span`, `pinned` and `colocated`
are left out, which only enlarges the set, so the bound stays valid), and HiGHS's dual bound is a
proved lower bound on the period: samples_per_microbatch / bound is an upper bound on every legal
placement's steady-state throughput.

What it is not: a bound on a *finite* simulation's measured rate. The simulator measures the period
over the second half of its micro-batches, and a fill transient can make that window slightly faster
than the steady state (the test checks the bound on the placements it simulates).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chiplex.ir.graph import Graph
from chiplex.targets.cost import op_durations, op_times, transfer_time, transfers
from chiplex.targets.legality import memory_data
from chiplex.targets.target import Target


@dataclass(frozen=True)
class ResourceBound:
    period_s: float
    """A proved lower bound on the steady-state period of every legal placement (HiGHS's dual bound)."""
    throughput: float
    """samples_per_microbatch / period_s: no legal placement's steady state is faster."""
    best_period_s: float
    """The period of the best placement HiGHS found (equal to period_s when proved optimal)."""
    placement: np.ndarray | None
    """That placement (legal under the rules the model keeps)."""
    proved_optimal: bool
    seconds: float


def resource_period(graph: Graph, target: Target, placement: np.ndarray) -> float:
    """Seconds per micro-batch the placement's busiest serialised resource takes (see the module)."""
    placement = np.asarray(placement, dtype=np.int64)
    durations, _ = op_durations(graph, target, placement)
    period = float(np.bincount(placement, weights=durations, minlength=target.num_chips).max())
    link_busy = np.zeros(len(target.links))
    for producer, src, dst in transfers(graph, placement):
        nbytes = float(graph.output_bytes[producer])
        route = target.route_links(src, dst)
        for link in route:
            link_busy[link] += nbytes / target.links[link].bandwidth
        period = max(period, transfer_time(nbytes, route, target) / target.chip.buffers_per_edge)
    return max(period, float(link_busy.max(initial=0.0)))


def min_resource_period(
    graph: Graph, target: Target, time_limit: float = 120.0, memory: bool = True
) -> ResourceBound:
    """Minimise `resource_period` over the legal placements with HiGHS (see the module docstring)."""
    import time

    import highspy

    started = time.perf_counter()
    n, k = graph.num_nodes, target.num_chips
    op_time = op_times(graph, target)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("random_seed", 0)
    h.setOptionValue("threads", 1)
    h.setOptionValue("mip_rel_gap", 1e-6)
    scale = (
        float(op_time.sum()) / k
    )  # periods in units of the average chip's work: well-scaled rows
    period = h.addVariable(lb=0.0, ub=float(np.inf), obj=1.0)
    # y[v][c] = 1: op v sits on a chip <= c (the downset D_c); D_{K-1} holds every op.
    y = [[h.addBinary() for _ in range(k - 1)] for _ in range(n)]

    def on(v: int, c: int):  # type: ignore[no-untyped-def]
        """x[v, c] as an expression: y[v][c] - y[v][c-1]."""
        if c == 0:
            return y[v][0]
        return (y[v][c] if c < k - 1 else 1.0) - y[v][c - 1]

    for v in range(n):
        for c in range(k - 2):
            h.addConstr(y[v][c] <= y[v][c + 1])
    for u, v in zip(graph.src.tolist(), graph.dst.tolist(), strict=True):
        for c in range(k - 1):
            h.addConstr(y[v][c] <= y[u][c])  # acyclic-dataflow: v in D_c needs u in D_c
    x = [[on(v, c) for c in range(k)] for v in range(n)]
    for c in range(k):
        h.addConstr(sum(float(op_time[v] / scale) * x[v][c] for v in range(n)) <= period)
    consumers: list[list[int]] = [[] for _ in range(n)]
    for u, v in zip(graph.src.tolist(), graph.dst.tolist(), strict=True):
        if v not in consumers[u]:
            consumers[u].append(v)
    buffers = target.chip.buffers_per_edge
    link_load: list[list[tuple[float, object]]] = [[] for _ in target.links]
    # z[u][d] >= 1 when u sits off chip d and a consumer sits on d (its value is received there).
    z: dict[tuple[int, int], object] = {}
    for u in range(n):
        if not consumers[u]:
            continue
        for d in range(1, k):
            zd = h.addVariable(lb=0.0, ub=1.0)
            z[(u, d)] = zd
            for w in consumers[u]:
                h.addConstr(zd >= x[w][d] - x[u][d])
            for a in range(d):
                route = target.route_links(a, d)
                if not route:
                    continue
                # s = 1 when u sits on a and is received on d: the transfer a -> d happens.
                s = h.addVariable(lb=0.0, ub=1.0)
                h.addConstr(s >= x[u][a] + zd - 1)
                nbytes = float(graph.output_bytes[u])
                for link in route:
                    link_load[link].append((nbytes / target.links[link].bandwidth / scale, s))
                trip = transfer_time(nbytes, route, target) / buffers / scale
                h.addConstr(trip * s <= period)
    for terms in link_load:
        if terms:
            h.addConstr(sum(coef * s for coef, s in terms) <= period)
    if memory:
        data = memory_data(graph, buffers)
        capacity = float(target.chip.capacity_bytes)
        mb = 2.0**20  # rows in MiB
        for c in range(k):
            weights = sum(float(data.weight[v] / mb) * x[v][c] for v in range(n))
            for nbytes, readers in zip(
                data.shared_bytes.tolist(), data.shared_readers, strict=True
            ):
                held = h.addVariable(lb=0.0, ub=1.0)
                for v in readers.tolist():
                    h.addConstr(held >= x[v][c])
                weights = weights + float(nbytes / mb) * held
            receive = sum(float(data.receive[u] / mb) * zd for (u, d), zd in z.items() if d == c)
            working = h.addVariable(lb=0.0, ub=float(data.working_set.max(initial=0) / mb))
            for v in range(n):
                h.addConstr(working >= float(data.working_set[v] / mb) * x[v][c])
            h.addConstr(weights + receive + working <= capacity / mb)
    h.run()
    info = h.getInfo()
    status = h.getModelStatus()
    proved = status == highspy.HighsModelStatus.kOptimal
    bound = max(float(info.mip_dual_bound), 0.0) * scale
    placement = None
    best = float("inf")
    if info.primal_solution_status == 2:  # feasible
        values = np.asarray(h.getSolution().col_value)
        columns = np.array([[var.index for var in row] for row in y], dtype=np.int64).reshape(
            n, k - 1
        )
        inside = np.round(values[columns]).astype(np.int64)  # 1 from the op's chip on
        placement = (k - 1) - inside.sum(axis=1)
        best = resource_period(graph, target, placement)
    return ResourceBound(
        period_s=bound,
        throughput=graph.samples_per_microbatch / bound if bound > 0 else float("inf"),
        best_period_s=best,
        placement=placement,
        proved_optimal=proved,
        seconds=time.perf_counter() - started,
    )
