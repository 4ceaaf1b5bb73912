"""The roofline cost model: per-op time, per-chip busy time, per-link traffic and the pipeline estimate.

An op takes max(flops / peak, bytes touched / memory bandwidth): compute-bound or memory-bound.
Matmuls and convolutions run on the matrix unit, everything else on the vector unit, at the peak the
chip lists for the op's result element type. On chips with off-chip DRAM, the weights that do not fit
in SRAM (after the chip's activation buffers) stream from DRAM on every micro-batch: ops are given SRAM
for their weights in schedule order until it is full, the rest read their weights at DRAM bandwidth.
The pipeline's steady-state period is its slowest resource: the busiest chip, the busiest link (every
message routed over it, so shared routes add up), or the round trip of a receive buffer: a message stream
with B buffers cannot send micro-batch i + B before micro-batch i has arrived, so its period is at least
its transfer time (hops x latency + serialisation, packets pipelined over hops) over B.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from chiplex.ir.graph import Graph
from chiplex.targets.cut_bound import pipeline_cut_period
from chiplex.targets.legality import chip_memory
from chiplex.targets.target import Target


def compute_times(graph: Graph, target: Target) -> np.ndarray:
    """Seconds of compute per op at the chip's peak for its unit and dtype."""
    chip = target.chip
    peaks = np.array(
        [
            chip.peak("matrix" if m else "vector", d)
            for m, d in zip(graph.is_matrix, graph.dtypes, strict=True)
        ],
        dtype=np.float64,
    )
    return graph.flops / peaks


def op_times(graph: Graph, target: Target) -> np.ndarray:
    """Roofline seconds per op with every weight in SRAM (placement-independent)."""
    touched = graph.activation_in_bytes + graph.weight_bytes + graph.output_bytes
    return np.maximum(compute_times(graph, target), touched / target.chip.sram_bandwidth)


