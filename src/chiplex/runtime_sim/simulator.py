"""The event-driven simulator: runs a schedule's per-chip step lists on a target, micro-batch after micro-batch.

The model (docs/simulator.md has the full story and the closed forms the tests assert):

- **Compute.** Each chip has one engine that runs its steps in list order, micro-batch 0 first, then 1, ...
  A compute step takes its `duration_s` (the cost model's roofline time, DRAM streaming included).
- **Send.** A send is an asynchronous DMA: it takes no engine time, but it needs a free receive buffer on
  the destination. Each message id has `buffers_per_edge` buffers at its destination (default: the
  target's `[chip] buffers_per_edge`, what the memory rule reserves): the send of
  micro-batch i waits until the recv of micro-batch i - buffers_per_edge has completed (a buffer is freed
  when its recv step completes; the consumer then reads the data from the chip's working memory).
- **Links.** A message of B bytes is cut into ceil(B / packet_bytes) packets (at least one). Every
  directed link serialises the packets that want it in arrival order (FIFO): a packet of b bytes holds
  the link for b / bandwidth seconds, then reaches the next chip `latency` seconds later, where it may
  enter the next link (store-and-forward per packet = cut-through per message). A source injects one
  packet per message at a time (the next one when the previous has left the first link), so different
  messages leaving a chip together interleave packet by packet (round robin) instead of queueing whole.
  Micro-batches of one message id form one stream: micro-batch i+1 starts entering the first link
  after the last packet of micro-batch i did.
- **Recv.** A recv blocks until the last packet of its message (for the chip's current micro-batch)
  has arrived.

One uncontended message of B bytes over h hops of equal bandwidth bw and latency L arrives after
    h * L + B / bw + (h - 1) * min(B, packet_bytes) / bw.

Events are (time, sequence number, ...) tuples in a heap, so equal times resolve in creation order and
the same inputs always give the same numbers.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from dataclasses import dataclass

from chiplex.errors import ChiplexError
from chiplex.runtime_sim.report import SimReport
from chiplex.runtime_sim.trace import SimTrace
from chiplex.targets.cost import PACKET_BYTES
from chiplex.targets.schedule import ComputeStep, RecvStep, Schedule, SendStep
from chiplex.targets.target import Target

DEFAULT_PACKET_BYTES = PACKET_BYTES
"""Packet size: small enough that multi-hop transfers pipeline, large enough to keep event counts low."""

_COMPUTE, _SEND, _RECV = 0, 1, 2
_WAKE, _PACKET = 0, 1
_BLOCK_NONE, _BLOCK_RECV, _BLOCK_CREDIT = 0, 1, 2
_MAX_PROBLEMS = 20
MAX_EVENTS = 100_000_000
"""The most events one simulation may take (about a minute at the measured 1.9 M events/s)."""


def _link_id(target: Target, a: int, b: int) -> int | None:
    try:
        return target.link_between(a, b).id
    except ChiplexError:
        return None


# -- validation ------------------------------------------------------------------------------------
def describe_step(schedule: Schedule, chip: int, index: int) -> str:
    """`chips[2].steps[5] (chip 2: recv msg 3 of %x from chip 1, before op %q)`: a step by its JSON path in
    schedule.json (so a user can find it in the file), with its nearest op."""
    steps = schedule.chips[chip]
    step = steps[index]
    path = f"chips[{chip}].steps[{index}]"
    if isinstance(step, ComputeStep):
        return f"{path} (chip {chip}: op {step.op}, {step.kind})"
    if isinstance(step, SendStep):
        op = next((s.op for s in reversed(steps[:index]) if isinstance(s, ComputeStep)), None)
        where = f", after op {op}" if op else ""
        return f"{path} (chip {chip}: send msg {step.msg} of {step.tensor or '?'} to chip {step.to}{where})"
    op = next((s.op for s in steps[index + 1 :] if isinstance(s, ComputeStep)), None)
    where = f", before op {op}" if op else ""
    return f"{path} (chip {chip}: recv msg {step.msg} of {step.tensor or '?'} from chip {step.src}{where})"


def schedule_problems(schedule: Schedule, target: Target) -> list[str]:
    """Everything that would make the schedule hang or lie on this target; empty when it can run.

    Checked: chip counts, step fields, every message sent exactly once and received exactly once with the
    same bytes and matching endpoints, routes that start at the sender, end at the receiver and follow
    links of the target, and agreement with the schedule's message table when it has one.
    """
    problems: list[str] = []
    k = schedule.num_chips
    if len(schedule.chips) != k:
        problems.append(f"the schedule lists {len(schedule.chips)} chips but says num_chips = {k}")
    if k > target.num_chips:
        problems.append(
            f"the schedule uses {k} chips but target {target.name} has {target.num_chips}"
        )
        return problems
    if schedule.samples_per_microbatch < 1:
        problems.append(
            f"samples_per_microbatch must be >= 1, got {schedule.samples_per_microbatch}"
        )
    sends: dict[int, list[tuple[int, int]]] = {}
    recvs: dict[int, list[tuple[int, int]]] = {}
    for c, steps in enumerate(schedule.chips):
        for i, step in enumerate(steps):
            if isinstance(step, ComputeStep):
                if not (math.isfinite(step.duration_s) and step.duration_s >= 0):
                    problems.append(
                        f"{describe_step(schedule, c, i)}: duration_s {step.duration_s} is not a finite time >= 0"
                    )
            elif isinstance(step, SendStep):
                sends.setdefault(step.msg, []).append((c, i))
            elif isinstance(step, RecvStep):
                recvs.setdefault(step.msg, []).append((c, i))
            else:
                problems.append(f"chip {c} step {i}: unknown step {step!r}")
    for msg in sorted(set(sends) | set(recvs)):
        s_list, r_list = sends.get(msg, []), recvs.get(msg, [])
        if len(s_list) > 1:
            where = "; ".join(describe_step(schedule, c, i) for c, i in s_list)
            problems.append(f"message {msg} is sent {len(s_list)} times: {where}")
        if len(r_list) > 1:
            where = "; ".join(describe_step(schedule, c, i) for c, i in r_list)
            problems.append(f"message {msg} is received {len(r_list)} times: {where}")
        if not s_list:
            for c, i in r_list:
                problems.append(
                    f"{describe_step(schedule, c, i)} can never complete: no chip sends message {msg}"
                )
            continue
        if not r_list:
            for c, i in s_list:
                problems.append(
                    f"{describe_step(schedule, c, i)}: no chip receives message {msg} "
                    "(its buffers would fill and the sender would hang)"
                )
            continue
        (sc, si), (rc, ri) = s_list[0], r_list[0]
        send, recv = schedule.chips[sc][si], schedule.chips[rc][ri]
        assert isinstance(send, SendStep) and isinstance(recv, RecvStep)
        what = f"message {msg} ({describe_step(schedule, sc, si)} -> {describe_step(schedule, rc, ri)})"
        if send.bytes != recv.bytes:
            problems.append(
                f"{what}: sizes differ, {send.bytes} bytes sent but {recv.bytes} expected"
            )
        if send.bytes < 0:
            problems.append(f"{what}: negative size {send.bytes}")
        if send.to != rc:
            problems.append(f"{what}: the send goes to chip {send.to} but chip {rc} receives it")
        if recv.src != sc:
            problems.append(
                f"{what}: the recv expects it from chip {recv.src} but chip {sc} sends it"
            )
        if sc == rc:
            problems.append(f"{what}: a chip cannot send a message to itself")
        route = tuple(send.route)
        if len(route) < 2 or route[0] != sc or route[-1] != send.to:
            problems.append(
                f"{what}: route {list(route)} must run from chip {sc} to chip {send.to}"
            )
        elif len(set(route)) < len(route):
            # A loop moves the bytes over some links twice: never a route the target takes.
            again = next(c for i, c in enumerate(route) if c in route[:i])
            problems.append(
                f"{what}: route {list(route)} visits chip {again} twice"
                + _route_hint(target, sc, send.to)
            )
        else:
            for a, b in itertools.pairwise(route):
                if _link_id(target, a, b) is None:
                    problems.append(
                        f"{what}: route {list(route)} uses {a}->{b}, which is not a link of {target.name}"
                        + _route_hint(target, sc, send.to)
                    )
                    break
    for t, message in enumerate(schedule.messages):
        found = sends.get(message.msg)
        if not found:
            problems.append(f"messages[{t}]: lists message {message.msg}, which no chip sends")
            continue
        c, i = found[0]
        send = schedule.chips[c][i]
        assert isinstance(send, SendStep)
        if (message.src, message.dst, message.bytes, tuple(message.route)) != (
            c,
            send.to,
            send.bytes,
            tuple(send.route),
        ):
            problems.append(
                f"messages[{t}]: message {message.msg} ({message.src}->{message.dst}, {message.bytes} bytes, "
                f"route {list(message.route)}) disagrees with {describe_step(schedule, c, i)} "
                f"({send.bytes} bytes, route {list(send.route)})"
            )
    if schedule.messages:
        # A table that is there must be whole: one entry per message sent, no id twice.
        listed: dict[int, int] = {}
        for t, message in enumerate(schedule.messages):
            if message.msg in listed:
                problems.append(
                    f"messages[{t}]: message {message.msg} is listed again (first at messages[{listed[message.msg]}])"
                )
            listed.setdefault(message.msg, t)
        for msg in sorted(set(sends) - set(listed)):
            c, i = sends[msg][0]
            problems.append(
                f"messages: no entry for message {msg}, which {describe_step(schedule, c, i)} sends"
            )
    return problems


def _route_hint(target: Target, src: int, dst: int) -> str:
    """How the target routes src -> dst, for a hand-written route that skips a link."""
    try:
        route = target.route(src, dst)
    except (ChiplexError, KeyError, ValueError):
        return ""
    return (
        f" (the target routes chip {src} to chip {dst} as {list(route)})" if len(route) > 1 else ""
    )


def validate_schedule(schedule: Schedule, target: Target) -> None:
    """Raise ChiplexError listing every problem `schedule_problems` finds."""
    problems = schedule_problems(schedule, target)
    if problems:
        shown = problems[:_MAX_PROBLEMS]
        more = (
            f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        )
        raise ChiplexError(
            f"schedule {schedule.graph or '?'} cannot run on {target.name}:\n  - "
            + "\n  - ".join(shown)
            + more
        )


# -- analytic estimate -----------------------------------------------------------------------------
@dataclass(frozen=True)
class AnalyticEstimate:
    """The bottleneck bound from the schedule alone: no dependencies, no latency, no contention order."""

    period_s: float
    throughput: float
    critical: str
    chip_busy_s: tuple[float, ...]
    """Compute seconds per micro-batch per chip."""
    link_bytes: tuple[int, ...]
    """Bytes per micro-batch per link."""


def link_name(target: Target, link_id: int) -> str:
    link = target.links[link_id]
    return f"{link.src}->{link.dst}"


def analytic_estimate(schedule: Schedule, target: Target) -> AnalyticEstimate:
    """period = max(max over chips of summed compute durations, max over links of bytes / bandwidth)."""
    busy = tuple(
        float(sum(s.duration_s for s in steps if isinstance(s, ComputeStep)))
        for steps in schedule.chips
    )
    loads = [0] * len(target.links)
    for steps in schedule.chips:
        for step in steps:
            if isinstance(step, SendStep):
                for a, b in itertools.pairwise(step.route):
                    loads[target.link_between(a, b).id] += step.bytes
    period, critical = 0.0, "none"
    for c, b in enumerate(busy):
        if b > period:
            period, critical = b, f"chip {c}"
    for i, nbytes in enumerate(loads):
        t = nbytes / target.links[i].bandwidth if nbytes else 0.0
        if t > period:
            period, critical = t, f"link {link_name(target, i)}"
    period = max(period, 1e-15)
    return AnalyticEstimate(
        period, schedule.samples_per_microbatch / period, critical, busy, tuple(loads)
    )


# -- the engine ------------------------------------------------------------------------------------
STEADY_TOLERANCE = 1e-9
"""Relative difference below which two patterns' rates count as the same steady-state period."""


