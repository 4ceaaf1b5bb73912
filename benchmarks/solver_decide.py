"""Does the constraint solver decide? Feasibility, proved repairs and proved optima, per back end.

    nice -n 10 .venv/bin/python benchmarks/solver_decide.py [--instances 102] [--solvers cp-sat,highs,gecode]
        [--decide-limit 5] [--repair-limit 5] [--optimize-limit 10] [--zoo] [--out benchmarks/results]
        [--skip-optimize] [--others-every 3]
    nice -n 10 .venv/bin/python benchmarks/solver_decide.py --recheck benchmarks/results/solver_decide.json
        [--recheck-limit 20]    # what auto left open, again with more time, in CPU seconds

A fixed, seeded set of instances of 10-200 ops on 2-16 chips (`chiplex.testing` generators: BERT-like
`transformer_graph` and layered `nn_graph` DAGs), capacity 0.8-2x `min_capacity` (below 1x many have no
legal placement), half of them with target rules (max_hop_span, pins, colocation) drawn from a legal
placement, some with a pin that contradicts the memory (often infeasible). Per back end:

- decide: `explain(time_limit=--decide-limit)`: decided (feasible or a proved reason) or undecided;
- repair: `repair(exact=True, time_limit=--repair-limit)` of a noisy (20% of ops moved 1-2 chips) and
  a random candidate per feasible instance: proved optimal or not; also how many more ops the numpy
  heuristic (`exact=False`, what the RL loop uses) changes than the proved optimum;
- optimize: `optimize(time_limit=--optimize-limit)`: proved, and the gap to the best proved optimum of
  any back end.

With --zoo, every examples/models/*.mlir on both presets too (decide with 10 s, optimize with 10 s).
Writes solver_decide.md (the tables) and solver_decide.json (every measurement) under --out.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chiplex.errors import ChiplexError
from chiplex.ir.graph import Graph
from chiplex.targets import solver as solver_module
from chiplex.targets.legality import is_legal, resolve_rules
from chiplex.targets.solver import InfeasibleError, SolverTimeoutError, explain, optimize, repair
from chiplex.targets.target import Target, TargetRules
from chiplex.testing import (
    min_capacity,
    nn_graph,
    noisy_placement,
    reference_placement,
    target_for,
    transformer_graph,
)

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (MiniZinc, fzn-gecode, the HiGHS process):
    what a call costs, less dependent on the load of a shared machine than wall time."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" ")[0]
    except OSError:
        return "?"


@dataclass
class Instance:
    name: str
    graph: Graph
    target: Target
    rules: bool
    candidates: list[tuple[str, np.ndarray]] = field(default_factory=list)


def instances(count: int) -> list[Instance]:
    out = []
    for i in range(count):
        rng = np.random.default_rng(1000 + i)
        n = int(rng.integers(10, 201))
        k = int(rng.integers(2, 17))
        if i % 2 == 0:
            graph = transformer_graph(n, seed=i)
            kind = "transformer"
        else:
            graph = nn_graph(lambda lo, hi, r=rng: int(r.integers(lo, hi + 1)), n, name=f"nn{i}")
            kind = "nn"
        k = min(k, graph.num_nodes)
        slack = float(rng.choice([0.8, 0.9, 0.97, 1.0, 1.05, 1.2, 1.5, 2.0]))
        topology = str(rng.choice(["ring", "chain", "mesh"]))
        capacity = int(np.ceil(slack * min_capacity(graph, k)))
        with_rules = i % 4 >= 2
        rules = TargetRules()
        reference = reference_placement(graph, k, capacity)
        if with_rules:
            rules = _rules(rng, graph, k, reference)
        target = target_for(graph, k, slack=slack, topology=topology, rules=rules, name=f"t{i}")
        inst = Instance(f"{kind}{i}-n{graph.num_nodes}-k{k}-s{slack:g}", graph, target, with_rules)
        legal = reference if reference is not None and is_legal(graph, target, reference) else None
        # One candidate per instance (alternating) keeps the run short.
        if legal is not None and i % 4 in (0, 3):
            inst.candidates.append(("noisy", noisy_placement(legal, k, seed=i)))
        else:
            inst.candidates.append(("random", rng.integers(0, k, size=graph.num_nodes)))
        out.append(inst)
    return out


def _rules(
    rng: np.random.Generator, graph: Graph, k: int, reference: np.ndarray | None
) -> TargetRules:
    n = graph.num_nodes
    names = graph.op_names
    if reference is None or rng.random() < 0.25:
        # A pin of a late op to chip 0 and of an early op to the last chip: often infeasible.
        late, early = int(rng.integers(n // 2, n)), int(rng.integers(0, max(n // 4, 1)))
        return TargetRules(pinned=((names[late], 0), (names[early], k - 1)), max_hop_span=None)
    widest = int((reference[graph.dst] - reference[graph.src]).max(initial=0))
    span = max(widest, 1) + int(rng.integers(0, 2)) if rng.random() < 0.6 else None
    pins = tuple(
        (names[int(op)], int(reference[op])) for op in rng.choice(n, size=2, replace=False)
    )
    op = int(rng.integers(0, n))
    mates = np.flatnonzero(reference == reference[op])
    other = int(mates[int(rng.integers(0, len(mates)))])
    coloc = ((names[op], names[other]),) if other != op else ()
    return TargetRules(max_hop_span=span, pinned=pins, colocated=coloc)


def fresh() -> None:
    """Forget cached per-graph bounds and witnesses, so each back end pays for its own first call."""
    solver_module._CHIP_WEIGHT_CACHE.clear()
    solver_module._KNOWN_PLACEMENT.clear()


def measure(inst: Instance, backend: str, args: argparse.Namespace) -> dict[str, object]:
    graph, target = inst.graph, inst.target
    row: dict[str, object] = {"instance": inst.name, "solver": backend, "rules": inst.rules}
    row["ops"], row["chips"] = graph.num_nodes, target.num_chips
    fresh()
    start, cpu = time.perf_counter(), cpu_seconds()
    messages = explain(graph, target, time_limit=args.decide_limit, solver=backend)
    row["decide_s"] = time.perf_counter() - start
    row["decide_cpu_s"] = cpu_seconds() - cpu
    row["load"] = loadavg()
    row["decided"] = not (messages and messages[0].startswith("undecided"))
    row["feasible"] = None if not row["decided"] else not messages
    row["reason"] = messages[0] if messages else ""
    if row["feasible"] is not True:
        return row
    rules = resolve_rules(graph, target)
    repairs = []
    for kind, candidate in inst.candidates:
        try:
            heuristic = repair(graph, target, candidate, rules=rules)
        except (SolverTimeoutError, InfeasibleError, ChiplexError) as err:
            repairs.append({"kind": kind, "error": "heuristic: " + str(err)[:200]})
            continue
        start, cpu = time.perf_counter(), cpu_seconds()
        try:
            exact = repair(
                graph,
                target,
                candidate,
                exact=True,
                time_limit=args.repair_limit,
                rules=rules,
                solver=backend,
            )
        except (SolverTimeoutError, InfeasibleError, ChiplexError) as err:
            repairs.append({"kind": kind, "error": str(err)[:200]})
            continue
        repairs.append(
            {
                "kind": kind,
                "seconds": time.perf_counter() - start,
                "cpu_s": cpu_seconds() - cpu,
                "proved": exact.proved_optimal,
                "changed": exact.changed,
                "distance": exact.distance,
                "heuristic_changed": heuristic.changed,
                "heuristic_distance": heuristic.distance,
                "heuristic_method": heuristic.method,
            }
        )
    row["repairs"] = repairs
    if args.skip_optimize:
        return row
    start = time.perf_counter()
    try:
        best = optimize(graph, target, time_limit=args.optimize_limit, solver=backend)
        row["optimize_s"] = time.perf_counter() - start
        row["optimize_proved"] = best.proved_optimal
        row["period_s"] = best.period_s
    except (SolverTimeoutError, InfeasibleError, ChiplexError) as err:
        row["optimize_s"] = time.perf_counter() - start
        row["optimize_error"] = str(err)[:200]
    return row


def zoo_rows(backend: str, args: argparse.Namespace) -> list[dict[str, object]]:
    from chiplex.ir.graph import graph_from_module
    from chiplex.ir.parse import load_module
    from chiplex.targets.target import load_target

    rows = []
    for path in sorted((ROOT / "examples" / "models").glob("*.mlir")):
        graph = graph_from_module(load_module(str(path)))
        for preset in ("tpu-ring8", "simba-6x6"):
            target = load_target(preset)
            fresh()
            row: dict[str, object] = {"model": path.stem, "target": preset, "solver": backend}
            row["ops"] = graph.num_nodes
            start = time.perf_counter()
            messages = explain(graph, target, time_limit=10.0, solver=backend)
            row["decide_s"] = time.perf_counter() - start
            row["decided"] = not (messages and messages[0].startswith("undecided"))
            row["feasible"] = None if not row["decided"] else not messages
            row["reason"] = messages[0] if messages else ""
            if row["feasible"]:
                start = time.perf_counter()
                best = optimize(graph, target, time_limit=args.optimize_limit, solver=backend)
                row["optimize_s"] = time.perf_counter() - start
                row["optimize_proved"] = best.proved_optimal
                row["period_s"] = best.period_s
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def pct(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.0f}%)" if whole else "-"


def summarise(rows: list[dict[str, object]], solvers: list[str], args: argparse.Namespace) -> str:
    optimum: dict[str, float] = {}
    for row in rows:
        if row.get("optimize_proved"):
            name = str(row["instance"])
            optimum[name] = min(optimum.get(name, np.inf), float(row["period_s"]))  # type: ignore[arg-type]
    lines = [
        f"| back end | decided within {args.decide_limit:g} s | median / max decide s | infeasible "
        f"proved | repair proved within {args.repair_limit:g} s | median repair s (CPU s) | optimize "
        f"within 1% of proved optimum within {args.optimize_limit:g} s | optimize proved |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend in solvers:
        mine = [r for r in rows if r["solver"] == backend]
        if not mine:
            continue
        decided = [
            r for r in mine if r["decided"] and float(r["decide_s"]) <= args.decide_limit + 0.5
        ]  # type: ignore[arg-type]
        times = [float(r["decide_s"]) for r in mine]  # type: ignore[arg-type]
        infeasible = [r for r in mine if r["feasible"] is False]
        reps = [x for r in mine for x in r.get("repairs", [])]  # type: ignore[attr-defined]
        proved = [x for x in reps if x.get("proved")]
        rep_times = [x["seconds"] for x in reps if "seconds" in x]
        rep_cpu = [x["cpu_s"] for x in reps if "cpu_s" in x]
        opt = [r for r in mine if r["instance"] in optimum and "period_s" in r]
        close = [
            r
            for r in opt
            if float(r["period_s"]) <= 1.01 * optimum[str(r["instance"])]
            and float(r["optimize_s"]) <= args.optimize_limit + 1.0
        ]  # type: ignore[arg-type]
        opt_all = [r for r in mine if r["feasible"]]
        opt_proved = [r for r in opt_all if r.get("optimize_proved")]
        lines.append(
            f"| {backend} | {pct(len(decided), len(mine))} | "
            f"{np.median(times):.2f} / {max(times):.2f} | {len(infeasible)} | "
            f"{pct(len(proved), len(reps))} | {np.median(rep_times) if rep_times else 0:.2f} ({np.median(rep_cpu) if rep_cpu else 0:.2f} CPU) | "
            f"{pct(len(close), len(opt))} | {pct(len(opt_proved), len(opt_all))} |"
        )
    # Heuristic repair quality against proved optima (any back end).
    best: dict[tuple[str, str], int] = {}
    heur: dict[tuple[str, str], int] = {}
    for row in rows:
        for x in row.get("repairs", []):  # type: ignore[attr-defined]
            key = (str(row["instance"]), x["kind"])
            if x.get("proved"):
                best[key] = min(best.get(key, 1 << 30), int(x["changed"]))
            if "heuristic_changed" in x:
                heur[key] = int(x["heuristic_changed"])
    lines.append("")
    lines.append(
        "| candidates | proved optimum known | heuristic changes more ops | mean extra ops | max extra |"
    )
    lines.append("|---|---|---|---|---|")
    for kind in ("noisy", "random"):
        keys = [k for k in best if k[1] == kind and k in heur]
        extra = [heur[k] - best[k] for k in keys]
        worse = sum(e > 0 for e in extra)
        lines.append(
            f"| {kind} | {len(keys)} | {pct(worse, len(keys))} | "
            f"{np.mean(extra) if extra else 0:.2f} | {max(extra, default=0)} |"
        )
    return "\n".join(lines)


REASON_KINDS = (
    ("the per-chip weight bound (chips, MiB of weights per chip)", "can hold more than"),
    ("one op or colocated group larger than a chip", "exceed one chip"),
    ("one op's weights + working set larger than a chip", "needs "),
    ("total weights larger than all chips", "total weights"),
    ("pins against the dataflow, hop span or the memory before/after them", "pinned"),
    ("memory with the structural rules (a solver proof)", "the ops do not fit"),
    ("a minimal set of conflicting rules (a solver proof)", "no placement satisfies"),
)


def reasons_table(rows: list[dict[str, object]]) -> str:
    """Each infeasible instance's reason, by kind, with one example per kind."""
    lines = ["| reason for infeasibility | instances | example |", "|---|---|---|"]
    seen: dict[str, list[str]] = {}
    for row in rows:
        if row["feasible"] is not False or row["solver"] != rows[0]["solver"]:
            continue
        reason = str(row["reason"])
        kind = next((k for k, key in REASON_KINDS if key in reason), "other")
        seen.setdefault(kind, []).append(reason)
    for kind, reasons in seen.items():
        example = reasons[0] if len(reasons[0]) < 240 else reasons[0][:237] + "..."
        lines.append(f"| {kind} | {len(reasons)} | {example.replace('|', '/')} |")
    return "\n".join(lines)


