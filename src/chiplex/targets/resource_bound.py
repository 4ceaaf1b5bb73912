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

The simulator reports the steady state (`runtime_sim.simulator.steady_period`), which this bounds;
only a run too short to reach one (`SimReport.steady` false) reports a mean that can read above it.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from chiplex.errors import ChiplexError
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
    """Minimise `resource_period` over the legal placements with HiGHS (see the module docstring).

    The model has n x (K - 1) binaries and a transfer variable per (producer, source, destination)
    chip pair: meant for a few chips (ResNet-50 on 4: 1-55 s); on 36 it is large, and the dual bound at
    `time_limit` is still valid but may be loose.

    HiGHS runs in a fresh child process: highspy and ortools (CP-SAT) cannot share one process (their
    bundled HiGHS symbols clash, see `chiplex.targets.order_mip`)."""
    started = time.perf_counter()
    n, k = graph.num_nodes, target.num_chips
    if k == 1 or n == 0:
        placement = np.zeros(n, dtype=np.int64)
        period = resource_period(graph, target, placement)
        return ResourceBound(
            period, graph.samples_per_microbatch / max(period, 1e-30), period, placement, True, 0.0
        )
    data = model_data(graph, target, memory)
    # A fresh interpreter (`python -m chiplex.targets.resource_bound`), the data on stdin: unlike a
    # spawned multiprocessing worker it does not re-run the caller's main module.
    child = subprocess.run(
        [sys.executable, "-m", "chiplex.targets.resource_bound"],
        input=pickle.dumps((data, float(time_limit))),
        capture_output=True,
        check=False,
    )
    if child.returncode != 0:
        lines = child.stderr.decode(errors="replace").strip().splitlines() or ["(no message)"]
        raise ChiplexError(
            f"resource bound: the HiGHS child process exited with {child.returncode}: {lines[-1]}"
        )
    bound, proved, inside = pickle.loads(child.stdout)
    placement = None
    best = float("inf")
    if inside is not None:
        placement = (k - 1) - np.asarray(inside, dtype=np.int64).sum(axis=1)
        best = resource_period(graph, target, placement)
    return ResourceBound(
        period_s=bound,
        throughput=graph.samples_per_microbatch / bound if bound > 0 else float("inf"),
        best_period_s=best,
        placement=placement,
        proved_optimal=proved,
        seconds=time.perf_counter() - started,
    )


def model_data(graph: Graph, target: Target, memory: bool) -> dict[str, Any]:
    """Everything the MIP needs, as plain numbers (what the child process receives)."""
    n, k = graph.num_nodes, target.num_chips
    consumers: list[list[int]] = [[] for _ in range(n)]
    for u, v in zip(graph.src.tolist(), graph.dst.tolist(), strict=True):
        if v not in consumers[u]:
            consumers[u].append(v)
    buffers = target.chip.buffers_per_edge
    transfers_of: dict[int, list[tuple[int, int, list[tuple[int, float]], float]]] = {}
    for u in range(n):
        if not consumers[u]:
            continue
        nbytes = float(graph.output_bytes[u])
        rows = []
        for d in range(1, k):
            for a in range(d):
                route = target.route_links(a, d)
                busy = [(link, nbytes / target.links[link].bandwidth) for link in route]
                rows.append((a, d, busy, transfer_time(nbytes, route, target) / buffers))
        transfers_of[u] = rows
    data: dict[str, Any] = {
        "n": n,
        "k": k,
        "links": len(target.links),
        "op_time": op_times(graph, target).tolist(),
        "edges": list(zip(graph.src.tolist(), graph.dst.tolist(), strict=True)),
        "consumers": consumers,
        "transfers": transfers_of,
        "memory": None,
    }
    if memory:
        mem = memory_data(graph, buffers)
        data["memory"] = {
            "capacity": float(target.chip.capacity_bytes),
            "weight": mem.weight.tolist(),
            "receive": mem.receive.tolist(),
            "working_set": mem.working_set.tolist(),
            "shared": [
                (nbytes, readers.tolist())
                for nbytes, readers in zip(
                    mem.shared_bytes.tolist(), mem.shared_readers, strict=True
                )
            ],
        }
    return data


