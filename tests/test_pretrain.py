"""Pre-training: resumable to the bit, writes its files atomically, refuses a mismatched directory."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from chiplex.cli import main
from chiplex.errors import ChiplexError
from chiplex.learned.checkpoint import load_checkpoint
from chiplex.learned.features import graph_features
from chiplex.learned.policy import PolicyConfig, new_policy
from chiplex.learned.ppo import PPOConfig, Problem
from chiplex.learned.pretrain import (
    CHECKPOINT,
    CURVE,
    HISTORY,
    PretrainConfig,
    Pretrainer,
    PretrainPPO,
    anchor_kind,
    balance,
    perturb_placement,
    relief,
)
from chiplex.runtime_sim.evaluate import Evaluation, SerialExecutor

SMALL = PretrainConfig(
    updates=4,
    checkpoint_every=2,
    graphs=2,
    targets_per_graph=1,
    zoo=False,
    samples_per_update=4,
    hidden=16,
)


def run(out: Path, config: PretrainConfig = SMALL, stop_after: int | None = None) -> Pretrainer:
    trainer = Pretrainer(config, out, SerialExecutor(), log=lambda line: None)
    trainer.train(stop_after=stop_after)
    return trainer


def weights(out: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(out / CHECKPOINT).policy.state_dict()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("whole")
    run(out)
    return out


def test_writes_checkpoint_history_and_curve(uninterrupted: Path) -> None:
    history = json.loads((uninterrupted / HISTORY).read_text())
    assert [h["update"] for h in history] == [1, 2, 3, 4]
    assert all(h["samples"] == 4 for h in history)
    assert (uninterrupted / CURVE).stat().st_size > 1000
    header = load_checkpoint(uninterrupted / CHECKPOINT).header
    assert header.trained_on[0]["updates"] == 4
    assert header.trained_on[0]["evaluations"] == 16


def test_resume_after_a_kill_repeats_the_uninterrupted_run(
    uninterrupted: Path, tmp_path: Path
) -> None:
    out = tmp_path / "killed"
    run(out, stop_after=2)  # checkpoint at update 2
    shutil.copy(out / CHECKPOINT, tmp_path / "at2.pt")
    run(out, stop_after=1)  # update 3 is done and saved ...
    # ... then the process is killed before the next checkpoint: the checkpoint on disk is update
    # 2's while the history already records update 3 (what a kill between the two writes leaves).
    shutil.copy(tmp_path / "at2.pt", out / CHECKPOINT)
    resumed = run(out)
    assert [h["update"] for h in resumed.history] == [1, 2, 3, 4]
    expected, got = weights(uninterrupted), weights(out)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    assert json.loads((out / HISTORY).read_text()) == json.loads(
        (uninterrupted / HISTORY).read_text()
    )


def test_refuses_a_directory_with_other_settings(uninterrupted: Path, tmp_path: Path) -> None:
    out = tmp_path / "other"
    shutil.copytree(uninterrupted, out)
    other = PretrainConfig(**{**SMALL.__dict__, "graphs": 3})
    with pytest.raises(ChiplexError, match="other settings.*graphs 2 -> 3"):
        Pretrainer(other, out, SerialExecutor(), log=lambda line: None)


def test_bad_settings_are_errors(uninterrupted: Path, tmp_path: Path) -> None:
    with pytest.raises(ChiplexError, match="updates must be an integer >= 1"):
        PretrainConfig(updates=0)
    out = tmp_path / "edited"
    shutil.copytree(uninterrupted, out)
    (out / "pretrain.json").write_text('{"updates": "x"}')
    with pytest.raises(ChiplexError, match=r"pretrain.json: not a pre-training configuration"):
        Pretrainer(SMALL, out, SerialExecutor(), log=lambda line: None)


def test_cli_trains_resumes_and_forces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    args = [
        "train",
        "-o",
        str(out),
        "--updates",
        "2",
        "--checkpoint-every",
        "1",
        "--graphs",
        "1",
        "--targets-per-graph",
        "1",
        "--no-zoo",
        "--samples",
        "4",
        "--hidden",
        "16",
        "--executor",
        "serial",
        "--no-progress",
    ]
    assert main(args) == 0
    assert json.loads((out / HISTORY).read_text())[-1]["update"] == 2
    assert main([*args[:4], "3", *args[5:]]) == 0  # more updates: resumes at 2
    assert "resuming" in capsys.readouterr().err
    assert json.loads((out / HISTORY).read_text())[-1]["update"] == 3
    changed = [*args]
    changed[changed.index("--graphs") + 1] = "2"
    assert main(changed) == 1
    assert "other settings" in capsys.readouterr().err
    assert main([*changed, "--force"]) == 0
    assert json.loads((out / HISTORY).read_text())[-1]["update"] == 2


def _problem(anchor_throughput: float) -> Problem:
    """A problem whose anchor ran at `anchor_throughput` (0: no legal anchor) and bound is 100."""
    features = graph_features(*_tiny_case())
    problem = Problem(features=features, upper_bound=100.0, evaluate=lambda c: [], anchors=())
    problem.state.throughput = anchor_throughput
    return problem


def _tiny_case():  # type: ignore[no-untyped-def]
    from chiplex.learned.corpus import training_corpus

    first = training_corpus(graphs=1, targets_per_graph=1, zoo=False)[0]
    return first.graph, first.target


def _evaluations(*throughputs: float) -> list[Evaluation]:
    return [
        Evaluation(np.zeros(1, dtype=np.int64) if t > 0 else None, t, False, "" if t > 0 else "no")
        for t in throughputs
    ]


def test_improvement_reward_scores_only_moves_that_beat_the_anchor() -> None:
    policy = new_policy(PolicyConfig(hidden=16), seed=0)
    improvement = PretrainPPO(policy, PPOConfig(), 0, reward="improvement")
    mean = PretrainPPO(policy, PPOConfig(), 0, reward="mean")
    anchored = _problem(50.0)
    samples = _evaluations(25.0, 50.0, 60.0, 0.0)  # worse, tie, better, no legal placement
    assert mean.rewards(anchored, samples).tolist() == pytest.approx([0.5, 1.0, 1.2, 0.0])
    assert improvement.rewards(anchored, samples).tolist() == pytest.approx([1.0, 1.0, 1.2, 1.0])
    # No legal anchor: rewards are over the upper bound, and every legal sample is an improvement.
    unanchored = _problem(0.0)
    assert improvement.rewards(unanchored, samples).tolist() == pytest.approx([0.25, 0.5, 0.6, 0.0])
    with pytest.raises(ChiplexError, match="reward must be one of"):
        PretrainConfig(reward="best")


def test_exploration_std_stays_unless_trained(uninterrupted: Path, tmp_path: Path) -> None:
    initial = new_policy(PolicyConfig(hidden=SMALL.hidden), seed=SMALL.seed).state_dict()
    frozen = weights(uninterrupted)
    std_heads = [name for name in frozen if "log_std" in name]
    assert std_heads
    for name in std_heads:
        assert torch.equal(frozen[name], initial[name]), name
    assert any(not torch.equal(frozen[n], initial[n]) for n in frozen if n not in std_heads)
    trained = tmp_path / "std"
    run(trained, PretrainConfig(**{**SMALL.__dict__, "train_std": True, "reward": "mean"}))
    assert any(not torch.equal(weights(trained)[n], initial[n]) for n in std_heads)


def test_a_run_from_before_the_reward_setting_resumes_with_its_own(
    uninterrupted: Path, tmp_path: Path
) -> None:
    out = tmp_path / "old"
    shutil.copytree(uninterrupted, out)
    saved = json.loads((out / "pretrain.json").read_text())
    del saved["reward"], saved["train_std"], saved["anchoring"]
    (out / "pretrain.json").write_text(json.dumps(saved))
    with pytest.raises(
        ChiplexError,
        match="reward mean -> relief; train_std True -> False; anchoring heuristic -> mixed",
    ):
        Pretrainer(SMALL, out, SerialExecutor(), log=lambda line: None)


def test_relief_credits_relieving_one_of_several_tied_bottlenecks() -> None:
    anchor = np.array([4.0, 4.0, 4.0, 2.0, 1.0])  # three resources tied at the top
    assert relief(anchor, np.array([4.0, 4.0, 3.5, 2.5, 1.0])) == pytest.approx(0.5 / 12)
    assert relief(anchor, np.array([4.0, 4.0, 4.0, 2.5, 0.5])) == 0.0  # the top three untouched
    assert relief(anchor, np.array([4.4, 4.0, 4.0, 2.0, 0.6])) == pytest.approx(-0.4 / 12)
    assert relief(np.array([2.0, 1.0]), np.array([1.5, 1.5])) == pytest.approx(0.25)  # k = 1
    assert relief(np.zeros(0), np.array([1.0])) == 0.0


def test_relief_reward_gives_ties_that_relieve_the_bottleneck_credit() -> None:
    policy = new_policy(PolicyConfig(hidden=16), seed=0)
    ppo = PretrainPPO(policy, PPOConfig(), 0, reward="relief")
    anchored = _problem(50.0)
    anchored.state.loads = np.array([4.0, 4.0, 2.0])
    loads = [(5.0, 3.0), (4.0, 3.0), (4.0, 4.0, 3.0), (3.0, 3.0), ()]
    samples = [
        dataclasses.replace(r, busy_s=b)
        for r, b in zip(_evaluations(25.0, 50.0, 50.0, 60.0, 0.0), loads, strict=True)
    ]
    rewards = ppo.rewards(anchored, samples).tolist()
    # worse (no credit however it loads), a tie relieving one of two tied chips, a tie relieving
    # none, better (its gain plus its relief), no legal placement
    assert rewards == pytest.approx([1.0, 1.0 + 0.1 * 1 / 8, 1.0, 1.2 + 0.1 * 2 / 8, 1.0])


def test_balance_credits_every_boundary_moved_towards_its_lighter_side() -> None:
    anchor = np.array([4.0, 3.0, 1.0])  # sum of squares 26
    assert balance(anchor, np.array([4.0, 2.0, 2.0])) == pytest.approx(2 / 26)  # 3|1 -> 2|2
    assert balance(anchor, np.array([4.0, 4.0])) == pytest.approx(-6 / 26)  # 1 -> 3: heavier
    assert balance(anchor, np.array([4.0, 3.0, 1.0])) == 0.0
    assert balance(np.zeros(0), np.array([1.0])) == 0.0


def test_balance_reward_scores_the_direction_of_moves_that_tie_or_lose() -> None:
    policy = new_policy(PolicyConfig(hidden=16), seed=0)
    ppo = PretrainPPO(policy, PPOConfig(), 0, reward="balance")
    relief_only = PretrainPPO(policy, PPOConfig(), 0, reward="relief")
    anchored = _problem(50.0)
    anchored.state.loads = np.array([4.0, 3.0, 1.0])
    loads = [(5.0, 2.0, 1.0), (4.0, 2.0, 2.0), (4.0, 4.0), (3.5, 3.5, 1.0), ()]
    samples = [
        dataclasses.replace(r, busy_s=b)
        for r, b in zip(_evaluations(40.0, 50.0, 50.0, 57.0, 0.0), loads, strict=True)
    ]
    # loses (and loads the heavier side), ties evening out a boundary away from the bottleneck,
    # ties loading the lighter side's neighbour, better (gain, relief and balance), no legal placement
    assert relief_only.rewards(anchored, samples).tolist() == pytest.approx(
        [1.0, 1.0, 1.0, 1.14 + 0.1 * 0.5 / 4, 1.0]
    )
    assert ppo.rewards(anchored, samples).tolist() == pytest.approx(
        [1.0 - 4 / 26, 1.0 + 2 / 26, 1.0 - 6 / 26, 1.14 + 0.1 * 0.5 / 4 + 0.5 / 26, 1.0]
    )


def test_balance_reward_trains_and_resumes_to_the_bit(tmp_path: Path) -> None:
    config = PretrainConfig(**{**SMALL.__dict__, "anchoring": "balanced", "reward": "balance"})
    whole = run(tmp_path / "whole", config)
    assert whole.ppo.updates == SMALL.updates
    run(tmp_path / "resumed", config, stop_after=2)
    run(tmp_path / "resumed", config)
    resumed, uninterrupted = weights(tmp_path / "resumed"), weights(tmp_path / "whole")
    assert all(torch.equal(resumed[n], uninterrupted[n]) for n in uninterrupted)
    initial = new_policy(PolicyConfig(hidden=SMALL.hidden), seed=SMALL.seed).state_dict()
    assert any(not torch.equal(uninterrupted[n], initial[n]) for n in initial)


def test_perturbed_anchoring_moves_a_boundary_of_dp_deterministically(tmp_path: Path) -> None:
    graph, target = _tiny_case()
    features = graph_features(graph, target)
    from chiplex.passes.learned import anchor_candidates

    dp = anchor_candidates(graph, target)[0]
    first = perturb_placement(features, dp, np.random.default_rng(3))
    again = perturb_placement(features, dp, np.random.default_rng(3))
    assert np.array_equal(first, again)
    src, dst = features.edge_index.numpy()
    moved = 0
    for k in range(8):
        perturbed = perturb_placement(features, dp, np.random.default_rng(k))
        assert np.all(perturbed[src] <= perturbed[dst])  # still a contiguous cut of a topo order
        moved += not np.array_equal(perturbed, dp)
    assert moved >= 6
    config = PretrainConfig(**{**SMALL.__dict__, "anchoring": "perturbed", "reward": "relief"})
    trainer = run(tmp_path / "perturbed", config)
    assert trainer.ppo.updates == SMALL.updates
    assert PretrainConfig().anchoring == "mixed" and PretrainConfig().reward == "relief"
    with pytest.raises(ChiplexError, match="anchoring must be one of"):
        PretrainConfig(anchoring="random")


def test_balanced_and_all_anchorings_anchor_each_problem_on_its_kind(tmp_path: Path) -> None:
    """'balanced' anchors every problem on its work-balanced split (no heuristic is run); 'all' gives
    the corpus problems heuristic, perturbed and balanced anchors in turn, the same on every run."""
    from chiplex.learned.anchor import balanced_split
    from chiplex.passes.learned import anchor_candidates

    assert [anchor_kind("all", i) for i in range(6)] == ["heuristic", "perturbed", "balanced"] * 2
    assert [anchor_kind("mixed", i) for i in range(4)] == ["heuristic", "perturbed"] * 2
    assert {anchor_kind("balanced", i) for i in range(5)} == {"balanced"}
    config = PretrainConfig(**{**SMALL.__dict__, "graphs": 3, "anchoring": "all"})
    calls: list[str] = []

    def heuristics(graph, target):  # type: ignore[no-untyped-def]
        calls.append(graph.name)
        return anchor_candidates(graph, target)

    trainer = Pretrainer(
        config, tmp_path / "all", SerialExecutor(), log=lambda line: None, anchors_for=heuristics
    )
    for index, problem in enumerate(trainer.problems[:3]):
        assert callable(problem.anchors)
        anchors = [np.asarray(a) for a in problem.anchors()]
        features = problem.features
        heuristic = anchor_candidates(trainer.corpus[index].graph, trainer.corpus[index].target)
        if index == 0:
            assert all(np.array_equal(a, h) for a, h in zip(anchors, heuristic, strict=True))
        elif index == 1:
            assert len(anchors) == 1  # dp's placement, knocked off balance
        else:
            assert len(anchors) == 1
            assert np.array_equal(anchors[0], balanced_split(features.work, features.num_chips))
    assert len(calls) == 2  # the balanced problem never ran dp or greedy
    balanced = PretrainConfig(**{**SMALL.__dict__, "anchoring": "balanced"})
    trainer = run(tmp_path / "balanced", balanced)
    for index in {int(i) for i in trainer.order[: balanced.updates]}:
        # Anchored on its split, judged (legal or repaired) and simulated; with no heuristic given
        # (anchors_for=None) a 'heuristic' problem would have no anchor throughput to compare with.
        assert trainer.problems[index].state.throughput > 0
    with pytest.raises(ChiplexError, match="anchoring must be one of.*balanced, all"):
        PretrainConfig(anchoring="weak")


def test_all_anchoring_resumes_to_the_bit(tmp_path: Path) -> None:
    """Resume after a kill with the three kinds of anchor in the corpus: the same weights as a run
    that was never interrupted (each problem's kind and perturbation depend on its index and the
    seed, not on what ran before)."""
    from chiplex.passes.learned import anchor_candidates

    config = PretrainConfig(**{**SMALL.__dict__, "graphs": 3, "anchoring": "all"})

    def trained(out: Path, stop_after: int | None = None) -> Pretrainer:
        trainer = Pretrainer(
            config, out, SerialExecutor(), log=lambda line: None, anchors_for=anchor_candidates
        )
        trainer.train(stop_after=stop_after)
        return trainer

    whole = trained(tmp_path / "whole")
    assert {anchor_kind("all", int(i)) for i in whole.order[: config.updates]} >= {"balanced"}
    trained(tmp_path / "killed", stop_after=2)
    resumed = trained(tmp_path / "killed")
    assert [h["update"] for h in resumed.history] == [1, 2, 3, 4]
    expected, got = weights(tmp_path / "whole"), weights(tmp_path / "killed")
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
