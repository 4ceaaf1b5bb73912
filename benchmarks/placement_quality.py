"""Placement quality: every search strategy on zoo models and targets, with equal budgets and seeds.

    .venv/bin/python benchmarks/placement_quality.py                  # the committed table (defaults)
    .venv/bin/python benchmarks/placement_quality.py --evaluations 300 --cases bert_base@tpu-ring8
    .venv/bin/python benchmarks/placement_quality.py --executor ray --ray-address HEAD:6379   # on a cluster
    .venv/bin/python benchmarks/placement_quality.py --strategies learned --merge   # add one strategy

For each case (model @ target) every strategy in `chiplex.passes.search.SEARCH_STRATEGIES` runs with the
same `Budget(evaluations, seconds)` and seed. random and anneal spend the evaluations; greedy and dp
answer once; cp runs MiniZinc with the budget's seconds as its time limit and is evaluated once. Every
candidate is repaired (when it breaks a rule) and simulated the same way, and every reported throughput
is the best placement re-simulated with 64 micro-batches (its steady-state rate). Writes

    benchmarks/results/placement_quality.md      the table: throughput, gap to bound, effort to 99%
    benchmarks/results/placement_<case>.png      convergence (best so far vs evaluations and seconds)
    benchmarks/results/learned_<case>.png        the learned placer's learning curves (best throughput
                                                 and mean reward of each PPO update vs evaluations)

With `--merge`, the rows of strategies, seeds and cases that were not run are kept from the existing
table (so one strategy, case or seed can be added or re-run without the whole grid); convergence plots
are then not redrawn, the learned curves (`learned_<case>.json`) are merged per seed.

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
from dataclasses import dataclass, field
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
from chiplex.targets.cost import throughput_upper_bound  # noqa: E402
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
    "learned": ("tab:orange", "-"),
}


@dataclass
class Case:
    model: str
    target_name: str
    graph: Graph
    target: Target
    results: list[SearchResult]
    curves: dict[int, list[tuple[int, float]]] = field(default_factory=dict)
    """learned: (evaluations so far, mean reward of the update) per seed."""

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
                options = None
                if strategy == "learned":
                    curve = case.curves.setdefault(seed, [])
                    options = {
                        "on_update": lambda evals, stats, curve=curve: curve.append(
                            (evals, stats.mean_reward)
                        )
                    }
                result = search(
                    graph,
                    target,
                    strategy,
                    budget,
                    seed,
                    executor=executor,
                    progress=sys.stderr.isatty(),
                    options=options,
                    stop_at_bound=False,  # strategies compared at equal budgets
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


def learning_curves(case: Case, store: Path, merge: bool) -> dict[str, dict[str, list]]:
    """This run's learned curves per seed ({"best": [[evals, best]], "reward": [[evals, mean]]}),
    merged over the curves already in `store` (a JSON file per case) when merging."""
    import json

    curves: dict[str, dict[str, list]] = {}
    if merge and store.exists():
        curves = json.loads(store.read_text())
    for result in case.results:
        if result.strategy == "learned" and result.seed in case.curves:
            curves[str(result.seed)] = {
                "best": [[p.eval_index, p.best_throughput] for p in result.history],
                "reward": [list(point) for point in case.curves[result.seed]],
            }
    if curves:
        store.write_text(json.dumps(curves))
    return curves


def plot_learning(case: Case, curves: dict[str, dict[str, list]], path: Path) -> None:
    """The learned placer per seed: best throughput so far and each update's mean reward."""
    if not curves:
        return
    fig, (best_ax, reward_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    bound = case.results[0].upper_bound
    for seed, curve in sorted(curves.items()):
        evals, best = zip(*curve["best"], strict=True)
        best_ax.step(evals, best, where="post", label=f"seed {seed}")
        evals, rewards = zip(*curve["reward"], strict=True)
        reward_ax.plot(evals, rewards, marker=".", label=f"seed {seed}")
    best_ax.axhline(bound, color="black", linestyle="-.", linewidth=1, label="upper bound")
    best_ax.set_ylabel(f"best samples/s ({case.results[0].search_microbatches} micro-batches)")
    reward_ax.set_ylabel("mean reward per update (throughput / bound)")
    for ax in (best_ax, reward_ax):
        ax.set_xlabel("evaluations")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(f"learned on {case.graph.name} / {case.target.name}: learning curves")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@dataclass(frozen=True)
class StoredPoint:
    eval_index: int
    wall_s: float


@dataclass(frozen=True)
class StoredResult:
    """A row of an existing table (for --merge): what the table needs, without the history."""

    strategy: str
    seed: int
    throughput: float
    evaluations: int
    seconds: float
    to_99: StoredPoint
    repaired: int
    notes: tuple[str, ...]
    upper_bound: float
    upper_bound_reason: str
    microbatches: int
    search_microbatches: int

    @property
    def gap_to_bound(self) -> float:
        # Stored throughputs are rounded to 0.1: one that reaches the bound may read a hair above it.
        return 1.0 - min(self.throughput, max(self.throughput - 0.05, self.upper_bound)) / (
            self.upper_bound
        )

    def reached(self, fraction: float = 0.99) -> StoredPoint:
        return self.to_99


def stored_rows(report: Path, case: Case) -> list[StoredResult]:
    """The rows of `case` in an existing placement_quality.md."""
    import re

    if not report.exists():
        return []
    text = report.read_text()
    micro = re.search(r"simulated with (\d+) micro-batches during the search", text)
    final = re.search(r"re-simulated with (\d+) micro-batches", text)
    header = f"## {case.graph.name} on {case.target.name}\n"
    if header not in text:
        return []
    section = text.split(header, 1)[1].split("\n## ", 1)[0]
    # Kept rows are measured against today's bound (the table's may predate a tighter one).
    bound = throughput_upper_bound(case.graph, case.target)
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 10 or not cells[1].isdigit():
            continue
        number = float(cells[2].strip("*").replace(",", ""))
        rows.append(
            StoredResult(
                strategy=cells[0],
                seed=int(cells[1]),
                throughput=number,
                evaluations=int(cells[4]),
                seconds=float(cells[5]),
                to_99=StoredPoint(int(cells[6]), float(cells[7])),
                repaired=int(cells[8]),
                notes=tuple(n for n in cells[9].split("; ") if n),
                upper_bound=bound.throughput,
                upper_bound_reason=bound.reason,
                microbatches=int(final.group(1)) if final else REPORT_MICROBATCHES,
                search_microbatches=int(micro.group(1)) if micro else SEARCH_MICROBATCHES,
            )
        )
    return rows


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
            gap = sum(r.gap_to_bound for r in runs) / len(runs)
            text = f"{mean:,.0f}"
            if len(values) > 1:
                text += f" ({min(values):,.0f}-{max(values):,.0f})"
            if round(max(values), 1) == round(best, 1):  # merged rows carry 0.1 precision
                text = f"**{text}**"
            cells.append(f"{text}, gap {100 * gap:.1f}%")
        dp_runs = [r.throughput for r in case.results if r.strategy == "dp"]
        dp_cell = f"{100 * (1 - dp_runs[0] / best):.1f}%" if dp_runs and best > 0 else ""
        lines.append(
            f"| {case.graph.name} @ {case.target.name} | {case.results[0].upper_bound:,.0f} | "
            + " | ".join(cells)
            + f" | {dp_cell} | {100 * min(r.gap_to_bound for r in case.results):.1f}% |"
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
        f"Budget per strategy and case: {budget} (first reached wins). random, anneal and learned run with "
        f"seeds {', '.join(map(str, seeds))} and spend the evaluations; greedy and dp answer once; cp "
        "runs MiniZinc with the seconds as its time limit and is evaluated once (these three run once, "
        f"seed {seeds[0]}). cp's optimality is for its own model (dp's stage model: chip compute, boundary link time "
        "and buffer round trips, no DRAM streaming or mesh routes), not for the simulator. Cases: `chiplex.benchmarks_suite.SUITE`. Every candidate is repaired when it breaks a "
        f"rule and simulated with {first.search_microbatches} micro-batches during the search; the "
        f"{FINAL_CANDIDATES} best distinct placements are re-simulated with {first.microbatches} "
        "micro-batches and the best of those is the reported throughput: the simulator's steady-state "
        "rate, the repeating pattern of completions without the pipeline's drain at the end "
        "(`docs/simulator.md`, *What is measured*).",
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
            mark = "**" if round(r.throughput, 1) == round(best, 1) else ""
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
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the existing table's rows of the strategies not run (plots: learned only)",
    )
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
    report = args.out / "placement_quality.md"
    for case in cases:
        stem = case.name.replace("@", "_")
        curves = learning_curves(case, args.out / f"learned_{stem}.json", args.merge)
        plot_learning(case, curves, args.out / f"learned_{stem}.png")
        if args.merge:
            kept = [
                r
                for r in stored_rows(report, case)
                if r.strategy not in args.strategies or r.seed not in args.seeds
            ]
            case.results = sorted(
                [*kept, *case.results],  # type: ignore[list-item]
                key=lambda r: (
                    r.seed,
                    list(STYLE).index(r.strategy) if r.strategy in STYLE else 99,
                ),
            )
        else:
            plot_case(case, args.out / f"placement_{stem}.png")
    if args.merge:
        # Cases not run this time keep their existing section (every strategy's rows).
        for spec in CASES:
            if spec in args.cases:
                continue
            model, _, target_name = spec.partition("@")
            kept_case = Case(model, target_name, load_graph(model), load_target(target_name), [])
            kept_case.results = stored_rows(report, kept_case)  # type: ignore[assignment]
            if kept_case.results:
                cases.append(kept_case)
        order = {spec: i for i, spec in enumerate(CASES)}
        cases.sort(key=lambda case: order.get(case.name, len(order)))
    text = markdown(cases, budget, args.seeds, command, total)
    if args.merge and report.exists():
        import re

        old = report.read_text()
        before = re.search(r"Regenerate: `([^`]*)`", old)
        minutes = re.search(r"Whole run: \*\*([\d.]+) min\*\*", old)
        if before and before.group(1) != command:
            text = text.replace(
                f"Regenerate: `{command}`",
                f"Regenerate: `{before.group(1)}`, then `{command}` (merged: its strategies' rows "
                "replace theirs, the other rows are kept)",
            )
        if minutes:
            text = text.replace(
                f"Whole run: **{total / 60:.1f} min**",
                f"Whole run: **{float(minutes.group(1)) + total / 60:.1f} min** "
                f"({total / 60:.1f} min for {', '.join(args.strategies)})",
            )
    report.write_text(text)
    print(f"\nwrote {report} and {len(cases)} plots in {args.out} ({total / 60:.1f} min)")
    print(f"regenerate with: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
