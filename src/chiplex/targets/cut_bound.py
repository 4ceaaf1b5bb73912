"""The pipeline-cut term of the throughput bound: stage work, indivisible ops and the bytes every cut
between pipeline stages must send over the links that leave it.

A legal placement uses chips 0..m-1 and sends data only forward (`acyclic-dataflow`,
`no-skipping-chips`), so the ops on chips 0..c form a *downset* D_c of the dataflow graph (closed under
predecessors) and D_0 < D_1 < ... < D_{m-2} are nested. A period P is possible only if

1. every chip's work (its ops' roofline times, weights in SRAM: a lower bound of their durations)
   is at most P, so consecutive downsets differ by at most P of work;
2. every value that crosses the cut D_c (a producer in D_c with a consumer outside, once however many
   consumers) travels from chips {0..c} to chips {c+1..K-1}, so it crosses at least one link leaving
   {0..c}: the bytes crossing the cut are at most P x the bandwidth of those links;
3. no single message takes longer than P: a result whose transfer (serialised on the fastest link, or
   its receive buffers' round trip) exceeds P cannot cross any cut.

Deciding this exactly is a partition problem on a DAG; the relaxation here is exact on a chain of ops
and still sound on a DAG. The graph's *bottlenecks* (ops comparable with every other op: the residual
adds, layer norms and block outputs of a network) are totally ordered, and every downset either ends
exactly at a bottleneck or cuts the *segment* between two consecutive bottlenecks. For a segment, the
downsets inside it have work between the segment's two ends and send at least the segment's minimum
cut (a small max-flow over its ops, producers counted once, downsets enforced by infinite edges,
producers that may not cross at P made uncuttable). Treating the work inside a segment as divisible
only relaxes rule 1, so the smallest P for which a greedy walk (each chip takes the furthest reachable
legal cut, which is optimal for this interval model) covers the graph with at most K chips is a lower
bound of every placement's period. The smallest such P is found by bisection.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from chiplex.ir.graph import Graph
from chiplex.targets.target import Target


@dataclass(frozen=True)
class _Segment:
    lo: float
    """Work of the downset the segment starts from (every op up to and including its first bottleneck)."""
    hi: float
    """Work of the largest downset inside it (everything but the next bottleneck and its descendants)."""
    across: np.ndarray
    """Producers before the segment with a consumer after it: they cross every cut here."""
    interior: np.ndarray
    """The ops strictly between the two bottlenecks."""
    before: np.ndarray
    """Producers before the segment with consumers inside it (and none after it)."""


def _reachability(graph: Graph) -> tuple[list[int], list[int]]:
    """(ancestors, descendants) of every node as Python-int bitsets (nodes are in topological order)."""
    n = graph.num_nodes
    preds = graph.predecessors()
    succs = graph.successors()
    anc = [0] * n
    for v in range(n):
        bits = 0
        for u in preds[v].tolist():
            bits |= anc[u] | (1 << u)
        anc[v] = bits
    desc = [0] * n
    for v in range(n - 1, -1, -1):
        bits = 0
        for w in succs[v].tolist():
            bits |= desc[w] | (1 << w)
        desc[v] = bits
    return anc, desc


def _segments(graph: Graph, times: np.ndarray) -> list[_Segment]:
    """The segments between consecutive bottlenecks. A bottleneck b is comparable with every op, so in
    the (topological) node order its ancestors are exactly the ops before it and its descendants the
    ops after it: the downset ending at b is the prefix 0..b, and a segment is an index range."""
    n = graph.num_nodes
    anc, desc = _reachability(graph)
    bottlenecks = [
        v for v in range(n) if anc[v].bit_count() == v and desc[v].bit_count() == n - 1 - v
    ]
    last = np.full(n, -1, dtype=np.int64)  # each op's latest consumer (-1: none)
    np.maximum.at(last, graph.src, graph.dst)
    prefix = np.concatenate([[0.0], np.cumsum(times)])
    segments = []
    live: list[int] = []  # producers up to the segment's start with a consumer after it
    start = -1  # the segment starts after this op (the previous bottleneck; -1: the graph's start)
    for end in [*bottlenecks, n]:
        if start >= 0:
            live = [u for u in live if last[u] > start]
        across = [u for u in live if last[u] >= end]
        before = [u for u in live if last[u] < end]
        segments.append(
            _Segment(
                lo=float(prefix[start + 1]),
                hi=float(prefix[end]),
                across=np.array(across, dtype=np.int64),
                interior=np.arange(start + 1, end, dtype=np.int64),
                before=np.array(before, dtype=np.int64),
            )
        )
        if end < n:  # the interior and the bottleneck join the downset
            live.extend(u for u in range(start + 1, end + 1) if last[u] > end)
            start = end
    return segments


def max_flow(num_nodes: int, arcs: list[tuple[int, int, float]], source: int, sink: int) -> float:
    """Dinic's max flow on a small network (the segment's cut problems have tens of nodes, the
    order model's feeding floors hundreds; `order_mip._feeding_floor`)."""
    head: list[list[int]] = [[] for _ in range(num_nodes)]
    to: list[int] = []
    cap: list[float] = []
    for a, b, c in arcs:
        head[a].append(len(to))
        to.append(b)
        cap.append(c)
        head[b].append(len(to))
        to.append(a)
        cap.append(0.0)
    flow = 0.0
    while True:
        level = [-1] * num_nodes
        level[source] = 0
        queue = deque([source])
        while queue:
            x = queue.popleft()
            for e in head[x]:
                if cap[e] > 1e-9 and level[to[e]] < 0:
                    level[to[e]] = level[x] + 1
                    queue.append(to[e])
        if level[sink] < 0:
            return flow
        pointer = [0] * num_nodes
        while True:  # blocking flow: iterative depth-first search along the levels
            path: list[int] = []  # arcs from the source
            x = source
            while x != sink:
                while pointer[x] < len(head[x]):
                    e = head[x][pointer[x]]
                    if cap[e] > 1e-9 and level[to[e]] == level[x] + 1:
                        break
                    pointer[x] += 1
                else:  # dead end: retreat
                    if not path:
                        break
                    level[x] = -1
                    e = path.pop()
                    x = to[e ^ 1]
                    pointer[x] += 1
                    continue
                path.append(e)
                x = to[e]
            if x != sink:
                break
            pushed = min(cap[e] for e in path)
            for e in path:
                cap[e] -= pushed
                cap[e ^ 1] += pushed
            flow += pushed


