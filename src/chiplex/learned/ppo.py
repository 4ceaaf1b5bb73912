"""PPO for one-step placement episodes, in the shape of CleanRL's `ppo.py`.

A placement is a one-step episode: the state is a (graph, target) problem, the action is one sample of
the policy (a log re-weighting per op, see `chiplex.learned.policy`), the reward is the simulated
throughput of its (repaired) placement over the problem's throughput upper bound, so rewards are in
(0, 1] on every graph and target, and a candidate the repair cannot make legal gets `failed_reward`.

Each update (`PPO.step`):
  1. rollout: sample `samples_per_update` actions from the current policy for one problem, turn them into
     placements and send them all at once to `problem.evaluate` (the shared evaluator, which repairs,
     simulates and runs them in parallel on its executor);
  2. advantages: reward - value, normalised over the batch;
  3. `update_epochs` passes over the batch in `num_minibatches` minibatches: clipped surrogate objective,
     value loss, entropy bonus, gradient clipping (CleanRL's `ppo_continuous_action.py` loss, with
     GAE collapsing to reward - value for one-step episodes).
`train` drives `step` over a list of problems (round-robin) until told to stop: one problem for a search
on one graph, many for pre-training.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from chiplex.learned.features import GraphFeatures
from chiplex.learned.policy import PlacementPolicy, placements_from_actions
from chiplex.runtime_sim.evaluate import Evaluation


@dataclass(frozen=True)
class PPOConfig:
    """Every hyperparameter of the loop (saved in checkpoints with what they were trained with)."""

    samples_per_update: int = 32
    """Placements sampled and evaluated per update (the rollout batch)."""
    learning_rate: float = 3e-3
    update_epochs: int = 4
    num_minibatches: int = 2
    clip_coef: float = 0.2
    ent_coef: float = 1e-3
    """Entropy bonus per op (the mean over ops, so it does not grow with the graph)."""
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    norm_adv: bool = True
    target_kl: float | None = None
    """Stop an update's epochs early when the approximate KL exceeds it (None: never)."""
    failed_reward: float = -0.2
    """Reward of a candidate for which no legal placement was found (legal ones score in (0, 1])."""


@dataclass(frozen=True, eq=False)
class Problem:
    """One (graph, target) to place: its features, its throughput bound and the judge."""

    features: GraphFeatures
    upper_bound: float
    """samples/s no placement can beat: rewards are throughput / upper_bound."""
    evaluate: Callable[[list[np.ndarray]], list[Evaluation]]
    """Judges candidate placements, results in order; may return fewer (a budget ran out)."""


@dataclass(frozen=True)
class UpdateStats:
    """What one update did (CleanRL logs the same quantities)."""

    samples: int
    mean_reward: float
    best_reward: float
    failed: int
    value: float
    policy_loss: float
    value_loss: float
    entropy: float
    approx_kl: float
    clipfrac: float
    std: float
    evaluate_seconds: float
    """Wall time inside `problem.evaluate` (repair + simulation)."""
    learn_seconds: float
    """Wall time of everything else: forward passes, sampling, the PPO epochs."""


class PPO:
    """The learner: a policy, its optimiser and the random streams, all seeded."""

    def __init__(self, policy: PlacementPolicy, config: PPOConfig | None = None, seed: int = 0):
        self.policy = policy
        self.config = config or PPOConfig()
        self.optimizer = torch.optim.Adam(
            policy.parameters(), lr=self.config.learning_rate, eps=1e-5
        )
        self.generator = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.updates = 0

    def sample(
        self, features: GraphFeatures, count: int, greedy: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(actions [count, n], their log-probabilities [count], the value estimate []) without grad.
        `greedy` returns the mean action (the policy's best guess) as the first sample."""
        with torch.no_grad():
            out = self.policy(features)
            noise = torch.randn((count, features.num_nodes), generator=self.generator)
            if greedy:
                noise[0] = 0.0
            actions = out.mean + out.log_std.exp() * noise
            logprobs = out.distribution().log_prob(actions).sum(1)
        return actions, logprobs, out.value

    def rewards(self, problem: Problem, results: Sequence[Evaluation]) -> torch.Tensor:
        return torch.tensor(
            [
                r.throughput / problem.upper_bound if r.ok else self.config.failed_reward
                for r in results
            ],
            dtype=torch.float32,
        )

    def step(self, problem: Problem) -> UpdateStats | None:
        """One rollout and update on `problem`; None when the judge returned nothing (budget spent)."""
        cfg = self.config
        started = time.perf_counter()
        features = problem.features
        actions, logprobs, value = self.sample(features, cfg.samples_per_update)
        placements = placements_from_actions(features.work, actions.numpy(), features.num_chips)
        evaluate_started = time.perf_counter()
        results = problem.evaluate(list(placements))
        evaluate_seconds = time.perf_counter() - evaluate_started
        if not results:
            return None
        count = len(results)
        actions, logprobs = actions[:count], logprobs[:count]
        rewards = self.rewards(problem, results)
        advantages = rewards - value

        indices = np.arange(count)
        minibatch = max(1, count // cfg.num_minibatches)
        clipfracs: list[float] = []
        approx_kl = torch.tensor(0.0)
        pg_loss = v_loss = entropy = torch.tensor(0.0)
        for _ in range(cfg.update_epochs):
            self.rng.shuffle(indices)
            for start in range(0, count, minibatch):
                mb = torch.from_numpy(indices[start : start + minibatch])
                out = self.policy(features)
                dist = out.distribution()
                new_logprob = dist.log_prob(actions[mb]).sum(1)
                logratio = new_logprob - logprobs[mb]
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
                loss = pg_loss - cfg.ent_coef * entropy + v_loss * cfg.vf_coef
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
            if cfg.target_kl is not None and float(approx_kl) > cfg.target_kl:
                break
        self.updates += 1
        return UpdateStats(
            samples=count,
            mean_reward=float(rewards.mean()),
            best_reward=float(rewards.max()),
            failed=sum(not r.ok for r in results),
            value=float(value),
            policy_loss=float(pg_loss.detach()),
            value_loss=float(v_loss.detach()),
            entropy=float(entropy.detach()),
            approx_kl=float(approx_kl),
            clipfrac=float(np.mean(clipfracs)) if clipfracs else 0.0,
            std=float(self.policy.action_log_std.detach().exp()),
            evaluate_seconds=evaluate_seconds,
            learn_seconds=time.perf_counter() - started - evaluate_seconds,
        )

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


def train(
    ppo: PPO,
    problems: Sequence[Problem],
    should_stop: Callable[[], bool],
    on_update: Callable[[UpdateStats], None] | None = None,
) -> list[UpdateStats]:
    """Update on `problems` round-robin until `should_stop()` or a judge returns nothing."""
    history: list[UpdateStats] = []
    turn = 0
    while problems and not should_stop():
        stats = ppo.step(problems[turn % len(problems)])
        turn += 1
        if stats is None:
            break
        history.append(stats)
        if on_update is not None:
            on_update(stats)
    return history
