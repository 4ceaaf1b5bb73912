"""Which repairs does the order-mip MIP prove within a CPU budget? This revision against another.

    nice -n 10 .venv/bin/python benchmarks/order_mip_cpu.py [--cpu 4.5] [--baseline REV]
        [--only nn29,nn85] [--out benchmarks/results/order_mip_cpu.md]

For each repair of `benchmarks/solver_decide.py`'s instance set that the heuristic answers (the exact
repair's start), the repair MIP of `chiplex.targets.order_mip` (the data `repair(exact=True)` builds,
as in `order_mip_trace.py`) is solved in this process by HiGHS with `order-mip`'s setting (presolve
on, one thread), stopped after --cpu CPU seconds by a callback: CPU seconds, not wall time, so the
numbers hold on a loaded machine (a solve in the product also pays about 0.3-0.5 s for its child
process and the heuristic). With --baseline, `src/chiplex/targets/order_mip.py` of that git revision
is solved the same way beside it, for the effect of a formulation change. The bound and incumbent are
in moved ops (the objective / change_weight).

This process loads highspy, so it must not load ortools: it never calls CP-SAT.
"""

from __future__ import annotations

import argparse
import importlib.util
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

from chiplex.targets import flatzinc, order_mip  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=float, default=4.5, help="CPU seconds per solve")
    parser.add_argument("--baseline", help="a git revision whose order_mip.py to solve beside")
    parser.add_argument("--only", default="", help="instance name prefixes, comma-separated")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/order_mip_cpu.md")
    args = parser.parse_args()
    only = tuple(name + "-" for name in args.only.split(",") if name)
    with tempfile.TemporaryDirectory() as tmp:
        versions = [("this revision", order_mip)]
        if args.baseline:
            versions.insert(0, (args.baseline, module_at(args.baseline, Path(tmp))))
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
        for inst in solver_decide.instances(102):
            if only and not inst.name.startswith(only):
                continue
            for kind, candidate in inst.candidates:
                data = order_mip_trace.repair_data(inst, candidate)
                if data is None:
                    continue  # no heuristic start (nn65): the product solves it without one
                count += 1
                cells = []
                for i, (_, module) in enumerate(versions):
                    ok, cpu, bound, incumbent = solve(module, data, args.cpu)
                    proved[i] += ok
                    seconds[i] += cpu
                    mark = "yes" if ok else "no"
                    cells.append(f"{mark}, {cpu:.2f}, {bound:.2f} / {incumbent:.2f}")
                lines.append(f"| {inst.name} ({kind}) | " + " | ".join(cells) + " |")
                print(lines[-1], flush=True)
        totals = " | ".join(
            f"{proved[i]}/{count} proved, {seconds[i]:.1f} CPU s" for i in range(len(versions))
        )
        lines.append(f"| **total** | {totals} |")
        lines.append(f"\n`/proc/loadavg` after: {Path('/proc/loadavg').read_text().strip()}")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-2:]))


if __name__ == "__main__":
    main()