def _segment_cut(
    graph: Graph, succs: list[np.ndarray], segment: _Segment, forbidden: np.ndarray
) -> float:
    """The fewest bytes a downset inside the segment sends across (inf when every such cut would send
    a forbidden producer's result)."""
    interior = segment.interior.tolist()
    if not interior:
        return 0.0
    index = {v: i + 2 for i, v in enumerate(interior)}  # 0: source (the downset A), 1: sink
    big = float(graph.output_bytes.sum()) * 4.0 + 1.0
    arcs: list[tuple[int, int, float]] = []
    aux = 2 + len(interior)
    out = graph.output_bytes

    def capacity(u: int) -> float:
        return big if forbidden[u] else float(out[u])

    for u in segment.before.tolist():
        inside = [index[w] for w in succs[u].tolist() if w in index]
        arcs.append((0, aux, capacity(u)))
        arcs.extend((aux, w, big) for w in inside)
        aux += 1
    for u in interior:
        arcs.append((index[u], aux, capacity(u)))
        for w in succs[u].tolist():
            if w in index:
                arcs.append((aux, index[w], big))
                arcs.append((index[w], index[u], big))  # a downset holding w holds u
            else:
                arcs.append((aux, 1, big))  # a consumer past the segment
        aux += 1
    cut = max_flow(aux, arcs, 0, 1)
    return float("inf") if cut >= big else cut


DOWNSET_LIMIT = 2048
"""Enumerate a segment's downsets exactly up to this many; past it, the segment's work is treated as
divisible and every cut in it as sending only its minimum cut (the max-flow relaxation)."""


