"""The roofline cost model: per-op time, per-chip busy time, per-link traffic and the pipeline estimate.

An op takes max(flops / peak, bytes touched / memory bandwidth): compute-bound or memory-bound.
Matmuls and convolutions run on the matrix unit, everything else on the vector unit, at the peak the
chip lists for the op's result element type. On chips with off-chip DRAM, the weights that do not fit
in SRAM (after the chip's activation buffers) stream from DRAM on every micro-batch: ops are given SRAM
for their weights in schedule order until it is full, the rest read their weights at DRAM bandwidth.
The pipeline's steady-state period is its slowest resource: the busiest chip or the busiest link.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from chiplex.ir.graph import Graph
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


@dataclass(frozen=True)
class Estimate:
    period_s: float
    """Steady-state seconds per micro-batch (the slowest resource)."""
    throughput: float
    """samples/s"""
    chip_busy_s: np.ndarray
    link_busy_s: np.ndarray
    critical: str
    """`chip 3` or `link 2->3`."""


def estimate(graph: Graph, target: Target, placement: np.ndarray) -> Estimate:
    placement = np.asarray(placement, dtype=np.int64)
    durations, _ = op_durations(graph, target, placement)
    busy = np.bincount(placement, weights=durations, minlength=target.num_chips)
    link_busy = np.zeros(len(target.links))
    for producer, src, dst in transfers(graph, placement):
        nbytes = graph.output_bytes[producer]
        for link_id in target.route_links(src, dst):
            link = target.links[link_id]
            # Latency is propagation delay: it delays a message but does not occupy the link.
            link_busy[link_id] += nbytes / link.bandwidth
    chip_max = float(busy.max()) if len(busy) else 0.0
    link_max = float(link_busy.max()) if len(link_busy) else 0.0
    if link_max > chip_max:
        link = target.links[int(np.argmax(link_busy))]
        critical, period = f"link {link.src}->{link.dst}", link_max
    else:
        critical, period = f"chip {int(np.argmax(busy))}", chip_max
    period = max(period, 1e-15)
    return Estimate(
        period_s=period,
        throughput=graph.samples_per_microbatch / period,
        chip_busy_s=busy,
        link_busy_s=link_busy,
        critical=critical,
    )


@dataclass(frozen=True)
class UpperBound:
    throughput: float
    period_s: float
    reason: str


def throughput_upper_bound(graph: Graph, target: Target) -> UpperBound:
    """No placement can beat this: total work over K chips, the largest op, and one unavoidable cut."""
    times = op_times(graph, target)
    k = target.num_chips
    candidates = [
        (float(times.sum()) / k, f"total work over {k} chips"),
        (float(times.max(initial=0.0)), "largest op"),
    ]
    capacity = target.chip.capacity_bytes
    needs_cut = graph.weight_bytes.sum() + graph.working_set_bytes.max(initial=0) > capacity
    if needs_cut and graph.num_edges and _is_connected(graph):
        # Any placement that must use two chips cuts at least one edge of a connected dataflow graph.
        fastest = max(target.links, key=lambda link: (link.bandwidth, -link.latency))
        cheapest = float(graph.edge_bytes.min()) / fastest.bandwidth + fastest.latency
        candidates.append((cheapest, "one unavoidable chip boundary"))
    period, reason = max(candidates)
    period = max(period, 1e-15)
    return UpperBound(graph.samples_per_microbatch / period, period, reason)


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
