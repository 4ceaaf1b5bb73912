"""Does the estimate tell the truth? dp's placement of every zoo model on every preset: the analytic
estimate (`chiplex compile`'s summary, `chiplex.targets.cost.estimate`) against the event-driven
simulator (64 micro-batches, the target's buffering). Goal: simulated / estimated within 0.95-1.05.

    python benchmarks/fidelity.py [--models bert_base,mlp] [--targets tpu-ring8] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from chiplex.errors import ChiplexError
from chiplex.ir.graph import graph_from_module
from chiplex.ir.parse import load_module
from chiplex.passes.strategies import place_dp
from chiplex.runtime_sim import simulate
from chiplex.targets.cost import estimate
from chiplex.targets.schedule import build_schedule
from chiplex.targets.target import load_target, preset_names

EXAMPLES = Path(__file__).parents[1] / "examples" / "models"
GOAL = (0.95, 1.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma-separated example names (default: all)")
    parser.add_argument("--targets", help="comma-separated presets (default: all)")
    parser.add_argument("--out", type=Path, help="also write the table as Markdown here")
    args = parser.parse_args()
    models = sorted(p.stem for p in EXAMPLES.glob("*.mlir"))
    if args.models:
        models = [m for m in models if m in args.models.split(",")]
    targets = args.targets.split(",") if args.targets else preset_names()
    rows = [
        "| model | target | estimated samples/s | simulated samples/s | simulated / estimated | "
        "estimate's critical resource | within goal |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    ratios: list[float] = []
    for name in models:
        graph = graph_from_module(load_module(EXAMPLES / f"{name}.mlir"))
        for target_name in targets:
            target = load_target(target_name)
            started = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    placement = place_dp(graph, target)
            except ChiplexError as err:
                reason = str(err).replace(":\n  ", ": ").split("\n")[0].split(";")[0][:90]
                rows.append(f"| {name} | {target_name} | - | - | - | no placement: {reason} | - |")
                print(rows[-1], flush=True)
                continue
            est = estimate(graph, target, placement)
            report = simulate(build_schedule(graph, target, placement), target, microbatches=64)
            ratio = report.throughput / est.throughput
            ratios.append(ratio)
            ok = "yes" if GOAL[0] <= ratio <= GOAL[1] else "**no**"
            rows.append(
                f"| {name} | {target_name} | {est.throughput:,.1f} | {report.throughput:,.1f} | "
                f"{ratio:.3f} | {est.critical} | {ok} |"
            )
            print(rows[-1], f"({time.perf_counter() - started:.1f} s)", flush=True)
    inside = sum(GOAL[0] <= r <= GOAL[1] for r in ratios)
    summary = (
        f"{inside} of {len(ratios)} placed cases within {GOAL[0]}-{GOAL[1]}; "
        f"ratio range {min(ratios, default=0):.3f}-{max(ratios, default=0):.3f}"
    )
    print(summary)
    if args.out:
        args.out.write_text(
            "# Estimate vs simulator (dp placements)\n\n"
            "Command: `python benchmarks/fidelity.py --out benchmarks/results/fidelity.md`. "
            "Estimate: `chiplex.targets.cost.estimate` (what `chiplex compile` prints); simulated: "
            "64 micro-batches with the target's receive buffers per edge.\n\n"
            + "\n".join(rows)
            + f"\n\n{summary}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
