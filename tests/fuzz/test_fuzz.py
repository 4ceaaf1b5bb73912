"""Fuzzing chiplex with mutated real files, broken arguments and failing factories.

The fast slice (default run) draws cases with hypothesis so a failure shrinks to a small seed; the long
run (`pytest -m slow tests/fuzz`, or `python scripts/fuzz.py --cases 1000`) is the goal's measurement.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.engine import (
    FAMILIES,
    SMALL_IR,
    Campaign,
    Case,
    generate,
    mutate_bytes,
    run_case,
    summarize,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(family=st.sampled_from(sorted(FAMILIES)), seed=st.integers(0, 2**32 - 1))
def test_fast_slice_no_traceback_no_clobbered_file(family: str, seed: int) -> None:
    case = FAMILIES[family](random.Random(seed))
    outcome = run_case(case)
    assert outcome.kind == "ok", f"{case.describe()}\n{outcome.problems}\n{outcome.stderr[-2000:]}"


def test_the_harness_catches_what_it_should(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A mutator that never changes anything, or a classifier that never complains, would make every
    # run pass: check both on inputs with a known answer.
    rng = random.Random(0)
    data = b'%x = nn.param "w" : tensor<4xi8>\n'
    assert any(mutate_bytes(data, rng) != data for _ in range(10))
    case = FAMILIES["ir"](random.Random(1))
    case.argv = ["compile", "{dir}/in.mlir", "-o", "{dir}/keep.mlir"]  # keep.mlir is a file
    assert run_case(case).kind == "ok"  # a clear error, nothing changed
    case.argv = ["check", "{dir}/in.mlir", "--bogus-option"]
    assert run_case(case).code == 2


def test_campaign_reports_a_hang() -> None:
    campaign = Campaign(hang_seconds=2)
    try:
        case = FAMILIES["cli"](random.Random(0))
        case.program = "chiplex"
        case.argv = ["simulate", "{dir}/in.mlir"]
        import fuzz.engine as engine

        real = engine._call
        engine._call = lambda c: __import__("time").sleep(60)  # type: ignore[assignment]
        try:
            outcome = campaign.run(case)
        finally:
            engine._call = real  # type: ignore[assignment]
        assert outcome.kind == "hang"
    finally:
        campaign.close()


@pytest.mark.slow
def test_long_run_1000_cases() -> None:
    campaign = Campaign()
    try:
        outcomes = [campaign.run(case) for case in generate(1000, seed=2026)]
    finally:
        campaign.close()
    report = summarize(outcomes)
    bad = [o for o in outcomes if o.kind != "ok"]
    assert not bad, (
        report + "\n" + "\n".join(f"{o.case.describe()}: {o.problems}" for o in bad[:20])
    )


def test_relative_output_paths_land_in_the_scratch_directory(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # A generated `-o 0.0001` once wrote a directory into the repository the fuzzer ran from.
    monkeypatch.chdir(tmp_path)
    case = Case(
        "cli", ["compile", "{dir}/in.mlir", "-o", "rel-out"], {"in.mlir": SMALL_IR.encode()}
    )
    outcome = run_case(case)
    assert outcome.code == 0, outcome.stderr[-2000:]
    assert not (tmp_path / "rel-out").exists()