def _segment_downsets(
    graph: Graph,
    succs: list[np.ndarray],
    preds: list[np.ndarray],
    segment: _Segment,
    times: np.ndarray,
    message: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(work, bytes sent, longest message) of every downset inside the segment: the segment's start
    plus a predecessor-closed subset of its interior; None when there are more than DOWNSET_LIMIT."""
    interior = segment.interior.tolist()
    local = {v: i for i, v in enumerate(interior)}
    need = [sum(1 << local[u] for u in preds[v].tolist() if u in local) for v in interior]
    subsets: list[int] = [0]
    for i in range(len(interior)):  # grow in topological order: v may join once its preds are in
        grown = [bits | (1 << i) for bits in subsets if bits & need[i] == need[i]]
        subsets.extend(grown)
        if len(subsets) > DOWNSET_LIMIT:
            return None
    out_bytes = graph.output_bytes.astype(np.float64)
    always = float(out_bytes[segment.across].sum())
    always_message = float(message[segment.across].max(initial=0.0))
    # A producer crosses when one of its consumers is outside the downset: before-producers through
    # their interior consumers, interior producers also when they have a consumer past the segment.
    producers = [
        (u, sum(1 << local[w] for w in succs[u].tolist() if w in local), False)
        for u in segment.before.tolist()
    ] + [
        (
            u,
            sum(1 << local[w] for w in succs[u].tolist() if w in local),
            any(w not in local for w in succs[u].tolist()),
        )
        for u in interior
    ]
    work = np.empty(len(subsets))
    sent = np.empty(len(subsets))
    longest = np.empty(len(subsets))
    interior_times = times[segment.interior] if interior else np.zeros(0)
    for j, bits in enumerate(subsets):
        nbytes, slowest = always, always_message
        for index, (u, consumers, leaves) in enumerate(producers):
            if index >= len(segment.before):
                if not (bits >> local[u]) & 1:
                    continue
                crosses = leaves or (consumers & ~bits) != 0
            else:
                crosses = (consumers & ~bits) != 0
            if crosses:
                nbytes += out_bytes[u]
                slowest = max(slowest, float(message[u]))
        chosen = [i for i in range(len(interior)) if (bits >> i) & 1]
        work[j] = segment.lo + float(interior_times[chosen].sum())
        sent[j] = nbytes
        longest[j] = slowest
    return work, sent, longest


def prefix_cut_bandwidth(target: Target) -> np.ndarray:
    """float[K-1]: bytes/s of the links from chips {0..c} to chips {c+1..K-1}, for every c."""
    k = target.num_chips
    out = np.zeros(max(k - 1, 0))
    for link in target.links:
        if link.src < link.dst:
            out[link.src : link.dst] += link.bandwidth
    return out


def pipeline_cut_period(graph: Graph, target: Target, times: np.ndarray, lower: float) -> float:
    """The smallest period (seconds per micro-batch, at least `lower`) the three rules above allow."""
    n, k = graph.num_nodes, target.num_chips
    total = float(times.sum())
    if n == 0 or total <= lower or k == 1:
        return max(lower, total if k == 1 else lower)
    segments = _segments(graph, times)
    succs = graph.successors()
    cut_bandwidth = prefix_cut_bandwidth(target)
    if target.links:
        # The fastest bandwidth and the shortest latency of any link (they may be different links).
        serial = graph.output_bytes.astype(np.float64) / max(x.bandwidth for x in target.links)
        shortest_latency = min(x.latency for x in target.links)
        buffers = target.chip.buffers_per_edge
        message = np.maximum(serial, (serial + shortest_latency) / buffers)
    else:
        message = np.full(n, np.inf)
    preds = graph.predecessors()
    exact = [_segment_downsets(graph, succs, preds, s, times, message) for s in segments]
    if any(e is not None for e in exact):
        point_work = np.concatenate([e[0] for e in exact if e is not None])
        point_bytes = np.concatenate([e[1] for e in exact if e is not None])
        point_message = np.concatenate([e[2] for e in exact if e is not None])
    else:
        point_work = point_bytes = point_message = np.zeros(0)
    segments = [s for s, e in zip(segments, exact, strict=True) if e is None]
    lo_work = np.array([s.lo for s in segments])
    hi_work = np.array([s.hi for s in segments])
    always = np.array([float(graph.output_bytes[s.across].sum()) for s in segments])
    always_message = np.array([float(message[s.across].max(initial=0.0)) for s in segments])
    # The cut of a segment changes only when another of its producers becomes uncuttable: cache by
    # how many are.
    cache: dict[tuple[int, int], float] = {}
    relevant = [np.sort(message[np.concatenate([s.before, s.interior])])[::-1] for s in segments]

    def segment_cuts(period: float) -> np.ndarray:
        forbidden = message > period
        cuts = np.empty(len(segments))
        for i, segment in enumerate(segments):
            if always_message[i] > period:
                cuts[i] = np.inf
                continue
            key = (i, int((relevant[i] > period).sum()))
            if key not in cache:
                cache[key] = _segment_cut(graph, succs, segment, forbidden)
            cuts[i] = always[i] + cache[key]
        return cuts

    slack = 1e-9 * total  # work positions are sums in different orders: compare with a little slack

    def feasible(period: float) -> bool:
        """The greedy walk: chip c ends at the furthest legal cut it can reach. If a placement with this
        period exists, the walk stays at or past its cut after every chip (by induction: the
        placement's next cut is reachable, or already passed), so it covers the graph in K chips."""
        cuts = segment_cuts(period)
        reached = 0.0
        for chip in range(k):
            if reached + period + slack >= total:
                return True
            if chip == k - 1:
                return False
            capacity = period * cut_bandwidth[chip] * (1 + 1e-12)
            limit = reached + period + slack
            ends = np.minimum(hi_work, limit)
            ok = (cuts <= capacity) & (ends >= lo_work)
            points = (point_bytes <= capacity) & (point_message <= period) & (point_work <= limit)
            # No legal cut past the walk: a placement's cut here, if any, is already behind it.
            reached = max(
                reached,
                float(ends[ok].max(initial=-1.0)),
                float(point_work[points].max(initial=-1.0)),
            )
        return False

    lo = max(lower, float(times.max(initial=0.0)), 1e-15)
    if feasible(lo):
        return lo
    hi = total
    while hi - lo > 1e-6 * hi:
        mid = (lo + hi) / 2
        if feasible(mid):
            hi = mid
        else:
            lo = mid
    return (
        lo  # infeasible, so below every placement's period (within 1e-6 of the smallest feasible)
    )
