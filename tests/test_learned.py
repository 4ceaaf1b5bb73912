"""The learned placer's pieces: features, policy (shapes, masking, equivariance, chip counts), PPO
(learns on a bandit-like problem), checkpoints (round trip and every documented error)."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from chiplex.errors import ChiplexError
from chiplex.ir.graph import Graph, make_graph
from chiplex.learned import (
    FEATURE_VERSION,
    PPO,
    CheckpointHeader,
    PlacementPolicy,
    PolicyConfig,
    PPOConfig,
    Problem,
    graph_features,
    load_checkpoint,
    new_policy,
    placements_from_actions,
    save_checkpoint,
    train,
)
from chiplex.learned.anchor import balanced_split, make_anchor
from chiplex.learned.features import (
    EDGE_FEATURES,
    GLOBAL_FEATURES,
    NODE_FEATURES,
    OP_KINDS,
    node_depths,
)
from chiplex.learned.policy import GraphEncoder, SegmentAttention
from chiplex.learned.ppo import STEP_SCALES, explored_log_prob
from chiplex.runtime_sim.evaluate import Evaluation
from chiplex.targets.legality import check_placement
from chiplex.testing import nn_graph, target_for, transformer_graph


@pytest.fixture(autouse=True)
def one_torch_thread():  # type: ignore[no-untyped-def]
    """Like the learned strategy: tiny tensors run fastest on one thread (and other tests run beside)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


SMALL = PolicyConfig(hidden=16, gnn_layers=3, attention_layers=1, heads=2, segment=8)


def graph(seed: int = 0, num_ops: int = 30) -> Graph:
    rng = np.random.default_rng(seed)
    return nn_graph(lambda lo, hi: int(rng.integers(lo, hi + 1)), num_ops, name=f"g{seed}")


# -- features ------------------------------------------------------------------------------------------
def test_feature_shapes_and_ranges() -> None:
    g = graph(1, 40)
    f = graph_features(g, target_for(g, 4))
    assert f.node.shape == (40, NODE_FEATURES) and f.node.dtype == torch.float32
    assert f.edge_index.shape == (2, g.num_edges) and f.edge_index.dtype == torch.int64
    assert f.edge.shape == (g.num_edges, EDGE_FEATURES)
    assert f.problem.shape == (GLOBAL_FEATURES,)
    assert torch.isfinite(f.node).all() and torch.isfinite(f.edge).all()
    assert torch.equal(f.node[:, : len(OP_KINDS) + 1].sum(1), torch.ones(40))
    share = f.node[:, -3].numpy()  # cumulative work share
    assert (np.diff(share) > 0).all() and share[0] > 0 and share[-1] < 1


def test_unknown_kind_uses_the_other_column_and_depth_is_longest_path() -> None:
    g = make_graph(
        kinds=["nn.matmul", "my.op", "nn.add", "nn.relu"],
        edges=[(0, 1), (1, 2), (0, 2), (2, 3)],
        flops=[1e6, 1e3, 1e3, 1e3],
        output_bytes=[100, 100, 100, 100],
        weight_bytes=[1000, 0, 0, 0],
    )
    f = graph_features(g, target_for(g, 2))
    assert f.node[1, len(OP_KINDS)] == 1.0
    assert node_depths(g).tolist() == [0, 1, 2, 3]


# -- policy ---------------------------------------------------------------------------------------------
def test_policy_output_shapes() -> None:
    g = graph(2, 37)
    f = graph_features(g, target_for(g, 4))
    out = new_policy(SMALL, seed=0)(f)
    assert out.mean.shape == (37,)
    assert out.value.shape == () and out.log_std.shape == (37,)
    assert out.distribution().sample().shape == (37,)


def test_segment_attention_sees_only_its_segment_and_the_previous_one() -> None:
    torch.manual_seed(0)
    block = SegmentAttention(SMALL).eval()  # segment 8
    h = torch.randn(21, SMALL.hidden)  # segments [0, 8), [8, 16), [16, 21) (padded)
    base = block(h)
    assert base.shape == (21, SMALL.hidden)
    later = h.clone()
    later[20] += torch.randn(SMALL.hidden)  # the last segment: no earlier output may change
    assert torch.allclose(block(later)[:16], base[:16])
    first = h.clone()
    first[0] += torch.randn(
        SMALL.hidden
    )  # segment 0: segment 1 reads it as memory, segment 2 must not
    out = block(first)
    assert not torch.allclose(out[8:16], base[8:16])
    assert torch.allclose(out[16:], base[16:])