def steady_period(done: list[float], buffers: int) -> tuple[float, bool]:
    """Seconds per micro-batch in steady state from the completion times of M micro-batches, and whether
    a repeating pattern was found (False: the run was too short to show one; more micro-batches may).

    With b buffers per edge the credit loop makes completions repeat in a pattern of a multiple of b
    micro-batches, so the rate is measured over whole patterns `(done[i+L] - done[i]) / L` from the
    middle of the run on. The smallest L whose value holds from the middle through at least half of the
    rest is the steady-state pattern, and that value is the period: the last completions, which run while
    the pipeline drains and no later micro-batch competes for chips and links, are left out (they read
    up to a few percent fast or slow). When no pattern holds that long (the run is too short to reach a
    steady state), the mean rate over the second half, trimmed to whole cycles, is the estimate.
    """
    M = len(done)
    if M == 1:
        return done[0], False
    start = M // 2
    longest = (M - start) // 2
    # With more buffers than fit a pattern in the window (`--buffers 32` for 64 micro-batches), the
    # credit loop cannot be what sets the pattern (for buffers >= M no send ever waits for one): look
    # for a pattern of any length instead of reporting none.
    step = buffers if buffers <= longest else 1
    for length in range(step, longest + 1, step):
        cycles = [(done[i + length] - done[i]) / length for i in range(start, M - length)]
        steady = cycles[0]
        held = next(
            (k for k, c in enumerate(cycles) if abs(c - steady) > STEADY_TOLERANCE * steady),
            len(cycles),
        )
        if held >= 3 and 2 * held >= len(cycles):
            return steady, True
    span = M - 1 - start if M > 2 else 1
    if span >= buffers:
        span -= span % buffers
    return (done[M - 1] - done[M - 1 - span]) / span, False