def op_durations(
    graph: Graph, target: Target, placement: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(seconds per op, bool per op: weights stream from DRAM) for a placement."""
    chip = target.chip
    base = op_times(graph, target)
    if not chip.dram_bytes:
        return base, np.zeros(graph.num_nodes, dtype=bool)
    placement = np.asarray(placement, dtype=np.int64)
    memory = chip_memory(graph, placement, target.num_chips, chip.buffers_per_edge)
    budget = chip.sram_bytes - memory.receive - memory.working_set
    streamed = np.zeros(graph.num_nodes, dtype=bool)
    params_of = node_params(graph)
    for c in range(target.num_chips):
        nodes = np.flatnonzero(placement == c)  # node order is schedule order
        streamed[nodes] = streamed_ops(
            [params_of[v] for v in nodes.tolist()], graph.param_bytes, budget[c]
        )
    sram_bytes = (
        graph.activation_in_bytes + graph.output_bytes + np.where(streamed, 0, graph.weight_bytes)
    )
    memory_time = sram_bytes / chip.sram_bandwidth + np.where(
        streamed, graph.weight_bytes / chip.dram_bandwidth, 0.0
    )
    return np.maximum(compute_times(graph, target), memory_time), streamed


def node_params(graph: Graph) -> list[list[int]]:
    """The param ids each node reads."""
    params_of: list[list[int]] = [[] for _ in range(graph.num_nodes)]
    for v, p in zip(graph.read_node.tolist(), graph.read_param.tolist(), strict=True):
        params_of[v].append(p)
    return params_of


def streamed_ops(
    op_params: Sequence[Sequence[Hashable]],
    param_bytes: Mapping[Hashable, int] | np.ndarray,
    sram_budget: float,
) -> np.ndarray:
    """Which ops of one chip (in schedule order) read their weights from DRAM.

    Params take SRAM first-come: in the order of their first reader on the chip, one op's new params
    at a time, until the budget is full; later params stay in DRAM. A param shared by several ops of
    the chip is stored once, where its first reader put it, and an op that reads any param held in
    DRAM streams its weights (the graph path and the emitter both call this, so they agree)."""
    budget = max(sram_budget, 0)
    in_dram: dict[Hashable, bool] = {}
    used = 0
    out = np.zeros(len(op_params), dtype=bool)
    for i, params in enumerate(op_params):
        new = [p for p in dict.fromkeys(params) if p not in in_dram]
        if new:
            used += sum(int(param_bytes[p]) for p in new)  # type: ignore[index]
            for p in new:
                in_dram[p] = used > budget and int(param_bytes[p]) > 0  # type: ignore[index]
        out[i] = any(in_dram[p] for p in params)
    return out


def transfers(graph: Graph, placement: np.ndarray) -> list[tuple[int, int, int]]:
    """(producer op, source chip, destination chip) per cross-chip transfer, once per destination."""
    placement = np.asarray(placement, dtype=np.int64)
    crossing = placement[graph.src] != placement[graph.dst]
    pairs = {
        (int(u), int(placement[v]))
        for u, v in zip(graph.src[crossing], graph.dst[crossing], strict=True)
    }
    return [(u, int(placement[u]), c) for u, c in sorted(pairs)]


def link_bytes(graph: Graph, target: Target, placement: np.ndarray) -> np.ndarray:
    """Bytes each directed link carries per micro-batch."""
    loads = np.zeros(len(target.links), dtype=np.float64)
    for producer, src, dst in transfers(graph, placement):
        for link in target.route_links(src, dst):
            loads[link] += graph.output_bytes[producer]
    return loads


PACKET_BYTES = 4096
"""Packet size of the network (the simulator's default): multi-hop messages pipeline per packet."""


def transfer_time(nbytes: float, route_links: Sequence[int], target: Target) -> float:
    """Seconds from the first byte entering the route to the last arriving, uncontended."""
    if not route_links:
        return 0.0
    links = [target.links[i] for i in route_links]
    slowest = min(link.bandwidth for link in links)
    packet = min(nbytes, PACKET_BYTES)
    return (
        sum(link.latency for link in links) + nbytes / slowest + (len(links) - 1) * packet / slowest
    )


@dataclass(frozen=True)
class Estimate:
    period_s: float
    """Steady-state seconds per micro-batch (the slowest resource)."""
    throughput: float
    """samples/s"""
    chip_busy_s: np.ndarray
    link_busy_s: np.ndarray
    critical: str
    """`chip 3`, `link 2->3` or `buffers of %x 2->5` (a receive buffer's round trip)."""


def estimate(graph: Graph, target: Target, placement: np.ndarray) -> Estimate:
    placement = np.asarray(placement, dtype=np.int64)
    durations, _ = op_durations(graph, target, placement)
    busy = np.bincount(placement, weights=durations, minlength=target.num_chips)
    link_busy = np.zeros(len(target.links))
    buffers = target.chip.buffers_per_edge
    round_trip, round_trip_name = 0.0, ""
    for producer, src, dst in transfers(graph, placement):
        nbytes = graph.output_bytes[producer]
        route = target.route_links(src, dst)
        for link_id in route:
            link = target.links[link_id]
            # Latency is propagation delay: it delays a message but does not occupy the link.
            link_busy[link_id] += nbytes / link.bandwidth
        trip = transfer_time(float(nbytes), route, target) / buffers
        if trip > round_trip:
            round_trip = trip
            round_trip_name = f"buffers of {graph.op_names[producer]} {src}->{dst}"
    chip_max = float(busy.max()) if len(busy) else 0.0
    link_max = float(link_busy.max()) if len(link_busy) else 0.0
    if link_max > chip_max:
        link = target.links[int(np.argmax(link_busy))]
        critical, period = f"link {link.src}->{link.dst}", link_max
    else:
        critical, period = f"chip {int(np.argmax(busy))}", chip_max
    if round_trip > period:
        critical, period = round_trip_name, round_trip
    coupled = coupling_period(graph, target, placement, durations, lower=period)
    if coupled > period * (1 + 1e-9):
        critical, period = "buffer back-pressure (a cycle of waits between chips)", coupled
    period = max(period, 1e-15)
    return Estimate(
        period_s=period,
        throughput=graph.samples_per_microbatch / period,
        chip_busy_s=busy,
        link_busy_s=link_busy,
        critical=critical,
    )


def coupling_period(
    graph: Graph,
    target: Target,
    placement: np.ndarray,
    durations: np.ndarray,
    *,
    lower: float = 0.0,
) -> float:
    """The steady-state period that the waits between chips impose, contention aside: the maximum
    cycle ratio (weight over micro-batch distance) of the schedule's timed event graph.

    Events are a chip's sends and recvs (in `build_schedule`'s step order) and each message's
    injection. Edges: a chip's program order (weight: the compute between two events; the wrap from
    its last event to its first crosses one micro-batch), a message's transfer (send -> injection ->
    recv, weight `transfer_time`), its stream (an injection waits for the previous micro-batch's to
    leave the first link) and its buffers (the send of micro-batch i waits for the recv of
    micro-batch i - B). Every cycle of waits is a bound on the period; the largest is found by
    bisection with Bellman-Ford. With two or more buffers it rarely exceeds the busiest resource; with
    one, a stage's send waits for its consumer to reach the matching recv, which couples the stages.
    """
    placement = np.asarray(placement, dtype=np.int64)
    k = target.num_chips
    buffers = target.chip.buffers_per_edge
    preds = graph.predecessors()
    succs = graph.successors()
    events: list[list[tuple[int, float]]] = [
        [] for _ in range(k)
    ]  # per chip: (node, compute before)
    pending = np.zeros(k)  # compute since the chip's last event
    head = np.zeros(k)  # compute before the chip's first event
    num_nodes = 0
    edges: list[tuple[int, int, float, int]] = []  # (from, to, weight, micro-batch distance)
    recv_node: dict[tuple[int, int], int] = {}
    send_node: dict[tuple[int, int], int] = {}

    def event(chip: int) -> int:
        nonlocal num_nodes
        node = num_nodes
        num_nodes += 1
        if events[chip]:
            edges.append((events[chip][-1][0], node, float(pending[chip]), 0))
        else:
            head[chip] = pending[chip]
        events[chip].append((node, float(pending[chip])))
        pending[chip] = 0.0
        return node

    for v in range(graph.num_nodes):
        chip = int(placement[v])
        for u in sorted(set(preds[v].tolist())):
            if int(placement[u]) != chip and (u, chip) not in recv_node:
                recv_node[(u, chip)] = event(chip)
        pending[chip] += durations[v]
        for dst in sorted({int(placement[w]) for w in succs[v].tolist()} - {chip}):
            send_node[(v, dst)] = event(chip)
    if not send_node:
        return 0.0
    for chip in range(k):
        if events[chip]:
            # The wrap: the rest of micro-batch i, then the start of micro-batch i + 1.
            edges.append((events[chip][-1][0], events[chip][0][0], pending[chip] + head[chip], 1))
    for (u, dst), send in send_node.items():
        src = int(placement[u])
        route = target.route_links(src, dst)
        nbytes = float(graph.output_bytes[u])
        inject = num_nodes
        num_nodes += 1
        first = target.links[route[0]]
        edges.append((send, inject, 0.0, 0))
        edges.append((inject, inject, nbytes / first.bandwidth, 1))
        edges.append((inject, recv_node[(u, dst)], transfer_time(nbytes, route, target), 0))
        edges.append((recv_node[(u, dst)], send, 0.0, buffers))
    src_a = np.array([e[0] for e in edges], dtype=np.int64)
    dst_a = np.array([e[1] for e in edges], dtype=np.int64)
    weight = np.array([e[2] for e in edges])
    tokens = np.array([e[3] for e in edges], dtype=np.float64)

    def has_cycle_above(period: float) -> bool:
        gain = weight - period * tokens
        dist = np.zeros(num_nodes)
        for _ in range(num_nodes):
            candidate = dist[src_a] + gain
            improved = candidate > dist[dst_a] + 1e-18
            if not improved.any():
                return False
            np.maximum.at(dist, dst_a[improved], candidate[improved])
        return True

    lo = max(lower, 1e-15)
    if not has_cycle_above(lo):
        return lower
    hi = float(weight.sum()) + lo  # every cycle crosses at least one micro-batch
    while hi - lo > 1e-4 * lo:
        mid = (lo + hi) / 2
        if has_cycle_above(mid):
            lo = mid
        else:
            hi = mid
    return hi


PIPELINE_CUTS = "pipeline cuts (stage work, and the bytes each cut sends over its links)"
"""The name of `chiplex.targets.cut_bound.pipeline_cut_period`'s term."""


@dataclass(frozen=True)
class UpperBound:
    throughput: float
    period_s: float
    reason: str
    """The binding term's name."""
    terms: tuple[tuple[str, float], ...] = ()
    """Every term: (name, the period in seconds it forces); the bound is the largest."""


def throughput_upper_bound(graph: Graph, target: Target) -> UpperBound:
    """No placement can beat this. Each term is a period no placement can undercut:

    - total work over K chips: every op's roofline time, plus the least extra time the weights that
      cannot fit the module's SRAM must cost when they stream from DRAM, spread over the K chips;
    - the largest op (ops are indivisible);
    - DRAM traffic over DRAM bandwidth: the bytes beyond the module's SRAM, over all K channels;
    - one unavoidable chip boundary: when the graph does not fit one chip, the cheapest edge must cross
      the fastest link.
    """
    times = op_times(graph, target)
    k = target.num_chips
    chip = target.chip
    streamed_bytes, stream_extra = _unavoidable_streaming(graph, target, times)
    terms = [
        (
            f"total work over {k} chips"
            + (" (with unavoidable DRAM streaming)" if stream_extra > 0 else ""),
            (float(times.sum()) + stream_extra) / k,
        ),
        ("largest op", float(times.max(initial=0.0))),
    ]
    if streamed_bytes > 0:
        terms.append(
            ("DRAM traffic over DRAM bandwidth", streamed_bytes / (k * chip.dram_bandwidth))
        )
    capacity = chip.capacity_bytes
    needs_cut = graph.total_weight_bytes + graph.working_set_bytes.max(initial=0) > capacity
    if needs_cut and graph.num_edges and _is_connected(graph) and target.links:
        # Any placement that must use two chips cuts at least one edge of a connected dataflow graph.
        fastest = max(target.links, key=lambda link: (link.bandwidth, -link.latency))
        serial = float(graph.edge_bytes.min()) / fastest.bandwidth
        cheapest = max(serial, (serial + fastest.latency) / chip.buffers_per_edge)
        terms.append(("one unavoidable chip boundary", cheapest))
    stages = pipeline_cut_period(graph, target, times, lower=max(p for _, p in terms))
    terms.append((PIPELINE_CUTS, stages))
    period, reason = max((p, name) for name, p in terms)
    period = max(period, 1e-15)
    return UpperBound(graph.samples_per_microbatch / period, period, reason, tuple(terms))


def _unavoidable_streaming(graph: Graph, target: Target, times: np.ndarray) -> tuple[float, float]:
    """(bytes that must stream from DRAM per micro-batch, the least extra op time they cost).

    Every param is stored at least once and SRAM holds at most K x sram_bytes, so at least the rest
    streams, and every streamed byte is read by an op that then reads its weights at DRAM bandwidth.
    The least extra time is a fractional knapsack: stream the ops whose time grows least per byte."""
    chip = target.chip
    if not chip.dram_bytes:
        return 0.0, 0.0
    must = float(graph.total_weight_bytes - target.num_chips * chip.sram_bytes)
    if must <= 0:
        return 0.0, 0.0
    weights = graph.weight_bytes.astype(np.float64)
    sram_part = (graph.activation_in_bytes + graph.output_bytes) / chip.sram_bandwidth
    streaming = np.maximum(compute_times(graph, target), sram_part + weights / chip.dram_bandwidth)
    extra = np.maximum(streaming - times, 0.0)
    has = weights > 0
    per_byte = np.where(has, extra / np.where(has, weights, 1.0), np.inf)
    order = np.argsort(per_byte, kind="stable")
    covered = np.cumsum(weights[order])
    take = np.minimum(weights[order], np.maximum(must - (covered - weights[order]), 0.0))
    cost = float((take * np.where(np.isfinite(per_byte[order]), per_byte[order], 0.0)).sum())
    return must, cost


def _is_connected(graph: Graph) -> bool:
    parent = list(range(graph.num_nodes))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u, v in zip(graph.src.tolist(), graph.dst.tolist(), strict=True):
        parent[root(u)] = root(v)
    return len({root(x) for x in range(graph.num_nodes)}) == 1
