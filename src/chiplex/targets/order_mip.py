"""The `order-mip` back end: legality.mzn's rules as a MIP in the order encoding, solved by HiGHS.

MiniZinc's linear library encodes each `chip[v] = c` with its own equality binaries and big-M rows, and
HiGHS proves few repairs from that FlatZinc. This back end builds the same model from the same data file
(the JSON that `chiplex.targets.solver` hands to MiniZinc) in the order encoding instead,

    y[v, k] = [chip[v] <= k]    (k = 0..K-2; y[v, -1] = 0, y[v, K-1] = 1, y[v, k] <= y[v, k+1]),
    x[v, c] = y[v, c] - y[v, c-1] = [chip[v] = c],

in which every rule of legality.mzn and the repair objective are linear with a tight relaxation:
acyclic-dataflow is y[v, k] <= y[u, k] for an edge u -> v, hop-span s is y[u, k] <= y[v, k+s], the number
of moved ops is sum(1 - x[v, candidate[v]]) and the chip distance |chip[v] - a| is a sum of y's.

THE RULES STAY IN THE .mzn FILES: this module is a second formulation of `legality.mzn` (and of the
objectives of repair.mzn and satisfy.mzn), rule by rule with the same names, and is held to it by tests:
tests/test_order_mip.py checks on random instances that it agrees with the MiniZinc model solved by Gecode
(same feasibility, same optimal repair objective), and every placement it returns is validated by the
Python checker before it is used (`solver._verify`). A rule change in legality.mzn needs the same change
here; the agreement test fails until it has it.

HiGHS runs in a child process (`python -m chiplex.targets.order_mip`): highspy and ortools, which chiplex
loads for CP-SAT, cannot share one process (their bundled HiGHS symbols clash).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from chiplex.targets import flatzinc
from chiplex.targets.cut_bound import max_flow

MODELS = ("repair.mzn", "satisfy.mzn")
"""The models this back end formulates; other models go to the FlatZinc route (`highs`)."""

# `chiplex.targets.legality.RULES`, spelled out: importing legality (and xDSL with it) would add 0.15 s
# to every solve's child process. tests/test_order_mip.py checks the two agree.
_RULES = (
    "chip-range",
    "acyclic-dataflow",
    "no-skipping-chips",
    "memory",
    "hop-span",
    "pinned",
    "colocated",
)


@dataclass
class _Rows:
    """A sparse row-wise matrix built in numpy blocks (COO triplets)."""

    rows: list[np.ndarray] = field(default_factory=list)
    cols: list[np.ndarray] = field(default_factory=list)
    vals: list[np.ndarray] = field(default_factory=list)
    lower: list[np.ndarray] = field(default_factory=list)
    upper: list[np.ndarray] = field(default_factory=list)
    count: int = 0

    def add(
        self, cols: np.ndarray, vals: np.ndarray, lower: np.ndarray, upper: np.ndarray
    ) -> np.ndarray:
        """Rows given as dense (rows x terms) column and value blocks; returns the row ids."""
        cols = np.atleast_2d(np.asarray(cols, dtype=np.int64))
        vals = np.broadcast_to(np.asarray(vals, dtype=np.float64), cols.shape)
        count = cols.shape[0]
        ids = np.arange(self.count, self.count + count, dtype=np.int64)
        self.rows.append(np.repeat(ids, cols.shape[1]))
        self.cols.append(cols.reshape(-1))
        self.vals.append(np.ascontiguousarray(vals).reshape(-1))
        self.lower.append(np.broadcast_to(np.asarray(lower, dtype=np.float64), (count,)))
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=np.float64), (count,)))
        self.count += count
        return ids

    def add_sparse(
        self,
        row_of: np.ndarray,
        cols: np.ndarray,
        vals: np.ndarray,
        count: int,
        lower: np.ndarray,
        upper: np.ndarray,
    ) -> np.ndarray:
        """`count` rows given as triplets with row ids 0..count-1."""
        ids = np.arange(self.count, self.count + count, dtype=np.int64)
        self.rows.append(np.asarray(row_of, dtype=np.int64) + self.count)
        self.cols.append(np.asarray(cols, dtype=np.int64))
        self.vals.append(np.asarray(vals, dtype=np.float64))
        self.lower.append(np.broadcast_to(np.asarray(lower, dtype=np.float64), (count,)))
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=np.float64), (count,)))
        self.count += count
        return ids


@dataclass
class OrderModel:
    """The MIP: columns (bounds, integrality, cost), rows, and how to read a placement back."""

    n: int
    k: int
    col_lower: np.ndarray
    col_upper: np.ndarray
    integer: np.ndarray
    cost: np.ndarray
    offset: float
    rows: _Rows
    y: np.ndarray
    """int64[n, K+1]: Y[v, k+1] is the column of y[v, k]; Y[:, 0] is a column fixed to 0, Y[:, K] to 1."""
    aux_rows: dict[int, list[np.ndarray]]
    """Auxiliary column -> the rows that bound it from below (for completing a start solution)."""
    infeasible: bool = False
    has_objective: bool = False


def _sets(values: list[object]) -> list[np.ndarray]:
    """MiniZinc JSON sets ({"set": [...]}, 1-based) as 0-based index arrays."""
    out = []
    for item in values:
        members = item["set"] if isinstance(item, dict) else item  # type: ignore[index]
        flat: list[int] = []
        for member in members:  # type: ignore[union-attr]
            if isinstance(member, list):  # a range [lo, hi]
                flat.extend(range(int(member[0]), int(member[1]) + 1))
            else:
                flat.append(int(member))
        out.append(np.array(sorted(flat), dtype=np.int64) - 1)
    return out


SHARED_CHIP_FLOOR_OPS = 400
"""Up to this many ops `_implied_gaps` counts receive buffers in the memory of a pair's paths (n^3
work: about 0.1 CPU s at 200 ops, 0.4 at 400); larger graphs use weights and working sets only."""
TAU_CELLS = 32
"""Working-set thresholds `_shared_chip_floor` tries at most (every distinct value when fewer)."""


WEIGHT_CLASSES = 16
"""At most this many weight classes `_weight_classes` returns (the heaviest kept when more)."""


def _weight_classes(
    weight: np.ndarray, working: np.ndarray, held: float, capacity: float
) -> list[tuple[np.ndarray, int]]:
    """(ops, most): no chip holds more than `most` of `ops`, the ops weighing at least some threshold
    t, where fewer than all of them fit one chip.

    A chip's own weights stay within `held` (legality.mzn's max_chip_weight, at most the capacity),
    and with its largest working set within the capacity, so j of these ops on one chip weigh at
    least the j lightest of them: `most` is the largest j whose lightest j weigh at most
    min(held, capacity - the smallest working set among them). The knapsack rows of the relaxation
    let fractions of ops share a chip past that count (three 512-unit ops "fit" 2.99 times into
    1533 units), so the count is a cover inequality the rows alone do not give. Per `most`, only the
    lowest threshold (the largest set) is kept: it implies the others."""
    classes: dict[int, tuple[float, np.ndarray]] = {}
    for threshold in np.unique(weight[weight > 0]).tolist():
        ops = np.flatnonzero(weight >= threshold)
        room = min(held, capacity - float(working[ops].min()))
        most = int(np.searchsorted(np.cumsum(np.sort(weight[ops])), room, side="right"))
        if most < len(ops) and most not in classes:
            classes[most] = (threshold, ops)
    picked = sorted(classes.items(), key=lambda item: -item[1][0])[:WEIGHT_CLASSES]
    return [(ops, most) for most, (_, ops) in picked]


def _shared_chip_floor(
    reach: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    weight: np.ndarray,
    output: np.ndarray,
    working: np.ndarray,
) -> np.ndarray:
    """[u, v]: a lower bound on the memory of one chip that holds u and v (`_chip_floor_parts`)."""
    return _chip_floor_parts(reach, src, dst, weight, output, working)[0]


def _chip_floor_parts(
    reach: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    weight: np.ndarray,
    output: np.ndarray,
    working: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(floor, path weight, path working set, buffers), each [u, v]. floor: a lower bound on the
    memory of one chip that holds u and v (v reachable from u).

    Such a chip holds every op on a u ~> v path (data flows forward): their weights and the largest
    of their working sets. Every other op y with an edge into one of them (a producer off the paths;
    y reaches v, and u does not reach y) is on that chip too, and then so is every op on its paths to
    v, adding at least y's weight and raising the largest working set to at least the largest on
    y ~> v paths (`path_ws[y, v]`), or elsewhere, and the chip reserves y's receive buffer,
    output[y]. For the set J of those on the chip, with t = max path_ws[y, v] over J, the memory is
        W + max(ws over the u ~> v paths, t) + sum_{y in J} weight[y] + sum_{y not in J} output[y]
    >= W + max(ws over the paths, t) + sum over y with path_ws[y, v] <= t of min(weight, output)
       + sum over the other y of output,
    so the minimum over thresholds t is a valid floor (J empty is no lower than the smallest: the
    paths hold a working set at least that large). With more than `TAU_CELLS` distinct working sets
    the thresholds are grouped into cells (g_{i-1}, g_i], each counting max(..., g_{i-1}). Shared
    params and the producers' own inputs are left out (they only add memory): `_feeding_floor`
    counts those. path weight and path working set: the ops' weights on u ~> v paths and their
    largest working set; buffers: the receive buffers of all producers off the paths feeding them
    (what `_feeding_floor` pays at most)."""
    n = len(weight)
    anc = reach.T  # anc[v, x]: x is v or an ancestor of v
    path_w = np.zeros((n, n))
    path_ws = np.zeros((n, n))
    for x in range(n):  # x is on a u ~> v path iff u reaches x and x reaches v
        pairs = np.outer(anc[x], reach[x])
        path_w += weight[x] * pairs
        np.maximum(path_ws, np.where(pairs, working[x], 0.0), out=path_ws)
    succs: list[list[int]] = [[] for _ in range(n)]
    for a, b in zip(src.tolist(), dst.tolist(), strict=True):
        succs[a].append(b)
    values = np.unique(working)
    if len(values) <= TAU_CELLS:
        grid, lows = values, values
    else:
        grid = np.quantile(values, np.linspace(0.0, 1.0, TAU_CELLS))
        grid[-1] = values[-1]
        lows = np.concatenate([[-np.inf], grid[:-1]])
    saving = np.maximum(output - np.minimum(weight, output), 0.0)
    buffers = np.zeros((n, n))  # [u, v]: output summed over the producers off the u ~> v paths
    cheaper = np.zeros((len(grid), n, n), dtype=np.float32)  # the saving from cell i on
    columns = np.arange(n)
    for y in range(n):
        if not succs[y] or output[y] <= 0:
            continue
        # (u, v) with an x in succs[y] on a u ~> v path, and u not reaching y.
        feeds = (anc[succs[y]][:, :, None] & reach[succs[y]][:, None, :]).any(axis=0)
        feeds &= ~anc[y][:, None]
        buffers += output[y] * feeds
        if saving[y] > 0:
            cell = np.searchsorted(grid, path_ws[y], side="left")  # per v
            cheaper[cell, :, columns] += (saving[y] * feeds).T
    floor = np.full((n, n), np.inf)
    saved = np.zeros((n, n))
    for i in range(len(grid)):
        saved += cheaper[i]
        np.minimum(floor, np.maximum(path_ws, lows[i]) + buffers - saved, out=floor)
    return path_w + floor, path_w, path_ws, buffers


