"""Placement quality: every search strategy on zoo models and targets, with equal budgets and seeds.

    .venv/bin/python benchmarks/placement_quality.py                  # the committed table (defaults)
    .venv/bin/python benchmarks/placement_quality.py --evaluations 300 --cases bert_base@tpu-ring8
    .venv/bin/python benchmarks/placement_quality.py --executor ray --ray-address HEAD:6379   # on a cluster

For each case (model @ target) every strategy in `chiplex.passes.search.SEARCH_STRATEGIES` runs with the
same `Budget(evaluations, seconds)` and seed. random and anneal spend the evaluations; greedy and dp
answer once; cp runs MiniZinc with the budget's seconds as its time limit and is evaluated once. Every
candidate is repaired (when it breaks a rule) and simulated the same way, and every reported throughput
is the best placement re-simulated with 64 micro-batches. Writes

    benchmarks/results/placement_quality.md      the table: throughput, gap to bound, effort to 99%
    benchmarks/results/placement_<case>.png      convergence (best so far vs evaluations and seconds)

With `--executor ray` the whole grid of (case, strategy, seed) searches runs as Ray tasks (one CPU
each, every search serial inside its task; the graph and target go into the object store once per
case), on the cluster at `--ray-address` / `RAY_ADDRESS`, else on a local Ray with `--workers` CPUs.
Results are the same as the serial run's (each search is deterministic); only the seconds change.

Models come from `examples/models/<name>.mlir` (written by `chiplex import-torch`), or are imported
from the zoo when the file is missing.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on CI machines
import matplotlib.pyplot as plt  # noqa: E402

from chiplex.benchmarks_suite import SUITE  # noqa: E402
from chiplex.commands._args import add_executor_arguments  # noqa: E402
from chiplex.ir.graph import Graph, graph_from_module  # noqa: E402
from chiplex.passes.search import (  # noqa: E402
    FINAL_CANDIDATES,
    SEARCH_STRATEGIES,
    Budget,
    SearchResult,
    search,
)
from chiplex.runtime_sim.evaluate import (  # noqa: E402
    REPORT_MICROBATCHES,
    SEARCH_MICROBATCHES,
    default_workers,
    make_executor,
    strip_graph,
)
from chiplex.targets.target import Target, load_target  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CASES = tuple(case.spec for case in SUITE)
"""The placement benchmark suite (`chiplex.benchmarks_suite.SUITE`): one list for every placer."""
DEFAULT_EVALUATIONS = 2000
DEFAULT_SECONDS = 120.0
"""Wall-clock cap per strategy and case; it is also cp's MiniZinc time limit. Chosen so that random
and anneal finish their evaluations well before it on the 2-core CI machine (the table shows it)."""
DEFAULT_SEEDS = (0, 1, 2)
DETERMINISTIC = ("greedy", "dp", "cp")
"""Strategies run once per case (first seed): greedy and dp ignore the seed, and cp's answer is the
solver's (its seed only orders Gecode's search); more seeds would only repeat them."""
STYLE = {
    "random": ("tab:gray", "-"),
    "anneal": ("tab:red", "-"),
    "greedy": ("tab:green", "--"),
    "dp": ("tab:blue", "--"),
    "cp": ("tab:purple", ":"),
}


@dataclass
class Case:
    model: str
    target_name: str
    graph: Graph
    target: Target
    results: list[SearchResult]

    @property
    def name(self) -> str:
        return f"{self.model}@{self.target_name}"


def load_graph(model: str) -> Graph:
    path = ROOT / "examples" / "models" / f"{model}.mlir"
    if path.exists():
        from chiplex.ir.parse import load_module

        return graph_from_module(load_module(path))
    from chiplex.ir.torch_import import load_model_spec

    return graph_from_module(load_model_spec(model))


def run_case(
    spec: str,
    strategies: list[str],
    budget: Budget,
    seeds: list[int],
    workers: int,
    kind: str | None = None,
) -> Case:
    model, _, target_name = spec.partition("@")
    graph = load_graph(model)
    target = load_target(target_name)
    case = Case(model, target_name, graph, target, [])
    print(f"\n== {case.name}: {graph.subset_summary()}", flush=True)
    executor = make_executor(workers, kind)
    try:
        for seed in seeds:
            for strategy in strategies:
                if strategy in DETERMINISTIC and seed != seeds[0]:
                    continue
                result = search(
                    graph,
                    target,
                    strategy,
                    budget,
                    seed,
                    executor=executor,
                    progress=sys.stderr.isatty(),
                )
                case.results.append(result)
                reached = result.reached(0.99)
                print(
                    f"   {strategy:>7} seed {seed}: {result.throughput:12,.1f} samples/s  "
                    f"gap {100 * result.gap_to_bound:6.2f}%  {result.evaluations:5d} evals "
                    f"{result.seconds:7.1f} s  99% at {reached.eval_index} evals / "
                    f"{reached.wall_s:.1f} s",
                    flush=True,
                )
    finally:
        executor.close()
    return case


def run_grid_on_ray(
    specs: list[str],
    strategies: list[str],
    budget: Budget,
    seeds: list[int],
    workers: int,
    address: str | None,
) -> list[Case]:
    """Every (case, seed, strategy) search of `run_case` as one Ray task; results in its order."""
    import ray

    from chiplex.runtime_sim.ray_executor import init_ray

    started = init_ray(address, workers)
    try:
        # A task per search, one CPU each, serial inside; Ray re-runs a task whose worker died.
        remote_search = ray.remote(num_cpus=1, max_retries=2)(search)
        cases: list[Case] = []
        pending: dict[object, tuple[Case, int]] = {}
        for spec in specs:
            model, _, target_name = spec.partition("@")
            case = Case(model, target_name, load_graph(model), load_target(target_name), [])
            cases.append(case)
            graph_ref, target_ref = ray.put(strip_graph(case.graph)), ray.put(case.target)
            for seed in seeds:
                for strategy in strategies:
                    if strategy in DETERMINISTIC and seed != seeds[0]:
                        continue
                    ref = remote_search.remote(
                        graph_ref, target_ref, strategy, budget, seed, workers=1
                    )
                    pending[ref] = (case, len(case.results))
                    case.results.append(None)  # type: ignore[arg-type]  # filled below
        print(f"\n{len(pending)} searches submitted to Ray", flush=True)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            case, index = pending.pop(done[0])
            result = case.results[index] = ray.get(done[0])
            print(
                f"   {case.name} {result.strategy} seed {result.seed}: "
                f"{result.throughput:,.1f} samples/s  gap {100 * result.gap_to_bound:.2f}%  "
                f"{result.evaluations} evals {result.seconds:.1f} s",
                flush=True,
            )
    finally:
        if started:
            ray.shutdown()
    return cases


def plot_case(case: Case, path: Path) -> None:
    fig, (by_eval, by_time) = plt.subplots(1, 2, figsize=(11, 4.2))
    bound = case.results[0].upper_bound
    for result in case.results:
        color, style = STYLE.get(result.strategy, ("black", "-"))
        label = result.strategy if result.seed == case.results[0].seed else None
        evals = [p.eval_index for p in result.history]
        best = [p.best_throughput for p in result.history]
        times = [p.wall_s for p in result.history]
        if len(result.history) == 1:
            # One-shot answers: a level line across the plot, marked where they were found.
            by_eval.axhline(best[0], color=color, linestyle=style, label=label)
            by_time.axhline(best[0], color=color, linestyle=style, label=label)
            by_time.plot(times, best, marker="o", color=color)
            continue
        by_eval.step(evals, best, where="post", color=color, linestyle=style, label=label)
        by_time.step(times, best, where="post", color=color, linestyle=style, label=label)
    for ax, xlabel in ((by_eval, "evaluations"), (by_time, "wall seconds")):
        ax.axhline(bound, color="black", linestyle="-.", linewidth=1, label="upper bound")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"best samples/s ({case.results[0].search_microbatches} micro-batches)")
        ax.grid(True, which="both", alpha=0.3)
    by_eval.legend(loc="best", fontsize=8)
    fig.suptitle(f"{case.graph.name} on {case.target.name}: best throughput so far")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary(cases: list[Case]) -> str:
    """Case x strategy: mean throughput over seeds (range when several) and the mean gap to bound."""
    strategies = list(dict.fromkeys(r.strategy for case in cases for r in case.results))
    lines = [
        "| case | upper bound | "
        + " | ".join(strategies)
        + " | dp below best | best below bound |",
        "|---|---:|" + "---:|" * len(strategies) + "---:|---:|",
    ]
    for case in cases:
        cells = []
        best = max(r.throughput for r in case.results)
        for strategy in strategies:
            runs = [r for r in case.results if r.strategy == strategy]
            if not runs:
                cells.append("")
                continue
            values = [r.throughput for r in runs]
            mean = sum(values) / len(values)
            gap = 1 - mean / runs[0].upper_bound
            text = f"{mean:,.0f}"
            if len(values) > 1:
                text += f" ({min(values):,.0f}-{max(values):,.0f})"
            if max(values) == best:
                text = f"**{text}**"
            cells.append(f"{text}, gap {100 * gap:.1f}%")
        dp_runs = [r.throughput for r in case.results if r.strategy == "dp"]
        dp_cell = f"{100 * (1 - dp_runs[0] / best):.1f}%" if dp_runs and best > 0 else ""
        lines.append(
            f"| {case.graph.name} @ {case.target.name} | {case.results[0].upper_bound:,.0f} | "
            + " | ".join(cells)
            + f" | {dp_cell} | {100 * (1 - best / case.results[0].upper_bound):.1f}% |"
        )
    return "\n".join(lines)


def markdown(
    cases: list[Case], budget: Budget, seeds: list[int], command: str, total_s: float
) -> str:
    first = cases[0].results[0]
    lines = [
        "# Placement quality",
        "",
        f"Regenerate: `{command}`",
        "",
        f"Machine: {default_workers()} CPUs ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}. Whole run: **{total_s / 60:.1f} min**.",
        "",
        f"Budget per strategy and case: {budget} (first reached wins). random and anneal run with "
        f"seeds {', '.join(map(str, seeds))} and spend the evaluations; greedy and dp answer once; cp "
        "runs MiniZinc with the seconds as its time limit and is evaluated once (these three run once, "
        f"seed {seeds[0]}). cp's optimality is for its own model (the bottleneck stage's compute time, "
        "no links or buffers), not for the simulator. Cases: `chiplex.benchmarks_suite.SUITE`. Every candidate is repaired when it breaks a "
        f"rule and simulated with {first.search_microbatches} micro-batches during the search; the "
        f"{FINAL_CANDIDATES} best distinct placements are re-simulated with {first.microbatches} "
        "micro-batches and the best of those is the reported throughput.",
        "",
        "Columns: *throughput* (samples/s, simulated), *gap* = 1 - throughput / upper bound, *evals* and "
        "*seconds* spent, *to 99%* = evaluations and seconds until the best so far first reached 99% of "
        "its final value, *repaired* = evaluated candidates that broke a rule and were repaired.",
        "",
        "## Summary",
        "",
        summary(cases),
        "",
    ]
    for case in cases:
        r0 = case.results[0]
        lines += [
            f"## {case.graph.name} on {case.target.name}",
            "",
            f"{case.graph.subset_summary()}; {case.target.num_chips} chips. Upper bound "
            f"{r0.upper_bound:,.1f} samples/s ({r0.upper_bound_reason}). "
            f"Convergence: `placement_{case.name.replace('@', '_')}.png`.",
            "",
            "| strategy | seed | throughput | gap to bound | evals | seconds | to 99% (evals) "
            "| to 99% (s) | repaired | notes |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        best = max(r.throughput for r in case.results)
        for r in case.results:
            reached = r.reached(0.99)
            mark = "**" if r.throughput == best else ""
            lines.append(
                f"| {r.strategy} | {r.seed} | {mark}{r.throughput:,.1f}{mark} | "
                f"{100 * r.gap_to_bound:.1f}% | {r.evaluations} | {r.seconds:.1f} | "
                f"{reached.eval_index} | {reached.wall_s:.1f} | {r.repaired} | {'; '.join(r.notes)} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", nargs="+", default=list(CASES), metavar="MODEL@TARGET")
    parser.add_argument("--strategies", nargs="+", default=list(SEARCH_STRATEGIES))
    parser.add_argument("--evaluations", type=int, default=DEFAULT_EVALUATIONS)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    parser.add_argument("--workers", type=int, default=default_workers())
    add_executor_arguments(parser)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    unknown = [s for s in args.strategies if s not in SEARCH_STRATEGIES]
    if unknown:
        parser.error(f"unknown strategies {unknown}; known: {list(SEARCH_STRATEGIES)}")

    command = " ".join(
        [
            ".venv/bin/python",
            "benchmarks/placement_quality.py",
            *map(shlex.quote, argv or sys.argv[1:]),
        ]
    )
    budget = Budget(evaluations=args.evaluations, seconds=args.seconds)
    print(
        f"placement quality: {len(args.cases)} cases x {len(args.strategies)} strategies x "
        f"{len(args.seeds)} seeds, budget {budget}, {args.workers} workers, search at "
        f"{SEARCH_MICROBATCHES} micro-batches, reported at {REPORT_MICROBATCHES}"
    )
    started = time.perf_counter()
    if args.executor == "ray" or args.ray_address:
        cases = run_grid_on_ray(
            args.cases, args.strategies, budget, args.seeds, args.workers, args.ray_address
        )
    else:
        cases = [
            run_case(spec, args.strategies, budget, args.seeds, args.workers, args.executor)
            for spec in args.cases
        ]
    total = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    for case in cases:
        plot_case(case, args.out / f"placement_{case.name.replace('@', '_')}.png")
    report = args.out / "placement_quality.md"
    report.write_text(markdown(cases, budget, args.seeds, command, total))
    print(f"\nwrote {report} and {len(cases)} plots in {args.out} ({total / 60:.1f} min)")
    print(f"regenerate with: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
