"""benchmarks/transfer.py's accounting: a tie at the anchor is reported as a tie, never as a saving."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from chiplex.passes.search import HistoryPoint, SearchResult

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def transfer():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "transfer_bench", ROOT / "benchmarks" / "transfer.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["transfer_bench"] = module
    spec.loader.exec_module(module)
    return module


def result(*steps: tuple[int, float], evaluations: int | None = None) -> SearchResult:
    """A search whose best-so-far reached each (evaluation, samples/s) of `steps`."""
    history = [HistoryPoint(i, 0.0, t) for i, t in steps]
    best = max(t for _, t in steps)
    return SearchResult(
        placement=np.zeros(1, dtype=np.int64),
        throughput=best,
        evaluations=evaluations or steps[-1][0],
        seconds=0.0,
        history=history,
        strategy="learned",
        seed=0,
        upper_bound=200.0,
        search_throughput=best,
    )


def case(transfer, scratch: SearchResult, tuned: SearchResult):  # type: ignore[no-untyped-def]
    c = transfer.Case("m@t", None, None)
    for variant, r in (
        ("anchor", result((1, 90.0), (2, 100.0))),
        ("zero-shot", result((2, 100.0), (16, 100.0))),
        ("untrained@16", result((2, 100.0), (9, 101.0), (16, 101.0))),
        ("ft@1000", tuned),
        ("scratch@2000", scratch),
        ("anneal@2000", result((1, 100.0), (2000, 100.0))),
    ):
        c.rows.append(transfer.Row(variant, r))
    return c


ARGS = argparse.Namespace(budgets=[1000], evaluations=2000)


def test_a_tie_at_the_anchor_is_no_saving(transfer) -> None:  # type: ignore[no-untyped-def]
    tie = case(transfer, result((2, 100.0), (2000, 100.0)), result((2, 100.0), (1000, 100.0)))
    assert transfer.at_anchor(tie, 100.0) and not transfer.at_anchor(tie, 100.5)
    goals = transfer.goals_table([tie], ARGS)
    assert "none possible: tie at the anchor" in goals and "1.0x" not in goals
    assert "tie at the anchor" in transfer.table([tie], ARGS)


def test_a_real_saving_is_counted_from_the_evaluation_that_reaches_scratch(transfer) -> None:  # type: ignore[no-untyped-def]
    scratch = result((2, 100.0), (1500, 110.0), (2000, 110.0))
    tuned = result((2, 100.0), (75, 110.0), (1000, 110.0))
    goals = transfer.goals_table([case(transfer, scratch, tuned)], ARGS)
    assert "| 1500 | 75 | 20.0x |" in goals
    slow = result((2, 100.0), (1000, 105.0))
    assert "| 1500 | not reached | - |" in transfer.goals_table(
        [case(transfer, scratch, slow)], ARGS
    )


def test_knowledge_table_compares_pre_trained_and_untrained_samples(transfer) -> None:  # type: ignore[no-untyped-def]
    c = case(transfer, result((2, 100.0)), result((2, 100.0)))
    row = transfer.knowledge_table([c]).splitlines()[-1]
    assert row.startswith("| m@t | 100.0 | 101.0 | 100.0 |")
    assert row.endswith("| 0.990, - |")


@pytest.fixture(scope="module")
def room(transfer):  # type: ignore[no-untyped-def]
    """benchmarks/transfer_room.py (it imports transfer.py by name from the benchmarks folder)."""
    spec = importlib.util.spec_from_file_location(
        "transfer_room_bench", ROOT / "benchmarks" / "transfer_room.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_room_best_so_far_at_a_budget(room) -> None:  # type: ignore[no-untyped-def]
    r = result((1, 90.0), (40, 100.0), (300, 110.0))
    assert [room.best_at(r, b) for b in (1, 39, 40, 299, 1000)] == [90.0, 90.0, 100.0, 100.0, 110.0]


def test_room_cases_are_the_grid_unless_given(room) -> None:  # type: ignore[no-untyped-def]
    grid = argparse.Namespace(cases=None, models=["a", "b"], targets=["t", "u"])
    assert room.case_specs(grid) == ["a@t", "a@u", "b@t", "b@u"]
    given = argparse.Namespace(cases=["a@u"], models=["a", "b"], targets=["t"])
    assert room.case_specs(given) == ["a@u"]


def test_room_labels_checkpoints_by_stem_then_directory(room) -> None:  # type: ignore[no-untyped-def]
    labels = room.checkpoint_labels([Path("a/pretrained.pt"), Path("runs/all/checkpoint.pt")])
    assert labels == ["pretrained", "checkpoint"]
    alike = room.checkpoint_labels([Path("runs/a/checkpoint.pt"), Path("runs/b/checkpoint.pt")])
    assert alike == ["a/checkpoint", "b/checkpoint"]


def test_direction_counts_boundary_moves_towards_the_lighter_stage(transfer) -> None:  # type: ignore[no-untyped-def]
    """transfer_direction.py: a boundary moved so that the heavier stage sheds ops counts as towards
    the lighter stage; moved the other way, towards the heavier; unmoved, neither."""
    from chiplex.learned.anchor import make_anchor

    spec = importlib.util.spec_from_file_location(
        "transfer_direction_bench", ROOT / "benchmarks" / "transfer_direction.py"
    )
    assert spec is not None and spec.loader is not None
    direction = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(direction)
    work = np.ones(6)
    anchor = make_anchor(work, np.array([0, 0, 0, 0, 1, 1]))  # stage 0 is the heavier (4 against 2)
    loads = direction.stage_loads(anchor, work)
    assert loads.tolist() == pytest.approx([4 / 3, 2 / 3])
    assert direction.boundary_moves(anchor, np.array([0, 0, 0, 1, 1, 1]), loads) == (1, 0)
    assert direction.boundary_moves(anchor, np.array([0, 0, 0, 0, 0, 1]), loads) == (0, 1)
    assert direction.boundary_moves(anchor, anchor.placement, loads) == (0, 0)
