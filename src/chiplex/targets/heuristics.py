"""Fast numpy heuristics for placement repair and bottleneck optimisation (no solver call).

Both heuristics cut a topological order of the ops into consecutive segments, one per chip
0..m (m < K): any such cut satisfies `acyclic-dataflow` and `no-skipping-chips` by construction, so a
dynamic programme over cut positions only has to handle memory, pins and the hop span exactly.

- **Order.** Colocated ops (and every op on a dataflow path between two of them, which is forced onto
  the same chip) are contracted into *units* that stay adjacent in the order. Repair orders units by
  Kahn's algorithm with the candidate's chip as the priority, so a legal candidate is itself a cut of the
  order; optimisation tries a few orders (block order, by depth).
- **Memory.** For a segment [j, i) of the order, weights and the largest working set are prefix sums and
  running maxima; receive buffers are the outputs of producers before j with a consumer in [j, i)
  (times the buffers per edge), and a shared param is a producer before every op whose consumers are
  its readers (stored once per segment that holds one).
  Growing i never shrinks any of them, so each start j has a last feasible end `end[j]`, found for all j
  at once with 2-D prefix sums over (start, end).
- **Hop span.** With max_hop_span = s, a cut is legal when every op on chip c + s + 1 or later only
  reads ops on chips c + 1 or later. For s = 1 this links consecutive cut points only, so the programme is
  exact; for s >= 2 the programme first ignores the span, then repairs it by local moves, then (if that
  fails) falls back to the stricter s = 1 programme.
- **Local moves** then move single units back toward the candidate (repair) or off the busiest chip
  (optimisation) while every rule keeps holding.

The notes in /work/shared/notes/minizinc.md measured a min-conflicts heuristic of this family matching
the proven optimum in 26 of 32 noisy repairs; this one is checked against MiniZinc in the tests and the
benchmark (benchmarks/solver_speed.py).
"""

from __future__ import annotations

import heapq
import weakref
from dataclasses import dataclass, field

import numpy as np

from chiplex.ir.graph import Graph
from chiplex.targets.legality import PlacementRules, check_placement, memory_data

INF = np.int64(2**62)
_BLOCK_ELEMENTS = 2_000_000
"""Entries per block of the (start, end) memory tables: bounds the heuristic's scratch memory."""


