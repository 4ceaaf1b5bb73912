"""Chrome / Perfetto trace-event JSON of a simulation: one track per chip (ops, stalls), one per link.

Open the file at https://ui.perfetto.dev (Open trace file) or chrome://tracing. Times are microseconds.
Link tracks show one slice per run of consecutive packets of one message: a message that had the link
to itself is one slice; messages that shared it show as interleaved slices.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chiplex.errors import ChiplexError
from chiplex.fileio import atomic_write_text
from chiplex.targets.schedule import ComputeStep, Schedule, SendStep
from chiplex.targets.target import Target

if TYPE_CHECKING:
    from chiplex.runtime_sim.report import SimReport

CHIPS_PID = 1
LINKS_PID = 2
_GAP_S = 1e-12
"""Packets closer than this (a picosecond) merge into one slice."""


@dataclass(frozen=True, eq=False)
class SimTrace:
    """Everything a traced simulation recorded (also the debug record the property tests check)."""

    schedule: Schedule = field(repr=False)
    target: Target = field(repr=False)
    ops: list[tuple[int, int, int, float, float]]
    """(chip, micro-batch, step index, start s, end s) per compute step run."""
    stalls: list[tuple[int, int, int, int, float, float]]
    """(chip, micro-batch, step index, kind, start s, end s): kind 1 = recv waits for data,
    kind 2 = send waits for a free buffer."""
    packets: list[list[tuple[float, float, int, int, int]]]
    """Per link id: (start s, end s, message id, micro-batch, packet index) in the order the link
    serialised them; end - start is the packet's bytes / bandwidth."""


def _us(seconds: float) -> float:
    return seconds * 1e6


def trace_events(report: SimReport) -> dict[str, Any]:
    """The trace-event JSON object of a report simulated with `trace=True`."""
    data = report.trace
    if data is None:
        raise ChiplexError("the simulation was run without trace=True; there is nothing to write")
    schedule, target = data.schedule, data.target
    events: list[dict[str, Any]] = [
        {"ph": "M", "pid": CHIPS_PID, "name": "process_name", "args": {"name": "chips"}},
        {"ph": "M", "pid": CHIPS_PID, "name": "process_sort_index", "args": {"sort_index": 0}},
        {"ph": "M", "pid": LINKS_PID, "name": "process_name", "args": {"name": "links"}},
        {"ph": "M", "pid": LINKS_PID, "name": "process_sort_index", "args": {"sort_index": 1}},
    ]
    for c in range(schedule.num_chips):
        events.append(
            {
                "ph": "M",
                "pid": CHIPS_PID,
                "tid": c,
                "name": "thread_name",
                "args": {"name": f"chip {c}"},
            }
        )
        events.append(
            {
                "ph": "M",
                "pid": CHIPS_PID,
                "tid": c,
                "name": "thread_sort_index",
                "args": {"sort_index": c},
            }
        )
    used_links = [i for i, packets in enumerate(data.packets) if packets]
    for i in used_links:
        link = target.links[i]
        events.append(
            {
                "ph": "M",
                "pid": LINKS_PID,
                "tid": i,
                "name": "thread_name",
                "args": {"name": f"link {link.src}->{link.dst}"},
            }
        )
        events.append(
            {
                "ph": "M",
                "pid": LINKS_PID,
                "tid": i,
                "name": "thread_sort_index",
                "args": {"sort_index": i},
            }
        )

    for chip, mb, index, start, end in data.ops:
        step = schedule.chips[chip][index]
        assert isinstance(step, ComputeStep)
        events.append(
            {
                "ph": "X",
                "pid": CHIPS_PID,
                "tid": chip,
                "name": step.op,
                "cat": step.kind,
                "ts": _us(start),
                "dur": _us(end - start),
                "args": {
                    "microbatch": mb,
                    "step": index,
                    "flops": step.flops,
                    "dram": step.weights_from_dram,
                },
            }
        )
    for chip, mb, index, kind, start, end in data.stalls:
        if end <= start:
            continue
        step = schedule.chips[chip][index]
        msg = getattr(step, "msg", -1)
        name = f"wait for msg {msg}" if kind == 1 else f"no buffer for msg {msg}"
        events.append(
            {
                "ph": "X",
                "pid": CHIPS_PID,
                "tid": chip,
                "name": name,
                "cat": "stall",
                "ts": _us(start),
                "dur": _us(end - start),
                "args": {"microbatch": mb, "step": index},
            }
        )

    tensors: dict[int, tuple[str, int]] = {}
    for steps in schedule.chips:
        for step in steps:
            if isinstance(step, SendStep):
                tensors[step.msg] = (step.tensor, step.bytes)
    for i in used_links:
        current: list[Any] | None = None  # [start, end, msg, mb, packets]
        slices: list[list[Any]] = []
        for start, end, msg, mb, _ in data.packets[i]:
            if (
                current is not None
                and current[2] == msg
                and current[3] == mb
                and start - current[1] <= _GAP_S
            ):
                current[1] = end
                current[4] += 1
                continue
            current = [start, end, msg, mb, 1]
            slices.append(current)
        for start, end, msg, mb, count in slices:
            tensor, nbytes = tensors.get(msg, ("", 0))
            events.append(
                {
                    "ph": "X",
                    "pid": LINKS_PID,
                    "tid": i,
                    "name": f"msg {msg} {tensor}".rstrip(),
                    "cat": "message",
                    "ts": _us(start),
                    "dur": _us(end - start),
                    "args": {"microbatch": mb, "packets": count, "message_bytes": nbytes},
                }
            )
    return {
        "traceEvents": events,
        "displayTimeUnit": "ns",
        "otherData": {
            "graph": report.graph,
            "target": report.target,
            "microbatches": report.microbatches,
            "throughput_samples_per_s": report.throughput,
            "period_s": report.period_s,
        },
    }


def write_trace(report: SimReport, path: str | Path) -> None:
    """Write the trace of a report simulated with `trace=True` to `path` (overwrites)."""
    atomic_write_text(path, json.dumps(trace_events(report)) + "\n")
