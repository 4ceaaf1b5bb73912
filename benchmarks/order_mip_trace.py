"""Where does an order-mip repair proof spend its time? CPU seconds to proof per HiGHS setting.

    nice -n 10 .venv/bin/python benchmarks/order_mip_trace.py [--limit 15] [--min-seconds 1.4]
        [--from benchmarks/results/solver_decide.json] [--out benchmarks/results/order_mip_trace.md]

For each repair of `benchmarks/solver_decide.py`'s instance set that took at least --min-seconds (or was
not proved) in an earlier run's JSON, the exact repair's order-encoded MIP (`chiplex.targets.order_mip`,
the same data `repair(exact=True)` builds) is solved in this process once per `order_mip.RACE` setting,
recording (CPU seconds, HiGHS dual bound, incumbent) at every HiGHS callback. The table gives the CPU
seconds each setting needs to prove the optimum, what the race of both would need with a core each (the
first moment the larger bound meets the better incumbent), and, when unproved, the bound and the
incumbent in moved ops (the objective / change_weight). CPU seconds, so the numbers hold on a loaded
machine; the proof is what `exact_highs` asks for (zero gap).

This process loads highspy, so it must not load ortools: it never calls CP-SAT.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import highspy  # noqa: E402
import solver_decide  # noqa: E402

from chiplex.targets import flatzinc, heuristics, order_mip  # noqa: E402
from chiplex.targets import solver as solver_module  # noqa: E402
from chiplex.targets.legality import resolve_rules  # noqa: E402

Trace = list[tuple[float, float, float]]


def repair_data(inst: solver_decide.Instance, candidate: np.ndarray) -> dict[str, object] | None:
    """repair.mzn's data as `solver._repair_minizinc` builds it, started from the heuristic."""
    problem = heuristics.problem_for(inst.graph, resolve_rules(inst.graph, inst.target))
    found = heuristics.heuristic_repair(problem, candidate)
    if found is None:
        return None
    weight = heuristics.change_weight(problem, candidate)
    data, _ = solver_module._base_data(problem, active=solver_module.ALL_ACTIVE)
    changed = int((found != candidate).sum())
    distance = int(np.abs(found - candidate).sum())
    data.update(
        candidate=candidate.tolist(),
        guide=found.tolist(),
        change_weight=weight,
        distance_weight=1,
        objective_limit=weight * changed + distance,
        improve_only=True,
    )
    return data


def trace(data: dict[str, object], limit: float, options: dict[str, str]) -> Trace:
    """(CPU s, dual bound, incumbent) at each HiGHS callback, the last entry the final state."""
    started = time.process_time()
    model = order_mip.build("repair.mzn", data)
    highs = flatzinc.exact_highs(limit, 0)
    for key, value in options.items():
        highs.setOptionValue(key, value)
    order_mip.load_model(highs, model)
    order_mip.set_start(highs, model, np.asarray(data["guide"], dtype=np.int64))
    points: Trace = []

    def record(event: highspy.cb.HighsCallbackEvent) -> None:  # type: ignore[name-defined]
        out = event.data_out
        points.append(
            (
                time.process_time() - started,
                out.mip_dual_bound + model.offset,
                out.mip_primal_bound + model.offset,
            )
        )

    highs.cbMipInterrupt.subscribe(record)
    highs.cbMipImprovingSolution.subscribe(record)
    highs.run()
    info = highs.getInfo()
    final = float(info.objective_function_value) + model.offset
    bound = final if highs.getModelStatus() == highspy.HighsModelStatus.kOptimal else None
    points.append(
        (
            time.process_time() - started,
            bound if bound is not None else float(info.mip_dual_bound) + model.offset,
            final,
        )
    )
    return points


def proved_at(traces: list[Trace]) -> float | None:
    """The first CPU second at which the largest bound meets the best incumbent, each trace on its own
    core (one trace: that setting alone)."""
    events = sorted((t, i, b, p) for i, tr in enumerate(traces) for t, b, p in tr)
    bounds, incumbents = [-np.inf] * len(traces), [np.inf] * len(traces)
    for t, i, b, p in events:
        bounds[i], incumbents[i] = max(bounds[i], b), min(incumbents[i], p)
        if order_mip.proves(max(bounds), min(incumbents)):
            return t
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=15.0, help="wall-clock s per setting")
    parser.add_argument("--min-seconds", type=float, default=1.4)
    parser.add_argument(
        "--from", dest="source", type=Path, default=ROOT / "benchmarks/results/solver_decide.json"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/order_mip_trace.md")
    args = parser.parse_args()
    earlier = json.loads(args.source.read_text())["instances"]
    slow = {
        (r["instance"], x["kind"])
        for r in earlier
        if r["solver"] in ("auto", "order-mip")
        for x in r.get("repairs", [])
        if "seconds" in x and (x["seconds"] >= args.min_seconds or not x.get("proved"))
    }
    names = ["presolve " + options["presolve"] for options in order_mip.RACE]
    lines = [
        f"# order_mip_trace: CPU seconds to prove a repair, per HiGHS setting ({args.limit:g} s each)",
        "",
        f"`/proc/loadavg` before: {Path('/proc/loadavg').read_text().strip()}. Repairs of "
        f"`{args.source.name}` that took >= {args.min_seconds:g} s or were not proved.",
        "",
        "| repair | "
        + " | ".join(f"{n} (CPU s)" for n in names)
        + " | race, a core each (CPU s) | unproved: bound / incumbent (moved ops) |",
        "|---|" + "---|" * (len(names) + 2),
    ]
    for inst in solver_decide.instances(102):
        for kind, candidate in inst.candidates:
            if (inst.name, kind) not in slow:
                continue
            data = repair_data(inst, candidate)
            if data is None:
                continue
            traces = [trace(data, args.limit, options) for options in order_mip.RACE]
            alone = [proved_at([tr]) for tr in traces]
            both = proved_at(traces)
            weight = float(data["change_weight"])  # type: ignore[arg-type]
            gap = ""
            if both is None:
                bound = max(max(b for _, b, _ in tr) for tr in traces)
                incumbent = min(min(p for _, _, p in tr) for tr in traces)
                gap = f"{bound / weight:.2f} / {incumbent / weight:.2f}"
            cells = [f"{t:.2f}" if t is not None else "-" for t in [*alone, both]]
            lines.append(f"| {inst.name} ({kind}) | " + " | ".join(cells) + f" | {gap} |")
            print(lines[-1], flush=True)
    lines.append(f"\n`/proc/loadavg` after: {Path('/proc/loadavg').read_text().strip()}")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
