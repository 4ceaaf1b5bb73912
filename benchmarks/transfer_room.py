"""Where does dp leave room? Held-out models on held-out shapes and other targets the split allows.

    .venv/bin/python benchmarks/transfer_room.py                          # the committed table
    .venv/bin/python benchmarks/transfer_room.py --models bert_base --targets tpu-ring8 --learned all
    .venv/bin/python benchmarks/transfer_room.py --weak --cases vit_b16@held-out-ring16 --evaluations 1000

`transfer.py` can only measure pre-training's saving where some strategy gets past the learned placer's
anchor (dp's placement, or greedy's when better): where dp's placement is already annealing's
2,000-evaluation answer every learned variant ties at it from its first evaluations. This script runs,
for each held-out model (`HELD_OUT_MODELS`) on each target (`--targets`: the held-out shapes sized
'tight', 'loose' or with DRAM, `held-out-ring16-loose` etc., and presets), with seed 0:

    dp             one answer
    anneal@E       annealing for --evaluations (it starts from the better of dp's and greedy's)
    scratch@E      the learned placer from a new policy       (--learned room: only where anneal != dp)
    ft@E           the learned placer from the checkpoint      (--learned all: on every case)

and writes benchmarks/results/transfer_room.md: a case has *room* when anneal or a learned variant
ends >= --room (0.5%) above dp; those are the cases where fine-tuning against scratch is measurable.

`--weak` measures the paper's own setting instead: the policy alone on a weak anchor, the work-balanced
contiguous split (`options={"anchor": "balanced"}`, what the placer falls back to when no heuristic
placement is legal): zero-shot (16 samples) and trained for --evaluations, pre-trained against from
scratch, their best so far at each of --budgets, and the evaluations the pre-trained policy needs to
reach from-scratch's final; dp beside them for scale (annealing starts from dp's placement: on the
held-out cases of transfer.md it ends there). It says what the weights know without
dp's help, and it is labelled as such (transfer_weak.md).
"""

from __future__ import annotations

import argparse
import functools
import platform
import shlex
import sys
import time
from pathlib import Path

from chiplex.errors import ChiplexError
from chiplex.learned.corpus import HELD_OUT_MODELS
from chiplex.learned.pretrain import shipped_checkpoint
from chiplex.passes.search import Budget, SearchResult, search

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer import RESULTS, evaluations_to_reach  # noqa: E402
from transfer import load_case as load_case_uncached  # noqa: E402

load_case = functools.lru_cache(maxsize=None)(load_case_uncached)

TARGETS = (
    "held-out-ring16",
    "held-out-mesh25",
    "held-out-ring16-loose",
    "held-out-mesh25-loose",
    "held-out-ring16-dram",
    "held-out-mesh25-dram",
    "tpu-ring16",
    "tpu-torus4x4",
    "tpu-mesh4x4",
    "tpu-ring8",
    "tpu-ring8-2xsram",
    "tpu-ring4",
    "simba-6x6",
)
ROOM = 0.005


def run(
    spec: str, strategy: str, evaluations: int, args: argparse.Namespace, **options: object
) -> SearchResult | None:
    graph, target = load_case(spec)
    try:
        return search(
            graph,
            target,
            strategy,
            Budget(evaluations=evaluations, seconds=args.seconds),
            args.seed,
            workers=args.workers,
            options=options or None,
            stop_at_bound=False,  # policies compared at equal budgets
        )
    except ChiplexError as err:  # infeasible, or nothing legal found: a row saying so
        print(f"  {spec} {strategy}: {err}", file=sys.stderr, flush=True)
        return None


def cell(result: SearchResult | None, dp: SearchResult | None) -> str:
    if result is None:
        return "-"
    text = f"{result.throughput:,.1f}"
    if dp is not None and dp.throughput > 0:
        text += f" ({result.throughput / dp.throughput:.4f})"
    return text


