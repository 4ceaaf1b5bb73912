"""The anchor: the legal placement the policy's action is a residual on.

The policy does not place from nothing. A problem comes with an anchor, a legal placement from a fast
heuristic (the `learned` strategy uses the better of dp's and greedy's, the same start annealing gets; a
search then moves the anchor to the best placement found so far), and the action moves the anchor's
stage boundaries:

1. order: the ops sorted by anchor chip. Every legal placement has chip(u) <= chip(v) on every edge
   u -> v, so stage after stage is a topological order in which the anchor is contiguous: chip c's ops
   form the c-th run. Within a stage the ops follow their index, except that cheap ops move to the
   stage's edges when the dataflow allows (`stage_order`): a cheap op whose consumers all sit on later
   chips goes last and one whose producers all sit on earlier chips goes first, so that the smallest
   boundary move hands exactly that op to the neighbouring chip. On a pipeline whose stages tie
   (BERT's repeated layers) relieving the slowest stage takes one bias add or layer norm, not the
   matmul that follows it in index order.
2. base weight of op i on anchor chip c: (1 - FLOOR) x work_i / work(c) + FLOOR / ops(c), so every
   anchor chip's ops weigh exactly 1 and every op weighs a little (a zero-work op still has a position).
3. an action z (one real per op) re-weights: w_i = base_i x exp(z_i). Each anchor stage has a head
   (the ops whose middle lies before half its base weight) and a tail (the rest). Boundary c (between
   anchor stages c and c+1) moves to the point that divides the re-weighted work of stage c's tail and
   stage c+1's head in the ratio their base weights divide it: the first op whose *position* lies
   past it starts stage c+1. An op's position is its middle, except at the far ends of a window:
   stage c's first tail op sits (1 + s)/2 into its weight and stage c+1's last head op s/2 into its
   (s: the window's tail share `tail_shares[c]`, clipped to 5-95%), so that the boundary can sweep
   the whole window (with middles everywhere, a head heavier than the tail before it could never
   cross back, and a tail heavier than the head after it never forward).
   One boundary alone never empties a stage; stages emptied by crossing boundaries are closed up
   (chips stay 0..m'-1 without gaps).

Only the actions of stage c's tail and stage c+1's head move boundary c, and it stays inside them
(its window), so a move is local: a pipeline's throughput is its slowest stage, and
perturbing every boundary at once nearly always makes some other stage the new bottleneck. Each
boundary has its own actions: handing a stage's last op to the next chip does not also hand its first
op to the previous one (with one weight per stage, as before, it did whenever both were cheap, so a
tie of equally slow stages could not be relieved by one move). With z = 0 the dividing point is the
anchor's boundary and every op's position sits inside its own base weight (at least 5% of it from
either end), so the zero action reproduces the anchor exactly; a positive z_i makes op i "heavier",
pushing the boundary on its side of the stage inwards (its stage gets fewer ops). Every sample is a
contiguous cut of a topological order: acyclic and gap-free by construction; only memory, hop-span
and pinning rules may still need the repair. The action cannot open chips the anchor leaves unused (m < K)
or make a placement that is not contiguous in `order`; both are documented limits (docs/learned.md).
The anchor's feature columns use the index order within a stage (as before the stage order was
refined), so checkpoints trained with them read the same inputs.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import torch

FLOOR = 1e-3
"""Share of each anchor chip's unit weight spread evenly over its ops (a margin for the zero action)."""
ANCHOR_FEATURES = 4
"""Per-op anchor columns: stage position, share within the stage, on the hot chip, log stage load."""
HOT_COLUMN = 2
"""The anchor column that is 1 on the ops of the anchor's hot chip."""
EDGE_LIMIT = 0.05
"""The far-end positions (`Anchor.reach`) stay at least this share of an op's weight inside it: the
zero action's margin."""
CHEAP_SHARE = 0.01
"""An op is cheap (`stage_order` moves it to its stage's edge) when its work is at most this share of
its anchor stage's work: bias adds, layer norms and reshapes next to matmuls."""


