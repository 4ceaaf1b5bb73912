"""Pre-training: PPO over the whole corpus (`chiplex.learned.corpus`), resumable after an interrupt or a kill.

    run = Pretrainer(PretrainConfig(updates=600), out_dir, executor, anchors_for=anchor_candidates)
    run.train(progress=True)          # resumes from out_dir/checkpoint.pt when it is there

One update is one PPO step (`chiplex.learned.ppo.PPO.step`) on one corpus problem; problems are visited in
a fixed shuffled order derived from the seed, so update u always sees the same problem. Every
`checkpoint_every` updates the policy, the PPO state (optimiser, random streams, update count) and the
per-update history are written atomically to the output directory; a run killed at any point resumes
from the last checkpoint and repeats exactly what an uninterrupted run would have done after it (at most
one interval of work is lost). The learning curve (`learning_curve.png`) is redrawn at every checkpoint.

All evaluators of the corpus are installed in the executor's workers once, at start; each task carries
only an evaluator key and a candidate, as in a search.
"""

from __future__ import annotations

import dataclasses
import io
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chiplex.errors import ChiplexError
from chiplex.fileio import atomic_write_bytes, atomic_write_text
from chiplex.ir.graph import Graph
from chiplex.learned.anchor import balanced_split, make_anchor
from chiplex.learned.checkpoint import CheckpointHeader, load_checkpoint, save_checkpoint
from chiplex.learned.corpus import training_corpus
from chiplex.learned.features import GraphFeatures, graph_features
from chiplex.learned.policy import PlacementPolicy, PolicyConfig, new_policy
from chiplex.learned.ppo import PPO, PPOConfig, Problem, UpdateStats, graph_edges, resource_loads
from chiplex.runtime_sim.evaluate import (
    EvalSettings,
    EvalSpec,
    EvaluateTask,
    Evaluation,
    Evaluator,
    Executor,
    install_evaluator,
    keep_evaluator,
    uninstall_evaluator,
)
from chiplex.targets.cost import throughput_upper_bound
from chiplex.targets.target import Target

AnchorsFor = Callable[[Graph, Target], Sequence[np.ndarray]]
"""Heuristic anchor placements for a problem (the CLI passes `chiplex.passes.learned`'s dp + greedy;
this layer cannot import the passes)."""

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.json"
CURVE = "learning_curve.png"
CONFIG = "pretrain.json"
SHIPPED = Path(__file__).resolve().parent / "pretrained.pt"
"""The pre-trained policy shipped in the package (model card: docs/learned.md)."""
REPAIR_SECONDS = 1.0
"""MiniZinc's time limit when the repair heuristic fails during pre-training. A search allows 10 s, but
a corpus of tight modules makes such candidates common early on, and a failed repair is only a
penalised sample here: a second is enough to find the easy ones and keeps an update's time bounded."""


REWARDS = ("improvement", "relief", "balance", "mean")
ANCHORINGS = ("heuristic", "perturbed", "mixed", "balanced", "all")
ANCHOR_KINDS = {
    "heuristic": ("heuristic",),
    "perturbed": ("perturbed",),
    "mixed": ("heuristic", "perturbed"),
    "balanced": ("balanced",),
    "all": ("heuristic", "perturbed", "balanced"),
}
"""Each anchoring's kinds of anchor, taken in turn by corpus index (`anchor_kind`)."""


def anchor_kind(anchoring: str, index: int) -> str:
    """The kind of anchor corpus problem `index` gets under `anchoring` ('heuristic', 'perturbed' or
    'balanced'): a mix takes its kinds in turn, so the same problem always gets the same kind."""
    kinds = ANCHOR_KINDS[anchoring]
    return kinds[index % len(kinds)]


RELIEF_WEIGHT = 0.1
"""Weight of the relief bonus (`relief`) in the 'relief' reward, beside throughput / the anchor's."""
TIE_RTOL = 1e-4
"""Relative throughput difference under which a sample ties its anchor (as `PPO.follow` compares)."""


