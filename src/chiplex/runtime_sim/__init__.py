"""The event-driven MCM simulator: runs a schedule on a target, reports throughput, writes traces.

    from chiplex.runtime_sim import simulate, format_report
    report = simulate(schedule, target, microbatches=64)
    print(format_report(report))

See docs/simulator.md for the model and its assumptions.
"""

from chiplex.runtime_sim.report import SimReport, format_report
from chiplex.runtime_sim.simulator import (
    DEFAULT_PACKET_BYTES,
    AnalyticEstimate,
    analytic_estimate,
    schedule_problems,
    simulate,
    validate_schedule,
)
from chiplex.runtime_sim.trace import SimTrace, trace_events, write_trace

__all__ = [
    "DEFAULT_PACKET_BYTES",
    "AnalyticEstimate",
    "SimReport",
    "SimTrace",
    "analytic_estimate",
    "format_report",
    "schedule_problems",
    "simulate",
    "trace_events",
    "validate_schedule",
    "write_trace",
]