@dataclass(frozen=True, eq=False)
class Anchor:
    """A legal placement prepared for `Anchor.placements`; build with `make_anchor`."""

    placement: np.ndarray
    """int64[n]: the anchor placement (chips 0..m-1)."""
    order: np.ndarray
    """int64[n]: the ops sorted by anchor chip (within a chip `stage_order`'s order, else the index):
    a topological order."""
    base: np.ndarray
    """float64[n] in `order`: base weights, each anchor chip's ops summing to 1."""
    stages: int
    """m: chips the anchor uses."""
    starts: np.ndarray
    """int64[m + 1]: where each anchor stage starts in `order` (and n at the end)."""
    halves: np.ndarray
    """int64[m]: where each anchor stage's tail starts in `order` (its first op whose middle lies
    past half the stage's base weight); the head is the rest."""
    tail_shares: np.ndarray
    """float64[m - 1]: stage c's tail weight over the weight of its tail and stage c+1's head (the
    point between them where boundary c sits under the zero action)."""
    hot_chip: int
    """The simulator's critical chip for the anchor (-1: unknown)."""
    reach: np.ndarray
    """float64[n] in `order`: where in its re-weighted weight an op's position lies, as the share
    before its end: 1/2 (its middle), except for each window's far-end ops (see the module)."""
    features: torch.Tensor
    """float32[n, ANCHOR_FEATURES], in op index order (the policy's extra input)."""

    @property
    def windows(self) -> np.ndarray:
        """int64[n] in op index order: the boundary each op's action moves (stage c's tail and stage
        c+1's head move boundary c), -1 for the first stage's head and the last stage's tail, whose
        actions move nothing."""
        positions = np.arange(len(self.order))
        window = np.searchsorted(self.halves, positions, side="right") - 1
        window[window >= self.stages - 1] = -1
        out = np.empty_like(window)
        out[self.order] = window
        return out

    def placements(self, actions: np.ndarray) -> np.ndarray:
        """int64[b, n] placements from float[b, n] actions (op index order); zeros give the anchor."""
        actions = np.atleast_2d(np.asarray(actions, dtype=np.float64))
        b, n = actions.shape
        if self.stages < 2:
            return np.zeros((b, n), dtype=np.int64)
        weighted = self.base[None, :] * np.exp(np.clip(actions[:, self.order], -20.0, 20.0))
        cumulative = np.cumsum(weighted, axis=1)
        # Each op's position: its middle, but nearer the window's edge for its far-end ops.
        position = cumulative - weighted * self.reach
        before = np.concatenate([np.zeros((b, 1)), cumulative], axis=1)  # before[:, j]: ops < j
        # Boundary c (between anchor stages c and c+1) divides the re-weighted work of stage c's
        # tail and stage c+1's head in the ratio the anchor's weights divide it: only the actions of
        # those two half-stages move it, and it stays inside them.
        low, high = before[:, self.halves[:-1]], before[:, self.halves[1:]]
        threshold = low + self.tail_shares[None, :] * (high - low)
        bounds = np.stack([np.searchsorted(position[r], threshold[r]) for r in range(b)])
        # One boundary alone never empties a stage (its stages keep an op each); crossing
        # boundaries meet.
        bounds = np.clip(bounds, self.starts[:-2] + 1, self.starts[2:] - 1)
        bounds = np.maximum.accumulate(bounds, axis=1)
        # stage[r, j]: the boundaries of row r at or before position j.
        marks = np.zeros((b, n + 1), dtype=np.int64)
        np.add.at(marks, (np.repeat(np.arange(b), bounds.shape[1]), bounds.ravel()), 1)
        stage = np.cumsum(marks[:, :n], axis=1)
        # Close up stages that became empty: chips stay 0..m'-1 without gaps.
        steps = (np.diff(stage, axis=1) > 0).astype(np.int64)
        closed = np.concatenate([np.zeros((b, 1), dtype=np.int64), np.cumsum(steps, axis=1)], 1)
        out = np.empty_like(closed)
        out[:, self.order] = closed
        return out


def make_anchor(
    work: np.ndarray,
    placement: np.ndarray,
    hot_chip: int = -1,
    edges: tuple[np.ndarray, np.ndarray] | None = None,
) -> Anchor:
    """Prepare `placement` (legal: chips 0..m-1 without gaps, edges non-decreasing) as an anchor over
    per-op `work` (seconds, > 0; `features.op_work`). With the graph's `edges` (producers, consumers)
    the ops within a stage follow `stage_order`, else their index."""
    placement = np.asarray(placement, dtype=np.int64)
    n = len(placement)
    used, chip_of = np.unique(placement, return_inverse=True)  # closes any gap defensively
    m = len(used)
    index_order = np.lexsort((np.arange(n), chip_of))
    work = np.maximum(np.asarray(work, dtype=np.float64), 1e-30)
    order = index_order if edges is None else stage_order(work, chip_of, *edges)
    chip_work = np.bincount(chip_of, weights=work, minlength=m)
    chip_ops = np.bincount(chip_of, minlength=m).astype(np.float64)
    base = (1 - FLOOR) * work / chip_work[chip_of] + FLOOR / chip_ops[chip_of]
    # Share of each op's chip weight before its middle, in index order within the stage (0 at a
    # stage's start, 1 at its end): the feature checkpoints were trained with.
    index_base = base[index_order]
    within_ordered = np.cumsum(index_base) - index_base / 2 - chip_of[index_order]
    within = np.empty(n)
    within[index_order] = within_ordered
    hot = -1
    if hot_chip >= 0 and hot_chip in used:
        hot = int(np.searchsorted(used, hot_chip))
    load = chip_work / max(float(chip_work.mean()), 1e-30)
    features = np.stack(
        [
            chip_of / max(m - 1, 1),
            np.clip(within, 0.0, 1.0),
            (chip_of == hot).astype(np.float64),
            np.clip(np.log(np.maximum(load[chip_of], 1e-30)), -10, 10) / 5,
        ],
        axis=1,
    )
    starts = np.concatenate([[0], np.cumsum(np.bincount(chip_of, minlength=m))]).astype(np.int64)
    ordered_base = base[order]
    cumulative = np.concatenate([[0.0], np.cumsum(ordered_base)])
    middles = cumulative[1:] - ordered_base / 2 - chip_of[order]  # share of the stage before each
    halves = np.array(
        [
            starts[c] + int(np.searchsorted(middles[starts[c] : starts[c + 1]], 0.5))
            for c in range(m)
        ],
        dtype=np.int64,
    )
    tail = cumulative[starts[1:-1]] - cumulative[halves[:-1]]
    head = cumulative[halves[1:]] - cumulative[starts[1:-1]]
    tail_shares = tail / np.maximum(tail + head, 1e-300)
    # Where the boundary sweeps a window to its far end, the op there must be able to cross: stage
    # c's first tail op crosses forward only if its position lies past share s of its weight, stage
    # c+1's last head op back only if before it (the rest of the window weighs next to nothing).
    reach = np.full(n, 0.5)
    for c, share in enumerate(tail_shares.tolist()):
        if halves[c] < starts[c + 1]:  # stage c has a tail
            reach[halves[c]] = 1.0 - np.clip((1.0 + share) / 2, 0.5, 1.0 - EDGE_LIMIT)
        if halves[c + 1] > starts[c + 1]:  # stage c+1 has a head
            reach[halves[c + 1] - 1] = 1.0 - np.clip(share / 2, EDGE_LIMIT, 0.5)
    return Anchor(
        placement=chip_of.astype(np.int64),
        order=order,
        base=ordered_base,
        stages=m,
        starts=starts,
        halves=halves,
        tail_shares=tail_shares,
        hot_chip=hot,
        reach=reach,
        features=torch.from_numpy(features.astype(np.float32)),
    )