def test_padding_does_not_leak_into_the_last_segment() -> None:
    torch.manual_seed(0)
    block = SegmentAttention(SMALL).eval()
    h = torch.randn(13, SMALL.hidden)
    # The same ops with a longer tail give the same outputs for segment 0 and the memory of segment 1.
    longer = torch.cat([h, torch.randn(3, SMALL.hidden)])
    assert torch.allclose(block(h)[:8], block(longer)[:8])


def test_graph_encoder_is_equivariant_to_renumbering() -> None:
    g = graph(3, 25)
    f = graph_features(g, target_for(g, 4))
    torch.manual_seed(0)
    encoder = GraphEncoder(SMALL).eval()
    perm = torch.from_numpy(np.random.default_rng(0).permutation(25))
    inverse = torch.argsort(perm)  # old index -> new index
    anchor = make_anchor(f.work, balanced_split(f.work, 4)).features
    nodes = torch.cat([f.node, anchor], dim=1)
    node = nodes[perm]  # new node j is old node perm[j]
    edge_index = inverse[f.edge_index]
    out = encoder(nodes, f.problem, f.edge_index, f.edge)
    permuted = encoder(node, f.problem, edge_index, f.edge)
    assert torch.allclose(permuted, out[perm], atol=1e-5)
    # ... and it really reads the edges: dropping them changes the output.
    alone = encoder(nodes, f.problem, f.edge_index[:, :0], f.edge[:0])
    assert not torch.allclose(alone, out, atol=1e-3)


@pytest.mark.parametrize("num_chips", [4, 8, 16, 36])
def test_same_weights_place_on_any_chip_count(num_chips: int) -> None:
    g = transformer_graph(120, seed=1)
    target = target_for(g, num_chips, slack=2.0)
    policy = new_policy(SMALL, seed=0)
    ppo = PPO(policy, seed=0)
    f = graph_features(g, target)
    actions, logprobs, _, _ = ppo.sample(f, 8)
    placements = placements_from_actions(f.work, actions.numpy(), num_chips)
    assert placements.shape == (8, 120) and torch.isfinite(logprobs).all()
    for p in placements:
        assert p.min() == 0 and p.max() <= num_chips - 1
        assert (np.diff(p) >= 0).all() and set(np.diff(p)) <= {0, 1}  # contiguous, no gaps
        assert not [
            v
            for v in check_placement(g, target, p)
            if v.rule in ("chip-range", "acyclic-dataflow", "no-skipping-chips")
        ]
    # The mean action is the work-balanced split: every chip is used when ops are many.
    balanced = placements_from_actions(f.work, np.zeros((1, 120)), num_chips)[0]
    assert balanced.max() == num_chips - 1


def test_actions_move_stage_boundaries() -> None:
    work = np.ones(10)
    assert placements_from_actions(work, np.zeros(10), 2)[0].tolist() == [0] * 5 + [1] * 5
    heavy_front = np.array([np.log(4.0)] * 2 + [0.0] * 8)  # ops 0, 1 weigh 4x: half the work
    assert placements_from_actions(work, heavy_front, 2)[0].tolist() == [0] * 2 + [1] * 8
    # One op longer than a share: the stage after it would be empty, chips are closed up.
    assert placements_from_actions(np.array([1.0, 10.0, 1.0]), np.zeros(3), 3)[0].tolist() == [
        0,
        1,
        2,
    ]
    assert placements_from_actions(np.array([10.0, 1.0, 1.0]), np.zeros(3), 4)[0].tolist() == [
        0,
        1,
        1,
    ]


# -- PPO --------------------------------------------------------------------------------------------------
def bandit_problem(g: Graph, num_chips: int, best_cut: int) -> tuple[Problem, list[float]]:
    """A synthetic judge: reward 1 when chip 0 holds exactly `best_cut` ops, falling off linearly.
    The balanced split (the untrained policy's mean) puts half the ops there, so the policy must learn
    to move the boundary."""
    f = graph_features(g, target_for(g, num_chips))
    rewards: list[float] = []

    def evaluate(placements: list[np.ndarray]) -> list[Evaluation]:
        out = []
        for p in placements:
            reward = 1.0 - abs(int((p == 0).sum()) - best_cut) / g.num_nodes
            rewards.append(reward)
            out.append(Evaluation(p, reward * 100.0, repaired=False))
        return out

    return Problem(f, upper_bound=100.0, evaluate=evaluate), rewards


