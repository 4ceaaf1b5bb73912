"""The `learned` search strategy through the shared evaluator, the CLI (search, finetune) and `place`."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings

from chiplex.cli import main
from chiplex.compile import compile_module
from chiplex.ir.graph import Graph
from chiplex.ir.parse import load_module
from chiplex.learned import load_checkpoint
from chiplex.learned.checkpoint import CheckpointHeader, save_checkpoint
from chiplex.learned.policy import PolicyConfig, new_policy
from chiplex.learned.ppo import PPOConfig
from chiplex.passes import default_pipeline
from chiplex.passes.learned import anchor_candidates
from chiplex.passes.search import Budget, search
from chiplex.runtime_sim.evaluate import LocalPoolExecutor
from chiplex.targets.legality import check_placement
from chiplex.testing import graph_and_target, nn_graph, target_for

ROOT = Path(__file__).parents[1]
MLP = ROOT / "examples" / "models" / "mlp.mlir"
FAST = PPOConfig(samples_per_update=8, update_epochs=2)


def graph(seed: int, num_ops: int = 24) -> Graph:
    rng = np.random.default_rng(seed)
    return nn_graph(lambda lo, hi: int(rng.integers(lo, hi + 1)), num_ops, name=f"g{seed}")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_and_target(max_ops=24, max_chips=6))
def test_every_learned_placement_is_legal(problem: tuple[Graph, object]) -> None:
    g, target = problem
    result = search(g, target, "learned", Budget(evaluations=8), seed=0, options={"ppo": FAST})
    assert check_placement(g, target, result.placement) == []
    assert result.evaluations <= 8 and result.throughput > 0


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_and_target(max_ops=24, max_chips=6))
def test_learned_is_never_worse_than_its_anchor(problem: tuple[Graph, object]) -> None:
    """The anchor (the better of dp's and greedy's placements) is evaluated first, so the answer is at
    least as good as either, within the same budget."""
    g, target = problem
    assert anchor_candidates(g, target)  # both heuristics answer on these problems
    result = search(g, target, "learned", Budget(evaluations=12), seed=0, options={"ppo": FAST})
    assert result.evaluations <= 12
    for heuristic in ("dp", "greedy"):
        assert result.throughput >= search(g, target, heuristic, Budget(evaluations=1)).throughput


def test_same_seed_same_result_on_any_executor() -> None:
    g = graph(1, 30)
    target = target_for(g, 4, slack=1.1)
    budget = Budget(evaluations=24)

    def run(seed: int, **kwargs: object):  # type: ignore[no-untyped-def]
        return search(g, target, "learned", budget, seed, options={"ppo": FAST}, **kwargs)

    first, again = run(0), run(0)
    assert np.array_equal(first.placement, again.placement)
    assert first.throughput == again.throughput
    assert [p.best_throughput for p in first.history] == [p.best_throughput for p in again.history]
    with LocalPoolExecutor(2) as pool:
        pooled = run(0, executor=pool)  # each update overlaps the next batch's judging
    serial = run(0, workers=1)  # the same arithmetic, judged when asked
    for other in (pooled, serial):
        assert np.array_equal(first.placement, other.placement)
        assert [p.best_throughput for p in first.history] == [
            p.best_throughput for p in other.history
        ]
    assert torch.get_num_threads() >= 1  # the strategy restores torch's thread count


def test_the_learner_can_take_turns_with_the_judge() -> None:
    g = graph(3, 24)
    target = target_for(g, 4, slack=1.1)
    options = {"ppo": FAST, "overlap": False}
    result = search(g, target, "learned", Budget(evaluations=24), 0, workers=1, options=options)
    assert check_placement(g, target, result.placement) == []
    assert any("PPO's own time" in note for note in result.notes)


def test_balanced_anchor_starts_from_the_work_balanced_split() -> None:
    """anchor=balanced: the first evaluation is the work-balanced contiguous split, not dp's placement,
    and the search climbs from it (re-anchoring on its best sample); an unknown anchor is an error."""
    from chiplex.errors import ChiplexError
    from chiplex.learned.anchor import balanced_split
    from chiplex.learned.features import graph_features
    from chiplex.runtime_sim.evaluate import Evaluator

    g = graph(4, 30)
    target = target_for(g, 4, slack=1.5)
    split = balanced_split(graph_features(g, target).work, target.num_chips)
    balanced = Evaluator(g, target)(split).throughput
    first = search(
        g,
        target,
        "learned",
        Budget(evaluations=1),
        seed=0,
        options={"anchor": "balanced", "zero_shot": True},
    )
    assert first.search_throughput == pytest.approx(balanced)
    assert first.evaluations == 1
    heuristic = search(
        g, target, "learned", Budget(evaluations=1), seed=0, options={"zero_shot": True}
    )
    dp = search(g, target, "dp", Budget(evaluations=1))
    assert heuristic.search_throughput == pytest.approx(dp.search_throughput)
    assert dp.search_throughput > balanced  # else this graph shows nothing
    climbed = search(
        g,
        target,
        "learned",
        Budget(evaluations=40),
        seed=0,
        options={"anchor": "balanced", "ppo": FAST},
    )
    assert climbed.search_throughput > balanced
    assert check_placement(g, target, climbed.placement) == []
    with pytest.raises(ChiplexError, match="unknown anchor 'best'"):
        search(g, target, "learned", Budget(evaluations=1), options={"anchor": "best"})


def test_learned_reports_updates_and_saves_a_checkpoint(tmp_path: Path) -> None:
    g = graph(2, 20)
    target = target_for(g, 3)
    curve: list[tuple[int, float]] = []
    out = tmp_path / "p.pt"
    result = search(
        g,
        target,
        "learned",
        Budget(evaluations=20),
        seed=3,
        options={
            "ppo": FAST,
            "save": out,
            "on_update": lambda evals, stats: curve.append((evals, stats.mean_reward)),
        },
    )
    # The first update also evaluates the two anchor candidates (dp, greedy), then each judges up to
    # 8 placements not judged before (fewer when its rounds of draws find fewer on this small graph);
    # the last batch is cut by the budget.
    evaluations = [e for e, _ in curve]
    assert evaluations[0] == 10 and evaluations[-1] == 20
    assert all(0 < later - earlier <= 8 for earlier, later in itertools.pairwise(evaluations))
    assert all(0 < reward <= 1 for _, reward in curve)
    assert any(note.startswith(f"learned: {len(curve)} PPO updates") for note in result.notes)
    loaded = load_checkpoint(out)
    assert loaded.header.trained_on == [
        {
            "graph": g.name,
            "target": target.name,
            "ops": 20,
            "chips": 3,
            "evaluations": 20,
            "updates": len(curve),
            "seed": 3,
        }
    ]
    assert loaded.trainer is not None and loaded.header.ppo == FAST


# -- the CLI ---------------------------------------------------------------------------------------------
def test_cli_finetune_then_search_from_the_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mlp.pt"
    args = ["finetune", str(MLP), "--budget", "16", "--workers", "1", "--no-progress"]
    assert main([*args, "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "learned on mlp / tpu-ring8" in text and f"wrote {out}" in text
    header = load_checkpoint(out).header
    # By default fine-tuning starts from the shipped pre-trained policy and appends to its record.
    assert "corpus" in header.trained_on[0] and header.trained_on[-1]["graph"] == "mlp"
    assert header.created_by.startswith("chiplex finetune")
    scratch = tmp_path / "scratch.pt"
    assert main([*args, "--from-scratch", "-o", str(scratch)]) == 0
    assert [run["graph"] for run in load_checkpoint(scratch).header.trained_on] == ["mlp"]
    capsys.readouterr()
    # Never overwritten without --force.
    before = out.read_bytes()
    assert main([*args, "-o", str(out)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main([*args, "-o", str(out), "--force", "--checkpoint", str(out)]) == 0
    assert len(load_checkpoint(out).header.trained_on) == 3  # fine-tuning appends
    capsys.readouterr()
    search_args = ["search", str(MLP), "--strategy", "learned", "--budget", "8", "--workers", "1"]
    assert main([*search_args, "--checkpoint", str(out), "--no-progress"]) == 0
    assert "learned on mlp" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["search", "finetune", "compile"])
def test_cli_bad_checkpoint_is_one_line_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    # compile: the error shows that --checkpoint reaches the default pipeline's place pass.
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    extra = {
        "search": ["--strategy", "learned", "--budget", "4"],
        "finetune": ["-o", str(tmp_path / "o.pt"), "--budget", "4"],
        "compile": ["--strategy", "learned", "-o", str(tmp_path / "out")],
    }[command]
    assert main([command, str(MLP), *extra, "--checkpoint", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"chiplex: error: {bad}: cannot read checkpoint")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o.pt").exists()


def test_cli_checkpoint_needs_the_learned_strategy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["search", str(MLP), "--checkpoint", str(tmp_path / "x.pt")]) == 1
    assert "--checkpoint needs --strategy learned" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["compile", str(MLP), "--checkpoint", str(tmp_path / "x.pt"), "-o", str(out)]) == 1
    assert "--checkpoint needs --strategy learned, not dp" in capsys.readouterr().err
    learned = ["compile", str(MLP), "--strategy", "learned", "-o", str(out)]
    assert main([*learned, "--checkpoint", str(tmp_path / "x.pt")]) == 1
    assert f"{tmp_path / 'x.pt'}: checkpoint not found" in capsys.readouterr().err
    assert main([*learned, "--checkpoint", "x.pt", "--pipeline", "annotate-costs"]) == 1
    assert "with --pipeline, write place{strategy=learned" in capsys.readouterr().err
    assert not out.exists()


def test_compile_places_with_the_given_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "policy.pt"
    save_checkpoint(path, new_policy(seed=1), CheckpointHeader(PolicyConfig(), FAST))
    assert 'place{strategy=learned checkpoint="' in default_pipeline(
        "tpu-ring8", "learned", checkpoint=str(path)
    )
    result = compile_module(load_module(MLP), "tpu-ring8", strategy="learned", checkpoint=str(path))
    assert (result.placement >= 0).all()


def test_cli_checkpoint_of_other_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "small.pt"
    small = PolicyConfig(hidden=16, heads=2)
    policy = new_policy(small)
    header = CheckpointHeader(policy=PolicyConfig(hidden=32, heads=2), ppo=PPOConfig())
    save_checkpoint(path, policy, header)
    assert main(["search", str(MLP), "--strategy", "learned", "--checkpoint", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}: checkpoint weight" in err and "needs" in err


# -- the place pass ---------------------------------------------------------------------------------------
def test_place_pass_learned_with_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "policy.pt"
    save_checkpoint(path, new_policy(seed=1), CheckpointHeader(PolicyConfig(), FAST))
    pipeline = (
        "annotate-costs{target=tpu-ring8},"
        f'place{{strategy=learned checkpoint="{path}" budget=8 seed=2}},legalize-placement'
    )
    first = compile_module(load_module(MLP), "tpu-ring8", pipeline=pipeline)
    again = compile_module(load_module(MLP), "tpu-ring8", pipeline=pipeline)
    assert np.array_equal(first.placement, again.placement)


def test_place_pass_rejects_learned_options_for_other_strategies() -> None:
    from chiplex.errors import ChiplexError

    pipeline = "annotate-costs{target=tpu-ring8},place{strategy=dp budget=8}"
    with pytest.raises(ChiplexError, match="need strategy=learned"):
        compile_module(load_module(MLP), "tpu-ring8", pipeline=pipeline)


def test_evaluations_carry_the_busiest_resources() -> None:
    """`Evaluation.busy_s` (the learned search's tie-break): every chip's compute and every used link's
    serialisation per micro-batch, largest first; the saturated one sets the period."""
    from chiplex.runtime_sim.evaluate import Evaluator

    g = graph(4, 30)
    target = target_for(g, 4, slack=1.1)
    evaluator = Evaluator(g, target)
    placement = search(g, target, "dp", Budget(evaluations=1)).placement
    result = evaluator(placement)
    report = evaluator.report(placement)
    assert list(result.busy_s) == sorted(result.busy_s, reverse=True)
    assert len(result.busy_s) >= target.num_chips
    assert result.busy_s[0] == pytest.approx(
        max(max(report.chip_busy_s), max(report.link_utilisation) * report.period_s)
    )
    if report.saturated:
        assert result.busy_s[0] == pytest.approx(report.period_s, rel=0.05)
