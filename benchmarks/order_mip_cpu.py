"""Which repairs does the order-mip MIP prove within a CPU budget? This revision against another.

    nice -n 10 .venv/bin/python benchmarks/order_mip_cpu.py [--cpu 4.5] [--baseline REV]
        [--chip-weight] [--only nn29,nn85] [--out benchmarks/results/order_mip_cpu.md]

For each repair of `benchmarks/solver_decide.py`'s instance set that the heuristic answers (the exact
repair's start), the repair MIP of `chiplex.targets.order_mip` (the data `repair(exact=True)` builds,
as in `order_mip_trace.py`) is solved in this process by HiGHS with `order-mip`'s setting (presolve
on, one thread), stopped after --cpu CPU seconds by a callback: CPU seconds, not wall time, so the
numbers hold on a loaded machine (a solve in the product also pays about 0.3-0.5 s for its child
process and the heuristic). With --baseline, `src/chiplex/targets/order_mip.py` of that git revision
is solved the same way beside it, for the effect of a formulation change. With --chip-weight, this
revision is solved a second time with legality.mzn's `max_chip_weight` set to the per-chip weight
bound (`solver.chip_weight_bound`, CP-SAT, computed in a child process and its CPU seconds reported
apart), as a repair would have it if the bound were computed for it (today only `explain` computes
it, and only when the heuristics find no placement). The bound and incumbent are in moved ops (the
objective / change_weight).

This process loads highspy, so it must not load ortools: it never calls CP-SAT.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import highspy  # noqa: E402
import order_mip_trace  # noqa: E402
import solver_decide  # noqa: E402

from chiplex.targets import flatzinc, heuristics, order_mip  # noqa: E402
from chiplex.targets import solver as solver_module  # noqa: E402
from chiplex.targets.legality import resolve_rules  # noqa: E402


def module_at(revision: str, folder: Path) -> ModuleType:
    """order_mip.py as of `revision`, imported under another name."""
    text = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{revision}:src/chiplex/targets/order_mip.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = folder / "order_mip_baseline.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("order_mip_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def solve(
    module: ModuleType, data: dict[str, object], cpu: float
) -> tuple[bool, float, float, float]:
    """(proved, CPU s, bound, incumbent), the last two in moved ops."""
    started = time.process_time()
    model = module.build("repair.mzn", data)
    highs = flatzinc.exact_highs(10 * cpu + 60, 0)
    module.load_model(highs, model)
    solution = highspy.HighsSolution()
    guide = np.asarray(data["guide"], dtype=np.int64)
    solution.col_value = module.start_values(model, guide).tolist()
    solution.value_valid = True
    highs.setSolution(solution)

    def stop(event: highspy.cb.HighsCallbackEvent) -> None:  # type: ignore[name-defined]
        if time.process_time() - started > cpu:
            event.interrupt()

    highs.cbMipInterrupt.subscribe(stop)
    highs.run()
    info = highs.getInfo()
    weight = float(data["change_weight"])  # type: ignore[arg-type]
    proved = highs.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return (
        proved,
        time.process_time() - started,
        (float(info.mip_dual_bound) + model.offset) / weight,
        (float(info.objective_function_value) + model.offset) / weight,
    )


CHIP_WEIGHT_CHILD = """
import json, resource, sys
sys.path.insert(0, sys.argv[1])
import solver_decide
from chiplex.targets import heuristics, solver
from chiplex.targets.legality import resolve_rules
inst = next(i for i in solver_decide.instances(102) if i.name == sys.argv[2])
problem = heuristics.problem_for(inst.graph, resolve_rules(inst.graph, inst.target))
own = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
before = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
bound = solver.chip_weight_bound(problem)
own = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
after = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
print(json.dumps({"held": bound.held, "proved": bound.proved, "cpu": after - before}))
"""
"""Computes the per-chip weight bound of one instance (CP-SAT: ortools cannot share this process)."""


def chip_weight(name: str) -> tuple[int, bool, float]:
    """(held bytes, proved, CPU s of chip_weight.mzn with its MiniZinc flattening) for `name`."""
    reply = subprocess.run(
        [sys.executable, "-c", CHIP_WEIGHT_CHILD, str(ROOT / "benchmarks"), name],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    answer = json.loads(reply.strip().splitlines()[-1])
    return int(answer["held"]), bool(answer["proved"]), float(answer["cpu"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=float, default=4.5, help="CPU seconds per solve")
    parser.add_argument("--baseline", help="a git revision whose order_mip.py to solve beside")
    parser.add_argument(
        "--chip-weight",
        action="store_true",
        help="also solve this revision with the per-chip weight bound (chip_weight.mzn) in the data",
    )
    parser.add_argument("--only", default="", help="instance name prefixes, comma-separated")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/order_mip_cpu.md")
    args = parser.parse_args()
    only = tuple(name + "-" for name in args.only.split(",") if name)
    with tempfile.TemporaryDirectory() as tmp:
        versions = [("this revision", order_mip)]
        if args.baseline:
            versions.insert(0, (args.baseline, module_at(args.baseline, Path(tmp))))
        if args.chip_weight:
            versions.append(("this revision with the per-chip weight bound", order_mip))
        names = " | ".join(f"{label}: proved, CPU s, bound / incumbent" for label, _ in versions)
        lines = [
            f"# order_mip_cpu: repairs the order-mip MIP proves within {args.cpu:g} CPU s",
            "",
            f"Made by `python benchmarks/order_mip_cpu.py {' '.join(sys.argv[1:])}`; "
            f"`/proc/loadavg` before: {Path('/proc/loadavg').read_text().strip()}.",
            "",
            f"| repair | {names} |",
            "|---|" + "---|" * len(versions),
        ]
        proved = [0] * len(versions)
        seconds = [0.0] * len(versions)
        count = 0
        weight_seconds = 0.0
        for inst in solver_decide.instances(102):
            if only and not inst.name.startswith(only):
                continue
            for kind, candidate in inst.candidates:
                data = order_mip_trace.repair_data(inst, candidate)
                if data is None:
                    continue  # no heuristic start (nn17, nn65): the product starts from a witness
                count += 1
                cells = []
                for i, (label, module) in enumerate(versions):
                    extra = ""
                    if label.endswith("weight bound"):
                        held, exact, weight_cpu = chip_weight(inst.name)
                        problem = heuristics.problem_for(
                            inst.graph, resolve_rules(inst.graph, inst.target)
                        )
                        solver_module._CHIP_WEIGHT_CACHE[problem] = solver_module.ChipWeightBound(
                            held, exact, None
                        )
                        data = order_mip_trace.repair_data(inst, candidate)
                        solver_module._CHIP_WEIGHT_CACHE.pop(problem)
                        assert data is not None
                        extra = f" (+{weight_cpu:.2f} for the weight bound)"
                        weight_seconds += weight_cpu
                    ok, cpu, bound, incumbent = solve(module, data, args.cpu)
                    proved[i] += ok
                    seconds[i] += cpu
                    mark = "yes" if ok else "no"
                    cells.append(f"{mark}, {cpu:.2f}{extra}, {bound:.2f} / {incumbent:.2f}")
                lines.append(f"| {inst.name} ({kind}) | " + " | ".join(cells) + " |")
                print(lines[-1], flush=True)
        totals = " | ".join(
            f"{proved[i]}/{count} proved, {seconds[i]:.1f} CPU s" for i in range(len(versions))
        )
        if args.chip_weight:
            totals += f" (+{weight_seconds:.1f} CPU s for the weight bounds)"
        lines.append(f"| **total** | {totals} |")
        lines.append(f"\n`/proc/loadavg` after: {Path('/proc/loadavg').read_text().strip()}")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-2:]))


if __name__ == "__main__":
    main()