def solve_model(
    data: dict[str, Any], time_limit: float
) -> tuple[float, bool, list[list[int]] | None]:
    """(proved lower bound on the period in seconds, proved optimal, y[v][c] of the best placement found
    or None). Runs in the child process."""
    import highspy

    n, k = data["n"], data["k"]
    op_time = np.asarray(data["op_time"])
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", time_limit)
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
        """x[v, c] = y[v][c] - y[v][c-1] as an expression."""
        if c == 0:
            return y[v][0]
        return (y[v][c] if c < k - 1 else 1.0) - y[v][c - 1]

    for v in range(n):
        for c in range(k - 2):
            h.addConstr(y[v][c] <= y[v][c + 1])
    for u, v in data["edges"]:
        for c in range(k - 1):
            h.addConstr(y[v][c] <= y[u][c])  # acyclic-dataflow: v in D_c needs u in D_c
    x = [[on(v, c) for c in range(k)] for v in range(n)]
    for c in range(k):
        h.addConstr(sum(float(op_time[v] / scale) * x[v][c] for v in range(n)) <= period)
    link_load: list[list[tuple[float, object]]] = [[] for _ in range(data["links"])]
    # z[u, d] = 1 when u sits off chip d and a consumer sits on d (its value is received there).
    z: dict[tuple[int, int], object] = {}
    for u, rows in data["transfers"].items():
        for d in range(1, k):
            z[(u, d)] = h.addVariable(lb=0.0, ub=1.0)
            for w in data["consumers"][u]:
                h.addConstr(z[(u, d)] >= x[w][d] - x[u][d])
        for a, d, busy, trip in rows:
            # s = 1 when u sits on a and is received on d: the transfer a -> d happens.
            s = h.addVariable(lb=0.0, ub=1.0)
            h.addConstr(s >= x[u][a] + z[(u, d)] - 1)
            for link, seconds in busy:
                link_load[link].append((seconds / scale, s))
            if trip > 0:
                h.addConstr(trip / scale * s <= period)
    for terms in link_load:
        if terms:
            h.addConstr(sum(coef * s for coef, s in terms) <= period)
    memory = data["memory"]
    if memory is not None:
        mib = 2.0**20  # rows in MiB
        for c in range(k):
            weights = sum(float(memory["weight"][v] / mib) * x[v][c] for v in range(n))
            for nbytes, readers in memory["shared"]:
                held = h.addVariable(lb=0.0, ub=1.0)
                for v in readers:
                    h.addConstr(held >= x[v][c])
                weights = weights + float(nbytes / mib) * held
            receive = sum(
                float(memory["receive"][u] / mib) * zd for (u, d), zd in z.items() if d == c
            )
            largest = max(memory["working_set"], default=0)
            working = h.addVariable(lb=0.0, ub=float(largest / mib))
            for v in range(n):
                h.addConstr(working >= float(memory["working_set"][v] / mib) * x[v][c])
            h.addConstr(weights + receive + working <= memory["capacity"] / mib)
    h.run()
    info = h.getInfo()
    proved = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    bound = max(float(info.mip_dual_bound), 0.0) * scale
    inside = None
    if info.primal_solution_status == 2:  # a feasible placement was found
        values = np.asarray(h.getSolution().col_value)
        columns = np.array([[var.index for var in row] for row in y], dtype=np.int64)
        inside = np.round(values[columns.reshape(n, k - 1)]).astype(np.int64).tolist()
    return bound, proved, inside


if __name__ == "__main__":  # the child process of `min_resource_period`
    model, limit = pickle.loads(sys.stdin.buffer.read())
    sys.stdout.buffer.write(pickle.dumps(solve_model(model, limit)))
