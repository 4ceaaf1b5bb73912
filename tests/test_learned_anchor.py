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