def _feeding_floor(
    u: int,
    v: int,
    reach: np.ndarray,
    preds: list[list[int]],
    succs: list[list[int]],
    weight: np.ndarray,
    output: np.ndarray,
) -> float:
    """The least memory, beyond the u ~> v paths themselves, of one chip holding u and v: a minimum
    cut, exact where `_chip_floor_parts` relaxes (it credits a producer taken onto the chip with its
    weight alone).

    The chip's ops S contain the paths, and are convex: an op y in S with an edge y -> x where x
    reaches v has x in S (x sits between chip[y] and chip[v]). Every producer p of an op in S is
    either in S (its weight counts) or off it (its receive buffer, output[p], counts once). Over the
    ops reaching v (every producer of an op in S does), that is a closure problem: for op x, "x in
    S" on the source side of a cut (edge x -> sink of capacity weight[x]; ops on the paths tied to the
    source), "p's output is on the chip" as a node b[p] (x -> b[p] for each producer p of x, infinite;
    b[p] -> p of capacity output[p]: paid when the output is there and p is not), and convexity
    (y -> x, infinite). The minimum cut is the least weight of the other ops on the chip plus the
    receive buffers; working sets and shared params only add memory and are left out."""
    toward = reach[:, v]
    on_paths = reach[u] & toward
    members = np.flatnonzero(toward).tolist()
    index = {x: i for i, x in enumerate(members)}
    m = len(members)
    source, sink = 2 * m, 2 * m + 1
    arcs: list[tuple[int, int, float]] = []
    for x in members:
        i = index[x]
        if on_paths[x]:
            arcs.append((source, i, np.inf))
        else:
            if weight[x] > 0:
                arcs.append((i, sink, float(weight[x])))
            for y in succs[x]:
                if toward[y]:
                    arcs.append((i, index[y], np.inf))
        if output[x] > 0:
            arcs.append((m + i, i, float(output[x])))
        for p in preds[x]:
            arcs.append((i, m + index[p], np.inf))
    return max_flow(2 * m + 2, arcs, source, sink)