def relief(anchor_loads: np.ndarray, sample_loads: np.ndarray, rtol: float = 1e-3) -> float:
    """How much a sample relieves its anchor's slowest resources: with k the number of the anchor's
    chips and links within `rtol` of its slowest (`Evaluation.busy_s`, largest first), the drop of the
    sample's k largest busy times summed, over the anchor's (> 0: relieved, < 0: loaded). Stages often
    tie as the bottleneck (BERT's repeated layers), so relieving one of them leaves the throughput
    where it was; this is the credit such a step earns (1/k of its relief when one of k is relieved)."""
    if len(anchor_loads) == 0 or len(sample_loads) == 0:
        return 0.0
    top = float(anchor_loads[0])
    k = int(np.sum(anchor_loads >= top * (1 - rtol)))
    before = float(np.sum(anchor_loads[:k]))
    padded = np.concatenate([sample_loads[:k], np.zeros(max(0, k - len(sample_loads)))])
    return (before - float(np.sum(padded))) / max(before, 1e-30)


BALANCE_WEIGHT = 1.0
"""Weight of the balance term (`balance`) in the 'balance' reward. Moving a boundary by an op or two
changes the sum of squared loads by a fraction of a percent, a throughput gain by percents: a gain
still outweighs it when there is one, and it decides between the many samples that tie or lose."""


def balance(anchor_loads: np.ndarray, sample_loads: np.ndarray) -> float:
    """How much more evenly a sample loads the chips and links than its anchor: the drop of the sum
    of squared busy times (`Evaluation.busy_s`) over the anchor's (> 0: more even). Unlike `relief`,
    which sees only the slowest resources, every boundary counts: handing ops across any boundary
    from its heavier to its lighter side lowers it (up to the point where the two sides are level),
    the other way raises it, whether or not either side is the bottleneck."""
    before = float(np.sum(np.square(anchor_loads)))
    if before <= 0.0 or len(sample_loads) == 0:
        return 0.0
    return (before - float(np.sum(np.square(sample_loads)))) / before


class PretrainPPO(PPO):
    """PPO with pre-training's reward (`PretrainConfig.reward`)."""

    def __init__(
        self, policy: PlacementPolicy, config: PPOConfig, seed: int, *, reward: str
    ) -> None:
        super().__init__(policy, config, seed=seed)
        self.reward = reward

    def rewards(self, problem: Problem, results: Sequence[Evaluation]) -> torch.Tensor:
        rewards = super().rewards(problem, results)
        if self.reward in ("improvement", "relief", "balance") and problem.state.throughput > 0:
            # Every sample no better than the anchor scores as the anchor: the policy is not pushed
            # away from moving by the many moves that lose, only towards the ones that win. (With no
            # legal anchor the rewards are over the upper bound and every legal sample improves.)
            clamped = rewards.clamp(min=1.0)
            if self.reward == "improvement":
                return clamped
            # 'relief': a sample at least as fast as the anchor also earns credit for relieving the
            # anchor's slowest resources (a tie broken towards a faster placement), so the many
            # updates whose samples all tie the anchor still say which moves go the right way.
            work, chips = problem.features.work, problem.features.num_chips
            bonus = [
                RELIEF_WEIGHT
                * max(relief(problem.state.loads, resource_loads(r, work, chips)), 0.0)
                if r.ok and r.placement is not None and float(reward) >= 1.0 - TIE_RTOL
                else 0.0
                for r, reward in zip(results, rewards.tolist(), strict=True)
            ]
            if self.reward == "balance":
                # A denser signal for direction: every legal sample, winning, tying or losing, also
                # scores how much more evenly it loads the resources, so a boundary moved towards
                # its lighter side earns credit although the bottleneck is elsewhere, and one
                # moved towards its heavier side loses credit although the clamp hides its loss.
                bonus = [
                    b
                    + (
                        BALANCE_WEIGHT
                        * balance(problem.state.loads, resource_loads(r, work, chips))
                        if r.ok and r.placement is not None
                        else 0.0
                    )
                    for r, b in zip(results, bonus, strict=True)
                ]
            return clamped + torch.tensor(bonus, dtype=torch.float32)
        return rewards


