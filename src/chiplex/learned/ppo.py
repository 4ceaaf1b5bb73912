"""PPO for one-step placement episodes, in the shape of CleanRL's `ppo.py`.

A placement is a one-step episode: the state is a (graph, target) problem with its anchor (a legal
placement the action is a residual on, `chiplex.learned.anchor`), the action is one sample of the policy
(a log re-weighting per op that moves the anchor's stage boundaries; the zero action is the anchor), the
reward is the simulated throughput of its (repaired) placement over the anchor's throughput, so the
advantage measures "better or worse than where we start" on every graph and target alike; a candidate
the repair cannot make legal gets `failed_reward`. The upper-bound-normalised reward (throughput / the
problem's upper bound, in (0, 1]) is what `UpdateStats` reports, comparable across problems.

Each update (`PPO.step` = `start`, `collect`, `learn`):
  0. on a problem's first update: evaluate its candidate anchors (`Problem.anchors`, e.g. dp's and
     greedy's placements) and anchor on the best legal one (else on a work-balanced split);
  1. `start`: the mean action first, then `samples_per_update - 1` samples of the current policy, each
     exploring the windows of one or two anchor boundaries with a step of 1, 2 or 4 times its std (the
     other ops keep the anchor), turned into placements around the anchor and sent at once to the
     judge (`Problem.submit`: the shared evaluator, which repairs, simulates and runs them in parallel
     on its executor); with `PPO.fresh_samples` (searches) only placements not judged before are sent,
     the rest take their known results, and further rounds are drawn until the batch has
     `samples_per_update` new ones (`PPO._draft`);
  2. `collect`: the judge's answers become rewards; with `follow_best`, the best sample becomes the
     new anchor when it is faster, or as fast with no busier resources (`PPO.follow`; a search climbs:
     the policy's residual is always relative to the best placement found so far);
  3. `learn`: advantages (reward - value, normalised over the minibatch), then `update_epochs` passes
     over the batch in `num_minibatches` minibatches: clipped surrogate objective, value loss, entropy
     bonus, gradient clipping (CleanRL's `ppo_continuous_action.py` loss, with GAE collapsing to
     reward - value for one-step episodes).
`train` drives these phases over a list of problems (round-robin) until told to stop: one problem for
a search on one graph, many for pre-training. With `overlap` (searches) it starts the next batch before
learning on the last one, so the update runs while the executor's workers simulate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from chiplex.learned.anchor import Anchor, balanced_split, make_anchor
from chiplex.learned.features import GraphFeatures
from chiplex.learned.policy import PlacementPolicy, PolicyOutput
from chiplex.runtime_sim.evaluate import Evaluation

FRESH_ROUNDS = 4
"""With `PPO.fresh_samples`, an update draws up to this many rounds of samples, of 1, 2, 4, 8 times
`samples_per_update` (one forward pass serves them all), to find that many placements not yet
judged: near a settled anchor only a few samples in ten are new."""
FRESH_WIDEN = 1.5
"""Round r of a fresh rollout explores with FRESH_WIDEN ** r times the usual step: when the near
placements are all judged, look further (the log-probabilities use the widened std)."""
STEP_SCALES = (1.0, 2.0, 4.0)
"""Factors on the policy's std a sample explores with (drawn uniformly per sample, independent of the
policy): most boundary moves worth making are an op or two, some are a block of ops."""


@dataclass(frozen=True)
class PPOConfig:
    """Every hyperparameter of the loop (saved in checkpoints with what they were trained with)."""

    samples_per_update: int = 48
    """Placements evaluated per update (the rollout batch; the first is the policy's mean action)."""
    learning_rate: float = 1e-3
    update_epochs: int = 2
    num_minibatches: int = 1
    clip_coef: float = 0.2
    ent_coef: float = 1e-3
    """Entropy bonus per op (the mean over ops, so it does not grow with the graph)."""
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    norm_adv: bool = True
    target_kl: float | None = None
    """Stop an update's epochs early when the approximate KL exceeds it (None: never)."""
    failed_reward: float = 0.0
    """Reward of a candidate for which no legal placement was found, on the anchor-relative scale
    (legal samples score throughput / anchor throughput > 0)."""
    stages_per_sample: int = 2
    """Each sample explores the ops of at most this many anchor boundaries (0: every op), so that it
    moves a few boundaries, as annealing's moves do: a pipeline runs at its slowest stage, and moving
    every boundary at once nearly always makes some stage slower. (Named for the stages it explored
    before boundaries had their own actions; the name stays for checkpoint headers.)"""
    follow_best: bool = True
    """Re-anchor on a sample better than the anchor (searches); pre-training keeps each problem's
    heuristic anchor so that what it learns is what zero-shot use faces."""


@dataclass
class AnchorState:
    """A problem's current anchor and its simulated throughput (set on its first update)."""

    anchor: Anchor | None = None
    throughput: float = 0.0
    """samples/s of the anchor (0: not legal, the upper bound is the reference instead)."""
    loads: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """The anchor's `resource_loads` (the tie-break of equally fast samples)."""
    judged: dict[bytes, Evaluation] = field(default_factory=dict)
    """Every placement judged so far (by its bytes), with `PPO.fresh_samples`: a repeat's reward is
    known, so the budget goes to placements not yet judged."""


@dataclass(frozen=True, eq=False)
class Problem:
    """One (graph, target) to place: its features, its throughput bound, the judge and its anchor."""

    features: GraphFeatures
    upper_bound: float
    """samples/s no placement can beat: the reported reward is throughput / upper_bound."""
    evaluate: Callable[[list[np.ndarray]], list[Evaluation]]
    """Judges candidate placements, results in order; may return fewer (a budget ran out)."""
    anchors: Sequence[np.ndarray] | Callable[[], Sequence[np.ndarray]] = ()
    """Candidate anchors (heuristic placements), or a function computing them when first needed;
    evaluated on the problem's first update, the best legal one wins."""
    state: AnchorState = field(default_factory=AnchorState)
    start_judging: Callable[[list[np.ndarray]], Callable[[], list[Evaluation]]] | None = None
    """Sends placements to the judge and returns the function that waits for `evaluate`'s answer
    (a search's `SearchRun.submit`), so that an update can run while they are judged; None: the
    judge runs when the answer is wanted."""

    def submit(self, placements: list[np.ndarray]) -> Callable[[], list[Evaluation]]:
        if self.start_judging is not None:
            return self.start_judging(placements)
        return lambda: self.evaluate(placements)

    @property
    def reference(self) -> float:
        """The throughput rewards are relative to: the anchor's, else the upper bound."""
        return self.state.throughput if self.state.throughput > 0 else self.upper_bound


@dataclass(frozen=True)
class UpdateStats:
    """What one update did (CleanRL logs the same quantities)."""

    samples: int
    """Evaluations this update spent (with the anchors' on a problem's first update)."""
    mean_reward: float
    """Mean throughput / upper bound of the samples (0 for a failed one)."""
    best_reward: float
    failed: int
    value: float
    policy_loss: float
    value_loss: float
    entropy: float
    approx_kl: float
    clipfrac: float
    std: float
    """Mean standard deviation of the per-op action."""
    mean_gain: float = 1.0
    """Mean throughput / the anchor's throughput of the samples (the training reward)."""
    best_gain: float = 1.0
    """Best throughput / the anchor's throughput of the samples (> 1: the policy improved on it)."""
    anchor_reward: float = 0.0
    """The anchor's throughput / upper bound after the update."""
    anchor_evaluations: int = 0
    """Of `samples`, the evaluations of the problem's anchors (its first update)."""


@dataclass(eq=False)
class Rollout:
    """An update's samples, drawn around an anchor and sent to the judge (`PPO.start`)."""

    problem: Problem
    anchor: Anchor
    """The anchor the samples move (its features are the state the update learns on)."""
    value: torch.Tensor
    std: float
    drawn: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    """(actions, log-probabilities, explored) of each round of draws."""
    placements: list[np.ndarray]
    fresh: dict[bytes, int]
    """Placements not judged before -> their first row (`PPO.fresh_samples`)."""
    send: list[np.ndarray]
    """What goes to the judge: the fresh placements, or every placement as drawn."""
    collect: Callable[[], list[Evaluation]] = list
    """Waits for the judge's answer to `send`."""
    out: PolicyOutput | None = None
    """The forward pass with its autograd graph, for the update's first minibatch (`keep_graph`)."""
    spent: int = 0
    """Evaluations of the problem's anchors, judged before the samples (its first update)."""


@dataclass(eq=False)
class Batch:
    """A judged rollout: what `PPO.learn` updates on."""

    rollout: Rollout
    actions: torch.Tensor
    logprobs: torch.Tensor
    """Log-probabilities under the policy that drew the samples (PPO's old policy)."""
    explored: torch.Tensor
    results: list[Evaluation]
    rewards: torch.Tensor
    judged: int
    """Evaluations the judge spent on this batch."""
    truncated: bool
    """The judge answered fewer placements than were sent (its budget ran out)."""


class PPO:
    """The learner: a policy, its optimiser and the random streams, all seeded."""

    def __init__(
        self,
        policy: PlacementPolicy,
        config: PPOConfig | None = None,
        seed: int = 0,
        learn_last_batch: bool = True,
        fresh_samples: bool = False,
    ):
        self.policy = policy
        self.config = config or PPOConfig()
        # foreach: one kernel per step over all the small tensors of the net, not one per tensor
        # (torch picks it on GPUs only); the same arithmetic.
        self.optimizer = torch.optim.Adam(
            policy.parameters(), lr=self.config.learning_rate, eps=1e-5, foreach=True
        )
        self.learn_last_batch = learn_last_batch
        """Update on a batch the judge cut short (its budget ran out, so it is the run's last): a
        search that does not keep the policy sets False, as the updated weights would go unused."""
        self.fresh_samples = fresh_samples
        """Spend evaluations on placements not yet judged only: a sample whose placement was judged
        before (an earlier update's, this batch's, an anchor) takes the known result at no cost, and
        the rollout draws on (up to FRESH_ROUNDS rounds) until `samples_per_update` samples are
        new. A search's judge counts repeats against its budget; without this most samples of a
        search that has settled near its anchor are repeats (3 in 4 on ResNet-50)."""
        self.generator = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.updates = 0

    def sample(
        self,
        features: GraphFeatures,
        count: int,
        greedy: bool = False,
        anchor: Anchor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(actions [count, n], their log-probabilities [count], the value estimate [], which ops
        were explored and with which step [count, n]: 0 not explored, else the factor on the policy's
        std, see `explored_log_prob`) without grad. `greedy` returns the mean action (the policy's
        best guess) as the first sample.

        With an anchor and `PPOConfig.stages_per_sample`, each sample explores the ops of a few anchor
        boundaries only (one of the hot stage's with probability 1/2 each, else one drawn uniformly);
        the other ops keep the anchor (action 0). Each such sample also draws a step, a factor from
        STEP_SCALES on the policy's std (small moves and annealing-sized ones in one batch). The
        boundaries and the step are drawn independently of the policy, so the sample's
        log-probability is that of its explored ops under the scaled std (a policy over the ops given
        the draw)."""
        with torch.no_grad():
            out = self.policy(features, None if anchor is None else anchor.features)
        return self._draw(out, features.num_nodes, count, greedy, anchor)

    def _draw(
        self,
        out: PolicyOutput,
        n: int,
        count: int,
        greedy: bool,
        anchor: Anchor | None,
        widen: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """`sample`'s draws from the policy's output `out` (detached here), every step `widen` times
        as large."""
        out = PolicyOutput(out.mean.detach(), out.log_std.detach(), out.value.detach())
        with torch.no_grad():
            noise = torch.randn((count, n), generator=self.generator)
            explored = torch.ones((count, n))
            if anchor is not None and self.config.stages_per_sample > 0 and anchor.stages > 1:
                steps = torch.tensor(STEP_SCALES)[
                    torch.randint(0, len(STEP_SCALES), (count, 1), generator=self.generator)
                ]
                explored = self._explored_stages(anchor, count) * steps
            if widen != 1.0:
                explored = explored * widen
            sampled = out.mean + out.log_std.exp() * explored.clamp(min=1.0) * noise
            # Unexplored ops keep the anchor's boundaries (action 0), not the mean: a mean that drifted
            # on a few updates' noise would otherwise move every boundary of every sample at once.
            actions = torch.where(explored > 0, sampled, torch.zeros_like(sampled))
            if greedy:
                explored[0] = 0.0
                actions[0] = out.mean
            logprobs = explored_log_prob(out, actions, explored)
        return actions, logprobs, out.value, explored

    def _explored_stages(self, anchor: Anchor, count: int) -> torch.Tensor:
        """bool[count, n]: the ops that move 1..stages_per_sample anchor boundaries per sample.

        Boundary c moves with the actions of stage c's tail and stage c+1's head only (its window,
        `Anchor.windows`), so exploring a window moves one boundary and no other. A draw is a boundary
        of the hot stage (the one before or after it, with probability 1/2 each) with probability 1/2,
        else a boundary drawn uniformly."""
        boundaries = anchor.stages - 1
        draws = self.config.stages_per_sample
        how_many = torch.randint(1, draws + 1, (count,), generator=self.generator)
        uniform = torch.randint(0, boundaries, (count, draws), generator=self.generator)
        hot = torch.rand((count, draws), generator=self.generator) < 0.5
        after = torch.rand((count, draws), generator=self.generator) < 0.5
        if anchor.hot_chip >= 0:
            # The hot stage's boundary after it (its tail) or before it (its head), where one exists.
            side = torch.where(after, anchor.hot_chip, anchor.hot_chip - 1).clamp(0, boundaries - 1)
            uniform = torch.where(hot, side, uniform)
        chosen = torch.zeros(
            (count, boundaries + 1), dtype=torch.bool
        )  # the last column: no window
        for k in range(draws):
            rows = torch.nonzero(how_many > k).squeeze(1)
            chosen[rows, uniform[rows, k]] = True
        windows = torch.from_numpy(anchor.windows).clamp(max=boundaries)
        windows = torch.where(windows < 0, boundaries, windows)
        return chosen[:, windows]

    def rewards(self, problem: Problem, results: Sequence[Evaluation]) -> torch.Tensor:
        """The training reward: throughput over the anchor's (`failed_reward` for a failure)."""
        return torch.tensor(
            [
                r.throughput / problem.reference if r.ok else self.config.failed_reward
                for r in results
            ],
            dtype=torch.float32,
        )

    def prepare(self, problem: Problem) -> list[Evaluation] | None:
        """Anchor `problem` on the best legal of its candidate anchors (evaluated here), else on the
        work-balanced split; returns the anchors' evaluations (None: the judge returned nothing)."""
        features = problem.features
        results: list[Evaluation] = []
        candidates = problem.anchors() if callable(problem.anchors) else problem.anchors
        if len(candidates):
            results = problem.evaluate([np.asarray(a, dtype=np.int64) for a in candidates])
            if not results:
                return None
        if self.fresh_samples:
            for candidate, result in zip(candidates, results, strict=False):
                problem.state.judged[np.asarray(candidate, dtype=np.int64).tobytes()] = result
        legal = [r for r in results if r.ok and r.placement is not None]
        if legal:
            best = max(legal, key=lambda r: r.throughput)  # max keeps the first of equals
            self.reanchor(problem, best)
        else:
            split = balanced_split(features.work, features.num_chips)
            problem.state.anchor = make_anchor(features.work, split, edges=graph_edges(features))
            problem.state.throughput = 0.0
        return results

    def reanchor(self, problem: Problem, result: Evaluation) -> None:
        """Make `result`'s (legal) placement the problem's anchor."""
        assert result.placement is not None
        problem.state.anchor = make_anchor(
            problem.features.work,
            result.placement,
            result.hot_chip,
            edges=graph_edges(problem.features),
        )
        problem.state.throughput = result.throughput
        problem.state.loads = resource_loads(
            result, problem.features.work, problem.features.num_chips
        )

    def step(self, problem: Problem) -> UpdateStats | None:
        """One rollout and update on `problem`; None when the judge returned nothing (budget spent)."""
        rollout = self.start(problem, keep_graph=True)
        batch = self.collect(rollout) if rollout is not None else None
        return None if batch is None else self.learn(batch)

    def start(self, problem: Problem, keep_graph: bool = False) -> Rollout | None:
        """Phase 1 of an update: anchor the problem on its first update (its anchors are judged here,
        synchronously), draw the samples around its anchor and send them to the judge
        (`Problem.submit`); None when the judge returned nothing.

        `keep_graph` keeps the forward pass's autograd graph for the update's first minibatch: right
        when nothing changes the weights before `learn` (`step`); `train(overlap=True)` updates on
        the previous batch in between, so there the rollout's forward runs without grad and the
        update pays its own."""
        spent = 0
        if problem.state.anchor is None:
            anchor_results = self.prepare(problem)
            if anchor_results is None:
                return None
            spent += len(anchor_results)
        anchor = problem.state.anchor
        assert anchor is not None
        with torch.set_grad_enabled(keep_graph):
            out = self.policy(problem.features, anchor.features)
        rollout = self._draft(problem, out, anchor)
        rollout.out = out if keep_graph else None
        rollout.spent = spent
        rollout.collect = problem.submit(rollout.send)
        return rollout

    def _draft(self, problem: Problem, out: PolicyOutput, anchor: Anchor) -> Rollout:
        """Draw samples from `out` around `anchor` and choose the placements to judge.

        Without `fresh_samples` one batch of `samples_per_update` is judged as drawn. With it, rounds
        of samples, each with a wider step (FRESH_WIDEN), are drawn until `samples_per_update` of
        their placements are new (or FRESH_ROUNDS rounds are drawn); the batch is the drawn samples
        up to the last new one, only the new placements go to the judge and every repeat takes its
        known result. When nothing new turns up the whole first batch is judged (repeats paid for),
        so that a search always spends its budget and ends."""
        cfg = self.config
        n = problem.features.num_nodes
        rounds = FRESH_ROUNDS if self.fresh_samples else 1
        drawn: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        placements: list[np.ndarray] = []
        fresh: dict[bytes, int] = {}  # new placement -> its first row
        value = out.value.detach()
        memo = problem.state.judged
        for round_ in range(rounds):
            actions, logprobs, value, explored = self._draw(
                out, n, cfg.samples_per_update << round_, round_ == 0, anchor, FRESH_WIDEN**round_
            )
            drawn.append((actions, logprobs, explored))
            for placement in anchor.placements(actions.numpy()):
                placements.append(placement)
                key = placement.tobytes()
                if self.fresh_samples and key not in memo and key not in fresh:
                    fresh[key] = len(placements) - 1
                if len(fresh) == cfg.samples_per_update:
                    break
            if not self.fresh_samples or len(fresh) == cfg.samples_per_update:
                break
        if self.fresh_samples and fresh:
            send = [placements[row] for row in fresh.values()]
        else:  # judge the first batch as drawn
            placements = placements[: cfg.samples_per_update]
            send = placements
        std = float(out.log_std.detach().exp().mean())
        return Rollout(problem, anchor, value, std, drawn, placements, fresh, send)

    def collect(self, rollout: Rollout) -> Batch | None:
        """Phase 2: wait for the judge, turn its answers into rewards (relative to the anchor the
        samples were drawn around) and, with `follow_best`, re-anchor on the best sample; None when
        the judge returned nothing (budget spent)."""
        problem = rollout.problem
        results = rollout.collect()
        if not results:
            return None
        placements, send = rollout.placements, rollout.send
        truncated = len(results) < len(send)
        memo = problem.state.judged
        if send is placements:
            placements = placements[: len(results)]
            batch = results
        else:
            memo.update((p.tobytes(), r) for p, r in zip(send, results, strict=False))
            # The samples up to the last one judged (a cut-short judge drops the rest).
            placements = placements[: list(rollout.fresh.values())[len(results) - 1] + 1]
            batch = [memo[p.tobytes()] for p in placements]
        if self.fresh_samples:
            memo.update((p.tobytes(), r) for p, r in zip(placements, batch, strict=True))
        count = len(placements)
        actions, logprobs, explored = (
            torch.cat(parts)[:count] for parts in zip(*rollout.drawn, strict=True)
        )
        rewards = self.rewards(problem, batch)
        if self.config.follow_best:
            self.follow(problem, batch)
        return Batch(
            rollout=rollout,
            actions=actions,
            logprobs=logprobs,
            explored=explored,
            results=batch,
            rewards=rewards,
            judged=len(results),
            truncated=truncated,
        )

    def learn(self, batch: Batch, last: bool = False) -> UpdateStats:
        """Phase 3: the PPO epochs on a judged batch (skipped when `last` or the batch was cut short,
        unless `learn_last_batch`: a search that does not keep the policy would never use them)."""
        cfg = self.config
        rollout, problem = batch.rollout, batch.rollout.problem
        features, anchor_features = problem.features, rollout.anchor.features
        actions, logprobs, explored, rewards = (
            batch.actions,
            batch.logprobs,
            batch.explored,
            batch.rewards,
        )
        advantages = rewards - rollout.value
        count = len(batch.results)
        indices = np.arange(count)
        minibatch = max(1, count // cfg.num_minibatches)
        clipfracs: list[float] = []
        approx_kl = torch.tensor(0.0)
        pg_loss = v_loss = entropy = torch.tensor(0.0)
        reuse = rollout.out
        rollout.out = None
        std = rollout.std
        epochs = cfg.update_epochs if self.learn_last_batch or not (last or batch.truncated) else 0
        for _ in range(epochs):
            self.rng.shuffle(indices)
            for start in range(0, count, minibatch):
                mb = torch.from_numpy(indices[start : start + minibatch])
                if reuse is not None:
                    out, reuse = reuse, None
                else:
                    out = self.policy(features, anchor_features)
                dist = out.distribution()
                new_logprob = explored_log_prob(out, actions[mb], explored[mb])
                # The log-probability sums over every op: clamp so that exp cannot overflow.
                logratio = (new_logprob - logprobs[mb]).clamp(-20.0, 20.0)
                ratio = logratio.exp()
                with torch.no_grad():
                    # http://joschu.net/blog/kl-approx.html, as in CleanRL
                    approx_kl = ((ratio - 1) - logratio).mean()
                    clipfracs.append(float(((ratio - 1.0).abs() > cfg.clip_coef).float().mean()))
                mb_advantages = advantages[mb]
                if cfg.norm_adv and len(mb) > 1:
                    mb_advantages = (mb_advantages - mb_advantages.mean()) / (
                        mb_advantages.std() + 1e-8
                    )
                pg_loss1 = -mb_advantages * ratio
                pg_loss2 = -mb_advantages * torch.clamp(ratio, 1 - cfg.clip_coef, 1 + cfg.clip_coef)
                pg_loss = torch.max(pg_loss1, pg_loss2).mean()
                v_loss = 0.5 * ((out.value - rewards[mb]) ** 2).mean()
                entropy = dist.entropy().mean()
                std = float(out.log_std.detach().exp().mean())
                loss = pg_loss - cfg.ent_coef * entropy + v_loss * cfg.vf_coef
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm, foreach=True)
                self.optimizer.step()
            if cfg.target_kl is not None and float(approx_kl) > cfg.target_kl:
                break
        self.updates += 1
        bounded = [r.throughput / problem.upper_bound if r.ok else 0.0 for r in batch.results]
        return UpdateStats(
            samples=rollout.spent + batch.judged,
            anchor_evaluations=rollout.spent,
            mean_reward=float(np.mean(bounded)),
            best_reward=float(np.max(bounded)),
            failed=sum(not r.ok for r in batch.results),
            value=float(rollout.value),
            policy_loss=float(pg_loss.detach()),
            value_loss=float(v_loss.detach()),
            entropy=float(entropy.detach()),
            approx_kl=float(approx_kl),
            clipfrac=float(np.mean(clipfracs)) if clipfracs else 0.0,
            std=std,
            mean_gain=float(rewards.mean()),
            best_gain=float(rewards.max()),
            anchor_reward=problem.state.throughput / problem.upper_bound,
        )

    def follow(self, problem: Problem, results: Sequence[Evaluation], rtol: float = 1e-4) -> None:
        """Re-anchor on the best sample, also when it only ties the anchor's throughput: a pipeline's
        throughput is its slowest stage and stages often tie (BERT's repeated layers), so relieving
        one of several equally slow stages shows no gain yet is a step towards one. Among equally
        fast samples (within `rtol`) the one with the lightest loads (`resource_loads`, compared
        largest first) wins, and a tie is taken only when its loads are no heavier than the
        anchor's: the search then walks towards relieving every slowest stage, not back and forth."""
        current = problem.state.anchor
        reference = problem.state.throughput
        work, chips = problem.features.work, problem.features.num_chips
        moves = [
            r
            for r in results
            if r.ok
            and r.placement is not None
            and r.throughput >= reference * (1 - rtol)
            and (current is None or not np.array_equal(r.placement, current.placement))
        ]
        if not moves:
            return
        fastest = max(r.throughput for r in moves)
        best: Evaluation | None = None
        best_loads = np.zeros(0)
        for r in moves:  # the lightest of the fastest, the first of equals
            if r.throughput < fastest * (1 - rtol):
                continue
            loads = resource_loads(r, work, chips)
            if best is None or not lighter_or_equal(best_loads, loads, rtol):
                best, best_loads = r, loads
        assert best is not None
        tie = current is not None and best.throughput <= reference * (1 + rtol)
        if tie and not lighter_or_equal(best_loads, problem.state.loads, rtol):
            return
        self.reanchor(problem, best)

    def state_dict(self) -> dict[str, object]:
        """Everything besides the policy's weights that a resumed run needs to continue identically."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "rng": self.rng.bit_generator.state,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.rng.bit_generator.state = state["rng"]
        self.updates = int(state["updates"])


def explored_log_prob(
    out: PolicyOutput, actions: torch.Tensor, explored: torch.Tensor
) -> torch.Tensor:
    """float[b]: log-probability of each sample's explored ops, op i drawn from
    Normal(mean_i, std_i x explored[b, i]) where explored[b, i] > 0; unexplored ops count nothing."""
    step = torch.where(explored > 0, explored, torch.ones_like(explored))
    dist = torch.distributions.Normal(out.mean, out.log_std.exp() * step)
    return (dist.log_prob(actions) * (explored > 0)).sum(1)


def graph_edges(features: GraphFeatures) -> tuple[np.ndarray, np.ndarray]:
    """(producers, consumers) of the problem's edges, as the anchor's stage order wants them."""
    edge_index = features.edge_index.numpy()
    return edge_index[0], edge_index[1]


def resource_loads(result: Evaluation, work: np.ndarray, num_chips: int) -> np.ndarray:
    """The simulator's busy seconds per chip and link, largest first (`Evaluation.busy_s`), else each
    chip's summed op work: the tie-break of equally fast placements (fewer resources at the top load
    is closer to relieving the bottleneck)."""
    if result.busy_s:
        return np.asarray(result.busy_s, dtype=np.float64)
    assert result.placement is not None
    return -np.sort(-np.bincount(result.placement, weights=work, minlength=num_chips))


def lighter_or_equal(loads: np.ndarray, than: np.ndarray, rtol: float = 1e-9) -> bool:
    """Whether `loads` (largest first) is lexicographically at most `than`, with relative tolerance."""
    scale = max(float(than[0]) if len(than) else 0.0, 1e-30)
    for a, b in zip(loads.tolist(), than.tolist(), strict=False):
        if a < b - rtol * scale:
            return True
        if a > b + rtol * scale:
            return False
    return True


def train(
    ppo: PPO,
    problems: Sequence[Problem],
    should_stop: Callable[[], bool],
    on_update: Callable[[UpdateStats], None] | None = None,
    overlap: bool = False,
) -> list[UpdateStats]:
    """Update on `problems` round-robin until `should_stop()` or a judge returns nothing.

    With `overlap`, the next update's samples are drawn and sent to the judge *before* the update on
    the batch just judged, so the update runs while the judge's workers simulate (`Problem.submit`):
    the samples come from weights one update old, which PPO's ratio to the policy that drew them
    corrects (as in asynchronous PPO); the anchor is current, since re-anchoring happens on
    collection; `should_stop` is asked before that update, not after it. The arithmetic does not
    depend on the judge's speed or executor, so a seed gives the same result either way."""
    history: list[UpdateStats] = []
    if not problems or should_stop():
        return history
    turn = 0
    pending = ppo.start(problems[0], keep_graph=not overlap)
    while pending is not None:
        batch = ppo.collect(pending)
        if batch is None:
            break
        turn += 1
        pending = None
        last = should_stop()
        if overlap and not last:
            pending = ppo.start(problems[turn % len(problems)])
        stats = ppo.learn(batch, last=last)
        history.append(stats)
        if on_update is not None:
            on_update(stats)
        if not overlap and not should_stop():
            pending = ppo.start(problems[turn % len(problems)], keep_graph=True)
    return history