def room_table(args: argparse.Namespace, checkpoint: Path) -> list[str]:
    e = args.evaluations
    lines = [
        f"| case | chips | bound | dp | anneal@{e} (/ dp) | scratch@{e} (/ dp) | ft@{e} (/ dp) | "
        "scratch: evals to its final | ft: evals to scratch's final | room |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for spec in case_specs(args):
        started = time.perf_counter()
        try:
            _, target = load_case(spec)
        except ChiplexError as err:
            print(f"  {spec}: {err}", file=sys.stderr, flush=True)
            continue
        dp = run(spec, "dp", 1, args)
        anneal = run(spec, "anneal", e, args)
        if dp is None or anneal is None:
            lines.append(
                f"| {spec} | {target.num_chips} | - | {cell(dp, None)} | "
                f"{cell(anneal, dp)} | - | - | - | - | no legal dp or anneal |"
            )
            yield_line(lines, started)
            continue
        differs = anneal.throughput > dp.throughput * (1 + 1e-4)
        scratch = tuned = None
        if args.learned == "all" or (args.learned == "room" and differs):
            scratch = run(spec, "learned", e, args)
            tuned = run(spec, "learned", e, args, checkpoint=checkpoint)
        best = max(r.throughput for r in (anneal, scratch, tuned) if r is not None)
        room = best >= dp.throughput * (1 + args.room)
        reach_ft = reach_own = "-"
        if scratch is not None and tuned is not None:
            level = scratch.search_throughput
            own, ft = evaluations_to_reach(scratch, level), evaluations_to_reach(tuned, level)
            reach_own = str(own) if own is not None else "-"
            reach_ft = str(ft) if ft is not None else "not reached"
        lines.append(
            f"| {spec} | {target.num_chips} | {anneal.upper_bound:,.0f} | {dp.throughput:,.1f} | "
            f"{cell(anneal, dp)} | {cell(scratch, dp)} | {cell(tuned, dp)} | {reach_own} | "
            f"{reach_ft} | {'**yes**' if room else 'no'} |"
        )
        yield_line(lines, started)
    return lines


def best_at(result: SearchResult, evaluations: int) -> float:
    """The best-so-far (search micro-batches) after `evaluations` evaluations."""
    best = 0.0
    for point in result.history:
        if point.eval_index > evaluations:
            break
        best = point.best_throughput
    return best


def checkpoint_labels(checkpoints: list[Path]) -> list[str]:
    """Column names: each checkpoint's file stem ('pretrained' for the shipped one), its directory's
    name too when two stems are alike."""
    stems = [c.stem for c in checkpoints]
    return [f"{c.parent.name}/{c.stem}" if stems.count(c.stem) > 1 else c.stem for c in checkpoints]


def weak_table(args: argparse.Namespace, checkpoints: list[Path]) -> list[str]:
    """The paper's setting: every policy starts from the work-balanced split (no dp, no greedy):
    an untrained one, from scratch, and each checkpoint, zero-shot and trained."""
    e = args.evaluations
    budgets = [b for b in sorted(args.budgets) if b < e]
    labels = checkpoint_labels(checkpoints)
    trained = not args.zero_shot_only
    header = ["case", "dp", "balanced anchor (/ dp)", "untrained@16"]
    header += [f"{label}@16" for label in labels]
    if trained:
        header += [f"{' / '.join(['scratch', *labels])} @{b}" for b in budgets]
        header += [f"scratch@{e} (/ dp)", *(f"{label}@{e} (/ dp)" for label in labels)]
        header += ["scratch: evals to its final"]
        for label in labels:
            header += [f"{label}: evals to scratch's final", f"{label}: saving"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for spec in case_specs(args):
        started = time.perf_counter()
        dp = run(spec, "dp", 1, args)
        anchor = run(spec, "learned", 1, args, anchor="balanced", zero_shot=True)
        zero = [
            run(spec, "learned", 16, args, anchor="balanced", zero_shot=True, **extra)
            for extra in ({}, *({"checkpoint": c} for c in checkpoints))
        ]
        row = [spec, cell(dp, None), cell(anchor, dp), *(cell(z, None) for z in zero)]
        if trained:
            scratch = run(spec, "learned", e, args, anchor="balanced")
            tuned = [
                run(spec, "learned", e, args, anchor="balanced", checkpoint=c) for c in checkpoints
            ]
            runs = [scratch, *tuned]
            row += [
                " / ".join("-" if r is None else f"{best_at(r, b):,.1f}" for r in runs)
                for b in budgets
            ]
            row += [cell(r, dp) for r in runs]
            level = None if scratch is None else scratch.search_throughput
            own = None if scratch is None else evaluations_to_reach(scratch, level)
            row.append("-" if own is None else str(own))
            # Scratch ends where it started (re-simulated): nothing it reached to save on.
            stuck = (
                scratch is not None
                and anchor is not None
                and scratch.throughput <= anchor.throughput * (1 + 1e-9)
            )
            for result in tuned:
                ft = (
                    None if result is None or level is None else evaluations_to_reach(result, level)
                )
                saving = "-" if ft is None or own is None else f"{own / ft:.1f}x"
                if stuck:
                    saving = "none possible: scratch ends at the anchor"
                row += ["not reached" if ft is None else str(ft), saving]
        lines.append("| " + " | ".join(row) + " |")
        yield_line(lines, started)
    return lines


def case_specs(args: argparse.Namespace) -> list[str]:
    """--cases when given, else every model of --models on every target of --targets."""
    return args.cases or [f"{m}@{t}" for m in args.models for t in args.targets]


def yield_line(lines: list[str], started: float) -> None:
    print(f"{lines[-1]}  [{time.perf_counter() - started:.0f} s]", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(HELD_OUT_MODELS))
    parser.add_argument("--targets", nargs="+", default=list(TARGETS))
    parser.add_argument(
        "--cases", nargs="+", default=None, help="model@target, instead of the grid"
    )
    parser.add_argument("--evaluations", type=int, default=2000)
    parser.add_argument(
        "--learned",
        choices=("room", "all", "none"),
        default="room",
        help="where to run scratch and fine-tuned: cases where anneal differs from dp (default), "
        "every case, or none",
    )
    parser.add_argument("--room", type=float, default=ROOM, help="gain over dp that counts as room")
    parser.add_argument("--weak", action="store_true", help="the balanced-anchor measurement")
    parser.add_argument(
        "--budgets",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[50, 200],
        help="--weak: budgets below --evaluations at which to compare the two (default 50,200)",
    )
    parser.add_argument("--seconds", type=float, default=None, help="cap on each search's time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--checkpoint",
        type=Path,
        nargs="+",
        default=None,
        help="default: the shipped one; --weak: one column per checkpoint (e.g. a candidate beside it)",
    )
    parser.add_argument(
        "--zero-shot-only",
        action="store_true",
        help="--weak: the anchor and zero-shot columns only (no 1,000-evaluation runs)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    checkpoints = args.checkpoint or [shipped_checkpoint()]
    out = args.out or RESULTS / ("transfer_weak.md" if args.weak else "transfer_room.md")
    started = time.perf_counter()
    lines = weak_table(args, checkpoints) if args.weak else room_table(args, checkpoints[0])
    command = "python benchmarks/transfer_room.py " + " ".join(
        map(shlex.quote, argv if argv is not None else sys.argv[1:])
    )
    title = (
        "# Transfer, the paper's setting: the policy alone on a work-balanced anchor"
        if args.weak
        else "# Where does dp leave room? Held-out models on held-out and other targets"
    )
    text = (
        f"{title}\n\nMade by `{command.strip()}` in {(time.perf_counter() - started) / 60:.1f} min "
        f"on {platform.machine()} ({args.workers} evaluation worker(s)), seed {args.seed}, checkpoint(s) "
        f"{', '.join(f'`{c}`' for c in checkpoints)}. Simulated samples/s (over dp's).\n\n"
        + "\n".join(lines)
        + "\n"
    )
    out.write_text(text, encoding="utf-8")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