def stage_order(
    work: np.ndarray, chip_of: np.ndarray, src: np.ndarray, dst: np.ndarray
) -> np.ndarray:
    """int64[n]: the ops stage after stage (by `chip_of`), each stage in a topological order that is
    its index order except at its edges: the tail is built from the end by taking, among the ops whose
    consumers in the stage are all taken, a cheap one (work <= CHEAP_SHARE of the stage's) when there
    is one, else the highest index; the head likewise from the start (a cheap ready op, else the lowest
    index). Each edge covers up to half the stage's ops. Edges must respect `chip_of`
    (chip(src) <= chip(dst))."""
    n = len(chip_of)
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    inside = chip_of[src] == chip_of[dst]
    src, dst = src[inside], dst[inside]
    consumers: list[list[int]] = [[] for _ in range(n)]
    producers: list[list[int]] = [[] for _ in range(n)]
    for u, v in zip(src.tolist(), dst.tolist(), strict=True):
        consumers[u].append(v)
        producers[v].append(u)
    chip_work = np.bincount(chip_of, weights=work)
    cheap = (work <= CHEAP_SHARE * chip_work[chip_of]).tolist()
    index_order = np.lexsort((np.arange(n), chip_of))
    starts = np.concatenate([[0], np.cumsum(np.bincount(chip_of))]).astype(np.int64)
    out: list[int] = []
    for c in range(len(starts) - 1):
        ops = index_order[starts[c] : starts[c + 1]].tolist()
        # The tail, from the end: (not cheap, -index) picks a cheap sink first, else the latest op.
        waiting = {v: len(consumers[v]) for v in ops}
        heap = [(not cheap[v], -v) for v in ops if waiting[v] == 0]
        heapq.heapify(heap)
        tail: list[int] = []
        while heap and 2 * len(tail) < len(ops):
            _, negative = heapq.heappop(heap)
            v = -negative
            tail.append(v)
            for u in producers[v]:
                waiting[u] -= 1
                if waiting[u] == 0:
                    heapq.heappush(heap, (not cheap[u], -u))
        in_tail = set(tail)
        # The head, from the start, over the rest (closed under producers: the tail is closed under
        # consumers): (not cheap, index) picks a cheap source first, else the earliest op.
        rest = [v for v in ops if v not in in_tail]
        pending = {v: len(producers[v]) for v in rest}
        ready = [(not cheap[v], v) for v in rest if pending[v] == 0]
        heapq.heapify(ready)
        while ready:
            _, v = heapq.heappop(ready)
            out.append(v)
            for w in consumers[v]:
                if w in pending:
                    pending[w] -= 1
                    if pending[w] == 0:
                        heapq.heappush(ready, (not cheap[w], w))
        out.extend(reversed(tail))
    return np.asarray(out, dtype=np.int64)


def balanced_split(work: np.ndarray, num_chips: int) -> np.ndarray:
    """int64[n]: index order cut into `num_chips` contiguous stages of equal work (gaps closed up); the
    anchor of last resort when no heuristic placement is legal."""
    if len(work) == 0:
        return np.zeros(0, dtype=np.int64)
    work = np.maximum(np.asarray(work, dtype=np.float64), 1e-30)
    cumulative = np.cumsum(work)
    share = (cumulative - work / 2) / cumulative[-1]
    stage = np.minimum((share * num_chips).astype(np.int64), num_chips - 1)
    return np.concatenate([[0], np.cumsum(np.diff(stage) > 0)]).astype(np.int64)
