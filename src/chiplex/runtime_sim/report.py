"""What a simulation measured (`SimReport`) and its text form (`format_report`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chiplex.runtime_sim.trace import SimTrace

SATURATED = 0.99
"""A resource at least this busy in steady state is saturated: it sets the period."""


@dataclass(frozen=True)
class SimReport:
    """The numbers of one simulation; everything but `wall_s` and `trace` is deterministic."""

    graph: str
    target: str
    num_chips: int
    microbatches: int
    samples_per_microbatch: int
    packet_bytes: int
    buffers_per_edge: int
    throughput: float
    """Steady-state samples/s: samples_per_microbatch / period_s."""
    period_s: float
    """Steady-state seconds between micro-batch completions (`simulator.steady_period`)."""
    steady: bool
    """The completions settled into a repeating pattern and `period_s` is its period; False: the run
    was too short for one and `period_s` is the mean over its second half (more micro-batches help)."""
    latency_s: float
    """The first micro-batch, from the start of its first op to the end of its last step on every chip."""
    steady_latency_s: float
    """The same, averaged over the steady-state micro-batches (includes queueing in the buffers)."""
    makespan_s: float
    """Time until every chip finished every micro-batch."""
    microbatch_done_s: tuple[float, ...]
    """Per micro-batch: when the last chip finished it."""
    chip_busy_s: tuple[float, ...]
    """Compute seconds per micro-batch, per chip."""
    chip_busy_fraction: tuple[float, ...]
    """Steady-state fraction of time each chip computes: chip_busy_s / period_s."""
    chip_dram_bytes: tuple[int, ...]
    """Weight bytes each chip streamed from off-chip DRAM over the whole run."""
    link_names: tuple[str, ...]
    """`src->dst` per link id of the target."""
    link_bytes: tuple[int, ...]
    """Bytes each link moved over the whole run (every hop of every packet)."""
    link_utilisation: tuple[float, ...]
    """Steady-state fraction of time each link serialises packets."""
    bytes_sent: int
    """Bytes of all messages sent, over the whole run."""
    bytes_received: int
    """Bytes of all messages that arrived; equals bytes_sent after a successful run."""
    critical: str
    """The busiest resource in steady state (`chip 3` or `link 2->3`)."""
    critical_utilisation: float
    analytic_throughput: float
    """samples_per_microbatch / analytic_period_s."""
    analytic_period_s: float
    """max(busiest chip's compute per micro-batch, busiest link's bytes per micro-batch / bandwidth)."""
    analytic_critical: str
    ratio: float
    """throughput / analytic_throughput: 1.0 when the bottleneck alone sets the pace."""
    events: int
    """Events the simulation queued and processed."""
    wall_s: float
    """Wall-clock seconds of the `simulate` call."""
    trace: SimTrace | None = field(default=None, repr=False, compare=False)
    """Every op, stall and packet, when simulated with `trace=True`."""

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s if self.wall_s > 0 else float("inf")

    @property
    def saturated(self) -> bool:
        """Whether some resource is (nearly) always busy; if not, latency or buffers set the period."""
        return self.critical_utilisation >= SATURATED


def format_seconds(seconds: float) -> str:
    magnitude = abs(seconds)
    if magnitude >= 1.0:
        return f"{seconds:.3f} s"
    if magnitude >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    if magnitude >= 1e-6 or magnitude == 0.0:
        return f"{seconds * 1e6:.3f} us"
    return f"{seconds * 1e9:.3f} ns"


def format_rate(per_second: float) -> str:
    """`953,674.3`, or significant digits below 1 (`2.5e-08`, where one decimal would read `0.0`)."""
    return f"{per_second:,.1f}" if per_second >= 1.0 else f"{per_second:.3g}"


def format_bytes(nbytes: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.2f} {unit}"
    return f"{int(nbytes)} B"


def format_report(report: SimReport) -> str:
    """The report as a text table: headline numbers, then per chip and per busy link."""
    r = report
    if r.makespan_s == 0.0:
        # No step takes any time (e.g. no steps at all): the period is the simulator's 1e-15 s floor, and a
        # throughput of 1e15 samples/s would be a made-up number, not a measurement.
        return (
            f"simulated {r.graph or '?'} on {r.target}: the schedule takes no time "
            "(no compute step or message takes any time), so it has no throughput to "
            f"report; {r.num_chips} chip{'' if r.num_chips == 1 else 's'}, "
            f"{r.microbatches} micro-batch{'' if r.microbatches == 1 else 'es'}"
        )
    lines = [
        f"simulated {r.graph or '?'} on {r.target}: {r.microbatches} micro-batch"
        f"{'' if r.microbatches == 1 else 'es'} x "
        f"{r.samples_per_microbatch} samples, {r.packet_bytes} B packets, {r.buffers_per_edge} buffers per message",
        f"  throughput   {format_rate(r.throughput)} samples/s   (period {format_seconds(r.period_s)} per micro-batch)"
        + (
            ""
            if r.steady or r.microbatches == 1
            else f"  - no steady state within {r.microbatches} micro-batches: the second half's "
            "mean; more micro-batches (--microbatches) give the steady state"
        ),
        f"  analytic     {format_rate(r.analytic_throughput)} samples/s   (period {format_seconds(r.analytic_period_s)}, "
        f"bottleneck {r.analytic_critical})",
        f"  ratio        {r.ratio:.3f}   (simulated / analytic)",
        f"  latency      {format_seconds(r.latency_s)} first micro-batch, "
        f"{format_seconds(r.steady_latency_s)} in steady state",
        f"  critical     {r.critical} ({100 * r.critical_utilisation:.1f}% busy)"
        + ("" if r.saturated else "  - no resource saturated: latency or buffers set the pace"),
        f"  makespan     {format_seconds(r.makespan_s)}",
        f"  simulation   {r.events:,} events in {r.wall_s:.3f} s ({r.events_per_s:,.0f} events/s)",
        "",
    ]
    # Every column per micro-batch, next to the steady-state fraction it gives over the period (so
    # compute/mb / period = busy and bytes/mb / bandwidth / period = util can be checked by hand);
    # the whole run's link bytes last.
    has_dram = any(r.chip_dram_bytes)
    header = f"  {'chip':>4}  {'compute/mb':>14}  {'busy':>6}"
    if has_dram:
        header += f"  {'DRAM read/mb':>12}"
    lines.append(header)
    for c, (busy, fraction) in enumerate(zip(r.chip_busy_s, r.chip_busy_fraction, strict=True)):
        row = f"  {c:>4}  {format_seconds(busy):>14}  {100 * fraction:>5.1f}%"
        if has_dram:
            row += f"  {format_bytes(r.chip_dram_bytes[c] / r.microbatches):>12}"
        lines.append(row)
    used = [i for i, nbytes in enumerate(r.link_bytes) if nbytes]
    lines.append("")
    if used:
        lines.append(f"  {'link':>8}  {'bytes/mb':>12}  {'util':>6}  {'run total':>12}")
        for i in used:
            lines.append(
                f"  {r.link_names[i]:>8}  {format_bytes(r.link_bytes[i] / r.microbatches):>12}  "
                f"{100 * r.link_utilisation[i]:>5.1f}%  {format_bytes(r.link_bytes[i]):>12}"
            )
        idle = len(r.link_bytes) - len(used)
        if idle:
            lines.append(f"  ({idle} idle links not shown)")
    else:
        lines.append("  no link carried any data")
    return "\n".join(lines)