FEEDING_FLOORS = 4000
"""At most this many minimum cuts per model (`_with_feeding_floors`), the largest pairs first, so what
is left uncut are the smallest."""
FEEDING_FLOOR_OPS = 250
"""Up to this many ops the implied gaps use the minimum cuts too: they cost 0-0.3 CPU s at 100-200 ops
(benchmarks/solver_decide.py's repairs) but up to 0.9 at 300-400."""


def _with_feeding_floors(
    floor: np.ndarray,
    hopeful: np.ndarray,
    reach: np.ndarray,
    preds: list[list[int]],
    succs: list[list[int]],
    weight: np.ndarray,
    output: np.ndarray,
    own: np.ndarray,
    capacity: float,
) -> np.ndarray:
    """`floor` raised to `own` (the paths' weight and largest working set) + `_feeding_floor` on the
    `hopeful` pairs. A chip holding u' and v' with u' ~> u and v ~> v' holds u and v too, so a pair
    inside one the cut did not part is not parted either: the pairs go largest first, and those inside
    an unparted one are skipped."""
    floor = floor.copy()
    anc = reach.T
    us, vs = np.nonzero(hopeful)
    order = np.argsort(-reach[us].sum(axis=1) - anc[vs].sum(axis=1), kind="stable")
    unparted = np.zeros_like(hopeful)
    cuts = 0
    for u, v in zip(us[order].tolist(), vs[order].tolist(), strict=True):
        if cuts >= FEEDING_FLOORS:
            break
        if unparted[np.ix_(anc[u], reach[v])].any():
            continue
        cuts += 1
        total = own[u, v] + _feeding_floor(u, v, reach, preds, succs, weight, output)
        floor[u, v] = max(floor[u, v], total)
        if total <= capacity:
            unparted[u, v] = True
    return floor


def _reachability(
    n: int, src: np.ndarray, dst: np.ndarray
) -> tuple[np.ndarray, list[list[int]], list[list[int]]]:
    """(reach, successors, predecessors): reach[u, v] when v is u or a descendant of u (ops are in
    topological order)."""
    succs: list[list[int]] = [[] for _ in range(n)]
    preds: list[list[int]] = [[] for _ in range(n)]
    for a, b in zip(src.tolist(), dst.tolist(), strict=True):
        succs[a].append(b)
        preds[b].append(a)
    reach = np.eye(n, dtype=bool)
    for u in range(n - 1, -1, -1):
        if succs[u]:
            reach[u] |= reach[succs[u]].any(axis=0)
    return reach, succs, preds


