"""`chiplex simulate SCHEDULE --target NAME_OR_TOML`: run a schedule on the event-driven MCM simulator."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from chiplex.commands._args import byte_size, positive_int
from chiplex.errors import EXIT_CODES_HELP, ChiplexError

if TYPE_CHECKING:
    from chiplex.targets.target import Target

PACKET_BYTES_HELP_DEFAULT = 4096
"""Shown in --help only (the real default is chiplex.runtime_sim.DEFAULT_PACKET_BYTES; a test keeps them equal)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="run a compiled schedule on the event-driven MCM simulator",
        epilog=EXIT_CODES_HELP,
        description=(
            "Run SCHEDULE (a schedule.json from `chiplex compile`) micro-batch after micro-batch on the "
            "target's chips and links, and print the steady-state throughput, latency, per-chip and "
            "per-link utilisation, the critical resource and the analytic estimate next to it."
        ),
    )
    parser.add_argument(
        "schedule",
        metavar="SCHEDULE",
        help="the schedule.json to run, or the directory `chiplex compile -o` wrote it to",
    )
    parser.add_argument(
        "--target",
        metavar="NAME_OR_TOML",
        help="a preset name (tpu-ring8) or a target TOML file (default: the target the schedule was compiled for, which it carries)",
    )
    parser.add_argument(
        "--microbatches",
        type=positive_int,
        default=64,
        metavar="N",
        help="micro-batches to run (default 64)",
    )
    parser.add_argument(
        "--packet-bytes",
        type=byte_size,
        default=None,
        metavar="B",
        help="packet size messages are cut into: bytes, or with a unit like 1KiB "
        f"(default {PACKET_BYTES_HELP_DEFAULT})",
    )
    parser.add_argument(
        "--buffers",
        type=positive_int,
        default=None,
        metavar="N",
        help="receive buffers per message: micro-batches of one message in flight at once (default: the target's [chip] buffers_per_edge, what the memory rule reserves)",
    )
    parser.add_argument(
        "--trace",
        metavar="FILE",
        help="write a Chrome/Perfetto trace (open it at https://ui.perfetto.dev)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing trace file")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chiplex.runtime_sim import DEFAULT_PACKET_BYTES, format_report, simulate, write_trace
    from chiplex.targets.schedule import load_schedule
    from chiplex.targets.target import load_target, preset_names

    trace_path = Path(args.trace) if args.trace else None
    if trace_path is not None:
        from chiplex.fileio import check_writable_file

        check_writable_file(trace_path, force=args.force, what="trace")
        if not trace_path.parent.is_dir():
            raise ChiplexError(
                f"cannot write trace {trace_path}: directory {trace_path.parent} does not exist"
            )
    schedule = load_schedule(args.schedule)
    schedule_path = Path(args.schedule)
    if schedule_path.is_dir():
        schedule_path = schedule_path / "schedule.json"
    if args.target is not None:
        target = load_target(args.target)
        if schedule.target and schedule.target != target.name:
            print(
                f"chiplex: warning: {args.schedule} was compiled for target {schedule.target!r}, "
                f"simulating it on {target.name!r}",
                file=sys.stderr,
            )
        elif schedule.compiled_for is not None and schedule.compiled_for != target:
            changed = ", ".join(_differences(schedule.compiled_for, target)[:4])
            print(
                f"chiplex: warning: {args.target} differs from the target {args.schedule} was compiled "
                f"for ({changed}): simulating it on {args.target}",
                file=sys.stderr,
            )
    elif schedule.compiled_for is not None:
        target = schedule.compiled_for
    elif not schedule.target:
        raise ChiplexError(f"{args.schedule} names no target; pass --target NAME_OR_TOML")
    elif schedule.target in preset_names():
        target = load_target(schedule.target)
    else:
        # Written by hand, or by a chiplex older than `target_spec`.
        raise ChiplexError(
            f"{args.schedule} was compiled for target {schedule.target!r}, which is not a preset, "
            "and does not carry it (no target_spec): pass the target file it was compiled with, "
            "--target FILE.toml"
        )
    if args.buffers is not None and args.buffers > target.chip.buffers_per_edge:
        print(
            f"chiplex: warning: --buffers {args.buffers} is more than the {target.chip.buffers_per_edge} "
            f"receive buffers per message of {target.name} ([chip] buffers_per_edge), the room the "
            "placement's memory rule reserved: the extra buffers may not fit in SRAM",
            file=sys.stderr,
        )
    try:
        report = simulate(
            schedule,
            target,
            microbatches=args.microbatches,
            packet_bytes=args.packet_bytes or DEFAULT_PACKET_BYTES,
            buffers_per_edge=args.buffers,
            trace=trace_path is not None,
        )
    except ChiplexError as err:
        # Faults name steps by their JSON path (chips[1].steps[2]); say which file they are in.
        raise ChiplexError(f"{schedule_path}: {err}") from None
    print(format_report(report))
    if trace_path is not None:
        write_trace(report, trace_path)
        print(f"trace written to {trace_path} (open it at https://ui.perfetto.dev)")
    return 0


def _differences(compiled_for: Target, given: Target) -> list[str]:
    """The target-file keys whose values differ, as `chip.sram_bytes`."""
    from chiplex.targets.target import target_tables

    old, new = target_tables(compiled_for), target_tables(given)
    keys = []
    for section in dict.fromkeys([*old, *new]):
        a, b = old.get(section), new.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += [f"{section}.{k}" for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]
        elif a != b:
            keys.append(section)
    return keys
