"""The anchor: the zero action reproduces it exactly, actions move only nearby boundaries, and every
sample is acyclic and gap-free by construction."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from chiplex.learned.anchor import ANCHOR_FEATURES, balanced_split, make_anchor
from chiplex.learned.features import op_work
from chiplex.passes.strategies import place_dp
from chiplex.targets.legality import check_placement
from chiplex.testing import graph_and_target


@st.composite
def work_and_placement(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Per-op work spanning twelve orders of magnitude and a contiguous placement of it."""
    n = draw(st.integers(1, 60))
    exponents = draw(st.lists(st.floats(-12, 0), min_size=n, max_size=n))
    chips = draw(st.integers(1, min(n, 12)))
    cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=chips - 1))) if n > 1 else []
    placement = np.zeros(n, dtype=np.int64)
    for cut in cuts:
        placement[cut:] += 1
    return 10.0 ** np.array(exponents), placement


@settings(max_examples=200, deadline=None)
@given(work_and_placement())
def test_zero_action_reproduces_the_anchor(case: tuple[np.ndarray, np.ndarray]) -> None:
    work, placement = case
    anchor = make_anchor(work, placement)
    assert anchor.stages == placement.max() + 1
    assert anchor.features.shape == (len(work), ANCHOR_FEATURES)
    assert np.array_equal(anchor.placements(np.zeros((2, len(work))))[1], placement)


@settings(max_examples=100, deadline=None)
@given(work_and_placement(), st.integers(0, 2**32 - 1), st.floats(0.01, 5.0))
def test_samples_are_monotone_and_gap_free(
    case: tuple[np.ndarray, np.ndarray], seed: int, scale: float
) -> None:
    work, placement = case
    anchor = make_anchor(work, placement)
    actions = np.random.default_rng(seed).normal(0, scale, (4, len(work)))
    for sample in anchor.placements(actions):
        # The anchor is contiguous in index order here, so samples are too: chips never go back.
        assert sample[0] == 0 and np.all(np.diff(sample) >= 0) and np.all(np.diff(sample) <= 1)
        assert sample.max() < anchor.stages


def test_an_action_moves_only_the_boundaries_of_its_stage() -> None:
    work = np.ones(40)
    placement = np.repeat(np.arange(4), 10)
    anchor = make_anchor(work, placement)
    heavier = np.zeros(40)
    heavier[placement == 1] = 1.0  # stage 1 weighs more: both its boundaries move inwards
    moved = anchor.placements(heavier)[0]
    counts = np.bincount(moved, minlength=4).tolist()
    assert counts[1] < 10 and counts[0] > 10 and counts[2] > 10
    assert moved[30:].tolist() == [3] * 10  # boundary 2|3 does not depend on stage 1's actions


@settings(max_examples=20, deadline=None)
@given(graph_and_target(max_ops=30, max_chips=6))
def test_a_non_contiguous_anchor_is_reproduced_and_samples_stay_acyclic(problem) -> None:  # type: ignore[no-untyped-def]
    g, target = problem
    legal = place_dp(g, target)
    anchor = make_anchor(op_work(g, target), legal)
    assert np.array_equal(anchor.placements(np.zeros(g.num_nodes))[0], legal)
    rng = np.random.default_rng(0)
    for sample in anchor.placements(rng.normal(0, 1.0, (8, g.num_nodes))):
        rules = [v.rule for v in check_placement(g, target, sample)]
        assert "acyclic-dataflow" not in rules and "no-skipping-chips" not in rules


def test_balanced_split() -> None:
    assert balanced_split(np.ones(6), 3).tolist() == [0, 0, 1, 1, 2, 2]
    assert balanced_split(np.array([1.0, 10.0, 1.0]), 4).tolist() == [0, 1, 2]
    assert balanced_split(np.zeros(0), 3).tolist() == []


@settings(max_examples=30, deadline=None)
@given(graph_and_target(max_ops=30, max_chips=6), st.integers(0, 2**32 - 1))
def test_the_stage_order_keeps_the_anchor_and_the_dataflow(problem, seed: int) -> None:  # type: ignore[no-untyped-def]
    """With the graph's edges (cheap ops moved to their stage's edges): the order is a topological
    order, stage after stage; the zero action is the anchor; every sample sends data forward only."""
    g, target = problem
    legal = place_dp(g, target)
    work = op_work(g, target)
    anchor = make_anchor(work, legal, edges=(g.src, g.dst))
    position = np.empty(g.num_nodes, dtype=np.int64)
    position[anchor.order] = np.arange(g.num_nodes)
    assert np.all(position[g.src] < position[g.dst])
    assert np.all(np.diff(anchor.placement[anchor.order]) >= 0)
    assert np.array_equal(anchor.placements(np.zeros(g.num_nodes))[0], legal)
    rng = np.random.default_rng(seed)
    for sample in anchor.placements(rng.normal(0, 1.0, (8, g.num_nodes))):
        assert np.all(sample[g.src] <= sample[g.dst])
        assert sample.min() == 0 and np.all(np.diff(np.unique(sample)) == 1)
    actions = np.random.default_rng(seed).normal(0, 1.0, (8, g.num_nodes))
    assert np.array_equal(anchor.placements(actions), anchor.placements(actions.copy()))