def _direct_edges(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Indices of the edges u -> v with no other path from u to v (the transitive reduction)."""
    if n > 3000 or not len(src):
        return np.arange(len(src))
    reach, succs, _ = _reachability(n, src, dst)
    keep = np.ones(len(src), dtype=bool)
    for i, (a, b) in enumerate(zip(src.tolist(), dst.tolist(), strict=True)):
        keep[i] = not any(w != b and reach[w, b] for w in succs[a])
    return np.flatnonzero(keep)


def _implied_gaps(
    n: int,
    src: np.ndarray,
    dst: np.ndarray,
    weight: np.ndarray,
    working: np.ndarray,
    held: float,
    capacity: float,
    k: int,
    output: np.ndarray | None = None,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Pairs (u, v), v reachable from u, whose paths' ops weigh more than one chip holds, by the gap
    they force; only the pairs where the gap first grows along a path (the others follow from them).

    With W the weight of the ops on u ~> v paths: no chip holds more than `held` of weights, so
    chip[v] - chip[u] >= ceil(W / held) - 1; one chip holding them all also holds the largest working
    set among them and, with `output` (receive-buffer bytes per producer), a buffer or the op itself
    for each of their producers off the paths (`_shared_chip_floor`), so more than `capacity` of that
    parts them; and when parted, chip[u] holds u's working set and chip[v] v's, so
    W + ws[u] + ws[v] <= (gap + 1) x capacity."""
    if n > 3000:
        return {}
    reach, succs, preds = _reachability(n, src, dst)
    between = (reach * weight[None, :]) @ reach.astype(np.float64)  # [u, v]: weight on u ~> v paths
    gap = np.ceil(between / held - 1e-9) - 1
    # No chip holds more than `most` of a weight class (`_weight_classes`): the paths' ops of the
    # class need ceil(count / most) chips.
    for members, most in _weight_classes(weight, working, held, capacity):
        if most > 0:
            in_class = np.zeros(n)
            in_class[members] = 1.0
            count = (reach * in_class[None, :]) @ reach.astype(np.float64)
            np.maximum(gap, np.ceil(count / most - 1e-9) - 1, out=gap)
    ends = working[:, None] + working[None, :]
    if output is not None and n <= SHARED_CHIP_FLOOR_OPS:
        floor, _, path_ws, buffers = _chip_floor_parts(reach, src, dst, weight, output, working)
        # Where buffering every producer would overflow the chip but the relaxed floor does not,
        # the exact cut (`_feeding_floor`) may part the pair.
        hopeful = reach & (floor <= capacity) & (between + path_ws + buffers > capacity)
        np.fill_diagonal(hopeful, False)
        if hopeful.any() and n <= FEEDING_FLOOR_OPS:
            floor = _with_feeding_floors(
                floor, hopeful, reach, preds, succs, weight, output, between + path_ws, capacity
            )
    else:
        floor = between + np.maximum(working[:, None], working[None, :])
    parted = floor > capacity
    apart = np.maximum(np.ceil((between + ends) / capacity - 1e-9) - 1, 1)
    gap = np.where(parted, np.maximum(gap, apart), gap)
    gap = np.where(reach, gap, 0).astype(np.int64)
    np.fill_diagonal(gap, 0)
    np.minimum(gap, k - 1, out=gap)
    from_preds = np.zeros_like(gap)
    for v in range(n):
        if preds[v]:
            from_preds[:, v] = gap[:, preds[v]].max(axis=1)
    from_succs = np.zeros_like(gap)
    for u in range(n):
        if succs[u]:
            from_succs[u] = gap[succs[u]].max(axis=0)
    keep = (gap >= 1) & (gap > from_preds) & (gap > from_succs)
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    us, vs = np.nonzero(keep)
    for g in np.unique(gap[us, vs]).tolist():
        pick = gap[us, vs] == g
        out[int(g)] = (us[pick], vs[pick])
    return out


def build(model: str, data: dict[str, object]) -> OrderModel:
    """The order-encoded MIP of `model` (repair.mzn or satisfy.mzn) with MiniZinc's `data`."""
    if model not in MODELS:
        raise ValueError(f"order-mip formulates {', '.join(MODELS)}, not {model}")
    n, k = int(data["n"]), int(data["K"])  # type: ignore[arg-type]
    active = dict(zip(_RULES, data["active"], strict=True))  # type: ignore[arg-type]
    src = np.array(data["src"], dtype=np.int64) - 1  # type: ignore[arg-type]
    dst = np.array(data["dst"], dtype=np.int64) - 1  # type: ignore[arg-type]
    weight = np.array(data["weight"], dtype=np.float64)  # type: ignore[arg-type]
    output = np.array(data["output_bytes"], dtype=np.float64)  # type: ignore[arg-type]
    working = np.array(data["working_set"], dtype=np.float64)  # type: ignore[arg-type]
    capacity = float(data["capacity"])  # type: ignore[arg-type]

    # Columns: 0 fixed to 0, 1 fixed to 1, then y[v, k] for k = 0..K-2.
    lower: list[np.ndarray] = [np.array([0.0, 1.0])]
    upper: list[np.ndarray] = [np.array([0.0, 1.0])]
    integer: list[np.ndarray] = [np.array([True, True])]
    y_lo = np.zeros((n, max(k - 1, 0)))
    y_hi = np.ones((n, max(k - 1, 0)))
    infeasible = k < 1
    # Implied bounds (legality.mzn, "implied bounds"): chip[v] >= L means y[v, k] = 0 for k < L.
    implied_lower = np.array(data["implied_lower"], dtype=np.int64)  # type: ignore[arg-type]
    implied_upper = np.array(data["implied_upper"], dtype=np.int64)  # type: ignore[arg-type]
    ks = np.arange(max(k - 1, 0))
    y_hi[ks[None, :] < implied_lower[:, None]] = 0.0
    y_lo[ks[None, :] >= implied_upper[:, None]] = 1.0
    infeasible |= bool((implied_lower > implied_upper).any())
    infeasible |= bool(((implied_lower > k - 1) | (implied_upper < 0)).any())
    # pinned: chip[v] = p.
    if active["pinned"]:
        pinned = np.array(data["pinned"], dtype=np.int64)  # type: ignore[arg-type]
        pins = np.flatnonzero(pinned >= 0)
        infeasible |= bool((pinned[pins] > k - 1).any())
        for v in pins.tolist():
            p = int(pinned[v])
            y_hi[v, :p] = 0.0
            y_lo[v, p:] = 1.0
    infeasible |= bool((y_lo > y_hi).any())
    base = 2
    y_cols = base + np.arange(n * max(k - 1, 0), dtype=np.int64).reshape(n, max(k - 1, 0))
    lower.append(np.minimum(y_lo, y_hi).reshape(-1))
    upper.append(y_hi.reshape(-1))
    integer.append(np.ones(y_cols.size, dtype=bool))
    next_col = base + y_cols.size
    Y = np.empty((n, k + 1), dtype=np.int64)
    Y[:, 0] = 0
    Y[:, k] = 1
    Y[:, 1:k] = y_cols
    aux_rows: dict[int, list[np.ndarray]] = {}

    def new_cols(count: int, lo: float, hi: float, is_int: bool) -> np.ndarray:
        nonlocal next_col
        cols = np.arange(next_col, next_col + count, dtype=np.int64)
        next_col += count
        lower.append(np.full(count, lo))
        upper.append(np.full(count, hi))
        integer.append(np.full(count, is_int))
        return cols

    rows = _Rows()

    def x_terms(v: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x[v, c] = y[v, c] - y[v, c-1]: two columns and their coefficients (broadcast)."""
        return np.stack([Y[v, c + 1], Y[v, c]], axis=-1), np.array([1.0, -1.0])

    if k >= 3:  # y[v, k] <= y[v, k+1]
        rows.add(
            np.stack([Y[:, 1 : k - 1], Y[:, 2:k]], axis=-1).reshape(-1, 2),
            [1.0, -1.0],
            -np.inf,
            0.0,
        )
    inner = np.arange(1, k)  # Y columns of y[., 0..K-2]
    # acyclic-dataflow: chip[src] <= chip[dst], i.e. y[dst, k] <= y[src, k].
    if active["acyclic-dataflow"] and len(src) and k >= 2:
        # An edge u -> v beside a longer path u ~> v adds nothing, to the relaxation either.
        direct = _direct_edges(n, src, dst)
        pairs = np.stack([Y[dst[direct]][:, inner], Y[src[direct]][:, inner]], axis=-1)
        rows.add(pairs.reshape(-1, 2), [1.0, -1.0], -np.inf, 0.0)
    # hop-span: chip[dst] - chip[src] <= s, i.e. y[src, k] <= y[dst, k + s].
    span = int(data["max_hop_span"])  # type: ignore[arg-type]
    if active["hop-span"] and span >= 0 and len(src) and k - 1 - span > 0:
        ks_span = np.arange(0, k - 1 - span)
        pairs = np.stack([Y[src][:, ks_span + 1], Y[dst][:, ks_span + 1 + span]], axis=-1)
        rows.add(pairs.reshape(-1, 2), [1.0, -1.0], -np.inf, 0.0)
    # colocated: every member on the first member's chip.
    if active["colocated"] and k >= 2:
        for group in _sets(data["colocated_group"]):  # type: ignore[arg-type]
            first, others = group[0], group[1:]
            if len(others):
                pairs = np.stack(
                    [Y[others][:, inner], np.broadcast_to(Y[first, inner], (len(others), k - 1))],
                    axis=-1,
                )
                rows.add(pairs.reshape(-1, 2), [1.0, -1.0], 0.0, 0.0)
    ops = np.arange(n)
    chips = np.arange(k)
    # no-skipping-chips: if any op sits on chip c or later (t[c] = 1), chip c-1 holds an op.
    if active["no-skipping-chips"] and k >= 2 and n:
        later = new_cols(k - 1, 0.0, 1.0, False)  # t[c], c = 1..K-1
        # t[c] >= 1 - y[v, c-1]; with acyclic-dataflow only for the ops without successors: every
        # other op has one on its chip or later (y[w, .] <= y[v, .]), so its row follows from theirs.
        ends = ops
        if active["acyclic-dataflow"]:
            ends = np.setdiff1d(ops, src)
        cols = np.stack(
            [np.broadcast_to(later, (len(ends), k - 1)), Y[ends, 1:k]], axis=-1
        ).reshape(-1, 2)
        ids = rows.add(cols, [1.0, 1.0], 1.0, np.inf)
        for c in range(k - 1):
            aux_rows.setdefault(int(later[c]), []).append(ids.reshape(len(ends), k - 1)[:, c])
        # sum_v x[v, c-1] >= t[c]
        for c in range(1, k):
            terms, coefs = x_terms(ops, np.full(n, c - 1))
            cols = np.concatenate([terms.reshape(-1), [later[c - 1]]])
            vals = np.concatenate([np.tile(coefs, n), [-1.0]])
            rows.add(cols[None, :], vals[None, :], 0.0, np.inf)
    # memory: per chip, weights + each shared param once + receive buffers + largest working set.
    weighted = np.flatnonzero(weight > 0)
    if active["memory"] and n:
        load_cols: list[list[np.ndarray]] = [[] for _ in range(k)]
        load_vals: list[list[np.ndarray]] = [[] for _ in range(k)]
        for c in range(k):
            terms, coefs = x_terms(weighted, np.full(len(weighted), c))
            load_cols[c].append(terms.reshape(-1))
            load_vals[c].append((weight[weighted][:, None] * coefs[None, :]).reshape(-1))
        shared_bytes = np.array(data["shared_bytes"], dtype=np.float64)  # type: ignore[arg-type]
        readers = _sets(data["shared_readers"])  # type: ignore[arg-type]
        for s in np.flatnonzero(shared_bytes > 0).tolist():
            held = new_cols(k, 0.0, 1.0, False)  # z[s, c] >= x[v, c] for each reader v
            members = readers[s]
            terms, coefs = x_terms(np.repeat(members, k), np.tile(chips, len(members)))
            zcol = np.tile(held, len(members))
            ids = rows.add(
                np.concatenate([zcol[:, None], terms], axis=1), [1.0, -1.0, 1.0], 0.0, np.inf
            )
            for c in range(k):
                aux_rows.setdefault(int(held[c]), []).append(ids[c::k])
                load_cols[c].append(held[c : c + 1])
                load_vals[c].append(shared_bytes[s : s + 1])
        producers = np.array(data["producer"], dtype=np.int64) - 1  # type: ignore[arg-type]
        consumers = _sets(data["consumers"])  # type: ignore[arg-type]
        for p, cons in zip(producers.tolist(), consumers, strict=True):
            if output[p] <= 0 or not len(cons):
                continue
            recv = new_cols(k, 0.0, 1.0, False)  # r[p, c] >= x[v, c] - x[p, c] per consumer v
            cv = np.repeat(cons, k)
            cc = np.tile(chips, len(cons))
            tv, _ = x_terms(cv, cc)
            tp, _ = x_terms(np.full(len(cv), p), cc)
            rcol = np.tile(recv, len(cons))
            ids = rows.add(
                np.concatenate([rcol[:, None], tv, tp], axis=1),
                [1.0, -1.0, 1.0, 1.0, -1.0],
                0.0,
                np.inf,
            )
            for c in range(k):
                aux_rows.setdefault(int(recv[c]), []).append(ids[c::k])
                load_cols[c].append(recv[c : c + 1])
                load_vals[c].append(output[p : p + 1])
        busy = np.flatnonzero(working > 0)
        if len(busy):
            largest = new_cols(k, 0.0, float(working.max()), False)  # >= working_set[v] * x[v, c]
            bv = np.repeat(busy, k)
            bc = np.tile(chips, len(busy))
            terms, _ = x_terms(bv, bc)
            cols = np.concatenate([np.tile(largest, len(busy))[:, None], terms], axis=1)
            ws = working[bv]
            vals = np.stack([np.ones_like(ws), -ws, ws], axis=1)
            ids = rows.add(cols, vals, 0.0, np.inf)
            for c in range(k):
                aux_rows.setdefault(int(largest[c]), []).append(ids[c::k])
                load_cols[c].append(largest[c : c + 1])
                load_vals[c].append(np.ones(1))
        for c in range(k):
            cols = np.concatenate(load_cols[c])
            rows.add_sparse(
                np.zeros(len(cols), dtype=np.int64),
                cols,
                np.concatenate(load_vals[c]),
                1,
                -np.inf,
                capacity,
            )
    # Implied gaps (redundant, like legality.mzn's implied bounds): the ops on paths from u to v sit on
    # chips chip[u]..chip[v] (data flows forward), and no chip holds more than `held` of weights, so
    # chip[v] - chip[u] >= ceil(their weight / held) - 1; a pair whose paths with their receive
    # buffers do not fit one chip is parted (`_implied_gaps`). In the order encoding:
    # y[v, k] <= y[u, k - gap].
    held = min(float(data["max_chip_weight"]), capacity)  # type: ignore[arg-type]
    if active["memory"] and not data["check_mode"] and held > 0 and k >= 2 and len(src):
        for gap, (us, vs) in _implied_gaps(
            n, src, dst, weight, working, held, capacity, k, output
        ).items():
            # k < gap: y[u, k - gap] = 0, so chip[v] >= gap; k = K-1: y[v, K-1] = 1, so
            # chip[u] <= K-1-gap (the fixed columns Y[:, 0] = 0 and Y[:, K] = 1 carry both).
            ks_gap = np.arange(k)
            lagged = np.maximum(ks_gap + 1 - gap, 0)
            pairs = np.stack([Y[vs][:, ks_gap + 1], Y[us][:, lagged]], axis=-1)
            rows.add(pairs.reshape(-1, 2), [1.0, -1.0], -np.inf, 0.0)
    # The redundant per-chip weight bound (legality.mzn's max_chip_weight), posted as the model does.
    max_chip_weight = float(data["max_chip_weight"])  # type: ignore[arg-type]
    if not data["check_mode"] and max_chip_weight < weight.sum() and len(weighted):
        for c in range(k):
            terms, coefs = x_terms(weighted, np.full(len(weighted), c))
            rows.add(
                terms.reshape(1, -1),
                (weight[weighted][:, None] * coefs[None, :]).reshape(1, -1),
                -np.inf,
                max_chip_weight,
            )
    # Cover rows (redundant): no chip holds more than `most` ops of a weight class.
    if active["memory"] and not data["check_mode"] and k >= 1:
        held_weight = min(max_chip_weight, capacity)
        for members, most in _weight_classes(weight, working, held_weight, capacity):
            for c in range(k):
                terms, coefs = x_terms(members, np.full(len(members), c))
                rows.add(terms.reshape(1, -1), np.tile(coefs, len(members))[None, :], -np.inf, most)

    num_cols = next_col
    cost = np.zeros(num_cols)
    offset = 0.0
    has_objective = False
    if model == "repair.mzn":
        has_objective = True
        candidate = np.array(data["candidate"], dtype=np.int64)  # type: ignore[arg-type]
        change = float(data["change_weight"])  # type: ignore[arg-type]
        per_chip = float(data["distance_weight"])  # type: ignore[arg-type]
        inside = (candidate >= 0) & (candidate <= k - 1)
        b = np.clip(candidate, 0, k - 1)
        # changed[v] = 1 - x[v, b] (inside), 1 (outside).
        offset += change * n
        iv = np.flatnonzero(inside)
        np.add.at(cost, Y[iv, b[iv] + 1], -change)
        np.add.at(cost, Y[iv, b[iv]], change)
        # |chip - a| = |a - b| + sum_{k >= b} (1 - y[v, k]) + sum_{k < b} y[v, k].
        offset += per_chip * float(np.abs(candidate - b).sum() + (k - 1 - b).sum())
        kk = np.arange(k - 1)
        above = kk[None, :] >= b[:, None]
        coef = np.where(above, -per_chip, per_chip)
        np.add.at(cost, Y[:, 1:k].reshape(-1), coef.reshape(-1))
        # The fixed columns carry constants: move them into the offset.
        offset += cost[1]
        cost[:2] = 0.0
    return OrderModel(
        n,
        k,
        np.concatenate(lower),
        np.concatenate(upper),
        np.concatenate(integer),
        cost,
        offset,
        rows,
        Y,
        aux_rows,
        infeasible,
        has_objective,
    )


def placement_of(model: OrderModel, values: np.ndarray) -> list[int]:
    """chip[v] = number of k in 0..K-2 with y[v, k] = 0."""
    y = np.rint(values[model.y[:, 1 : model.k]]).astype(np.int64)
    return ((1 - y).sum(axis=1)).tolist()


def start_values(model: OrderModel, placement: np.ndarray) -> np.ndarray:
    """A full column vector for `placement`: y from the chips, auxiliaries from their defining rows."""
    values = np.zeros(len(model.cost))
    values[1] = 1.0
    k = model.k
    ks = np.arange(k - 1)
    values[model.y[:, 1:k]] = (placement[:, None] <= ks[None, :]).astype(np.float64)
    rows = model.rows
    row_of = np.concatenate(rows.rows) if rows.rows else np.zeros(0, np.int64)
    col_of = np.concatenate(rows.cols) if rows.cols else np.zeros(0, np.int64)
    val_of = np.concatenate(rows.vals) if rows.vals else np.zeros(0)
    low = np.concatenate(rows.lower) if rows.lower else np.zeros(0)
    aux = np.zeros(len(model.cost), dtype=bool)
    aux[list(model.aux_rows)] = True
    term = np.where(aux[col_of], 0.0, val_of * values[col_of])
    activity = np.bincount(row_of, weights=term, minlength=rows.count)
    for col, ids in model.aux_rows.items():
        need = np.concatenate([low[i] - activity[i] for i in ids])
        values[col] = min(max(float(need.max(initial=0.0)), 0.0), model.col_upper[col])
    return values


@dataclass(frozen=True)
class OrderAnswer:
    status: str
    """OPTIMAL_SOLUTION, SATISFIED, UNSATISFIABLE or UNKNOWN (as for the FlatZinc back ends)."""
    values: dict[str, object] | None
    bound: float | None = None
    objective: float | None = None
    """The objective of `values` (repair.mzn: change_weight x changed + distance_weight x distance)."""


RACE = ({"presolve": "on"}, {"presolve": "off"})
"""The HiGHS settings `solve_raced` runs side by side, one thread each. Measured on the repairs HiGHS
left unproved in solver_decide.py: with presolve off the root LP cycle is shorter, and it finds or proves
some optima in a third of the time that presolve takes (nn33: 2.2 against 3.8 CPU s), while presolve
proves others faster (nn77, nn85); neither dominates (docs/placement.md, "Back ends")."""


def proves(bound: float | None, objective: float | None) -> bool:
    """A valid lower bound within 0.5 of an incumbent's objective proves it optimal: the objectives
    are integers (integer costs and offset), as `flatzinc.exact_highs`'s mip_abs_gap = 0.5 relies on."""
    return bound is not None and objective is not None and bound >= objective - 0.5


def combine(answers: list[OrderAnswer | None]) -> OrderAnswer:
    """One answer from the raced solves of one model: the best incumbent (the first in RACE order on a
    tie), the largest lower bound (each child's dual bound is valid for the same model), proved when
    a child proved it or the largest bound meets the best incumbent (`proves`)."""
    done = [a for a in answers if a is not None]
    if any(a.status == "UNSATISFIABLE" for a in done):
        return OrderAnswer("UNSATISFIABLE", None)
    bounds = [a.bound for a in done if a.bound is not None]
    bound = max(bounds) if bounds else None
    found = [a for a in done if a.values is not None and a.objective is not None]
    if not found:
        return OrderAnswer("UNKNOWN", None, bound)
    best = min(found, key=lambda a: a.objective)  # type: ignore[arg-type,return-value]
    proved = any(a.status == "OPTIMAL_SOLUTION" and a.objective == best.objective for a in found)
    status = "OPTIMAL_SOLUTION" if proved or proves(bound, best.objective) else "SATISFIED"
    return OrderAnswer(status, best.values, bound, best.objective)


def _write_progress(path: str, bound: float, objective: float) -> None:
    """This child's dual bound and incumbent (HiGHS's objective, without the model's offset)."""
    import os

    with open(path + ".tmp", "w") as handle:
        handle.write(f"{bound!r} {objective!r}")
    os.replace(path + ".tmp", path)


def _read_progress(path: str) -> tuple[float, float] | None:
    try:
        with open(path) as handle:
            bound, objective = handle.read().split()
        return float(bound), float(objective)
    except (OSError, ValueError):
        return None


def solve(
    model_name: str,
    data: dict[str, object],
    *,
    time_limit: float,
    seed: int,
    start: list[int] | None = None,
    options: dict[str, str] | None = None,
    progress: str | None = None,
    sibling: str | None = None,
) -> OrderAnswer:
    """Build and solve with HiGHS (in this process: do not call it where ortools is loaded).

    `options`: HiGHS options on top of `flatzinc.exact_highs` (RACE). `progress`, `sibling`: files in
    which this solve and the one raced against it publish (dual bound, incumbent); each stops as soon as
    the larger bound meets the better incumbent (`proves`), which `combine` then claims."""
    import highspy

    started = time.monotonic()
    model = build(model_name, data)
    if model.infeasible:
        if progress is not None:
            _write_progress(progress, np.inf, np.inf)
        return OrderAnswer("UNSATISFIABLE", None)
    highs = flatzinc.exact_highs(time_limit - (time.monotonic() - started), seed)
    for key, value in (options or {}).items():
        highs.setOptionValue(key, value)
    if progress is not None and sibling is not None:
        published = [0.0]

        def share(event: highspy.cb.HighsCallbackEvent) -> None:  # type: ignore[name-defined]
            now = time.monotonic()
            if now - published[0] < 0.05:
                return
            published[0] = now
            bound, objective = event.data_out.mip_dual_bound, event.data_out.mip_primal_bound
            _write_progress(progress, bound, objective)
            other = _read_progress(sibling)
            if other is not None and proves(max(bound, other[0]), min(objective, other[1])):
                event.interrupt()

        highs.cbMipInterrupt.subscribe(share)
    load_model(highs, model)
    if start is not None:
        set_start(highs, model, start)
    highs.run()
    status = highs.getModelStatus()
    info = highs.getInfo()
    if status == highspy.HighsModelStatus.kInfeasible:
        if progress is not None:
            _write_progress(progress, np.inf, np.inf)
        return OrderAnswer("UNSATISFIABLE", None)
    bound = None
    if model.has_objective:
        dual = float(info.mip_dual_bound)
        bound = dual + model.offset if np.isfinite(dual) else None
        if status == highspy.HighsModelStatus.kOptimal and progress is not None:
            objective = float(info.objective_function_value)
            _write_progress(progress, objective, objective)  # the sibling stops at its next check
    if info.primal_solution_status != 2:  # kSolutionStatusFeasible
        return OrderAnswer("UNKNOWN", None, bound)
    col_value = np.array(highs.getSolution().col_value)
    values = {"chip": placement_of(model, col_value)}
    objective = float(model.cost @ col_value + model.offset) if model.has_objective else None
    if status == highspy.HighsModelStatus.kOptimal:
        return OrderAnswer(
            "OPTIMAL_SOLUTION" if model.has_objective else "SATISFIED", values, bound, objective
        )
    return OrderAnswer("SATISFIED", values, bound, objective)


def set_start(highs: highspy.Highs, model: OrderModel, placement: np.ndarray) -> None:  # type: ignore[name-defined]  # noqa: F821
    """Give `highs` (with `model` loaded) `placement` as its first incumbent."""
    import highspy

    solution = highspy.HighsSolution()
    solution.col_value = start_values(model, np.asarray(placement, dtype=np.int64)).tolist()
    solution.value_valid = True
    highs.setSolution(solution)


def load_model(highs: highspy.Highs, model: OrderModel) -> None:  # type: ignore[name-defined]  # noqa: F821
    """Hand `model`'s columns, integrality and rows to `highs` (a fresh `flatzinc.exact_highs`)."""
    import highspy

    num_cols = len(model.cost)
    highs.addCols(
        num_cols,
        model.cost,
        model.col_lower,
        model.col_upper,
        0,
        np.array([], np.int32),
        np.array([], np.int32),
        np.array([]),
    )
    integer_cols = np.flatnonzero(model.integer).astype(np.int32)
    highs.changeColsIntegrality(
        len(integer_cols), integer_cols, np.full(len(integer_cols), highspy.HighsVarType.kInteger)
    )
    rows = model.rows
    if rows.count:
        # HiGHS rejects a column twice in one row (the fixed 0/1 columns recur): sum the duplicates.
        keys, inverse = np.unique(
            np.concatenate(rows.rows) * num_cols + np.concatenate(rows.cols), return_inverse=True
        )
        vals = np.bincount(inverse, weights=np.concatenate(rows.vals), minlength=len(keys))
        row_of, cols = keys // num_cols, (keys % num_cols).astype(np.int32)
        starts = np.searchsorted(row_of, np.arange(rows.count)).astype(np.int32)
        inf = highs.getInfinity()
        added = highs.addRows(
            rows.count,
            np.clip(np.concatenate(rows.lower), -inf, inf),
            np.clip(np.concatenate(rows.upper), -inf, inf),
            len(cols),
            starts,
            cols,
            vals,
        )
        if added != highspy.HighsStatus.kOk:
            raise RuntimeError(f"HiGHS rejected the order-encoded rows: {added}")


def solve_in_subprocess(
    model_name: str,
    data_path: str,
    *,
    time_limit: float,
    seed: int,
    start: list[int] | None = None,
) -> OrderAnswer:
    """`solve` in a fresh Python process (highspy and ortools cannot share one; see module doc)."""
    # The child's time limit runs from now (wall clock), not from when its interpreter is up: under
    # load, starting Python and importing highspy can take a good part of a second.
    deadline = time.time() + time_limit
    request = {"model": model_name, "data": data_path, "deadline": deadline, "seed": seed}
    request["start"] = start
    answer = flatzinc.run_child(
        "chiplex.targets.order_mip", [], stdin=json.dumps(request), time_limit=time_limit
    )
    return _answer(answer) or OrderAnswer("UNKNOWN", None)


def _answer(reply: dict[str, object] | None) -> OrderAnswer | None:
    if reply is None:
        return None
    return OrderAnswer(
        str(reply["status"]),
        reply["values"],  # type: ignore[arg-type]
        reply["bound"],  # type: ignore[arg-type]
        reply.get("objective"),  # type: ignore[arg-type]
    )


def solve_raced(
    model_name: str,
    data_path: str,
    *,
    time_limit: float,
    seed: int,
    start: list[int] | None = None,
) -> OrderAnswer:
    """`solve` with each of the RACE settings in its own process at once (one thread each: the two
    cores of the machine), combined by `combine`; each stops when the pair has a proof. The objective of
    a proved answer is the same every run; which of two equally good placements comes back can depend on
    which child found its incumbent first."""
    deadline = time.time() + time_limit
    with tempfile.TemporaryDirectory(prefix="chiplex-race-") as tmp:
        progress = [f"{tmp}/progress{i}" for i in range(len(RACE))]
        requests = [
            json.dumps(
                {
                    "model": model_name,
                    "data": data_path,
                    "deadline": deadline,
                    "seed": seed,
                    "start": start,
                    "options": options,
                    "progress": progress[i],
                    "sibling": progress[1 - i],
                }
            )
            for i, options in enumerate(RACE)
        ]
        replies = flatzinc.run_children(
            "chiplex.targets.order_mip", requests, time_limit=time_limit
        )
    return combine([_answer(reply) for reply in replies])


def main() -> int:
    """Reads {"model", "data" (a JSON data file), "deadline" (time.time()), "seed", "start"} from
    stdin; prints the answer as JSON."""
    request = json.loads(sys.stdin.read())
    with open(request["data"]) as handle:
        data = json.load(handle)
    answer = solve(
        request["model"],
        data,
        time_limit=max(float(request["deadline"]) - time.time(), 0.01),
        seed=int(request["seed"]),
        start=request.get("start"),
        options=request.get("options"),
        progress=request.get("progress"),
        sibling=request.get("sibling"),
    )
    reply = {"status": answer.status, "values": answer.values, "bound": answer.bound}
    reply["objective"] = answer.objective
    print(json.dumps(reply))
    return 0


if __name__ == "__main__":
    sys.exit(main())