def test_ppo_learns_to_move_the_boundary() -> None:
    g = make_graph(
        kinds=["nn.matmul"] * 24,
        edges=[(i, i + 1) for i in range(23)],
        flops=[1e6] * 24,
        output_bytes=[1000] * 24,
        weight_bytes=[100] * 24,
    )
    # Without re-anchoring: only the policy's update can move the samples.
    config = PPOConfig(
        samples_per_update=16, follow_best=False, learning_rate=3e-3, update_epochs=4
    )
    gains = []
    for seed in (0, 1):  # two seeds: one run's gain depends on its draws
        problem, rewards = bandit_problem(g, 2, best_cut=18)
        ppo = PPO(new_policy(SMALL, seed=seed), config, seed=seed)
        history = train(ppo, [problem], lambda ppo=ppo: ppo.updates >= 25)
        assert len(history) == 25 and len(rewards) == 25 * 16
        first, last = np.mean(rewards[:32]), np.mean(rewards[-32:])
        # Untrained: the boundary sits near 12 (reward ~0.75); a working update moves it toward 18.
        assert first < 0.8
        assert last > first + 0.04, (seed, first, last)
        assert history[-1].mean_reward == pytest.approx(np.mean(rewards[-16:]), abs=1e-6)
        gains.append(last - first)
    assert np.mean(gains) > 0.08, gains


def test_failed_candidates_get_the_penalty() -> None:
    g = graph(4, 12)
    f = graph_features(g, target_for(g, 2))
    problem = Problem(
        f, 1.0, lambda ps: [Evaluation(None, 0.0, True, "no legal placement") for _ in ps]
    )
    ppo = PPO(new_policy(SMALL, seed=0), PPOConfig(samples_per_update=4), seed=0)
    stats = ppo.step(problem)
    assert stats is not None
    assert stats.failed == 4 and stats.mean_reward == pytest.approx(PPOConfig().failed_reward)


def test_training_is_reproducible_for_a_seed() -> None:
    g = make_graph(
        kinds=["nn.matmul"] * 16,
        edges=[(i, i + 1) for i in range(15)],
        flops=[1e6] * 16,
        output_bytes=[1000] * 16,
        weight_bytes=[100] * 16,
    )

    def run(seed: int) -> tuple[list[float], list[float]]:
        problem, rewards = bandit_problem(g, 4, best_cut=3)
        ppo = PPO(new_policy(SMALL, seed=seed), PPOConfig(samples_per_update=8), seed=seed)
        history = train(ppo, [problem], lambda: ppo.updates >= 3)
        return rewards, [h.policy_loss for h in history]

    assert run(0) == run(0)
    assert run(0) != run(1)


# -- checkpoints --------------------------------------------------------------------------------------------
def saved(tmp_path: Path, config: PolicyConfig = SMALL) -> tuple[Path, PlacementPolicy]:
    policy = new_policy(config, seed=3)
    path = tmp_path / "policy.pt"
    header = CheckpointHeader(
        policy=config,
        ppo=PPOConfig(learning_rate=1e-3),
        trained_on=[{"graph": "g", "target": "t", "evaluations": 10}],
        created_by="test",
    )
    save_checkpoint(path, policy, header)
    return path, policy


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    path, policy = saved(tmp_path)
    loaded = load_checkpoint(path)
    assert loaded.header.policy == SMALL
    assert loaded.header.ppo.learning_rate == 1e-3
    assert loaded.header.trained_on == [{"graph": "g", "target": "t", "evaluations": 10}]
    for name, tensor in policy.state_dict().items():
        assert torch.equal(loaded.policy.state_dict()[name], tensor)
    g = graph(5, 20)
    f = graph_features(g, target_for(g, 3))
    assert torch.equal(loaded.policy(f).mean, policy(f).mean)
    # The header is plain JSON, readable without building the policy.
    raw = torch.load(path, weights_only=True)
    assert json.loads(raw["header"])["feature_version"] == FEATURE_VERSION == 2


