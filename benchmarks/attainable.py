"""How fast can a placement of a suite case be at all? The solver's proved bound, checked against the simulator.

    .venv/bin/python benchmarks/attainable.py resnet50@tpu-ring4 --random 2363.4

The learned placer's goal (issue 10) asks for 1.06x random search on every case where strategies do
not all tie. On some cases no placement may be that fast. This script gives the evidence:

1. `chiplex.targets.solver.optimize` (cp's MiniZinc model, dp's stage model
   `chiplex.targets.period_model`: compute per chip, link time and buffer round trip per pipeline
   boundary) proves a lower bound on the model's period over every legal placement, so
   samples_per_microbatch / bound is the fastest any placement can be under that model;
2. the simulator is checked against the model on many legal placements (random contiguous cuts,
   repaired, and single-op moves from the solver's answer): if the simulated throughput never exceeds
   the model's, the model's bound holds for the simulator on them too (evidence, not a proof);
3. a proof for the simulator's steady state: `chiplex.targets.resource_bound` minimises, with HiGHS over
   every legal placement, the largest per-micro-batch time of a resource the simulator serialises
   (a chip's compute, a link's bytes, a value's buffer round trip); its dual bound is a lower bound on
   every legal placement's steady-state period, by construction. A finite simulation measures its rate
   over the second half of its micro-batches, which a fill transient makes slightly faster than the
   steady state: the bound's own placement is re-simulated with 64 (the benchmark's) and 1,024
   micro-batches to show the size of it;
4. the table compares them with `--random` x 1.06 (the random-search mean from
   benchmarks/results/placement_quality.md) and with the pipeline-cut upper bound
   (`chiplex.targets.cost.throughput_upper_bound`, looser: it ignores where boundaries can fall).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from placement_quality import load_graph  # noqa: E402

from chiplex.passes.search import random_cut  # noqa: E402
from chiplex.runtime_sim.evaluate import REPORT_MICROBATCHES, Evaluator  # noqa: E402
from chiplex.targets.cost import throughput_upper_bound  # noqa: E402
from chiplex.targets.period_model import period_model  # noqa: E402
from chiplex.targets.resource_bound import min_resource_period  # noqa: E402
from chiplex.targets.solver import optimize  # noqa: E402
from chiplex.targets.target import load_target  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("case", metavar="MODEL@TARGET")
    parser.add_argument("--random", type=float, required=True, help="random search's mean")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--time-limit", type=float, default=120.0)
    args = parser.parse_args(argv)
    model_name, _, target_name = args.case.partition("@")
    graph, target = load_graph(model_name), load_target(target_name)
    evaluator = Evaluator(graph, target)
    model = period_model(graph, target)
    spm = graph.samples_per_microbatch
    solved = optimize(graph, target, time_limit=args.time_limit)
    best = evaluator(solved.placement, REPORT_MICROBATCHES)

    rng = np.random.default_rng(0)
    candidates = [random_cut(graph.num_nodes, target.num_chips, rng) for _ in range(args.samples)]
    for _ in range(args.samples):  # one op to a neighbouring chip, from the solver's answer
        moved = solved.placement.copy()
        op = int(rng.integers(graph.num_nodes))
        moved[op] = max(moved[op] + int(rng.choice([-1, 1])), 0)
        candidates.append(moved)
    ratios, throughputs = [], []
    for candidate in candidates:
        result = evaluator(candidate, REPORT_MICROBATCHES)
        if not result.ok:
            continue
        assert result.placement is not None
        ratios.append(result.throughput / (spm / model.period(result.placement)))
        throughputs.append(result.throughput)
    fastest = max(throughputs)
    goal = 1.06 * args.random
    needed = goal * solved.bound_s / spm  # the ratio a placement would need to reach the goal
    print(f"| {args.case} | value (samples/s) |")
    print("|---|---:|")
    print(f"| 1.06 x random search ({args.random:,.1f}) | {goal:,.1f} |")
    print(f"| pipeline-cut upper bound | {throughput_upper_bound(graph, target).throughput:,.1f} |")
    claim = "proved" if solved.proved_optimal else "not proved (time limit)"
    print(f"| model's bound over all legal placements ({claim}) | {spm / solved.bound_s:,.1f} |")
    print(f"| solver's placement, simulated | {best.throughput:,.1f} |")
    print(
        f"| simulated / model throughput on {len(ratios)} legal placements | "
        f"max {max(ratios):.4f}, min {min(ratios):.4f} |"
    )
    print(f"| fastest of them, simulated | {fastest:,.1f} |")
    above = [t for r, t in zip(ratios, throughputs, strict=True) if r >= needed]
    print(
        f"| of them, simulated >= {needed:.4f} x model (what the goal would need) | {len(above)}"
        + (f", the fastest {max(above):,.1f} |" if above else " |")
    )
    resource = min_resource_period(graph, target, time_limit=args.time_limit)
    claim = "proved optimal" if resource.proved_optimal else "dual bound at the time limit"
    print(
        f"| steady state: bound over all legal placements on the simulator's serialised resources "
        f"({claim}, {resource.seconds:.1f} s) | {resource.throughput:,.1f} |"
    )
    if resource.placement is not None:
        for microbatches in (REPORT_MICROBATCHES, 1024):
            simulated = evaluator(resource.placement, microbatches).throughput
            print(
                f"| the bound's placement simulated with {microbatches} micro-batches | "
                f"{simulated:,.1f} |"
            )
    attainable = spm / solved.bound_s * max(1.0, max(ratios))
    verdict = "unattainable" if attainable < goal else "not ruled out"
    print(f"\n1.06 x random is {verdict} by this evidence (bound x worst ratio: {attainable:,.1f})")
    proved = "unattainable" if resource.throughput < goal else "not ruled out"
    print(
        f"1.06 x random is {proved} in the simulator's steady state, proved "
        f"(bound {resource.throughput:,.1f} against {goal:,.1f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
