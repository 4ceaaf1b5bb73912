"""The `learned` search strategy: PPO on the placement policy, every sample judged by `SearchRun.evaluate`.

    search(graph, target, "learned", Budget(evaluations=2000), seed=0)                  # from scratch
    search(..., options={"checkpoint": "policy.pt"})                                   # fine-tune
    search(..., options={"save": "out.pt", "created_by": "chiplex finetune ..."})      # keep the policy

The strategy is an adapter: `chiplex.learned` knows nothing about searches; here its `Problem.evaluate`
is `run.evaluate`, so the budget, the repair, the cache, best-tracking, the history and the executor
are the same as for every other strategy. Options (all optional):

    checkpoint   start from this checkpoint (else a new policy seeded from the search seed)
    save         write the trained policy here when the budget is spent (with the PPO state)
    created_by   recorded in the saved checkpoint's header
    on_update    callable(evaluations so far, UpdateStats) after every PPO update (learning curves)
    ppo          a PPOConfig to train with (default: the checkpoint's, else PPOConfig())
    zero_shot    no training: the anchor, then samples from the policy (its mean action first), each
                 repaired and simulated; the budget's evaluations are the number of samples
    overlap      False: update and judge in turn (default True: each update runs while the executor
                 judges the next batch, `chiplex.learned.ppo.train`)
    anchor       "heuristic" (default): dp's and greedy's placements; "balanced": the work-balanced
                 contiguous split alone (repaired when memory requires), a weak start that measures
                 what the policy finds without the heuristics' help (the paper's setting)

The policy is a residual on an anchor (`chiplex.learned.anchor`): the better of dp's and greedy's
placements (the start annealing gets too), evaluated first, so the answer is never worse than it; the
search then re-anchors on the best sample so far.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chiplex.errors import ChiplexError
from chiplex.ir.graph import Graph
from chiplex.learned.anchor import balanced_split
from chiplex.learned.checkpoint import CheckpointHeader, load_checkpoint, save_checkpoint
from chiplex.learned.features import GraphFeatures, graph_features
from chiplex.learned.policy import PolicyConfig, new_policy
from chiplex.learned.ppo import PPO, PPOConfig, Problem, UpdateStats, train
from chiplex.learned.pretrain import shipped_checkpoint
from chiplex.passes.search import Budget, SearchRun, search
from chiplex.passes.strategies import place_dp, place_greedy
from chiplex.targets.cost import throughput_upper_bound
from chiplex.targets.target import Target

ZERO_SHOT_SAMPLES = 16
"""Samples `place{strategy=learned}` draws from the policy when no budget is given (zero-shot)."""


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run torch on `count` threads: the evaluator's worker processes use the other cores, and a
    single thread keeps the forward and backward passes bit-for-bit reproducible."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def anchor_candidates(graph: Graph, target: Target) -> list[np.ndarray]:
    """The heuristic placements a learned search anchors on (dp's first: it wins ties), each computed
    once per problem; a heuristic that fails (no legal placement it can find) is left out."""
    candidates = []
    for place in (place_dp, place_greedy):
        try:
            candidates.append(place(graph, target, 0))
        except ChiplexError:
            continue
    return candidates


ANCHORS = ("heuristic", "balanced")


def _anchors(run: SearchRun, features: GraphFeatures) -> list[np.ndarray]:
    """The search's anchor candidates, by the `anchor` option (`ANCHORS`)."""
    kind = run.options.get("anchor", "heuristic")
    if kind == "heuristic":
        return anchor_candidates(run.graph, run.target)
    if kind == "balanced":
        return [balanced_split(features.work, features.num_chips)]
    raise ChiplexError(f"learned: unknown anchor {kind!r}; expected one of {', '.join(ANCHORS)}")


def search_learned(run: SearchRun, rng: np.random.Generator) -> None:
    """PPO from scratch (or from a checkpoint) within the run's budget; the best sample is the answer."""
    del rng  # torch draws its own numbers, seeded from the search seed
    options: dict[str, Any] = dict(run.options)
    started = time.perf_counter()
    with torch_threads(1):
        if options.get("checkpoint"):
            checkpoint = load_checkpoint(options["checkpoint"])
            policy, header = checkpoint.policy, checkpoint.header
            # A search climbs from its anchor whatever the checkpoint was trained with (pre-training
            # keeps its anchors fixed).
            config = options.get("ppo") or dataclasses.replace(header.ppo, follow_best=True)
        else:
            policy = new_policy(PolicyConfig(), seed=run.seed)
            config = options.get("ppo") or PPOConfig()
            header = CheckpointHeader(policy=policy.config, ppo=config)
        # The last (budget-truncated) batch's update only matters when the policy is kept.
        # A search spends its evaluations on placements it has not judged (`PPO.fresh_samples`).
        ppo = PPO(
            policy,
            config,
            seed=run.seed,
            learn_last_batch=bool(options.get("save")),
            fresh_samples=True,
        )
        features = graph_features(run.graph, run.target)
        problem = Problem(
            features=features,
            upper_bound=throughput_upper_bound(run.graph, run.target).throughput,
            evaluate=run.evaluate,
            anchors=_anchors(run, features),
            start_judging=run.submit,
        )
        if options.get("zero_shot"):
            count = run.remaining if run.remaining is not None else ZERO_SHOT_SAMPLES
            spent = ppo.prepare(problem)
            anchor = problem.state.anchor
            left = count - len(spent or [])
            if anchor is not None and left > 0:
                actions, _, _, _ = ppo.sample(problem.features, left, greedy=True, anchor=anchor)
                run.evaluate(list(anchor.placements(actions.numpy())))
            run.notes.append(
                f"learned: zero-shot, best of {count} (the anchor and samples of the policy)"
            )
            return
        on_update = options.get("on_update")

        def report(stats: UpdateStats) -> None:
            if on_update is not None:
                on_update(run.evaluations, stats)

        judged_before, loop_started = run.judging_seconds, time.perf_counter()
        overlap = bool(options.get("overlap", True))
        # The first batch (the anchors) is judged whatever the clock says, as `SearchRun.submit`
        # promises: a seconds budget shorter than torch's setup still gets an answer.
        history = train(
            ppo, [problem], lambda: run.exhausted and run.evaluations > 0, report, overlap=overlap
        )
        loop = time.perf_counter() - loop_started
        judged = run.judging_seconds - judged_before
        if history:
            last = history[-1]
            # PPO's own time is the loop's wall time while no batch was being judged: the learner's
            # work that the executor waited for (an update overlapped with a batch is not in it).
            own = max(loop - judged, 0.0)
            updates = f"{len(history)} PPO update{'' if len(history) == 1 else 's'}"
            run.notes.append(
                f"learned: {updates}; last mean reward {last.mean_reward:.3f}, "
                f"std {last.std:.3f}; PPO's own time {own:.1f} s against {judged:.1f} s of "
                f"evaluations ({100 * own / max(loop, 1e-9):.0f}%), setup "
                f"{loop_started - started:.1f} s (torch's first use, features, dp and greedy anchors)"
            )
        if options.get("save"):
            header.ppo = config
            header.trained_on.append(
                {
                    "graph": run.graph.name,
                    "target": run.target.name,
                    "ops": run.graph.num_nodes,
                    "chips": run.target.num_chips,
                    "evaluations": run.evaluations,
                    "updates": len(history),
                    "seed": run.seed,
                }
            )
            if options.get("created_by"):
                header.created_by = str(options["created_by"])
            save_checkpoint(Path(options["save"]), policy, header, trainer=ppo.state_dict())


def place_learned(
    graph: Graph,
    target: Target,
    seed: int = 0,
    checkpoint: str | None = None,
    budget: int | None = None,
) -> np.ndarray:
    """The `place` pass's learned strategy, from `checkpoint` (default: the shipped pre-trained policy):
    zero-shot (the best of ZERO_SHOT_SAMPLES samples) without a `budget`, else fine-tuned for `budget`
    evaluations; evaluations run on a local process pool. Returns the best legal placement found."""
    if budget is not None and budget < 1:
        raise ChiplexError(f"place: budget must be >= 1, got {budget}")
    if seed < 0:  # torch and numpy seeds are non-negative, as `--seed` is
        raise ChiplexError(f"place: seed must be >= 0, got {seed}")
    path = checkpoint or shipped_checkpoint()
    load_checkpoint(path)  # fail before starting workers
    result = search(
        graph,
        target,
        "learned",
        Budget(evaluations=budget or ZERO_SHOT_SAMPLES),
        seed,
        workers=None,
        options={"checkpoint": path, "zero_shot": budget is None},
    )
    return result.placement
