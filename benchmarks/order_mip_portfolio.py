"""Could two processes prove the open repairs within 5 s? The best case of four portfolios, in CPU s.

    nice -n 10 .venv/bin/python benchmarks/order_mip_portfolio.py [--cpu 9] [--seeds 0,1]
        [--only nn29,nn61,nn69,nn77,nn93] [--out benchmarks/results/order_mip_portfolio.md]

On the machine's two cores a portfolio of two solver processes proves a repair at the CPU second the
faster of them (or the pair, sharing what they found) does, plus a child's start-up (about 0.3 s on an
idle machine). For each repair `repair(exact=True)` leaves unproved in `solver_decide.py`'s instance
set (default: those with a heuristic start, the MIP's `guide`), this solves the order-mip repair MIP in
this process, one HiGHS thread, `order-mip`'s setting, stopped after --cpu CPU seconds, per HiGHS seed:

- *lex*: the repair objective (change_weight x moved ops + chip distance), as the product solves it.
  Two seeds raced: the faster seed's time.
- *count*: the moved-op count alone (no distance tie-break): when its bound first reaches the final
  count, when it finds a placement with that count, when it proves it.
- *lex + injected*: *lex*, given *count*'s best placement (through HiGHS's user-solution callback) at
  the CPU second *count* found it: the best case of a portfolio in which a count-only process hands its
  incumbent to the lexicographic one.
- *phase 2*: the repair objective with the count fixed to *count*'s proved optimum (one row) and started
  from *count*'s placement, HiGHS's sub-MIP heuristics (RINS, RENS, root reduced cost) off: a second
  phase after *count*, whose time adds to *count*'s.

Bound / incumbent in moved ops (the objective / change_weight). This process loads highspy, so it must
not load ortools: it never calls CP-SAT.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import highspy  # noqa: E402
import order_mip_trace  # noqa: E402
import solver_decide  # noqa: E402

from chiplex.targets import flatzinc, order_mip  # noqa: E402

OPEN_REPAIRS = "nn29,nn61,nn69,nn77,nn93"
"""The repairs with a heuristic start that `solver_decide.py --solvers auto` left unproved at idle
(benchmarks/results/solver_decide_auto_idle.md); nn17 and nn65 have no heuristic start."""

HEURISTICS_OFF = {
    "mip_heuristic_run_rins": False,
    "mip_heuristic_run_rens": False,
    "mip_heuristic_run_root_reduced_cost": False,
}


@dataclass
class Run:
    proved: bool
    cpu: float
    bound: float
    incumbent: float
    placement: np.ndarray
    trace: list[tuple[float, float, float]]
    """(CPU s, dual bound, incumbent) at each callback, objective units."""


def run(
    model: order_mip.OrderModel,
    start: np.ndarray,
    cpu: float,
    seed: int,
    *,
    options: dict[str, object] | None = None,
    fixed_count: tuple[np.ndarray, float, int] | None = None,
    inject: tuple[float, np.ndarray] | None = None,
) -> Run:
    """Solve `model` from `start` for at most `cpu` CPU seconds. `fixed_count`: (count cost vector,
    its offset, m) adds the row count = m; `inject`: (CPU s, column values) hands HiGHS that solution
    once that CPU second has passed."""
    started = time.process_time()
    highs = flatzinc.exact_highs(10 * cpu + 60, seed)
    for key, value in (options or {}).items():
        highs.setOptionValue(key, value)
    order_mip.load_model(highs, model)
    if fixed_count is not None:
        cost, offset, m = fixed_count
        cols = np.flatnonzero(cost)
        highs.addRow(m - offset, m - offset, len(cols), cols.astype(np.int32), cost[cols])
    order_mip.set_start(highs, model, start)
    trace: list[tuple[float, float, float]] = []

    def record(event: highspy.cb.HighsCallbackEvent) -> None:  # type: ignore[name-defined]
        out = event.data_out
        now = time.process_time() - started
        trace.append((now, out.mip_dual_bound + model.offset, out.mip_primal_bound + model.offset))
        if now > cpu:
            event.interrupt()

    injected = [False]

    def hand_over(event: highspy.cb.HighsCallbackEvent) -> None:  # type: ignore[name-defined]
        assert inject is not None
        if not injected[0] and time.process_time() - started >= inject[0]:
            event.data_in.setSolution(inject[1])
            injected[0] = True

    highs.cbMipInterrupt.subscribe(record)
    highs.cbMipImprovingSolution.subscribe(record)
    if inject is not None:
        highs.cbMipUserSolution.subscribe(hand_over)
    highs.run()
    info = highs.getInfo()
    values = np.array(highs.getSolution().col_value)
    return Run(
        highs.getModelStatus() == highspy.HighsModelStatus.kOptimal,
        time.process_time() - started,
        float(info.mip_dual_bound) + model.offset,
        float(info.objective_function_value) + model.offset,
        np.array(order_mip.placement_of(model, values), dtype=np.int64),
        trace,
    )


def first(trace: list[tuple[float, float, float]], test: object) -> float | None:
    """The first CPU second at which `test(bound, incumbent)` holds."""
    for t, bound, incumbent in trace:
        if test(bound, incumbent):  # type: ignore[operator]
            return t
    return None


def cell(r: Run, weight: float) -> str:
    """The CPU s of a proof, or the bound / incumbent in moved ops."""
    if r.proved:
        return f"**{r.cpu:.2f}**"
    return f"no ({r.bound / weight:.2f} / {r.incumbent / weight:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=float, default=9.0, help="CPU seconds per solve")
    parser.add_argument("--seeds", default="0,1", help="HiGHS seeds, comma-separated")
    parser.add_argument("--only", default=OPEN_REPAIRS, help="instance names, comma-separated")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/order_mip_portfolio.md"
    )
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    only = tuple(name + "-" for name in args.only.split(",") if name)
    lines = [
        f"# order_mip_portfolio: the best case of two-process portfolios on the open repairs "
        f"({args.cpu:g} CPU s per solve)",
        "",
        f"Made by `python benchmarks/order_mip_portfolio.py {' '.join(sys.argv[1:])}`; "
        f"`/proc/loadavg` before: {Path('/proc/loadavg').read_text().strip()}. CPU seconds of one "
        "HiGHS thread; bold: proved at that second; no (bound / incumbent, moved ops): not proved. "
        "A repair proves within 5 s wall on two idle cores only if a column's time plus a child's "
        "start-up (about 0.3 s) stays under 5.",
        "",
        "| repair | seed | lex | count: bound reaches m / finds m / proved (m) | "
        "lex + count's placement injected | count + phase 2 (count fixed) |",
        "|---|---|---|---|---|---|",
    ]
    for inst in solver_decide.instances(102):
        if not inst.name.startswith(only):
            continue
        for kind, candidate in inst.candidates:
            data = order_mip_trace.repair_data(inst, candidate)
            if data is None:
                continue
            weight = float(data["change_weight"])  # type: ignore[arg-type]
            guide = np.asarray(data["guide"], dtype=np.int64)
            full = order_mip.build("repair.mzn", data)
            count_model = order_mip.build(
                "repair.mzn", dict(data, change_weight=1, distance_weight=0)
            )
            for seed in seeds:
                lex = run(full, guide, args.cpu, seed)
                count = run(count_model, guide, args.cpu, seed)
                m = int(round(count.incumbent))
                reach = first(count.trace, lambda b, _p, m=m: b > m - 1 + 1e-6)
                found = first(count.trace, lambda _b, p, m=m: p < m + 0.5)
                count_cell = (
                    f"{_s(reach)} / {_s(found)} / {_s(count.cpu if count.proved else None)} ({m})"
                )
                injected = phase2 = "-"
                if found is not None:
                    values = order_mip.start_values(full, count.placement)
                    r = run(full, guide, args.cpu, seed, inject=(found, values))
                    injected = cell(r, weight)
                if count.proved:
                    r = run(
                        full,
                        count.placement,
                        args.cpu,
                        seed,
                        options=HEURISTICS_OFF,
                        fixed_count=(count_model.cost, count_model.offset, m),
                    )
                    phase2 = f"{count.cpu:.2f} + {cell(r, weight)}"
                lines.append(
                    f"| {inst.name} ({kind}) | {seed} | {cell(lex, weight)} | {count_cell} | "
                    f"{injected} | {phase2} |"
                )
                print(lines[-1], flush=True)
    lines.append(f"\n`/proc/loadavg` after: {Path('/proc/loadavg').read_text().strip()}")
    args.out.write_text("\n".join(lines) + "\n")


def _s(value: float | None) -> str:
    """A CPU second, or - for never."""
    return "-" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