def zoo_table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| model | target | solver | ops | answer | decide s | optimize s | proved |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        answer = (
            "feasible"
            if r["feasible"]
            else ("infeasible" if r["feasible"] is False else "undecided")
        )
        lines.append(
            f"| {r['model']} | {r['target']} | {r['solver']} | {r['ops']} | {answer} | "
            f"{float(r['decide_s']):.2f} | {float(r.get('optimize_s', 0.0)):.2f} | "  # type: ignore[arg-type]
            f"{'yes' if r.get('optimize_proved') else ('-' if not r['feasible'] else 'no')} |"
        )
    return "\n".join(lines)


def recheck(path: Path, limit: float, out: Path) -> None:
    """Re-run what `auto` left open in an earlier run's JSON (undecided questions, unproved repairs)
    with a longer wall-clock `limit`, recording CPU seconds: on a loaded machine, how much CPU did the
    proof need? Writes solver_decide_recheck.md."""
    earlier = json.loads(path.read_text())
    cases = {c.name: c for c in instances(102)}
    lines = [
        f"# solver_decide --recheck: what `auto` left open, again with {limit:g} s\n",
        f"`/proc/loadavg` before: {Path('/proc/loadavg').read_text().strip()}\n",
        "| instance | question | answer | wall s | CPU s (process + children) | load |",
        "|---|---|---|---|---|---|",
    ]
    for row in earlier["instances"]:
        if row["solver"] != "auto":
            continue
        inst = cases[row["instance"]]
        if not row["decided"] or float(row["decide_s"]) > 5.5:
            fresh()
            start, cpu = time.perf_counter(), cpu_seconds()
            messages = explain(inst.graph, inst.target, time_limit=limit)
            answer = messages[0][:60] if messages else "feasible"
            lines.append(
                f"| {inst.name} | decide | {answer} | {time.perf_counter() - start:.2f} | "
                f"{cpu_seconds() - cpu:.2f} | {loadavg()} |"
            )
            print(lines[-1], flush=True)
        for x in row.get("repairs", []):
            if x.get("proved"):
                continue
            candidate = dict(inst.candidates)[x["kind"]]
            start, cpu = time.perf_counter(), cpu_seconds()
            result = repair(inst.graph, inst.target, candidate, exact=True, time_limit=limit)
            answer = f"{result.changed} ops moved, " + (
                "proved" if result.proved_optimal else "not proved"
            )
            lines.append(
                f"| {inst.name} | repair ({x['kind']}) | {answer} | "
                f"{time.perf_counter() - start:.2f} | {cpu_seconds() - cpu:.2f} | {loadavg()} |"
            )
            print(lines[-1], flush=True)
    lines.append(f"\n`/proc/loadavg` after: {Path('/proc/loadavg').read_text().strip()}")
    (out / "solver_decide_recheck.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=102)
    parser.add_argument("--solvers", default="auto,order-mip,cp-sat,gecode,highs")
    parser.add_argument("--decide-limit", type=float, default=5.0)
    parser.add_argument("--repair-limit", type=float, default=5.0)
    parser.add_argument("--optimize-limit", type=float, default=10.0)
    parser.add_argument("--others-every", type=int, default=3)
    parser.add_argument("--first", type=int, default=0, help="skip the instances before this index")
    parser.add_argument(
        "--merge", type=Path, help="a JSON-lines log of an earlier run whose rows are kept"
    )
    parser.add_argument(
        "--skip-optimize",
        action="store_true",
        help="decide and repair only (a repair comparison of back ends at the same load)",
    )
    parser.add_argument("--zoo", action="store_true")
    parser.add_argument("--zoo-solvers", default="cp-sat")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--recheck",
        type=Path,
        help="instead of a run: re-run what auto left open in this earlier solver_decide.json",
    )
    parser.add_argument("--recheck-limit", type=float, default=20.0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.recheck is not None:
        recheck(args.recheck, args.recheck_limit, args.out)
        return
    solvers = args.solvers.split(",")
    load_before = (
        Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").exists() else "?"
    )
    cases = instances(args.instances)
    rows = []
    started = time.perf_counter()
    for index, inst in enumerate(cases):
        if index < args.first:
            continue
        for backend in solvers:
            if backend != solvers[0] and index % args.others_every:
                continue  # the other back ends on every --others-every-th instance only
            row = measure(inst, backend, args)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.merge is not None:
        earlier = [json.loads(x) for x in args.merge.read_text().splitlines() if x.startswith("{")]
        rows = [r for r in earlier if "instance" in r] + rows
    zoo = [r for b in args.zoo_solvers.split(",") for r in zoo_rows(b, args)] if args.zoo else []
    args.out.mkdir(parents=True, exist_ok=True)
    text = (
        f"# solver_decide: {len(cases)} instances; {solvers[0]} on all, "
        f"{', '.join(solvers[1:]) or 'no other back end'} on every {args.others_every}th "
        f"({time.perf_counter() - started:.0f} s in all)\n\n"
        f"`/proc/loadavg` before: {load_before}; after: "
        f"{Path('/proc/loadavg').read_text().strip() if Path('/proc/loadavg').exists() else '?'}. "
        "Time limits are wall-clock: on a loaded machine a call gets a fraction of a core.\n\n"
        + summarise(rows, solvers, args)
        + "\n\n"
        + reasons_table(rows)
        + ("\n\n## Model zoo\n\n" + zoo_table(zoo) if zoo else "")
        + "\n"
    )
    (args.out / "solver_decide.md").write_text(text)
    (args.out / "solver_decide.json").write_text(
        json.dumps({"instances": rows, "zoo": zoo}, indent=1)
    )
    print(text)


if __name__ == "__main__":
    main()