def test_checkpoint_resumes_the_trainer(tmp_path: Path) -> None:
    g = graph(6, 16)
    problem, _ = bandit_problem(g, 2, best_cut=4)
    ppo = PPO(new_policy(SMALL, seed=0), PPOConfig(samples_per_update=4), seed=0)
    ppo.step(problem)
    path = tmp_path / "resume.pt"
    save_checkpoint(path, ppo.policy, CheckpointHeader(SMALL, ppo.config), ppo.state_dict())
    # The problem's state (its anchor, the placements judged) is the problem's, not the trainer's.
    again_problem = dataclasses.replace(problem, state=copy.deepcopy(problem.state))
    expected = ppo.step(problem)
    loaded = load_checkpoint(path)
    assert loaded.trainer is not None
    resumed = PPO(loaded.policy, loaded.header.ppo, seed=99)
    resumed.load_state_dict(loaded.trainer)
    again = resumed.step(again_problem)
    assert expected is not None and again is not None
    assert again.mean_reward == expected.mean_reward and again.policy_loss == expected.policy_loss


def rewrite(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    raw = torch.load(path, weights_only=True)
    change(raw)
    torch.save(raw, path)


def header_change(key: str, value: object):  # type: ignore[no-untyped-def]
    def change(raw: dict) -> None:
        header = json.loads(raw["header"])
        header[key] = value
        raw["header"] = json.dumps(header)

    return change


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "checkpoint not found"),
        ("truncated", "cannot read checkpoint (truncated or not a torch file)"),
        ("garbage", "cannot read checkpoint"),
        ("feature_version", "feature version 99, this chiplex computes feature version 2"),
        ("sizes", "has shape"),
        ("not_ours", "not a chiplex policy checkpoint"),
        ("unknown_key", "unknown keys"),
    ],
)
def test_bad_checkpoints_give_one_line_errors(tmp_path: Path, damage: str, message: str) -> None:
    path, _ = saved(tmp_path)
    if damage == "missing":
        path = tmp_path / "nope.pt"
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint at all\n")
    elif damage == "feature_version":
        rewrite(path, header_change("feature_version", 99))
    elif damage == "sizes":
        # The header says hidden 16; weights of a hidden-8 policy do not fit it.
        other = new_policy(PolicyConfig(hidden=8, heads=2, segment=8), seed=0)
        rewrite(path, lambda raw: raw.__setitem__("state_dict", other.state_dict()))
    elif damage == "not_ours":
        torch.save({"weights": torch.zeros(3)}, path)
    elif damage == "unknown_key":
        rewrite(path, header_change("policy", {**SMALL.__dict__, "layers": 9}))
    with pytest.raises(ChiplexError) as info:
        load_checkpoint(path)
    text = str(info.value)
    assert message in text
    assert str(path) in text and "\n" not in text


def test_samples_explore_a_few_anchor_boundaries() -> None:
    g = graph(7, 60)
    f = graph_features(g, target_for(g, 6))
    placement = np.repeat(np.arange(6), 10)
    anchor = make_anchor(f.work, placement, hot_chip=3)
    ppo = PPO(new_policy(SMALL, seed=0), PPOConfig(stages_per_sample=2), seed=0)
    actions, logprobs, _, explored = ppo.sample(f, 64, greedy=True, anchor=anchor)
    out = ppo.policy(f, anchor.features)
    mean = out.mean.detach()
    assert not explored[0].any() and torch.equal(actions[0], mean)  # the mean action first
    windows = anchor.windows
    boundaries = [set(windows[explored[i].numpy() > 0].tolist()) for i in range(1, 64)]
    assert all(1 <= len(b) <= 2 and -1 not in b for b in boundaries)
    for i, chosen in enumerate(boundaries, start=1):  # whole windows, one step per sample
        assert np.array_equal(explored[i].numpy() > 0, np.isin(windows, list(chosen)))
        assert set(explored[i][explored[i] > 0].tolist()) <= set(STEP_SCALES)
        assert len(set(explored[i][explored[i] > 0].tolist())) == 1
    assert sum(bool(b & {2, 3}) for b in boundaries) > 63 / 2  # the hot stage's, half the draws
    assert {float(explored[i].max()) for i in range(1, 64)} == set(STEP_SCALES)
    # Unexplored ops keep the anchor (action 0); the log-probability counts the explored ops only,
    # each under the policy's std times the sample's step.
    assert torch.all(actions[1:][explored[1:] == 0] == 0)
    std = out.log_std.detach().exp()
    expected = torch.stack(
        [
            torch.distributions.Normal(mean, std * explored[i].clamp(min=1.0))
            .log_prob(actions[i])[explored[i] > 0]
            .sum()
            for i in range(64)
        ]
    )
    assert torch.allclose(logprobs, expected, atol=1e-4)
    assert torch.allclose(explored_log_prob(out, actions, explored).detach(), expected, atol=1e-4)
    # Every placement moves only the boundaries it explored: changed ops sit in their windows.
    for i, p in enumerate(anchor.placements(actions.numpy())[1:], start=1):
        moved = np.flatnonzero(p != placement)
        assert set(windows[moved].tolist()) <= boundaries[i - 1]