def simulate(
    schedule: Schedule,
    target: Target,
    *,
    microbatches: int = 64,
    packet_bytes: int = DEFAULT_PACKET_BYTES,
    buffers_per_edge: int | None = None,
    trace: bool = False,
) -> SimReport:
    """Run `microbatches` micro-batches of the schedule on the target and report what was measured.

    `trace=True` also records every op, stall and packet (`report.trace`) for `write_trace`.
    Raises ChiplexError for invalid arguments, an invalid schedule, or a deadlock (naming the chips,
    steps and messages involved).
    """
    wall_start = time.perf_counter()
    if buffers_per_edge is None:
        # The hardware's buffering, which the memory rule reserved room for.
        buffers_per_edge = target.chip.buffers_per_edge
    for name, value in (
        ("microbatches", microbatches),
        ("packet_bytes", packet_bytes),
        ("buffers_per_edge", buffers_per_edge),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ChiplexError(f"{name} must be a whole number >= 1, got {value!r}")
    validate_schedule(schedule, target)
    analytic = analytic_estimate(schedule, target)

    M = microbatches
    K = schedule.num_chips
    links = target.links

    # Dense message indices in message-id order; per message everything the packet loop needs, unpacked
    # from one tuple: (links, full-packet seconds per hop, last-packet seconds per hop, latency per hop,
    # packets, hops, full-packet bytes, last-packet bytes, message id).
    send_steps: dict[int, tuple[int, SendStep]] = {}
    for c, steps in enumerate(schedule.chips):
        for step in steps:
            if isinstance(step, SendStep):
                send_steps[step.msg] = (c, step)
    msg_ids = sorted(send_steps)
    dense = {msg: m for m, msg in enumerate(msg_ids)}
    minfo: list[tuple] = []
    msg_bytes: list[int] = []
    msg_src: list[int] = []
    msg_dst: list[int] = []
    for msg in msg_ids:
        c, step = send_steps[msg]
        route_links = tuple(target.link_between(a, b).id for a, b in itertools.pairwise(step.route))
        nbytes = step.bytes
        npackets = max(1, -(-nbytes // packet_bytes))
        full = min(nbytes, packet_bytes)
        last = nbytes - (npackets - 1) * packet_bytes
        minfo.append(
            (
                route_links,
                tuple(full / links[lk].bandwidth for lk in route_links),
                tuple(last / links[lk].bandwidth for lk in route_links),
                tuple(links[lk].latency for lk in route_links),
                npackets,
                len(route_links),
                full,
                last,
                msg,
            )
        )
        msg_bytes.append(nbytes)
        msg_src.append(c)
        msg_dst.append(step.to)

    # Refuse runs that would take hours rather than start them: an absurd message size or
    # micro-batch count (a typo, a hand-edited schedule) would otherwise look like a hang.
    # Each chip also finishes each micro-batch (a completion time to record) even with no steps, so an
    # schedule of empty chips with 10^8 micro-batches is refused too, not run for minutes.
    events = M * (schedule.num_steps + K + sum(info[4] * info[5] for info in minfo))
    if events > MAX_EVENTS:
        raise ChiplexError(
            f"simulating {M} micro-batches of {schedule.graph or 'this schedule'} would take about "
            f"{events:.3g} events (the limit is {MAX_EVENTS:.0e}, about a minute): use fewer "
            "micro-batches"
            + (
                " or larger packets (--packet-bytes), or check the message sizes "
                f"(the largest is {max(msg_bytes):,} bytes)"
                if msg_bytes
                else ""
            )
        )

    # Per chip: steps as (kind, duration or dense message, step index); index of the first compute step.
    programs: list[list[tuple[int, float | int, int]]] = []
    first_compute: list[int] = []
    dram = [0] * K
    for c, steps in enumerate(schedule.chips):
        program: list[tuple[int, float | int, int]] = []
        for i, step in enumerate(steps):
            if isinstance(step, ComputeStep):
                program.append((_COMPUTE, float(step.duration_s), i))
                if step.weights_from_dram:
                    dram[c] += step.weight_bytes * M
            elif isinstance(step, SendStep):
                program.append((_SEND, dense[step.msg], i))
            else:
                program.append((_RECV, dense[step.msg], i))
        programs.append(program)
        first_compute.append(next((i for i, p in enumerate(program) if p[0] == _COMPUTE), -1))

    nm = len(msg_ids)
    B = buffers_per_edge
    heap: list[tuple] = []
    push = heapq.heappush
    pop = heapq.heappop
    counter = itertools.count()
    seq = counter.__next__

    chip_pc = [0] * K
    chip_mb = [0] * K
    block_kind = [_BLOCK_NONE] * K
    block_since = [0.0] * K
    finish: list[list[float]] = [[] for _ in range(K)]
    begin = [math.inf] * M
    arrived = [0] * nm  # micro-batches of each message fully arrived (they arrive in order)
    received = [0] * nm  # micro-batches of each message whose recv step has completed
    recv_waiter = [-1] * nm  # chip blocked in a recv of the message, or -1
    credit_waiter = [-1] * nm  # chip blocked in a send of the message for want of a buffer, or -1
    injecting = [False] * nm  # a micro-batch of the message is entering its first link
    queued = [0] * nm  # micro-batches of the message sent but waiting for the previous one to enter
    link_free = [0.0] * len(links)
    link_bytes = [0] * len(links)
    sent_bytes = [0]
    received_bytes = [0]

    ops_rec: list[tuple[int, int, int, float, float]] = []
    stalls_rec: list[tuple[int, int, int, int, float, float]] = []
    packets_rec: list[list[tuple[float, float, int, int, int]]] = [[] for _ in links]
    tracing = trace

    def advance(c: int, now: float) -> None:
        """Run chip c from `now` until it blocks, must wait for the clock, or finishes every micro-batch."""
        program = programs[c]
        n = len(program)
        fc = first_compute[c]
        pc = chip_pc[c]
        mb = chip_mb[c]
        if block_kind[c]:
            if tracing:
                stalls_rec.append((c, mb, program[pc][2], block_kind[c], block_since[c], now))
            block_kind[c] = _BLOCK_NONE
        t = now
        while True:
            if pc == n:
                finish[c].append(t)
                mb += 1
                pc = 0
                if mb == M:
                    break
                continue
            kind, value, index = program[pc]
            if kind == _COMPUTE:
                if pc == fc and t < begin[mb]:
                    begin[mb] = t
                end = t + value
                if tracing:
                    ops_rec.append((c, mb, index, t, end))
                t = end
                pc += 1
                continue
            if t > now:
                # Sends and recvs touch shared state: handle them at their own time, in event order.
                push(heap, (t, seq(), _WAKE, c))
                break
            if kind == _SEND:
                if mb - received[value] >= B:
                    credit_waiter[value] = c
                    block_kind[c] = _BLOCK_CREDIT
                    block_since[c] = t
                    break
                sent_bytes[0] += msg_bytes[value]
                if injecting[value]:
                    queued[value] += 1
                else:
                    injecting[value] = True
                    push(heap, (t, seq(), _PACKET, value, mb, 0, 0))
                pc += 1
                continue
            # recv
            if arrived[value] > mb:
                received[value] += 1
                waiter = credit_waiter[value]
                if waiter >= 0:
                    credit_waiter[value] = -1
                    push(heap, (t, seq(), _WAKE, waiter))
                pc += 1
                continue
            recv_waiter[value] = c
            block_kind[c] = _BLOCK_RECV
            block_since[c] = t
            break
        chip_pc[c] = pc
        chip_mb[c] = mb

    for c in range(K):
        advance(c, 0.0)

    while heap:
        event = pop(heap)
        t = event[0]
        if event[2] == _WAKE:
            advance(event[3], t)
            continue
        _, _, _, m, mb, hop, k = event
        route_links, ser, ser_last, lat, npackets, nhops, full, last_bytes, msg = minfo[m]
        if hop == nhops:
            # The last packet reached the destination: the message has arrived.
            if arrived[m] != mb:  # pragma: no cover - packets of one message id stay in order
                raise AssertionError(f"message {msg} micro-batch {mb} arrived out of order")
            arrived[m] = mb + 1
            received_bytes[0] += msg_bytes[m]
            waiter = recv_waiter[m]
            if waiter >= 0:
                recv_waiter[m] = -1
                advance(waiter, t)
            continue
        link = route_links[hop]
        is_last = k == npackets - 1
        start = link_free[link]
        if start < t:
            start = t
        if is_last:
            end = start + ser_last[hop]
            link_bytes[link] += last_bytes
            if hop == 0:
                # The stream of this message id is free: inject its next queued micro-batch.
                if queued[m]:
                    queued[m] -= 1
                    push(heap, (end, seq(), _PACKET, m, mb + 1, 0, 0))
                else:
                    injecting[m] = False
        else:
            end = start + ser[hop]
            link_bytes[link] += full
            if hop == 0:
                push(heap, (end, seq(), _PACKET, m, mb, 0, k + 1))
        link_free[link] = end
        if tracing:
            packets_rec[link].append((start, end, msg, mb, k))
        if is_last or hop + 1 < nhops:
            push(heap, (end + lat[hop], seq(), _PACKET, m, mb, hop + 1, k))

    events = next(counter)
    unfinished = [c for c in range(K) if chip_mb[c] < M]
    if unfinished:
        raise ChiplexError(
            _deadlock_message(
                schedule,
                unfinished,
                chip_pc,
                chip_mb,
                block_kind,
                programs,
                msg_ids,
                msg_src,
                msg_dst,
                B,
            )
        )

    # -- measurements ------------------------------------------------------------------------------
    done = [max((finish[c][i] for c in range(K)), default=0.0) for i in range(M)]
    period, steady = steady_period(done, B)
    period = max(period, 1e-15)
    spm = schedule.samples_per_microbatch
    starts = [b if b != math.inf else 0.0 for b in begin]
    latency = done[0] - starts[0]
    window = range(min(M // 2, M - 1), M)
    steady_latency = sum(done[i] - starts[i] for i in window) / len(window)

    chip_busy = analytic.chip_busy_s
    chip_fraction = tuple(min(b / period, 1.0) for b in chip_busy)
    link_util = tuple(
        min(link_bytes[i] / M / links[i].bandwidth / period, 1.0) if link_bytes[i] else 0.0
        for i in range(len(links))
    )
    critical, critical_util = "none", -1.0
    for c, u in enumerate(chip_fraction):
        if u > critical_util:
            critical, critical_util = f"chip {c}", u
    for i, u in enumerate(link_util):
        if u > critical_util:
            critical, critical_util = f"link {link_name(target, i)}", u
    throughput = spm / period
    trace_data = (
        SimTrace(
            schedule=schedule,
            target=target,
            ops=ops_rec,
            stalls=stalls_rec,
            packets=packets_rec,
        )
        if tracing
        else None
    )
    return SimReport(
        graph=schedule.graph,
        target=target.name,
        num_chips=K,
        microbatches=M,
        samples_per_microbatch=spm,
        packet_bytes=packet_bytes,
        buffers_per_edge=B,
        throughput=throughput,
        period_s=period,
        steady=steady,
        latency_s=latency,
        steady_latency_s=steady_latency,
        makespan_s=max(done, default=0.0),
        microbatch_done_s=tuple(done),
        chip_busy_s=chip_busy,
        chip_busy_fraction=chip_fraction,
        chip_dram_bytes=tuple(dram),
        link_names=tuple(link_name(target, i) for i in range(len(links))),
        link_bytes=tuple(link_bytes),
        link_utilisation=link_util,
        bytes_sent=sent_bytes[0],
        bytes_received=received_bytes[0],
        critical=critical,
        critical_utilisation=max(critical_util, 0.0),
        analytic_throughput=analytic.throughput,
        analytic_period_s=analytic.period_s,
        analytic_critical=analytic.critical,
        ratio=throughput / analytic.throughput,
        events=events,
        wall_s=time.perf_counter() - wall_start,
        trace=trace_data,
    )


def _deadlock_message(
    schedule: Schedule,
    unfinished: list[int],
    chip_pc: list[int],
    chip_mb: list[int],
    block_kind: list[int],
    programs: list[list[tuple[int, float | int, int]]],
    msg_ids: list[int],
    msg_src: list[int],
    msg_dst: list[int],
    buffers: int,
) -> str:
    """Explain why the blocked chips can never continue: who waits for whom, and the cycle of waits."""
    waits_for: dict[int, int] = {}
    lines: list[str] = []
    for c in unfinished:
        pc, mb = chip_pc[c], chip_mb[c]
        kind, m, index = programs[c][pc]
        step_text = describe_step(schedule, c, index)
        if block_kind[c] == _BLOCK_RECV:
            sender = msg_src[m]
            waits_for[c] = sender
            lines.append(
                f"{step_text}, micro-batch {mb}: waits for message {msg_ids[m]}, which chip {sender} has not sent"
            )
        elif block_kind[c] == _BLOCK_CREDIT:
            receiver = msg_dst[m]
            waits_for[c] = receiver
            lines.append(
                f"{step_text}, micro-batch {mb}: all {buffers} buffers of message {msg_ids[m]} on chip {receiver} "
                f"are full; it waits for chip {receiver} to receive micro-batch {mb - buffers}"
            )
        else:  # pragma: no cover - a chip that is not blocked always has an event pending
            lines.append(f"{step_text}, micro-batch {mb}: stopped without a pending event")
    cycle: list[int] = []
    for start in unfinished:
        seen: list[int] = []
        c: int | None = start
        while c is not None and c not in seen:
            seen.append(c)
            c = waits_for.get(c)
        if c is not None:
            cycle = seen[seen.index(c) :]
            break
    if cycle:
        chain = " -> ".join(f"chip {c}" for c in [*cycle, cycle[0]])
        reason = f"deadlock: a cycle of waits {chain}"
    else:
        reason = "deadlock: chips wait for chips that have finished"
    return (
        f"schedule {schedule.graph or '?'} hangs ({reason}); chips {', '.join(map(str, unfinished))} can never "
        "continue:\n  - " + "\n  - ".join(lines)
    )


__all__ = [
    "DEFAULT_PACKET_BYTES",
    "AnalyticEstimate",
    "analytic_estimate",
    "describe_step",
    "link_name",
    "schedule_problems",
    "simulate",
    "validate_schedule",
]