# -- the problem, precomputed once per (graph, rules) ---------------------------------------------
@dataclass(eq=False)
class Problem:
    """A graph and its resolved rules as flat arrays, with colocated ops contracted into units."""

    graph: Graph
    rules: PlacementRules
    n: int
    k: int
    capacity: int
    max_span: int | None
    weight: np.ndarray
    """Bytes of the params only this op reads (`legality.memory_data`)."""
    output: np.ndarray
    """Receive-buffer bytes a consumer chip reserves for this op's result (output x buffers per edge)."""
    working_set: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    preds: list[np.ndarray]
    succs: list[np.ndarray]
    unit_of: np.ndarray
    """int64[n]: the unit of each op; units are numbered in a topological order of the unit graph."""
    units: list[np.ndarray]
    """Members of each unit, ascending (so edges inside a unit go forward)."""
    unit_pin: np.ndarray
    """int64[U]: the chip the unit is pinned to, -1 if none, -2 if its members are pinned apart."""
    unit_preds: list[np.ndarray]
    unit_succs: list[np.ndarray]
    pinned_apart: list[tuple[int, int]] = field(default_factory=list)
    """Pairs of ops pinned to different chips but forced onto one chip (colocated or in between)."""
    shared_bytes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Bytes of each param two or more ops read: stored once per chip holding a reader."""
    shared_readers: tuple[np.ndarray, ...] = ()

    @property
    def num_units(self) -> int:
        return len(self.units)


_CACHE: weakref.WeakKeyDictionary[Graph, list[tuple[PlacementRules, Problem]]] = (
    weakref.WeakKeyDictionary()
)


def problem_for(graph: Graph, rules: PlacementRules) -> Problem:
    """The precomputed problem; cached per graph and rules (by value) because the RL loop repairs many
    candidates of one graph."""
    entries = _CACHE.setdefault(graph, [])
    for cached_rules, problem in entries:
        if cached_rules is rules or _same_rules(cached_rules, rules):
            return problem
    problem = _build_problem(graph, rules)
    entries.append((rules, problem))
    del entries[:-4]  # a few rule sets per graph at most (explain relaxes rules)
    return problem


def _same_rules(a: PlacementRules, b: PlacementRules) -> bool:
    # resolve_rules builds a new object per call: compare by value so callers need not keep one.
    return (
        a.num_chips == b.num_chips
        and a.capacity_bytes == b.capacity_bytes
        and a.max_hop_span == b.max_hop_span
        and a.buffers_per_edge == b.buffers_per_edge
        and np.array_equal(a.pinned, b.pinned)
        and len(a.colocated) == len(b.colocated)
        and all(np.array_equal(x, y) for x, y in zip(a.colocated, b.colocated, strict=True))
    )


def _adjacency(
    n: int, src: np.ndarray, dst: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    order = np.argsort(src, kind="stable")
    succs = np.split(dst[order].astype(np.int64), np.searchsorted(src[order], np.arange(1, n)))
    order = np.argsort(dst, kind="stable")
    preds = np.split(src[order].astype(np.int64), np.searchsorted(dst[order], np.arange(1, n)))
    return preds, succs


def _build_problem(graph: Graph, rules: PlacementRules) -> Problem:
    n = graph.num_nodes
    src = graph.src.astype(np.int64)
    dst = graph.dst.astype(np.int64)
    preds, succs = _adjacency(n, src, dst)
    unit_of = _contract_units(n, src, dst, rules.colocated)
    num_units = int(unit_of.max()) + 1 if n else 0
    members = np.argsort(unit_of, kind="stable")
    units = np.split(members, np.searchsorted(unit_of[members], np.arange(1, num_units)))
    unit_pin = np.full(num_units, -1, dtype=np.int64)
    pinned_apart: list[tuple[int, int]] = []
    first_pinned_op: dict[int, int] = {}
    for op in np.flatnonzero(rules.pinned >= 0):
        u = int(unit_of[op])
        chip = int(rules.pinned[op])
        if unit_pin[u] == -1:
            unit_pin[u] = chip
            first_pinned_op[u] = int(op)
        elif unit_pin[u] != chip:
            if unit_pin[u] != -2:
                pinned_apart.append((first_pinned_op[u], int(op)))
            unit_pin[u] = -2
    usrc, udst = unit_of[src], unit_of[dst]
    cross = usrc != udst
    pairs = np.unique(np.stack([usrc[cross], udst[cross]], axis=1), axis=0) if cross.any() else None
    if pairs is None:
        empty = np.zeros(0, dtype=np.int64)
        unit_preds = [empty] * num_units
        unit_succs = [empty] * num_units
    else:
        unit_preds, unit_succs = _adjacency(num_units, pairs[:, 0], pairs[:, 1])
    memory = memory_data(graph, rules.buffers_per_edge)
    return Problem(
        graph=graph,
        rules=rules,
        n=n,
        k=rules.num_chips,
        capacity=int(rules.capacity_bytes),
        max_span=rules.max_hop_span,
        weight=memory.weight,
        output=memory.receive,
        working_set=memory.working_set,
        shared_bytes=memory.shared_bytes,
        shared_readers=memory.shared_readers,
        src=src,
        dst=dst,
        preds=preds,
        succs=succs,
        unit_of=unit_of,
        units=units,
        unit_pin=unit_pin,
        unit_preds=unit_preds,
        unit_succs=unit_succs,
        pinned_apart=pinned_apart,
    )


def _contract_units(
    n: int, src: np.ndarray, dst: np.ndarray, groups: tuple[np.ndarray, ...]
) -> np.ndarray:
    """Unit id per op: colocated groups merged, then every strongly connected component of the
    contracted graph merged (an op on a path between two colocated ops must share their chip).
    Units are numbered in a topological order of the resulting acyclic unit graph."""
    if not groups:
        return np.arange(n, dtype=np.int64)
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for group in groups:
        first = root(int(group[0]))
        for other in group[1:]:
            parent[root(int(other))] = first
    comp = np.array([root(x) for x in range(n)], dtype=np.int64)
    # Strongly connected components of the component graph (iterative Tarjan).
    nodes = sorted(set(comp.tolist()))
    index_of = {c: i for i, c in enumerate(nodes)}
    c_of = np.array([index_of[c] for c in comp.tolist()], dtype=np.int64)
    size = len(nodes)
    adj: list[set[int]] = [set() for _ in range(size)]
    for a, b in zip(c_of[src].tolist(), c_of[dst].tolist(), strict=True):
        if a != b:
            adj[a].add(b)
    scc = _tarjan(size, [sorted(s) for s in adj])
    merged = scc[c_of]
    # Renumber in a topological order (by the smallest member op, which respects dataflow within the
    # acyclic condensation because ops are in topological order: Kahn with min-member priority).
    num = int(merged.max()) + 1
    smallest = np.full(num, n, dtype=np.int64)
    np.minimum.at(smallest, merged, np.arange(n))
    uadj: list[set[int]] = [set() for _ in range(num)]
    indeg = np.zeros(num, dtype=np.int64)
    for a, b in zip(merged[src].tolist(), merged[dst].tolist(), strict=True):
        if a != b and b not in uadj[a]:
            uadj[a].add(b)
            indeg[b] += 1
    heap = [(int(smallest[u]), u) for u in range(num) if indeg[u] == 0]
    heapq.heapify(heap)
    rank = np.empty(num, dtype=np.int64)
    next_rank = 0
    while heap:
        _, u = heapq.heappop(heap)
        rank[u] = next_rank
        next_rank += 1
        for b in uadj[u]:
            indeg[b] -= 1
            if indeg[b] == 0:
                heapq.heappush(heap, (int(smallest[b]), b))
    return rank[merged]


def _tarjan(size: int, adj: list[list[int]]) -> np.ndarray:
    index = [-1] * size
    low = [0] * size
    on_stack = [False] * size
    stack: list[int] = []
    comp = np.full(size, -1, dtype=np.int64)
    counter = 0
    num = 0
    for start in range(size):
        if index[start] != -1:
            continue
        work = [(start, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack[v] = True
            recurse = False
            while i < len(adj[v]):
                w = adj[v][i]
                i += 1
                if index[w] == -1:
                    work.append((v, i))
                    work.append((w, 0))
                    recurse = True
                    break
                if on_stack[w]:
                    low[v] = min(low[v], index[w])
            if recurse:
                continue
            if low[v] == index[v]:
                while True:
                    w = stack.pop()
                    on_stack[w] = False
                    comp[w] = num
                    if w == v:
                        break
                num += 1
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return comp


# -- orders -------------------------------------------------------------------------------------------
def priority_order(problem: Problem, priority: np.ndarray) -> np.ndarray:
    """Units in a topological order that takes the lowest `priority` first (ties: lowest unit id)."""
    num = problem.num_units
    indeg = np.array([len(p) for p in problem.unit_preds], dtype=np.int64)
    heap = [(int(priority[u]), u) for u in np.flatnonzero(indeg == 0).tolist()]
    heapq.heapify(heap)
    out = np.empty(num, dtype=np.int64)
    count = 0
    succs = problem.unit_succs
    while heap:
        _, u = heapq.heappop(heap)
        out[count] = u
        count += 1
        for b in succs[u].tolist():
            indeg[b] -= 1
            if indeg[b] == 0:
                heapq.heappush(heap, (int(priority[b]), b))
    return out


def depth_priority(problem: Problem) -> np.ndarray:
    """Longest-path depth of each unit from the sources (a breadth-first, layer-by-layer order)."""
    depth = np.zeros(problem.num_units, dtype=np.int64)
    for u in range(problem.num_units):  # units are numbered topologically
        preds = problem.unit_preds[u]
        if len(preds):
            depth[u] = depth[preds].max() + 1
    return depth


@dataclass(frozen=True)
class Sequence:
    """Ops in a cut order: `perm[t]` is the op at position t; cuts are allowed at `boundary`."""

    perm: np.ndarray
    position: np.ndarray
    boundary: np.ndarray
    """bool[n + 1]: a segment may start/end at this position (unit boundaries)."""


def sequence_of(problem: Problem, unit_order: np.ndarray) -> Sequence:
    n = problem.n
    if problem.num_units == n:  # no contraction: unit ids are op ids
        perm = unit_order.astype(np.int64)
        boundary = np.ones(n + 1, dtype=bool)
    else:
        parts = [problem.units[u] for u in unit_order.tolist()]
        perm = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        boundary = np.zeros(n + 1, dtype=bool)
        boundary[np.cumsum([0] + [len(p) for p in parts])] = True
    position = np.empty(n, dtype=np.int64)
    position[perm] = np.arange(n)
    return Sequence(perm, position, boundary)


# -- segment memory -----------------------------------------------------------------------------------
def segment_ends(problem: Problem, seq: Sequence) -> np.ndarray:
    """end[j] for j in 0..n-1: the largest i such that the segment [j, i) of the order fits one chip's
    memory (the checker's model); end[j] == j when the op at j alone does not fit."""
    n = problem.n
    cap = problem.capacity
    perm = seq.perm
    w = problem.weight[perm]
    wprefix = np.concatenate([[0], np.cumsum(w)])
    ws = problem.working_set[perm]
    # Receive buffers as rectangles over (start j, end i): producer at position a whose consumers sit
    # at positions w1 < w2 < ...: for j in (w_{k-1}, w_k] (w_0 = a), the segment receives it iff i > w_k.
    pu = seq.position[problem.src]
    pv = seq.position[problem.dst]
    val = problem.output[problem.src]
    order = np.lexsort((pv, pu))
    pu, pv, val = pu[order], pv[order], val[order]
    same = np.zeros(len(pu), dtype=bool)
    same[1:] = pu[1:] == pu[:-1]
    prev = np.where(same, np.concatenate([[0], pv[:-1]]), pu)
    keep = (val > 0) & (
        pv > prev
    )  # pv == prev: a duplicate consumer position (cannot happen; safe)
    rows_add, rows_sub, cols, val = prev[keep] + 1, pv[keep] + 1, pv[keep] + 1, val[keep]
    if problem.shared_readers:
        # A shared param is a producer at position -1 whose consumers are its readers: stored once
        # in a segment iff one of its readers is in it.
        s_prev, s_pos, s_val = _shared_rectangles(problem, seq)
        rows_add = np.concatenate([rows_add, s_prev + 1])
        rows_sub = np.concatenate([rows_sub, s_pos + 1])
        cols = np.concatenate([cols, s_pos + 1])
        val = np.concatenate([val, s_val])
    upd_rows = np.concatenate([rows_add, rows_sub])
    upd_cols = np.concatenate([cols, cols])
    upd_vals = np.concatenate([val, -val])
    by_row = np.argsort(upd_rows, kind="stable")
    upd_rows, upd_cols, upd_vals = upd_rows[by_row], upd_cols[by_row], upd_vals[by_row]
    carry = np.zeros(n + 2, dtype=np.int64)  # running sum over rows of the row differences
    # Columns a segment starting at j could reach: weights alone bound the end.
    reach = (
        np.searchsorted(wprefix, wprefix[:n] + cap, side="right") - 1
    )  # last i with weights <= cap
    end = np.arange(n, dtype=np.int64)
    j0 = 0
    while j0 < n:
        rows = max(1, min(n - j0, _BLOCK_ELEMENTS // max(int(reach[j0] - j0 + 1), 1)))
        while rows > 1 and (int(reach[j0 : j0 + rows].max()) - j0 + 1) * rows > _BLOCK_ELEMENTS:
            rows //= 2
        j1 = j0 + rows
        c0, c1 = j0, int(reach[j0:j1].max()) + 1  # columns j0..c1-1
        c1 = max(c1, j0 + 1)
        lo_u, hi_u = np.searchsorted(upd_rows, [j0, j1])
        # carry holds the sums of updates with row < j0.
        dense = np.zeros((rows, c1 - c0), dtype=np.int64)
        r, c, v = upd_rows[lo_u:hi_u], upd_cols[lo_u:hi_u], upd_vals[lo_u:hi_u]
        inside = c < c1
        c_clamped = np.clip(c, c0, None)
        # Updates at columns < c0 cannot affect rows >= j0 after cancellation except via the carry;
        # columns are always >= row + 1 >= j0 + 1 > c0 here, so clamping only guards the index.
        np.add.at(dense, (r[inside] - j0, c_clamped[inside] - c0), v[inside])
        dense[0] += carry[c0:c1]
        rowcum = np.cumsum(dense, axis=0)
        np.add.at(carry, np.minimum(c, n + 1), v)
        receive = np.cumsum(rowcum, axis=1)
        # Carry columns below c0 are non-zero only for producers whose every consumer lies before j0,
        # which cancel out; so starting the column sum at c0 is exact for rows >= j0.
        starts = np.arange(j0, j1)
        col = np.arange(c0, c1)
        inseg = col[None, :] > starts[:, None]
        ws_vals = np.where(inseg, ws[np.clip(col - 1, 0, n - 1)][None, :], 0)
        wsmax = np.maximum.accumulate(ws_vals, axis=1)
        total = wprefix[col][None, :] - wprefix[starts][:, None] + receive + wsmax
        fits = inseg & (total <= cap)
        end[j0:j1] = starts + fits.sum(axis=1)
        j0 = j1
    return end


def _shared_rectangles(problem: Problem, seq: Sequence) -> tuple[np.ndarray, ...]:
    """(previous reader position or -1, reader position, bytes) per reader of each shared param, in the
    order `seq`: a segment [j, i) with prev < j <= pos < i holds the param first at pos."""
    prevs, poss, vals = [], [], []
    for nbytes, readers in zip(problem.shared_bytes.tolist(), problem.shared_readers, strict=True):
        if nbytes <= 0:
            continue
        pos = np.sort(seq.position[readers])
        prevs.append(np.concatenate([[-1], pos[:-1]]))
        poss.append(pos)
        vals.append(np.full(len(pos), nbytes, dtype=np.int64))
    if not poss:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(prevs), np.concatenate(poss), np.concatenate(vals)


# -- the cut programme ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Band:
    """Valid (end i, start j) pairs of one-chip segments, as a band: j = i - 1 - t for t < width."""

    index: np.ndarray
    """int64[n + 1, width]: the start j (clipped to 0 where invalid)."""
    valid: np.ndarray
    """bool[n + 1, width]"""


def segment_band(problem: Problem, seq: Sequence, end: np.ndarray, span_mode: int | None) -> Band:
    """`span_mode`: None ignores hop spans; 0 forbids edges across chips; 1 keeps every edge within
    one chip step (exact for max_hop_span == 1, a stricter stand-in for larger spans)."""
    n = problem.n
    positions = np.arange(n + 1)
    reach_max = np.maximum.accumulate(end)
    lo = np.searchsorted(reach_max, positions, side="left")  # first start that can reach i
    width = int(max(1, (positions - lo).max(initial=1)))
    t = np.arange(width)
    starts = positions[:, None] - 1 - t[None, :]
    ok = starts >= 0
    index = np.where(ok, starts, 0)
    valid = ok & seq.boundary[index] & (end[index] >= positions[:, None]) & seq.boundary[:, None]
    if span_mode is not None and n:
        # q[i]: the smallest position read by any op at position >= i (n when none).
        min_pred = np.arange(n, dtype=np.int64)
        np.minimum.at(min_pred, seq.position[problem.dst], seq.position[problem.src])
        q = np.concatenate([np.minimum.accumulate(min_pred[::-1])[::-1], [n]])
        if span_mode == 0:
            valid &= (q >= positions)[:, None]
        else:
            valid &= q[:, None] >= index
    return Band(index, valid)


def _pinned_ok(problem: Problem, seq: Sequence, band: Band, chip: int) -> np.ndarray | None:
    """Mask of segments on `chip` holding no op pinned elsewhere (None when nothing is pinned)."""
    pins = problem.rules.pinned
    if not (pins >= 0).any():
        return None
    elsewhere = (pins[seq.perm] >= 0) & (pins[seq.perm] != chip)
    prefix = np.concatenate([[0], np.cumsum(elsewhere)])
    return (prefix[:, None] - prefix[band.index]) == 0


def cut_min_cost(
    problem: Problem, seq: Sequence, band: Band, cost: np.ndarray
) -> np.ndarray | None:
    """Chip per op minimising the sum of cost[op, chip] over cuts of the order (None: no cut fits).
    Costs must be non-negative int64; chips 0..m are all used (m <= K - 1)."""
    n, k = problem.n, problem.k
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rows = np.arange(n + 1)
    f = np.full(n + 1, INF, dtype=np.int64)
    f[0] = 0
    choices = []
    finals = []
    for c in range(k):
        prefix = np.concatenate([[0], np.cumsum(cost[seq.perm, c])])
        g = np.where(f < INF, f - prefix, INF)
        vals = np.where(band.valid, g[band.index], INF)
        pin_ok = _pinned_ok(problem, seq, band, c)
        if pin_ok is not None:
            vals = np.where(pin_ok, vals, INF)
        arg = vals.argmin(axis=1)
        best = vals[rows, arg]
        f = np.where(best < INF, best + prefix, INF)
        f[0] = INF
        choices.append(arg)
        finals.append(int(f[n]))
        if not (f < INF).any():
            break
    if min(finals) >= INF:
        return None
    last = int(np.argmin(finals))
    return _backtrack(problem, seq, band, choices, last)


def cut_min_bottleneck(
    problem: Problem, seq: Sequence, band: Band, times: np.ndarray
) -> tuple[np.ndarray, float] | None:
    """Chip per op minimising the largest per-chip sum of `times` over cuts of the order."""
    n, k = problem.n, problem.k
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0.0
    rows = np.arange(n + 1)
    prefix = np.concatenate([[0.0], np.cumsum(times[seq.perm])])
    seg_time = prefix[:, None] - prefix[band.index]
    f = np.full(n + 1, np.inf)
    f[0] = 0.0
    choices = []
    finals = []
    for c in range(k):
        vals = np.where(band.valid, np.maximum(f[band.index], seg_time), np.inf)
        pin_ok = _pinned_ok(problem, seq, band, c)
        if pin_ok is not None:
            vals = np.where(pin_ok, vals, np.inf)
        arg = vals.argmin(axis=1)
        f = vals[rows, arg]
        f[0] = np.inf
        choices.append(arg)
        finals.append(float(f[n]))
        if not np.isfinite(f).any():
            break
    best = float(min(finals))
    if not np.isfinite(best):
        return None
    # Among equally good cuts take the one with the most chips: it leaves the most slack.
    last = max(c for c, value in enumerate(finals) if value <= best)
    return _backtrack(problem, seq, band, choices, last), best


def _backtrack(
    problem: Problem, seq: Sequence, band: Band, choices: list[np.ndarray], last: int
) -> np.ndarray:
    placement = np.empty(problem.n, dtype=np.int64)
    i = problem.n
    for c in range(last, -1, -1):
        j = int(band.index[i, choices[c][i]])
        placement[seq.perm[j:i]] = c
        i = j
    assert i == 0
    return placement


def weights_of(problem: Problem, on: np.ndarray) -> int:
    """Param bytes a chip holding the ops `on` (a bool mask) stores: each shared param once."""
    return int(problem.weight[on].sum()) + sum(
        int(nbytes)
        for nbytes, readers in zip(problem.shared_bytes, problem.shared_readers, strict=True)
        if on[readers].any()
    )


# -- local moves ---------------------------------------------------------------------------------------
class LocalState:
    """A legal-so-far placement with the bookkeeping that single-unit moves need."""

    def __init__(self, problem: Problem, placement: np.ndarray) -> None:
        self.problem = problem
        self.p = placement.astype(np.int64).copy()
        self.counts = np.bincount(self.p, minlength=problem.k)[: problem.k].astype(np.int64)

    def chip_memory(self, placement: np.ndarray, chip: int) -> int:
        prob = self.problem
        on = placement == chip
        if not on.any():
            return 0
        weights = weights_of(prob, on)
        working = int(prob.working_set[on].max())
        crossing = on[prob.dst] & ~on[prob.src]
        receive = int(prob.output[np.unique(prob.src[crossing])].sum()) if crossing.any() else 0
        return weights + receive + working

    def unit_range(self, unit: int) -> tuple[int, int]:
        """Chips the unit may move to without breaking dataflow order or hop spans of its edges."""
        return self.group_range([unit])

    def group_range(self, units: list[int]) -> tuple[int, int]:
        """Chips the units may move to together (edges among them stay inside one chip)."""
        prob = self.problem
        lo, hi = 0, prob.k - 1
        p = self.p
        span = prob.max_span
        for op in np.concatenate([prob.units[u] for u in units]).tolist():
            pr = prob.preds[op]
            pr = pr[~np.isin(prob.unit_of[pr], units)]
            if len(pr):
                lo = max(lo, int(p[pr].max()))
                if span is not None:
                    hi = min(hi, int(p[pr].min()) + span)
            su = prob.succs[op]
            su = su[~np.isin(prob.unit_of[su], units)]
            if len(su):
                hi = min(hi, int(p[su].min()))
                if span is not None:
                    lo = max(lo, int(p[su].max()) - span)
        return lo, hi

    def try_move(self, unit: int, chip: int) -> bool:
        """Move the unit if every rule still holds; True if moved."""
        return self.try_move_group([unit], chip)

    def try_move_group(self, units: list[int], chip: int) -> bool:
        """Move the units (already in range, see group_range) to `chip` if memory and contiguity
        still hold; True if moved."""
        prob = self.problem
        if any(prob.unit_pin[u] != -1 for u in units):
            return False
        members = np.concatenate([prob.units[u] for u in units])
        sources = np.unique(self.p[members])
        if len(sources) == 1 and sources[0] == chip:
            return False
        trial = self.p.copy()
        trial[members] = chip
        counts = np.bincount(trial, minlength=prob.k)[: prob.k]
        used = np.flatnonzero(counts > 0)
        if len(used) and used[-1] + 1 != len(used):
            return False  # a chip inside the used range would be empty
        cap = prob.capacity
        # Only the chips that lose or gain ops change their memory (receive buffers included).
        for c in {chip, *sources.tolist()}:
            if self.chip_memory(trial, int(c)) > cap:
                return False
        self.p = trial
        self.counts = counts.astype(np.int64)
        return True


def improve_toward(
    state: LocalState, candidate: np.ndarray, change_weight: int, passes: int = 4
) -> None:
    """Move units back toward the candidate while the lexicographic (changed, distance) cost drops."""
    prob = state.problem
    k = prob.k
    chips = np.arange(k)
    for _ in range(passes):
        moved = False
        off = np.flatnonzero(state.p != candidate)
        for unit in np.unique(prob.unit_of[off]).tolist():
            if prob.unit_pin[unit] != -1:
                continue
            members = prob.units[unit]
            current = int(state.p[members[0]])
            lo, hi = state.unit_range(unit)
            if lo > hi:
                continue
            cand = candidate[members]
            options = chips[lo : hi + 1]
            costs = (
                change_weight * (options[:, None] != cand[None, :])
                + np.abs(options[:, None] - cand[None, :])
            ).sum(axis=1)
            now = int((change_weight * (current != cand) + np.abs(current - cand)).sum())
            for idx in np.argsort(costs, kind="stable").tolist():
                if costs[idx] >= now:
                    break
                if state.try_move(unit, int(options[idx])):
                    moved = True
                    break
        if not moved and not _improve_pairs(state, candidate, change_weight):
            return


def _improve_pairs(state: LocalState, candidate: np.ndarray, change_weight: int) -> bool:
    """Move the two ends of a same-chip edge together toward the candidate (a single move of either
    would break the edge's order); True if any move was made."""
    prob = state.problem
    p = state.p
    same = (p[prob.src] == p[prob.dst]) & (
        (p[prob.src] != candidate[prob.src]) | (p[prob.dst] != candidate[prob.dst])
    )
    moved = False
    for e in np.flatnonzero(same).tolist():
        u, v = int(prob.unit_of[prob.src[e]]), int(prob.unit_of[prob.dst[e]])
        if u == v:
            continue
        units = [u, v]
        members = np.concatenate([prob.units[x] for x in units])
        current = int(state.p[members[0]])
        if (state.p[members] != current).any():
            continue  # an earlier move in this pass split them
        lo, hi = state.group_range(units)
        cand = candidate[members]
        now = int((change_weight * (cand != current) + np.abs(cand - current)).sum())
        options = sorted({int(c) for c in cand.tolist() if lo <= c <= hi and c != current})
        scored = [(int((change_weight * (cand != b) + np.abs(cand - b)).sum()), b) for b in options]
        for cost, b in sorted(scored):
            if cost < now and state.try_move_group(units, b):
                moved = True
                break
    return moved


def fix_hop_spans(state: LocalState, candidate: np.ndarray | None, limit: int) -> bool:
    """Resolve hop-span violations by single-unit moves; True when none is left."""
    prob = state.problem
    span = prob.max_span
    if span is None:
        return True
    for _ in range(limit):
        spans = state.p[prob.dst] - state.p[prob.src]
        bad = np.flatnonzero(spans > span)
        if not len(bad):
            return True
        e = int(bad[0])
        u, v = int(prob.src[e]), int(prob.dst[e])
        done = False
        for op in (v, u):
            unit = int(prob.unit_of[op])
            lo, hi = state.unit_range(unit)
            current = int(state.p[op])
            options = [c for c in range(lo, hi + 1) if c != current]
            if candidate is not None:
                members = prob.units[unit]
                options.sort(key=lambda c: (int((candidate[members] != c).sum()), abs(c - current)))
            else:
                options.sort(key=lambda c: abs(c - current))
            for chip in options:
                if state.try_move(unit, chip):
                    done = True
                    break
            if done:
                break
        if not done:
            return False
    return not (state.p[prob.dst] - state.p[prob.src] > span).any()


def reduce_bottleneck(state: LocalState, times: np.ndarray, rounds: int = 200) -> None:
    """Move units off the busiest chip to a neighbour chip while the sorted load vector improves."""
    prob = state.problem
    unit_time = np.array([times[m].sum() for m in prob.units])
    for _ in range(rounds):
        load = np.bincount(state.p, weights=times, minlength=prob.k)[: prob.k]
        worst = int(np.argmax(load))
        peak = load[worst]
        best_move: tuple[float, int, int] | None = None
        on_worst = np.unique(prob.unit_of[state.p == worst])
        for unit in on_worst.tolist():
            if prob.unit_pin[unit] != -1:
                continue
            lo, hi = state.unit_range(unit)
            for chip in (worst - 1, worst + 1):
                if lo <= chip <= hi and 0 <= chip < prob.k:
                    new_peak = load[chip] + unit_time[unit]
                    if new_peak < peak and (best_move is None or new_peak < best_move[0]):
                        best_move = (float(new_peak), unit, chip)
        if best_move is None:
            return
        if not state.try_move(best_move[1], best_move[2]):
            # The best move breaks memory or contiguity: try the others in order of the new peak.
            moved = False
            options = []
            for unit in on_worst.tolist():
                if prob.unit_pin[unit] != -1:
                    continue
                lo, hi = state.unit_range(unit)
                for chip in (worst - 1, worst + 1):
                    if (
                        lo <= chip <= hi
                        and 0 <= chip < prob.k
                        and load[chip] + unit_time[unit] < peak
                    ):
                        options.append((float(load[chip] + unit_time[unit]), unit, chip))
            for _, unit, chip in sorted(options)[:20]:
                if state.try_move(unit, chip):
                    moved = True
                    break
            if not moved:
                return


# -- the two heuristics ---------------------------------------------------------------------------------
def change_weight(problem: Problem, candidate: np.ndarray) -> int:
    """A weight on changed ops larger than any total distance, so (changed, distance) is lexicographic."""
    k = problem.k
    farthest = np.maximum(np.abs(candidate), np.abs(candidate - (k - 1)))
    return int(farthest.sum()) + 1


def heuristic_repair(
    problem: Problem, candidate: np.ndarray, known: np.ndarray | None = None
) -> np.ndarray | None:
    """A legal placement close to `candidate` (fewest changed ops, then distance), or None.

    `known`, a legal placement of the problem (a solver's witness), adds its order (ops by its chip,
    then by the candidate's) as a last resort: at 0.9-0.97x the smallest capacity on 15-16 chips no
    cut of the candidate's, block or layer order fits, while the witness is a cut of its own order (so a
    cut fits; under a hop-span rule the span repair can still fail), and the cut nearest the candidate
    is nearer than the witness itself."""
    n, k = problem.n, problem.k
    candidate = np.asarray(candidate, dtype=np.int64)
    if problem.pinned_apart or (problem.unit_pin >= k).any():
        return None
    clipped = np.clip(candidate, 0, k - 1)
    weight = change_weight(problem, candidate)
    chips = np.arange(k)
    cost = weight * (candidate[:, None] != chips[None, :]) + np.abs(
        candidate[:, None] - chips[None, :]
    )
    # Unit priority: the pinned chip, else the most common candidate chip of its members.
    if problem.num_units == n:
        priority = np.where(problem.unit_pin >= 0, problem.unit_pin, clipped)
    else:
        priority = np.array(
            [
                problem.unit_pin[u]
                if problem.unit_pin[u] >= 0
                else int(np.bincount(clipped[m]).argmax())
                for u, m in enumerate(problem.units)
            ],
            dtype=np.int64,
        )
    # The candidate's order first; if no cut of it fits (random candidates interleave branches and
    # inflate receive buffers), the block order and the layer-by-layer order, which usually fit.
    ids = np.arange(problem.num_units)
    priorities = [priority, ids, depth_priority(problem) * problem.num_units + ids]
    if known is not None:
        # Units of a legal placement sit on one chip each (colocated and forced together).
        known_chip = np.array([int(known[m[0]]) for m in problem.units], dtype=np.int64)
        priorities.append(known_chip * k + priority)
    modes = _band_modes(problem)
    for unit_priority in priorities:
        seq = sequence_of(problem, priority_order(problem, unit_priority))
        end = segment_ends(problem, seq)
        for mode in modes:
            band = segment_band(problem, seq, end, mode)
            placement = cut_min_cost(problem, seq, band, cost)
            if placement is None:
                continue
            state = LocalState(problem, placement)
            if not fix_hop_spans(state, candidate, limit=4 * n + 10):
                continue
            improve_toward(state, candidate, weight)
            if is_legal(problem, state.p):
                return state.p
    return None


def _band_modes(problem: Problem) -> list[int | None]:
    """`segment_band` modes to try: none without a hop span, else the span's own, then 1 hop."""
    span = problem.max_span
    return [None] if span is None else ([0] if span == 0 else [None, 1])


def first_fit_packing(problem: Problem) -> np.ndarray | None:
    """Ops packed in block (topological) order onto chips 0, 1, ..., each filled until the next op would
    break the memory rule (`segment_ends`); None when one op alone does not fit a chip.

    The chip count is not a lower bound (another order or a non-contiguous cut may pack tighter), but
    it tells a user how far from fitting a model is when the solver cannot decide.
    """
    seq = sequence_of(problem, priority_order(problem, np.arange(problem.num_units)))
    end = segment_ends(problem, seq)
    cuts = np.flatnonzero(seq.boundary)
    placement = np.empty(problem.n, dtype=np.int64)
    chip, start = 0, 0
    while start < problem.n:
        stop = int(cuts[np.searchsorted(cuts, end[start], side="right") - 1])
        if stop <= start:
            return None
        placement[seq.perm[start:stop]] = chip
        chip, start = chip + 1, stop
    return placement


def heuristic_optimize(problem: Problem, times: np.ndarray) -> np.ndarray | None:
    """A legal placement with a small bottleneck (max per-chip sum of `times`), or None."""
    k = problem.k
    if problem.pinned_apart or (problem.unit_pin >= k).any():
        return None
    times = np.asarray(times, dtype=np.float64)
    ids = np.arange(problem.num_units)
    priorities = [ids, depth_priority(problem) * problem.num_units + ids]
    modes = _band_modes(problem)
    best: tuple[float, np.ndarray] | None = None
    for priority in priorities:
        seq = sequence_of(problem, priority_order(problem, priority))
        end = segment_ends(problem, seq)
        for mode in modes:
            band = segment_band(problem, seq, end, mode)
            result = cut_min_bottleneck(problem, seq, band, times)
            if result is None:
                continue
            state = LocalState(problem, result[0])
            if not fix_hop_spans(state, None, limit=4 * problem.n + 10):
                continue
            reduce_bottleneck(state, times)
            if not is_legal(problem, state.p):
                continue
            value = float(np.bincount(state.p, weights=times, minlength=k).max(initial=0.0))
            if best is None or value < best[0]:
                best = (value, state.p)
            break  # a legal cut for this order: the stricter span mode cannot do better
    return None if best is None else best[1]


def is_legal(problem: Problem, placement: np.ndarray) -> bool:
    """The checker's verdict (the oracle) on a placement of the problem's graph."""
    # check_placement reads the target only to resolve rules, and the problem carries them resolved.
    violations = check_placement(problem.graph, None, placement, problem.rules, limit_per_rule=1)  # type: ignore[arg-type]
    return not violations
