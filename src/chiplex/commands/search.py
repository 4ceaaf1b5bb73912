"""`chiplex search IN --target T --strategy anneal --budget 2000`: search for the best placement.

Prints a progress bar with the best throughput so far, then the result next to the upper bound (the
"gap to bound"), and optionally writes the input IR with the best placement as `mcm.chip` attributes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from chiplex.commands._args import (
    add_executor_arguments,
    add_full_budget_argument,
    add_input_arguments,
    executor_from_args,
    load_input,
    non_negative_int,
    positive_float,
    positive_int,
)
from chiplex.errors import EXIT_CODES_HELP, EXIT_INTERRUPTED, ChiplexError
from chiplex.fileio import atomic_write_text, check_ir_output_name, check_writable_file

if TYPE_CHECKING:
    from chiplex.targets.target import Target

DEFAULT_EVALUATIONS = 2000
DEFAULT_TARGET = "tpu-ring8"


# Shown in --help only; None on the command line means chiplex.runtime_sim.evaluate's REPORT_MICROBATCHES
# and SEARCH_MICROBATCHES (not imported here: the CLI builds every parser before running any handler).
HELP_REPORT_MICROBATCHES = 64
HELP_SEARCH_MICROBATCHES = 16


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="search for the placement with the highest simulated throughput",
        epilog=EXIT_CODES_HELP,
        description=(
            "Run a placement search strategy on IN for the target within a budget of evaluations "
            "and/or seconds. Every candidate is repaired to a legal placement when it breaks a rule "
            "and measured by the simulator; the best is re-simulated with --microbatches and printed "
            "next to the throughput upper bound (gap to bound). Strategies: random, anneal, greedy, "
            "dp, cp (greedy and dp evaluate once; cp runs MiniZinc with --seconds as its time limit), "
            "learned (PPO on a graph policy, from scratch or from --checkpoint)."
        ),
    )
    add_input_arguments(p)
    p.add_argument(
        "--target",
        metavar="NAME_OR_TOML",
        help=f"preset name or TOML file (default: the target IN records (mcm.target, as -o writes "
        f"it), else {DEFAULT_TARGET})",
    )
    p.add_argument(
        "--strategy",
        default="anneal",
        help="random, anneal, greedy, dp, cp or learned (default: anneal)",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        metavar="F",
        help="learned only: start from this policy checkpoint (see chiplex finetune)",
    )
    p.add_argument(
        "--budget",
        type=positive_int,
        metavar="N",
        help=f"evaluations to spend (default {DEFAULT_EVALUATIONS} unless only --seconds is given)",
    )
    p.add_argument(
        "--seconds", type=positive_float, metavar="S", help="wall-clock seconds to spend"
    )
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--solver",
        metavar="NAME",
        help="constraint solver back end of cp and exact repairs: auto, cp-sat, highs, gecode, "
        "order-mip or order-mip-race (default: the target's [solver] backend, else auto: order-mip for repairs, "
        "cp-sat for the rest)",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        metavar="W",
        help="evaluation processes (default: one per CPU; 1 runs in this process)",
    )
    add_executor_arguments(p)
    p.add_argument(
        "--microbatches",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"micro-batches of the final simulation (default {HELP_REPORT_MICROBATCHES})",
    )
    p.add_argument(
        "--search-microbatches",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"micro-batches per simulation inside the search (default {HELP_SEARCH_MICROBATCHES})",
    )
    p.add_argument(
        "-o", "--output", type=Path, help="write IN's IR with the best placement (mcm.chip)"
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    add_full_budget_argument(p)
    p.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    p.set_defaults(handler=run)


def format_result(result, graph_name: str, target: Target) -> str:  # type: ignore[no-untyped-def]
    """The result block: throughput, upper bound, gap, effort, and when 99% of it was reached."""
    import numpy as np

    reached = result.reached(0.99)
    chips = np.bincount(result.placement)
    lines = [
        f"{result.strategy} on {graph_name} / {target.name} (seed {result.seed}):",
        f"  throughput     {result.throughput:,.1f} samples/s  "
        f"({result.microbatches} micro-batches; {result.search_throughput:,.1f} in the search at "
        f"{result.search_microbatches})",
        f"  upper bound    {result.upper_bound:,.1f} samples/s  (binding term: "
        f"{result.upper_bound_reason})",
        f"  gap to bound   {100 * result.gap_to_bound:.2f}%",
        f"  evaluations    {result.evaluations} in {result.seconds:.1f} s "
        f"({result.repaired} repaired, {result.failed} without a legal repair)",
        f"  99% reached    after {reached.eval_index} evaluation"
        f"{'' if reached.eval_index == 1 else 's'}, {reached.wall_s:.1f} s",
        f"  chips used     {len(chips)} of {target.num_chips}; ops per chip {' '.join(map(str, chips))}",
    ]
    lines.extend(f"  note           {note}" for note in result.notes)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from xdsl.dialects.builtin import StringAttr

    from chiplex.compile import fit_parameters, module_text
    from chiplex.ir.graph import graph_from_module
    from chiplex.ir.host_lookup import describe, host_lookups
    from chiplex.ir.mcm import set_chip
    from chiplex.passes.common import TARGET_ATTR
    from chiplex.passes.place import place_stationary_ops
    from chiplex.passes.search import Budget, get_search_strategy, search
    from chiplex.runtime_sim.evaluate import REPORT_MICROBATCHES, SEARCH_MICROBATCHES
    from chiplex.targets.target import load_target

    get_search_strategy(args.strategy)  # a bad name fails before any loading
    if args.checkpoint is not None:
        if args.strategy != "learned":
            raise ChiplexError("--checkpoint needs --strategy learned")
        from chiplex.learned.checkpoint import load_checkpoint

        load_checkpoint(args.checkpoint)  # a bad checkpoint fails before any loading
    if args.output is not None:
        check_writable_file(args.output, force=args.force)
        check_ir_output_name(args.output, "the input IR with each op's #mcm.chip")
        if not args.output.parent.is_dir():
            raise ChiplexError(
                f"cannot write {args.output}: directory {args.output.parent} does not exist"
            )
    evaluations = args.budget
    if evaluations is None and args.seconds is None:
        evaluations = DEFAULT_EVALUATIONS
    budget = Budget(evaluations=evaluations, seconds=args.seconds)
    executor = executor_from_args(args)  # not started yet: bad options fail before any loading
    started = time.perf_counter()
    if args.target is not None:
        target = load_target(args.target)  # a bad target fails before a slow torch import
        module, name = load_input(args)
    else:
        # IR that `search -o` or annotate-costs wrote names its target: search it there, as
        # `chiplex check` does, not silently on the default.
        module, name = load_input(args)
        recorded = module.attributes.get(TARGET_ATTR)
        if isinstance(recorded, StringAttr):
            args.target = recorded.data
            try:
                target = load_target(args.target)
            except ChiplexError as err:
                raise ChiplexError(
                    f"{err} (the target {args.input} records; pass --target)"
                ) from None
        else:
            args.target = DEFAULT_TARGET
            target = load_target(args.target)
    if args.solver:
        from chiplex.targets.solver_choice import with_solver

        target = with_solver(target, args.solver, "search --solver")
    # As `chiplex compile` does before placing: a token table larger than a chip stays on the host,
    # another such parameter is sharded (nothing changes when every parameter fits a chip).
    fit_parameters(module, args.target)
    graph = graph_from_module(module)
    for line in describe(host_lookups(module), graph.samples_per_microbatch):
        print(line, file=sys.stderr)
    print(
        f"searching {graph.subset_summary()} on {target.name} with {args.strategy}, "
        f"budget {budget}, seed {args.seed}",
        file=sys.stderr,
    )
    try:
        result = search(
            graph,
            target,
            args.strategy,
            budget,
            args.seed,
            executor=executor,
            progress=not args.no_progress,
            microbatches=args.microbatches or REPORT_MICROBATCHES,
            search_microbatches=args.search_microbatches or SEARCH_MICROBATCHES,
            options={"checkpoint": args.checkpoint} if args.checkpoint is not None else None,
            stop_at_bound=not args.full_budget,
            keep_best_on_interrupt=True,
        )
    finally:
        executor.close()
    print(format_result(result, graph.name, target))
    if args.output is not None:
        for op, chip in zip(graph.ops, result.placement.tolist(), strict=True):
            set_chip(op, chip)
        place_stationary_ops(module)
        # Record the target so later passes (legalize-placement, split-chiplets) find it.
        module.attributes[TARGET_ATTR] = StringAttr(args.target)
        atomic_write_text(args.output, module_text(module))
        print(f"wrote {args.output} ({name} with the best placement)")
    else:
        print("placement not written: pass -o placed.mlir to keep it", file=sys.stderr)
    print(f"done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if result.interrupted:
        # The best so far is printed (and written); the exit code still tells scripts it is partial.
        print(
            f"chiplex: interrupted: the result is the best of {result.evaluations} evaluations, "
            "not of the whole budget",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if result.stopped:
        print(f"error: the search stopped early: {result.stopped}", file=sys.stderr)
        return 1
    return 0