def follow_problem(anchor_busy: tuple[float, ...]) -> tuple[PPO, Problem]:
    g = graph(3, 12)
    f = graph_features(g, target_for(g, 3))
    problem = Problem(f, upper_bound=200.0, evaluate=lambda placements: [])
    ppo = PPO(new_policy(SMALL, seed=0), PPOConfig(), seed=0)
    ppo.reanchor(problem, Evaluation(np.repeat(np.arange(3), 4), 100.0, False, busy_s=anchor_busy))
    return ppo, problem


def test_follow_takes_a_faster_sample_or_a_lighter_tie_only() -> None:
    faster = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    tie = np.array([0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2])
    ppo, problem = follow_problem((5.0, 5.0, 4.0))
    # A tie whose busiest resources are heavier is not followed (no wandering on a plateau) ...
    ppo.follow(problem, [Evaluation(tie, 100.0, False, busy_s=(5.0, 5.0, 4.5))])
    assert problem.state.anchor is not None
    assert problem.state.anchor.placement.tolist() == np.repeat(np.arange(3), 4).tolist()
    # ... a tie that relieves one of two equally busy resources is, and among equally fast samples
    # the lightest wins ...
    lighter = Evaluation(tie, 100.0, False, busy_s=(5.0, 4.9, 4.0))
    ppo.follow(problem, [Evaluation(faster, 100.0, False, busy_s=(5.0, 5.0, 5.0)), lighter])
    assert problem.state.anchor.placement.tolist() == tie.tolist()
    assert problem.state.loads.tolist() == [5.0, 4.9, 4.0]
    # ... and a faster sample is followed however busy its resources are.
    ppo.follow(problem, [Evaluation(faster, 101.0, False, busy_s=(9.0, 9.0, 9.0))])
    assert problem.state.anchor.placement.tolist() == faster.tolist()
    assert problem.state.throughput == 101.0
    # A slower sample never is.
    ppo.follow(problem, [Evaluation(tie, 99.0, False, busy_s=(1.0,))])
    assert problem.state.anchor.placement.tolist() == faster.tolist()


