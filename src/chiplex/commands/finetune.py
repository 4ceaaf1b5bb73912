"""`chiplex finetune IN --target T --budget N [--checkpoint F] -o F`: train the learned placer on one
graph and save the policy.

Runs the `learned` search strategy (PPO, every sample repaired and simulated by the shared evaluator)
for N evaluations, starting from --checkpoint (default: the shipped pre-trained policy) or, with
--from-scratch, from a new policy seeded by --seed, prints the result
like `chiplex search` and writes the trained policy as a checkpoint (state dict + JSON header: feature
version, sizes, PPO settings, what it was trained on) to -o.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from chiplex.commands._args import (
    add_executor_arguments,
    add_full_budget_argument,
    add_input_arguments,
    executor_from_args,
    load_input,
    non_negative_int,
    positive_int,
)
from chiplex.errors import EXIT_CODES_HELP, ChiplexError

DEFAULT_EVALUATIONS = 2000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="train the learned placer on one model and save the policy checkpoint",
        description=(
            "Train the learned placement policy with PPO on IN for the target within N evaluations "
            "(each sampled placement is repaired and simulated), from --checkpoint or from scratch, "
            "print the best placement found and save the policy to -o."
        ),
        epilog=EXIT_CODES_HELP,
    )
    add_input_arguments(p)
    p.add_argument(
        "--target", default="tpu-ring8", help="preset name or TOML file (default: tpu-ring8)"
    )
    p.add_argument(
        "--budget",
        type=positive_int,
        default=DEFAULT_EVALUATIONS,
        metavar="N",
        help=f"evaluations to train for (default {DEFAULT_EVALUATIONS})",
    )
    start = p.add_mutually_exclusive_group()
    start.add_argument(
        "--checkpoint",
        type=Path,
        metavar="F",
        help="start from this checkpoint (default: the shipped pre-trained policy)",
    )
    start.add_argument(
        "--from-scratch", action="store_true", help="start from a new policy seeded by --seed"
    )
    p.add_argument(
        "-o", "--output", type=Path, required=True, help="where to write the trained checkpoint"
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--workers",
        type=positive_int,
        metavar="W",
        help="evaluation processes (default: one per CPU; 1 runs in this process)",
    )
    add_executor_arguments(p)
    add_full_budget_argument(p)
    p.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chiplex.commands.search import format_result
    from chiplex.compile import fit_parameters
    from chiplex.ir.graph import graph_from_module
    from chiplex.learned.checkpoint import load_checkpoint
    from chiplex.learned.pretrain import shipped_checkpoint
    from chiplex.passes.search import Budget, search
    from chiplex.targets.target import load_target

    output: Path = args.output
    if output.is_dir():
        # Checked before training: os.replace cannot put the file there, even with --force.
        raise ChiplexError(
            f"cannot write {output}: it is a directory; -o takes the checkpoint's file name"
        )
    if output.exists() and not args.force:
        raise ChiplexError(f"refusing to overwrite {output}: pass --force or choose another -o")
    if not output.parent.is_dir():
        parent = output.parent
        why = f"{parent} is a file" if parent.exists() else f"directory {parent} does not exist"
        raise ChiplexError(f"cannot write {output}: {why}")
    created_by = reproducing_command(args)  # before the shipped checkpoint's path is filled in
    if args.checkpoint is None and not args.from_scratch:
        args.checkpoint = shipped_checkpoint()
    if args.checkpoint is not None:
        load_checkpoint(args.checkpoint)  # a bad checkpoint fails before any loading
    target = load_target(args.target)
    started = time.perf_counter()
    module, _ = load_input(args)
    fit_parameters(module, args.target)  # as compile and search do: host lookups, shards
    graph = graph_from_module(module)
    start = f"from {args.checkpoint}" if args.checkpoint else "from scratch"
    print(
        f"fine-tuning on {graph.subset_summary()} on {target.name} {start}, "
        f"budget {args.budget} evaluations, seed {args.seed}",
        file=sys.stderr,
    )
    executor = executor_from_args(args)
    try:
        result = search(
            graph,
            target,
            "learned",
            Budget(evaluations=args.budget),
            args.seed,
            executor=executor,
            progress=not args.no_progress,
            options={
                "checkpoint": args.checkpoint,
                "save": output,
                "created_by": created_by,
            },
            stop_at_bound=not args.full_budget,
        )
    finally:
        executor.close()
    print(format_result(result, graph.name, target))
    updates = int(load_checkpoint(output).header.trained_on[-1].get("updates", 0))
    if updates:
        trained = (
            f"{updates} PPO update{'s' if updates > 1 else ''} on {graph.name} / {target.name}"
        )
    else:
        # Stopped at the upper bound on the anchors: say that the policy is the one it started from.
        trained = (
            f"no PPO update: the search reached the upper bound in {result.evaluations} "
            "evaluations; the policy is the starting one (--full-budget trains anyway)"
        )
    print(f"wrote {output} ({trained})")
    print(f"done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


def reproducing_command(args: argparse.Namespace) -> str:
    """The checkpoint's `created_by`: the command that trains the same policy, from the parsed
    options that decide it (in one order, defaults spelt out), so that the file is byte-identical
    whatever the worker count, executor, progress bar or option order (sys.argv is neither: it
    holds `--workers`, and the caller's argv when `chiplex.cli.main` is called in-process)."""
    words = ["chiplex", "finetune", args.input]
    for flag, values in (("--input-shape", args.input_shape), ("--dtype", args.dtype)):
        for value in values or ():
            words += [flag, value]
    for flag, value in (
        ("--weight-dtype", args.weight_dtype),
        ("--activation-dtype", args.activation_dtype),
    ):
        if value is not None:
            words += [flag, value]
    words += ["--target", args.target, "--budget", str(args.budget), "--seed", str(args.seed)]
    if args.from_scratch:
        words.append("--from-scratch")
    elif args.checkpoint is not None:
        words += ["--checkpoint", str(args.checkpoint)]
    if args.full_budget:
        words.append("--full-budget")
    words += ["-o", str(args.output)]
    return " ".join(map(shlex.quote, words))