def test_a_cheap_sink_goes_last_and_a_cheap_source_first() -> None:
    # Stage 0: 0 -> 1 -> 3 (heavy) and 0 -> 2 (cheap), both read by 4 on stage 1. Stage 1: 4 -> 6 -> 7
    # (heavy) and 5 (cheap), which reads stage 0's op 0 and feeds 6.
    src = np.array([0, 1, 0, 2, 3, 0, 5, 4, 6])
    dst = np.array([1, 3, 2, 4, 4, 5, 6, 6, 7])
    work = np.array([10.0, 10.0, 0.01, 10.0, 10.0, 0.01, 10.0, 10.0])
    placement = np.repeat([0, 1], 4)
    anchor = make_anchor(work, placement, edges=(src, dst))
    assert anchor.order.tolist() == [0, 1, 3, 2, 5, 4, 6, 7]
    assert make_anchor(work, placement).order.tolist() == list(range(8))  # no edges: index order
    assert anchor.windows.tolist() == [-1, -1, 0, 0, 0, 0, -1, -1]
    # The smallest moves of the boundary hand over the cheap op alone, not a heavy op with it:
    # stage 1's head a little lighter takes op 2, a little heavier gives op 5 away.
    lighter, heavier = np.zeros(8), np.zeros(8)
    lighter[[4, 5]], heavier[[4, 5]] = -0.01, 0.01
    assert anchor.placements(lighter)[0].tolist() == [0, 0, 1, 0, 1, 1, 1, 1]
    assert anchor.placements(heavier)[0].tolist() == [0, 0, 0, 0, 1, 0, 1, 1]
    # In index order the same boundary cannot move by the cheap op alone.
    index_anchor = make_anchor(work, placement)
    assert index_anchor.placements(lighter)[0].tolist() in (
        placement.tolist(),
        [0, 0, 0, 1, 1, 1, 1, 1],
    )


@settings(max_examples=100, deadline=None)
@given(work_and_placement(), st.integers(0, 2**32 - 1), st.floats(0.01, 5.0))
def test_a_window_moves_its_boundary_only(
    case: tuple[np.ndarray, np.ndarray], seed: int, scale: float
) -> None:
    """Actions on boundary c's window (stage c's tail, stage c+1's head) change no op outside stages
    c and c+1, and no op outside the window changes stage at all."""
    work, placement = case
    anchor = make_anchor(work, placement)
    if anchor.stages < 2:
        return
    rng = np.random.default_rng(seed)
    c = int(rng.integers(anchor.stages - 1))
    window = anchor.windows == c
    actions = np.where(window, rng.normal(0, scale, len(work)), 0.0)
    moved = anchor.placements(actions)[0]
    changed = np.flatnonzero(moved != placement)
    assert np.all(window[changed])
    # Stages do not disappear or renumber: every other op keeps its chip exactly.
    assert np.array_equal(moved[~window], placement[~window])


def test_any_op_of_a_window_can_cross_its_boundary() -> None:
    """A stage's head op heavier than the previous stage's tail can still cross back (with positions at
    op middles it never could), and a heavy tail op can cross forward; the zero action keeps both."""
    work = np.array([1.0, 1, 1, 1, 10, 1, 1, 1])
    placement = np.repeat([0, 1], 4)
    anchor = make_anchor(work, placement, edges=(np.arange(7), np.arange(1, 8)))
    assert np.array_equal(anchor.placements(np.zeros(8))[0], placement)
    back = np.zeros(8)
    back[4] = 3.0  # heavier: its stage sheds it to the previous one
    assert anchor.placements(back)[0].tolist() == [0, 0, 0, 0, 0, 1, 1, 1]
    back[4], back[[2, 3]] = 0.0, -3.0  # or the tail before it lighter
    assert anchor.placements(back)[0].tolist() == [0, 0, 0, 0, 0, 1, 1, 1]
    forward_work = work[::-1].copy()  # the heavy op ends stage 0
    forward = make_anchor(forward_work, placement, edges=(np.arange(7), np.arange(1, 8)))
    heavier = np.zeros(8)
    heavier[3] = 3.0
    assert forward.placements(heavier)[0].tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