def chain_problem(num_ops: int, num_chips: int, sent: list[list[bytes]], keep: int | None = None):  # type: ignore[no-untyped-def]
    """A chain whose judge records what it is sent (and answers only the first `keep` of a call),
    anchored on equal stages; reward: closeness of every stage to num_ops / num_chips ops."""
    g = make_graph(
        kinds=["nn.matmul"] * num_ops,
        edges=[(i, i + 1) for i in range(num_ops - 1)],
        flops=[1e6] * num_ops,
        output_bytes=[1000] * num_ops,
        weight_bytes=[100] * num_ops,
    )
    f = graph_features(g, target_for(g, num_chips))

    def evaluate(placements: list[np.ndarray]) -> list[Evaluation]:
        placements = placements[:keep] if keep is not None else placements
        sent.append([p.tobytes() for p in placements])
        sizes = [np.bincount(p, minlength=num_chips) for p in placements]
        return [
            Evaluation(p, 100.0 / (1 + np.ptp(s)), False)
            for p, s in zip(placements, sizes, strict=True)
        ]

    anchor = np.repeat(np.arange(num_chips), num_ops // num_chips)
    return Problem(f, upper_bound=100.0, evaluate=evaluate, anchors=[anchor])


@pytest.mark.parametrize("fresh", [True, False])
def test_fresh_samples_judge_each_placement_once(fresh: bool) -> None:
    sent: list[list[bytes]] = []
    problem = chain_problem(60, 6, sent)
    config = PPOConfig(samples_per_update=16, follow_best=False)
    ppo = PPO(new_policy(SMALL, seed=0), config, seed=0, fresh_samples=fresh)
    history = train(ppo, [problem], lambda: ppo.updates >= 4)
    judged = [key for call in sent for key in call]
    assert [s.samples for s in history] == [1 + len(sent[1])] + [len(c) for c in sent[2:]]
    if fresh:
        # Every placement is judged once (the anchor's included), each update up to a batch of new
        # ones (fewer when its rounds of draws found fewer).
        assert len(judged) == len(set(judged)) > 1 + 3 * 16
        assert len(sent[1]) == 16 and all(len(call) <= 16 for call in sent[1:])
    else:  # without it, the samples near the anchor repeat placements and pay for them
        assert len(judged) > len(set(judged))
        assert all(len(call) == 16 for call in sent[1:])


def test_fresh_samples_reuse_known_results_in_the_update() -> None:
    sent: list[list[bytes]] = []
    problem = chain_problem(60, 6, sent)
    ppo = PPO(
        new_policy(SMALL, seed=0),
        PPOConfig(samples_per_update=16, follow_best=False),
        seed=0,
        fresh_samples=True,
    )
    assert ppo.step(problem) is not None
    anchor = problem.state.anchor
    assert anchor is not None
    rollout = ppo.start(problem)
    assert rollout is not None and rollout.anchor is anchor and len(rollout.send) == 16
    batch = ppo.collect(rollout)
    assert batch is not None
    # The batch holds every sample drawn up to the 16th new placement, repeats with their known
    # results (the mean action first: the anchor, judged as an anchor candidate).
    results = batch.results
    assert batch.judged == 16 and not batch.truncated and len(results) == len(batch.actions) >= 16
    placements = anchor.placements(batch.actions.numpy())
    assert np.array_equal(placements[0], anchor.placement)
    for p, r in zip(placements, results, strict=True):
        assert r.placement is not None and np.array_equal(r.placement, p)


@pytest.mark.parametrize("overlap", [False, True])
def test_overlap_draws_the_next_batch_before_the_update(overlap: bool) -> None:
    """With `overlap` the next batch goes to the judge before the update on the batch just judged
    (its samples come from weights one update old, the anchor is current); without it, after."""
    sent: list[list[bytes]] = []
    problem = chain_problem(60, 6, sent)
    events: list[str] = []

    def start_judging(placements: list[np.ndarray]):  # type: ignore[no-untyped-def]
        events.append(f"submit after {ppo.updates} updates")
        return lambda: problem.evaluate(placements)

    problem = dataclasses.replace(problem, start_judging=start_judging)
    ppo = PPO(new_policy(SMALL, seed=0), PPOConfig(samples_per_update=16), seed=0)
    history = train(
        ppo,
        [problem],
        lambda: len(sent) > 4,
        lambda stats: events.append("update"),
        overlap=overlap,
    )
    stale = 1 if overlap else 0
    submits = [e for e in events if e.startswith("submit")]
    assert submits == [f"submit after {max(k - stale, 0)} updates" for k in range(len(submits))]
    assert len(history) == len(submits) == 4
    assert all(s.samples > 0 for s in history)


@pytest.mark.parametrize("learn_last_batch", [True, False])
def test_a_truncated_last_batch_updates_only_when_the_policy_is_kept(
    learn_last_batch: bool,
) -> None:
    sent: list[list[bytes]] = []
    problem = chain_problem(60, 6, sent, keep=5)
    ppo = PPO(
        new_policy(SMALL, seed=0),
        PPOConfig(samples_per_update=16),
        seed=0,
        learn_last_batch=learn_last_batch,
        fresh_samples=True,
    )
    before = [t.clone() for t in ppo.policy.parameters()]
    stats = ppo.step(problem)
    assert stats is not None and len(sent[-1]) == 5
    changed = any(
        not torch.equal(a, b) for a, b in zip(before, ppo.policy.parameters(), strict=True)
    )
    assert changed == learn_last_batch


def test_a_widened_draw_scales_every_step_and_its_log_probability() -> None:
    g = graph(7, 60)
    f = graph_features(g, target_for(g, 6))
    anchor = make_anchor(f.work, np.repeat(np.arange(6), 10), hot_chip=3)
    ppo = PPO(new_policy(SMALL, seed=0), PPOConfig(), seed=0)
    out = ppo.policy(f, anchor.features)
    actions, logprobs, _, explored = ppo._draw(out, f.num_nodes, 32, False, anchor, widen=1.5)
    steps = set(explored[explored > 0].tolist())
    assert steps and steps <= {1.5 * s for s in STEP_SCALES}
    assert torch.allclose(logprobs, explored_log_prob(out, actions, explored).detach(), atol=1e-4)
