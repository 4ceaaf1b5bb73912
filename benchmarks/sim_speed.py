"""Simulator speed: events per second and wall time for BERT-base, 64 micro-batches.

    .venv/bin/python benchmarks/sim_speed.py [--microbatches 64] [--packet-bytes 4096] [--repeat 3]

The schedule comes from the real compiler (`chiplex.compile.compile_to_schedule` on
`examples/models/bert_base.mlir`, default pipeline); compile time is not part of the measurement. The goal is
at least 300,000 events/s and under 2 s of wall time for BERT-base on tpu-ring8.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from chiplex.runtime_sim import DEFAULT_PACKET_BYTES, SimReport, simulate
from chiplex.targets.schedule import Schedule
from chiplex.targets.target import load_target

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "models" / "bert_base.mlir"
TARGETS = ("tpu-ring8", "simba-6x6")
GOAL_EVENTS_PER_S = 300_000
GOAL_WALL_S = 2.0


def load_workload(target_name: str) -> Schedule:
    """The BERT-base schedule for a target (the one line to change to benchmark another workload)."""
    from chiplex.compile import compile_to_schedule

    return compile_to_schedule(MODEL, target_name)


def best_of(schedule: Schedule, target_name: str, args: argparse.Namespace) -> SimReport:
    target = load_target(target_name)
    runs = [
        simulate(schedule, target, microbatches=args.microbatches, packet_bytes=args.packet_bytes)
        for _ in range(args.repeat)
    ]
    return min(runs, key=lambda r: r.wall_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--microbatches", type=int, default=64)
    parser.add_argument("--packet-bytes", type=int, default=DEFAULT_PACKET_BYTES)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per target; the fastest is reported"
    )
    parser.add_argument("--targets", nargs="+", default=list(TARGETS))
    args = parser.parse_args(argv)

    print(
        f"BERT-base ({MODEL.relative_to(ROOT)}), {args.microbatches} micro-batches, "
        f"{args.packet_bytes} B packets, best of {args.repeat}"
    )
    header = (
        f"{'target':<12} {'steps':>6} {'msgs':>5} {'events':>9} {'wall s':>8} {'events/s':>11} "
        f"{'samples/s':>10} {'sim/analytic':>12}"
    )
    print(header)
    print("-" * len(header))
    met = True
    for name in args.targets:
        started = time.perf_counter()
        schedule = load_workload(name)
        compile_s = time.perf_counter() - started
        report = best_of(schedule, name, args)
        print(
            f"{name:<12} {schedule.num_steps:>6} {len(schedule.messages):>5} {report.events:>9,} "
            f"{report.wall_s:>8.3f} {report.events_per_s:>11,.0f} {report.throughput:>10,.1f} "
            f"{report.ratio:>12.3f}   (compile {compile_s:.2f} s, not timed)"
        )
        if name == "tpu-ring8":
            met = report.events_per_s >= GOAL_EVENTS_PER_S and report.wall_s < GOAL_WALL_S
            verdict = "met" if met else "NOT met"
            print(
                f"{'':<12} goal on tpu-ring8: >= {GOAL_EVENTS_PER_S:,} events/s and < {GOAL_WALL_S} s: {verdict}"
            )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
