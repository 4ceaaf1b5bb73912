"""The anchor: the legal placement the policy's action is a residual on.

The policy does not place from nothing. A problem comes with an anchor, a legal placement from a fast
heuristic (the `learned` strategy uses the better of dp's and greedy's, the same start annealing gets; a
search then moves the anchor to the best placement found so far), and the action moves the anchor's
stage boundaries:

1. order: the ops sorted by (anchor chip, index). Every legal placement has chip(u) <= chip(v) on every
   edge u -> v, so this is a topological order in which the anchor is contiguous: chip c's ops form
   the c-th run.
2. base weight of op i on anchor chip c: (1 - FLOOR) x work_i / work(c) + FLOOR / ops(c), so every
   anchor chip's ops weigh exactly 1 and every op weighs a little (a zero-work op still has a position).
3. an action z (one real per op) re-weights: w_i = base_i x exp(z_i). The boundary between anchor
   stages c and c+1 moves to where the re-weighted work of those two stages splits in half (the first
   op whose middle lies past it starts stage c+1); boundaries that cross meet, and stages left empty are
   closed up (chips stay 0..m'-1 without gaps).

Only the actions of stages c and c+1 move boundary c, so a move is local: a pipeline's throughput is its
slowest stage, and perturbing every boundary at once nearly always makes some other stage the new
bottleneck. With z = 0 both stages weigh exactly 1 and every op's middle sits at least half its own base
weight away from the half-way point, so the zero action reproduces the anchor exactly; a positive z_i
makes op i "heavier", pushing both boundaries of its stage inwards (its stage gets fewer ops). Every
sample is a contiguous cut of a topological order: acyclic and gap-free by construction; only memory,
hop-span and pinning rules may still need the repair. The action cannot open chips the anchor leaves unused (m < K)
or make a placement that is not contiguous in `order`; both are documented limits (docs/learned.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

FLOOR = 1e-3
"""Share of each anchor chip's unit weight spread evenly over its ops (a margin for the zero action)."""
ANCHOR_FEATURES = 4
"""Per-op anchor columns: stage position, share within the stage, on the hot chip, log stage load."""
HOT_COLUMN = 2
"""The anchor column that is 1 on the ops of the anchor's hot chip."""


@dataclass(frozen=True, eq=False)
class Anchor:
    """A legal placement prepared for `Anchor.placements`; build with `make_anchor`."""

    placement: np.ndarray
    """int64[n]: the anchor placement (chips 0..m-1)."""
    order: np.ndarray
    """int64[n]: the ops sorted by (anchor chip, index), a topological order."""
    base: np.ndarray
    """float64[n] in `order`: base weights, each anchor chip's ops summing to 1."""
    stages: int
    """m: chips the anchor uses."""
    starts: np.ndarray
    """int64[m + 1]: where each anchor stage starts in `order` (and n at the end)."""
    hot_chip: int
    """The simulator's critical chip for the anchor (-1: unknown)."""
    features: torch.Tensor
    """float32[n, ANCHOR_FEATURES], in op index order (the policy's extra input)."""

    def placements(self, actions: np.ndarray) -> np.ndarray:
        """int64[b, n] placements from float[b, n] actions (op index order); zeros give the anchor."""
        actions = np.atleast_2d(np.asarray(actions, dtype=np.float64))
        b, n = actions.shape
        if self.stages < 2:
            return np.zeros((b, n), dtype=np.int64)
        weighted = self.base[None, :] * np.exp(np.clip(actions[:, self.order], -20.0, 20.0))
        cumulative = np.cumsum(weighted, axis=1)
        middle = cumulative - weighted / 2
        before = np.concatenate([np.zeros((b, 1)), cumulative], axis=1)  # before[:, j]: ops < j
        # Boundary c (between anchor stages c and c+1) sits where the re-weighted work of the two
        # stages splits in half: only the actions of these two stages move it.
        start, end = self.starts[:-2], self.starts[2:]
        threshold = (before[:, start] + before[:, end]) / 2
        bounds = np.stack([np.searchsorted(middle[r], threshold[r]) for r in range(b)])
        bounds = np.maximum.accumulate(bounds, axis=1)  # crossing boundaries meet
        positions = np.arange(n)
        stage = np.stack([np.searchsorted(bounds[r], positions, side="right") for r in range(b)])
        # Close up stages that became empty: chips stay 0..m'-1 without gaps.
        steps = (np.diff(stage, axis=1) > 0).astype(np.int64)
        closed = np.concatenate([np.zeros((b, 1), dtype=np.int64), np.cumsum(steps, axis=1)], 1)
        out = np.empty_like(closed)
        out[:, self.order] = closed
        return out


def make_anchor(work: np.ndarray, placement: np.ndarray, hot_chip: int = -1) -> Anchor:
    """Prepare `placement` (legal: chips 0..m-1 without gaps, edges non-decreasing) as an anchor over
    per-op `work` (seconds, > 0; `features.op_work`)."""
    placement = np.asarray(placement, dtype=np.int64)
    n = len(placement)
    used, chip_of = np.unique(placement, return_inverse=True)  # closes any gap defensively
    m = len(used)
    order = np.lexsort((np.arange(n), chip_of))
    work = np.maximum(np.asarray(work, dtype=np.float64), 1e-30)
    chip_work = np.bincount(chip_of, weights=work, minlength=m)
    chip_ops = np.bincount(chip_of, minlength=m).astype(np.float64)
    base = (1 - FLOOR) * work / chip_work[chip_of] + FLOOR / chip_ops[chip_of]
    ordered_base = base[order]
    # Share of each op's chip weight before its middle, in `order` (0 at a stage's start, 1 at its end).
    cumulative = np.cumsum(ordered_base)
    within_ordered = cumulative - ordered_base / 2 - chip_of[order]
    within = np.empty(n)
    within[order] = within_ordered
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
    return Anchor(
        placement=chip_of.astype(np.int64),
        order=order,
        base=ordered_base,
        stages=m,
        starts=np.concatenate([[0], np.cumsum(np.bincount(chip_of, minlength=m))]).astype(np.int64),
        hot_chip=hot,
        features=torch.from_numpy(features.astype(np.float32)),
    )


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
