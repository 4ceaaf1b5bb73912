"""`chiplex train -o DIR`: pre-train the learned placer on the corpus, resumably.

Writes DIR/checkpoint.pt (policy + PPO state), DIR/history.json, DIR/learning_curve.png and
DIR/pretrain.json every --checkpoint-every updates. Run the same command again after an interrupt or a
kill and it continues from the last checkpoint; give a larger --updates to train further (--updates,
--checkpoint-every and the executor may change on a resume, no other setting). --force starts over (it
removes only those four files).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from chiplex.commands._args import (
    add_executor_arguments,
    executor_from_args,
    non_negative_int,
    positive_int,
)
from chiplex.errors import EXIT_CODES_HELP, ChiplexError
from chiplex.fileio import check_output_dir_name, prepare_output_dir

DEFAULTS: dict[str, Any] = {
    "updates": 600,
    "checkpoint_every": 25,
    "graphs": 48,
    "targets_per_graph": 2,
    "reward": "relief",
    "anchoring": "mixed",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="pre-train the learned placer on the training corpus (resumable)",
        description=textwrap.fill(
            "Pre-train the learned placement policy with PPO on the training corpus (seeded synthetic "
            "graphs and zoo models on a family of generated modules and the presets; the held-out "
            "models and module shapes of chiplex.learned.corpus are never used). Checkpoints every "
            "--checkpoint-every updates; re-running the command resumes from the last one."
        ),
        epilog="example: chiplex train -o runs/pretrain --updates 600 --checkpoint-every 25\n\n"
        + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="run directory")
    p.add_argument(
        "--updates",
        type=positive_int,
        default=DEFAULTS["updates"],
        metavar="N",
        help=f"PPO updates in all, one corpus problem each (default {DEFAULTS['updates']})",
    )
    p.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=DEFAULTS["checkpoint_every"],
        metavar="N",
        help=f"updates between checkpoints (default {DEFAULTS['checkpoint_every']})",
    )
    p.add_argument(
        "--graphs",
        type=positive_int,
        default=DEFAULTS["graphs"],
        metavar="N",
        help=f"synthetic training graphs (default {DEFAULTS['graphs']})",
    )
    p.add_argument(
        "--targets-per-graph",
        type=positive_int,
        default=DEFAULTS["targets_per_graph"],
        metavar="N",
        help=f"generated modules per graph, besides the presets (default {DEFAULTS['targets_per_graph']})",
    )
    p.add_argument(
        "--corpus-seed", type=non_negative_int, default=0, help="corpus seed (default 0)"
    )
    p.add_argument("--no-zoo", action="store_true", help="synthetic graphs only (no zoo models)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="training seed (default 0)")
    p.add_argument(
        "--samples",
        type=positive_int,
        default=32,
        metavar="S",
        help="placements sampled and evaluated per update (default 32)",
    )
    p.add_argument(
        "--reward",
        choices=("improvement", "relief", "balance", "mean"),
        default=DEFAULTS["reward"],
        help="improvement: a sample scores max(throughput / anchor's, 1), rewarding only moves that "
        "beat the anchor; relief: the same plus credit for relieving the anchor's slowest chips and "
        "links when the throughput ties; balance: relief plus, for every sample, how much more evenly "
        "it loads the chips and links (drop of the sum of squared busy times), a signal for the "
        "direction of every boundary; mean: throughput / anchor's, as a search scores it "
        f"(default {DEFAULTS['reward']})",
    )
    p.add_argument(
        "--anchoring",
        choices=("heuristic", "perturbed", "mixed", "balanced", "all"),
        default=DEFAULTS["anchoring"],
        help="heuristic: anchor each problem on dp's and greedy's placements, as zero-shot use does; "
        "perturbed: on dp's placement with one or two boundaries moved at random, so every problem "
        "has improving moves; mixed: every other problem perturbed; balanced: on the work-balanced "
        "split (the paper's weak start, a search's anchor=balanced); all: heuristic, perturbed and "
        "balanced in turn "
        f"(default {DEFAULTS['anchoring']})",
    )
    p.add_argument(
        "--train-std",
        action="store_true",
        help="let pre-training change the exploration std (default: kept at its initial value)",
    )
    p.add_argument(
        "--hidden",
        type=positive_int,
        default=64,
        metavar="H",
        help="policy width, a multiple of 4 (the attention heads; default 64)",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        metavar="W",
        help="evaluation processes (default: one per CPU; 1 runs in this process)",
    )
    add_executor_arguments(p)
    p.add_argument("--force", action="store_true", help="start over, replacing the run in DIR")
    p.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chiplex.learned.pretrain import (
        CHECKPOINT,
        CONFIG,
        CURVE,
        HISTORY,
        PretrainConfig,
        Pretrainer,
    )

    out: Path = args.output
    if out.exists() and not out.is_dir():
        raise ChiplexError(f"{out}: exists and is not a directory")
    check_output_dir_name(out, f"the run: {CHECKPOINT}, {HISTORY}, {CONFIG}, {CURVE}")
    prepare_output_dir(
        out, (), force=False
    )  # a file on the way is an error now, not at the first save
    config = PretrainConfig(
        updates=args.updates,
        checkpoint_every=args.checkpoint_every,
        graphs=args.graphs,
        targets_per_graph=args.targets_per_graph,
        corpus_seed=args.corpus_seed,
        zoo=not args.no_zoo,
        seed=args.seed,
        samples_per_update=args.samples,
        hidden=args.hidden,
        reward=args.reward,
        train_std=args.train_std,
        anchoring=args.anchoring,
    )
    if args.force:
        for name in (CHECKPOINT, HISTORY, CURVE, CONFIG):
            (out / name).unlink(missing_ok=True)
    started = time.perf_counter()
    print(f"building the corpus ({config.corpus_description()}) ...", file=sys.stderr)
    executor = executor_from_args(args)
    try:
        from chiplex.passes.learned import anchor_candidates

        trainer = Pretrainer(config, out, executor, anchors_for=anchor_candidates)
        print(
            f"{len(trainer.corpus)} problems, {config.updates} updates of {config.samples_per_update} "
            f"samples, checkpoint every {config.checkpoint_every} -> {out}",
            file=sys.stderr,
        )
        if trainer.ppo.updates >= config.updates:
            # Resuming a finished run: say so rather than report the old run as just trained.
            print(
                f"{out} already holds {trainer.ppo.updates} updates (--updates {config.updates}): "
                "nothing to train; give a larger --updates to train further, or --force to start over"
            )
            return 0
        history = trainer.train(progress=not args.no_progress)
    finally:
        executor.close()
    if history:
        recent = history[-min(len(history), 25) :]
        mean = sum(h["mean_reward"] for h in recent) / len(recent)
        print(
            f"trained {trainer.ppo.updates} updates ({trainer.evaluations} evaluations); mean reward "
            f"over the last {len(recent)} updates {mean:.3f}; wrote {out / CHECKPOINT}, "
            f"{out / CURVE}"
        )
    print(f"done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0