def freeze_exploration(policy: PlacementPolicy) -> None:
    """Keep the policy's exploration std (its log-std heads) at their current values."""
    for head in (policy.action_log_std, policy.anchor_log_std):
        head.requires_grad_(False)


@dataclass(frozen=True)
class PretrainConfig:
    """What a pre-training run does; stored beside its checkpoint so a resume can check it."""

    updates: int = 600
    """PPO updates in all (each on one corpus problem)."""
    checkpoint_every: int = 25
    graphs: int = 48
    """Synthetic training graphs (the zoo's training models come on top when `zoo`)."""
    targets_per_graph: int = 2
    corpus_seed: int = 0
    zoo: bool = True
    seed: int = 0
    """Seeds the policy's initial weights, PPO's random streams and the problem order."""
    samples_per_update: int = 32
    hidden: int = PolicyConfig.hidden
    reward: str = "relief"
    """'improvement': a sample scores max(its throughput / the anchor's, 1), so only moves that beat
    the anchor are rewarded; 'relief' (the default): the same plus RELIEF_WEIGHT x `relief` for a
    sample at least as fast as the anchor (credit for relieving tied bottlenecks, which the
    throughput does not show yet); 'balance': 'relief' plus BALANCE_WEIGHT x `balance` for every
    legal sample (a denser signal for the direction of every boundary, bottleneck or not); 'mean':
    throughput / the anchor's as in a search. Zero-shot and
    fine-tuning keep the best of many samples, so what pre-training must teach is where an improving
    move lies; under the 'mean' reward most moves lose, and PPO learned to stop moving instead (the
    first shipped policy had shrunk its exploration std from 0.2 to 0.04 and its samples stayed on
    the anchor)."""
    train_std: bool = False
    """Whether pre-training may change the exploration std (False: it stays at the policy's initial
    value, and pre-training learns only the mean action: where to move the anchor's boundaries)."""
    anchoring: str = "mixed"
    """'heuristic': each problem anchors on the better of its dp and greedy placements (what zero-shot
    use faces); 'perturbed': on dp's (else greedy's) placement with one or two of its boundaries
    moved by a seeded random step (`perturb_placement`), so every problem has improving moves (the
    way back, and better) and most updates carry a gradient; 'mixed': every other corpus problem
    perturbed, the rest heuristic (the policy also sees anchors where moving rarely pays);
    'balanced': on the work-balanced contiguous split (`balanced_split`, repaired by the evaluator
    when memory requires), the weak start of the paper's setting (`options={"anchor": "balanced"}`
    in a search), where the way to a better placement is long and "the heavier side sheds ops" pays
    on most boundaries; 'all': heuristic, perturbed and balanced in turn (`anchor_kind`)."""

    def __post_init__(self) -> None:
        for name in (
            "updates",
            "checkpoint_every",
            "graphs",
            "targets_per_graph",
            "samples_per_update",
            "hidden",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ChiplexError(f"pre-training {name} must be an integer >= 1, got {value!r}")
        if self.hidden % PolicyConfig.heads:  # the attention splits the width among its heads
            raise ChiplexError(
                f"pre-training hidden must be a multiple of the policy's {PolicyConfig.heads} "
                f"attention heads, got {self.hidden}"
            )
        if self.anchoring not in ANCHORINGS:
            raise ChiplexError(
                f"pre-training anchoring must be one of {', '.join(ANCHORINGS)}, got "
                f"{self.anchoring!r}"
            )
        if self.reward not in REWARDS:
            raise ChiplexError(
                f"pre-training reward must be one of {', '.join(REWARDS)}, got {self.reward!r}"
            )

    def corpus_description(self) -> str:
        return (
            f"training_corpus(graphs={self.graphs}, targets_per_graph={self.targets_per_graph}, "
            f"seed={self.corpus_seed}, zoo={self.zoo})"
        )

    def describe(self) -> str:
        """The training settings a checkpoint's header records besides the corpus."""
        return (
            f"reward={self.reward}, train_std={self.train_std}, samples={self.samples_per_update}, "
            f"anchoring={self.anchoring}"
        )


def perturb_placement(
    features: GraphFeatures, placement: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """`placement` with one or two of its stage boundaries moved by a random step: the ops of each
    drawn boundary's window (`Anchor.windows`) get +s on the stage before it and -s on the stage after
    it, s = +-U(0.5, 2) (positive: the stage before sheds ops across the boundary). Still a contiguous
    cut of a topological order (acyclic, no skipping); memory rules are the evaluator's repair's."""
    anchor = make_anchor(features.work, placement, edges=graph_edges(features))
    if anchor.stages < 2:
        return anchor.placement
    windows = anchor.windows
    chosen = rng.choice(
        anchor.stages - 1, size=min(int(rng.integers(1, 3)), anchor.stages - 1), replace=False
    )
    actions = np.zeros(len(placement))
    for boundary in chosen.tolist():
        step = float(rng.uniform(0.5, 2.0)) * (1.0 if rng.random() < 0.5 else -1.0)
        in_window = windows == boundary
        before = anchor.placement == boundary
        actions[in_window & before] = step
        actions[in_window & ~before] = -step
    return anchor.placements(actions[None, :])[0]


def shipped_checkpoint() -> Path:
    """The shipped pre-trained checkpoint (`chiplex train`'s output, copied into the package)."""
    if not SHIPPED.is_file():
        raise ChiplexError(
            f"the shipped checkpoint {SHIPPED} is missing (a broken install?): reinstall chiplex, or "
            "give a checkpoint of your own (chiplex train / chiplex finetune)"
        )
    return SHIPPED


def install_evaluators(specs: list[EvalSpec]) -> None:
    """Executor initializer: every corpus evaluator, built once per worker."""
    for spec in specs:
        install_evaluator(spec)


RESUMABLE_CHANGES = ("updates", "checkpoint_every")
"""Settings a resumed run may change: how far to train and how often to save alter no update."""


class Pretrainer:
    """One resumable pre-training run writing into `out_dir`."""

    def __init__(
        self,
        config: PretrainConfig,
        out_dir: Path,
        executor: Executor,
        *,
        log: Callable[[str], None] | None = None,
        anchors_for: AnchorsFor | None = None,
    ) -> None:
        self.config = config
        self.out_dir = Path(out_dir)
        self.executor = executor
        self.log = log or (lambda line: print(line, file=sys.stderr))
        self.corpus = training_corpus(
            config.graphs, config.targets_per_graph, config.corpus_seed, zoo=config.zoo
        )
        self.order = np.random.default_rng(config.seed).permutation(len(self.corpus))
        self.evaluators = [
            Evaluator(
                p.graph,
                p.target,
                EvalSettings(repair_time_limit=REPAIR_SECONDS),
                key=f"pretrain-{i}",
            )
            for i, p in enumerate(self.corpus)
        ]
        self.problems = []
        for index, (p, evaluator) in enumerate(zip(self.corpus, self.evaluators, strict=True)):
            features = graph_features(p.graph, p.target)
            kind = anchor_kind(config.anchoring, index)
            anchors = self._anchors(anchors_for, p.graph, p.target)
            if kind == "perturbed":
                anchors = self._perturbed(anchors, features, seed=(config.seed, index))
            elif kind == "balanced":
                anchors = self._balanced(features)
            self.problems.append(
                Problem(
                    features=features,
                    upper_bound=throughput_upper_bound(p.graph, p.target).throughput,
                    evaluate=self._judge(evaluator.key),
                    anchors=anchors,
                )
            )
        self.history: list[dict[str, Any]] = []
        self.evaluations = 0
        self.ppo = self._resume_or_start()
        # Problems whose anchors were judged before a resume: this process judges them again (the
        # anchor state is not saved), but an uninterrupted run would not, so they are not counted twice.
        self.judged_anchors = {
            int(self.order[update % len(self.order)]) for update in range(self.ppo.updates)
        }

    # -- state -------------------------------------------------------------------------------------
    @staticmethod
    def _anchors(
        anchors_for: AnchorsFor | None, graph: Graph, target: Target
    ) -> Callable[[], Sequence[np.ndarray]]:
        """The problem's anchors, computed on its first update (not all up front)."""
        return lambda: anchors_for(graph, target) if anchors_for is not None else ()

    @staticmethod
    def _balanced(features: GraphFeatures) -> Callable[[], Sequence[np.ndarray]]:
        """The problem's work-balanced contiguous split (no heuristic is run for it)."""
        return lambda: [balanced_split(features.work, features.num_chips)]

    @staticmethod
    def _perturbed(
        anchors: Callable[[], Sequence[np.ndarray]],
        features: GraphFeatures,
        seed: tuple[int, int],
    ) -> Callable[[], Sequence[np.ndarray]]:
        """The problem's first heuristic anchor (dp's, else greedy's) with a seeded perturbation."""

        def perturbed() -> Sequence[np.ndarray]:
            candidates = anchors()
            if not len(candidates):
                return candidates
            rng = np.random.default_rng(seed)
            return [perturb_placement(features, np.asarray(candidates[0]), rng)]

        return perturbed

    def _judge(self, key: str) -> Callable[[list[np.ndarray]], list[Evaluation]]:
        def evaluate(candidates: list[np.ndarray]) -> list[Evaluation]:
            return self.executor.map(EvaluateTask(key), candidates)

        return evaluate

    def _resume_or_start(self) -> PPO:
        path = self.out_dir / CHECKPOINT
        ppo_config = PPOConfig(samples_per_update=self.config.samples_per_update, follow_best=False)
        if not path.exists():
            policy = new_policy(PolicyConfig(hidden=self.config.hidden), seed=self.config.seed)
            return self._ppo(policy, ppo_config)
        saved = self._saved_config()
        if saved != self.config:
            changed = [
                f"{f.name} {getattr(saved, f.name)} -> {getattr(self.config, f.name)}"
                for f in dataclasses.fields(PretrainConfig)
                if getattr(saved, f.name) != getattr(self.config, f.name)
                and f.name not in RESUMABLE_CHANGES
            ]
            if changed:
                raise ChiplexError(
                    f"{self.out_dir}: holds a run with other settings ({'; '.join(changed)}): "
                    "use another directory, or --force to start over"
                )
        checkpoint = load_checkpoint(path)
        if checkpoint.trainer is None:
            raise ChiplexError(f"{path}: checkpoint has no trainer state to resume from")
        ppo = self._ppo(checkpoint.policy, checkpoint.header.ppo)
        ppo.load_state_dict(checkpoint.trainer)
        history_path = self.out_dir / HISTORY
        # The history is written before the checkpoint, so it holds at least the checkpoint's updates;
        # without them the run's evaluation count and learning curve cannot continue.
        start_over = "restore it, or pass --force to start over"
        try:
            history = json.loads(history_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ChiplexError(
                f"{history_path}: missing beside {CHECKPOINT} (at update {ppo.updates}); {start_over}"
            ) from None
        except json.JSONDecodeError as err:
            raise ChiplexError(f"{history_path}: not valid JSON ({err})") from None
        if not isinstance(history, list) or not all(
            isinstance(h, dict) and isinstance(h.get("samples"), int) for h in history
        ):
            raise ChiplexError(
                f"{history_path}: not a pre-training history (a list of updates with their "
                f"samples); {start_over}"
            )
        if len(history) < ppo.updates:
            raise ChiplexError(
                f"{history_path}: holds {len(history)} updates, {CHECKPOINT} {ppo.updates}; "
                f"{start_over}"
            )
        # Updates after the last checkpoint were lost with the process: forget them.
        self.history = history[: ppo.updates]
        self.evaluations = sum(h["samples"] for h in self.history)
        self.log(f"resuming {self.out_dir} at update {ppo.updates} of {self.config.updates}")
        return ppo

    def _ppo(self, policy: PlacementPolicy, ppo_config: PPOConfig) -> PretrainPPO:
        if not self.config.train_std:
            freeze_exploration(policy)
        return PretrainPPO(policy, ppo_config, seed=self.config.seed, reward=self.config.reward)

    def _saved_config(self) -> PretrainConfig:
        path = self.out_dir / CONFIG
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(saved, dict):
                # Runs written before these settings existed trained with both as below.
                saved.setdefault("reward", "mean")
                saved.setdefault("train_std", True)
                # ... and runs from before the anchoring setting anchored on the heuristics.
                saved.setdefault("anchoring", "heuristic")
            return PretrainConfig(**saved)
        except FileNotFoundError:
            raise ChiplexError(f"{path}: missing beside {CHECKPOINT}; cannot resume") from None
        except (json.JSONDecodeError, TypeError, ChiplexError) as err:
            raise ChiplexError(f"{path}: not a pre-training configuration ({err})") from None

    def save(self) -> None:
        """Checkpoint, history, configuration and curve; the checkpoint last, so a kill in between
        leaves a history at least as long as the checkpoint's update count (trimmed on resume)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            self.out_dir / CONFIG, json.dumps(dataclasses.asdict(self.config), indent=1)
        )
        atomic_write_text(self.out_dir / HISTORY, json.dumps(self.history))
        header = CheckpointHeader(
            policy=self.ppo.policy.config,
            ppo=self.ppo.config,
            trained_on=[
                {
                    "corpus": self.config.corpus_description(),
                    "problems": len(self.corpus),
                    "updates": self.ppo.updates,
                    "evaluations": self.evaluations,
                    "seed": self.config.seed,
                    "training": self.config.describe(),
                }
            ],
            created_by="chiplex train",
        )
        save_checkpoint(self.out_dir / CHECKPOINT, self.ppo.policy, header, self.ppo.state_dict())
        plot_learning_curve(self.history, self.out_dir / CURVE)

    # -- the loop ----------------------------------------------------------------------------------
    def train(
        self, *, progress: bool = False, stop_after: int | None = None, summary_every: int = 10
    ) -> list[dict[str, Any]]:
        """Run updates until `config.updates` (or `stop_after` more, for tests); returns the history."""
        from tqdm import tqdm

        target_updates = self.config.updates
        if stop_after is not None:
            target_updates = min(target_updates, self.ppo.updates + stop_after)
        specs = [e.spec for e in self.evaluators]
        for evaluator in self.evaluators:
            keep_evaluator(evaluator)
        bar = tqdm(
            total=self.config.updates,
            initial=self.ppo.updates,
            desc="pre-train",
            unit="update",
            file=sys.stderr,
            # None: no bar when stderr is not a terminal (the summary lines still go to a log file).
            disable=None if progress else True,
            dynamic_ncols=True,
        )
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # reproducible forward/backward; workers use the other cores
        try:
            self.executor.start(install_evaluators, (specs,))
            started = time.perf_counter()
            while self.ppo.updates < target_updates:
                index = int(self.order[self.ppo.updates % len(self.order)])
                stats = self.ppo.step(self.problems[index])
                assert stats is not None  # the corpus judges have no budget
                if index in self.judged_anchors:
                    stats = dataclasses.replace(
                        stats,
                        samples=stats.samples - stats.anchor_evaluations,
                        anchor_evaluations=0,
                    )
                self.judged_anchors.add(index)
                self.evaluations += stats.samples
                self.history.append(self._record(index, stats))
                bar.update(1)
                bar.set_postfix_str(f"reward {stats.mean_reward:.3f}", refresh=False)
                if self.ppo.updates % summary_every == 0:
                    recent = self.history[-summary_every:]
                    bar.write(
                        f"update {self.ppo.updates}/{self.config.updates}: mean reward "
                        f"{np.mean([h['mean_reward'] for h in recent]):.3f}, best "
                        f"{np.mean([h['best_reward'] for h in recent]):.3f}, mean sample / anchor "
                        f"{np.mean([h.get('mean_gain', 1.0) for h in recent]):.3f}, best "
                        f"{np.mean([h.get('best_gain', 1.0) for h in recent]):.3f} (last {len(recent)}), "
                        f"{self.evaluations} evaluations, {time.perf_counter() - started:.0f} s",
                        file=sys.stderr,
                    )
                if (
                    self.ppo.updates % self.config.checkpoint_every == 0
                    or self.ppo.updates == target_updates
                ):
                    self.save()
        finally:
            torch.set_num_threads(threads)
            bar.close()
            for evaluator in self.evaluators:
                uninstall_evaluator(evaluator.key)
        return self.history

    def _record(self, index: int, stats: UpdateStats) -> dict[str, Any]:
        return {
            "update": self.ppo.updates,
            "problem": self.corpus[index].name,
            "evaluations": self.evaluations,
            **{
                k: v
                for k, v in dataclasses.asdict(stats).items()
                if k
                in (
                    "samples",
                    "mean_reward",
                    "best_reward",
                    "failed",
                    "entropy",
                    "std",
                    "mean_gain",
                    "best_gain",
                )
            },
        }


def plot_learning_curve(history: list[dict[str, Any]], path: Path) -> None:
    """Mean and best reward per update (and their running means) against evaluations; below, the
    training signal: mean and best sample throughput over the problem's anchor."""
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evals = np.array([h["evaluations"] for h in history])
    mean = np.array([h["mean_reward"] for h in history])
    best = np.array([h["best_reward"] for h in history])
    window = max(1, min(25, len(history) // 5))
    kernel = np.ones(window) / window
    fig, (ax, gain_ax) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for key, color, label in (
        ("mean_gain", "C2", "mean sample / anchor"),
        ("best_gain", "C3", "best sample / anchor"),
    ):
        gain = np.array([h.get(key, 1.0) for h in history])
        gain_ax.plot(evals, gain, ".", alpha=0.25, color=color, label=label)
        if len(history) >= window:
            gain_ax.plot(evals[window - 1 :], np.convolve(gain, kernel, "valid"), color=color)
    gain_ax.axhline(1.0, color="grey", lw=0.8)
    gain_ax.set_ylabel("throughput / anchor's")
    gain_ax.set_xlabel("evaluations")
    gain_ax.legend(loc="lower right")
    gain_ax.grid(alpha=0.3)
    ax.plot(evals, mean, ".", alpha=0.25, color="C0", label="mean reward per update")
    ax.plot(evals, best, ".", alpha=0.25, color="C1", label="best reward per update")
    if len(history) >= window:
        ax.plot(evals[window - 1 :], np.convolve(mean, kernel, "valid"), color="C0")
        ax.plot(evals[window - 1 :], np.convolve(best, kernel, "valid"), color="C1")
    ax.set_ylabel("reward (throughput / upper bound)")
    ax.set_title("chiplex pre-training")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    image = io.BytesIO()
    try:
        fig.savefig(image, format="png", dpi=100)
    finally:
        plt.close(fig)
    atomic_write_bytes(path, image.getvalue())
