"""`chiplex check INPUT --target T`: list a placement's violations, or prove a legal placement exists.

INPUT is an IR file, or a PyTorch module or zoo model name imported as `chiplex compile` imports it.

- IR whose ops all carry `#mcm.chip<N>` is *placed*: print every violated rule (exit 1) or `legal`.
- Unplaced IR: decide whether any legal placement exists. Cheap necessary checks and the heuristics run
  first, MiniZinc second; print a witness (its bottleneck stage time and chips) or why none exists.

Exit codes: 0 legal / a legal placement exists, 1 violations / no legal placement / bad input,
3 undecided within the time limit (chiplex.errors.EXIT_UNDECIDED; 2 is argparse's usage error).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from chiplex.commands._args import add_input_arguments, load_input, positive_float
from chiplex.errors import EXIT_CODES_HELP, EXIT_UNDECIDED, ChiplexError

if TYPE_CHECKING:
    from chiplex.ir.graph import Graph
    from chiplex.targets.target import Target


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="list a placement's rule violations, or prove that a legal placement exists",
        description=(
            "Check INPUT (an IR file, or a PyTorch module or zoo model, imported as `chiplex compile` "
            "does) against the target's placement rules (chip-range, acyclic-dataflow, "
            "no-skipping-chips, memory, hop-span, pinned, colocated). Placed IR (every op has "
            "#mcm.chip<N>) is checked as placed; unplaced IR is checked for the existence of any legal "
            "placement, with the reason when there is none. Exit code 0: legal; 1: illegal or "
            "infeasible; 3: undecided within --time-limit."
        ),
        epilog=EXIT_CODES_HELP,
    )
    add_input_arguments(p)
    p.add_argument(
        "--target",
        metavar="NAME_OR_TOML",
        help="preset name or TOML file (default: the target recorded by annotate-costs)",
    )
    p.add_argument(
        "--placement-from-ir",
        action="store_true",
        help="require the IR to be placed and check its placement (default: check it if present)",
    )
    p.add_argument(
        "--ignore-placement",
        action="store_true",
        help="ignore #mcm.chip attributes and decide whether any legal placement exists",
    )
    p.add_argument(
        "--minizinc",
        action="store_true",
        help="also check a placement with the MiniZinc model and report whether it agrees",
    )
    p.add_argument(
        "--solver",
        metavar="NAME",
        help="constraint solver back end: auto, cp-sat, highs, gecode, order-mip or order-mip-race (default: the "
        "target's [solver] backend, else auto: order-mip for repairs, cp-sat for the rest)",
    )
    p.add_argument(
        "--time-limit",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="seconds the solver may spend deciding feasibility (default 10)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chiplex.ir.graph import graph_from_module
    from chiplex.ir.locations import locate
    from chiplex.ir.mcm import get_chip
    from chiplex.passes.common import TARGET_ATTR, resolve_target
    from chiplex.targets.target import preset_names

    if args.placement_from_ir and args.ignore_placement:
        raise ChiplexError("check: --placement-from-ir and --ignore-placement exclude each other")
    module, _ = load_input(args)
    if not args.target and TARGET_ATTR not in module.attributes:
        raise ChiplexError(
            f"no target to check {args.input} against: pass --target, a preset "
            f"({', '.join(preset_names())}) or a target TOML file"
        )
    try:
        target = resolve_target(module, args.target, "check")
    except ChiplexError as err:
        if args.target:
            raise
        # A target file is recorded as it was named, relative to where the compile ran.
        raise ChiplexError(f"{err} (the target {args.input} records; pass --target)") from None
    if args.solver:
        from chiplex.targets.solver_choice import with_solver

        target = with_solver(target, args.solver, "check --solver")
    graph = graph_from_module(module)
    chips = [get_chip(op) for op in graph.ops]
    placed = [c for c in chips if c is not None]
    if args.ignore_placement or (not placed and not args.placement_from_ir):
        return _check_feasible(graph, target, args)
    if len(placed) != len(chips):
        missing = [i for i, c in enumerate(chips) if c is None]
        raise ChiplexError(
            f"{locate(graph.ops[missing[0]]) or args.input + ': '}{len(missing)} of {len(chips)} ops "
            f"have no mcm.chip (first: {graph.op_names[missing[0]]}); "
            "place every op, or pass --ignore-placement to check feasibility only"
        )
    return _check_placed(graph, target, chips, args)


def _check_placed(
    graph: Graph, target: Target, chips: list[int | None], args: argparse.Namespace
) -> int:
    import numpy as np

    from chiplex.targets.legality import check_placement

    placement = np.array(chips, dtype=np.int64)
    violations = check_placement(graph, target, placement)
    agree = ""
    if args.minizinc:
        from chiplex.targets.solver import check_with_minizinc

        model_rules = check_with_minizinc(graph, target, placement)
        checker_rules = list(dict.fromkeys(v.rule for v in violations))
        agree = (
            " (the MiniZinc model agrees)"
            if model_rules == checker_rules
            else f" (the MiniZinc model disagrees: it reports {model_rules or 'no violation'}, "
            f"the checker {checker_rules or 'none'}; please report this)"
        )
    if violations:
        count = f"{len(violations)} violation{'' if len(violations) == 1 else 's'}"
        print(f"{args.input}: illegal placement on {target.name}: {count}{agree}")
        for violation in violations:
            print(f"  {graph.locate_nodes(violation.ops)}{violation}")
        return 1
    used = int(placement.max()) + 1 if len(placement) else 0
    print(
        f"{args.input}: legal: {graph.num_nodes} ops on chips 0..{used - 1} of {target.name}{agree}"
    )
    return 0


def _check_feasible(graph: Graph, target: Target, args: argparse.Namespace) -> int:
    from chiplex.targets.solver import InfeasibleError, SolverTimeoutError, explain, optimize
    from chiplex.targets.solver_choice import backend_for, solver_for

    messages = explain(graph, target, time_limit=args.time_limit)
    if messages and messages[0].startswith("undecided"):
        print(
            f"{args.input}: {messages[0]} (solver {backend_for(solver_for(target), 'satisfy.mzn')})"
        )
        return EXIT_UNDECIDED
    if messages:
        print(f"{args.input}: no legal placement exists on {target.name} (proved):")
        for message in messages:
            print(f"  {message}")
        return 1
    try:
        result = optimize(graph, target, time_limit=min(args.time_limit, 5.0))
    except InfeasibleError as err:  # explain and optimize disagree only on a solver bug
        print(f"{args.input}: no legal placement exists on {target.name}: {err}")
        return 1
    except SolverTimeoutError as err:
        print(f"{args.input}: undecided: {err}")
        return EXIT_UNDECIDED
    used = int(result.placement.max()) + 1 if graph.num_nodes else 0
    print(
        f"{args.input}: a legal placement exists on {target.name} (proved by this witness): "
        f"{graph.num_nodes} ops on {used} chips with a bottleneck stage of "
        f"{result.period_s * 1e6:.2f} us ({result.claim}, solver "
        f"{backend_for(solver_for(target), 'optimize.mzn')}; link time "
        "not included)"
    )
    return 0
