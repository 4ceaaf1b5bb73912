"""Properties of the simulator on random schedules: conservation, exclusive links, causality, no hangs."""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chiplex.errors import ChiplexError
from chiplex.ir.graph import make_graph
from chiplex.runtime_sim import SimReport, simulate
from chiplex.targets.schedule import ComputeStep, RecvStep, Schedule, SendStep, Step, build_schedule
from chiplex.targets.target import ChipSpec, Target, build_target

CHIP = ChipSpec(
    matrix_ops={"bf16": 1e12}, vector_ops={"bf16": 1e11}, sram_bytes=1 << 20, sram_bandwidth=1e11
)
TARGETS: dict[str, Target] = {
    "ring4": build_target(
        "ring4", "ring", CHIP, num_chips=4, link_bandwidth=1e9, link_latency=1e-6
    ),
    "chain3": build_target(
        "chain3", "chain", CHIP, num_chips=3, link_bandwidth=2e9, link_latency=0.0
    ),
    "mesh2x3": build_target(
        "mesh2x3", "mesh", CHIP, shape=(2, 3), link_bandwidth=1e9, link_latency=5e-7
    ),
    "torus3x3": build_target(
        "torus3x3", "torus", CHIP, shape=(3, 3), link_bandwidth=1e9, link_latency=2e-7
    ),
    "links4": build_target(
        "links4",
        "links",
        CHIP,
        num_chips=4,
        explicit_links=[(0, 1), (1, 2), (2, 3), (0, 3)],
        link_bandwidth=5e8,
        link_latency=1e-6,
    ),
}
PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def placed_schedules(draw: st.DrawFn) -> tuple[Schedule, Target]:
    """A random DAG in topological order, placed contiguously (legal dataflow) on a random target."""
    target = TARGETS[draw(st.sampled_from(sorted(TARGETS)))]
    n = draw(st.integers(2, 10))
    edges = [
        (u, v)
        for v in range(1, n)
        for u in range(v)
        if draw(st.booleans()) and (u == v - 1 or draw(st.booleans()))
    ]
    kinds = [draw(st.sampled_from(["nn.matmul", "nn.add", "nn.softmax"])) for _ in range(n)]
    graph = make_graph(
        kinds=kinds,
        edges=edges,
        flops=[draw(st.floats(0, 1e7)) for _ in range(n)],
        output_bytes=[draw(st.integers(0, 20_000)) for _ in range(n)],
        weight_bytes=[draw(st.integers(0, 5_000)) for _ in range(n)],
    )
    cuts = sorted(draw(st.lists(st.integers(0, target.num_chips - 1), min_size=n, max_size=n)))
    return build_schedule(graph, target, np.array(cuts)), target


@st.composite
def raw_schedules(draw: st.DrawFn) -> tuple[Schedule, Target]:
    """Messages between random chips in any direction, sends and recvs at random places: may deadlock."""
    target = TARGETS[draw(st.sampled_from(["ring4", "mesh2x3", "links4"]))]
    k = target.num_chips
    chips: list[list[Step]] = [
        [
            ComputeStep(f"%c{c}_{i}", "nn.add", 0, 0.0, 0, 0, draw(st.floats(0, 1e-5)))
            for i in range(draw(st.integers(0, 3)))
        ]
        for c in range(k)
    ]
    for msg in range(draw(st.integers(0, 5))):
        src = draw(st.integers(0, k - 1))
        dst = draw(st.integers(0, k - 1).filter(lambda d, s=src: d != s))
        nbytes = draw(st.integers(0, 10_000))
        route = target.route(src, dst)
        chips[src].insert(
            draw(st.integers(0, len(chips[src]))), SendStep(msg, dst, nbytes, route, f"%m{msg}")
        )
        chips[dst].insert(
            draw(st.integers(0, len(chips[dst]))), RecvStep(msg, src, nbytes, f"%m{msg}")
        )
    sched = Schedule("raw", target.name, k, 1, tuple(map(tuple, chips)))
    return sched, target


def check_invariants(sched: Schedule, target: Target, report: SimReport) -> None:
    m = report.microbatches
    sends = [s for steps in sched.chips for s in steps if isinstance(s, SendStep)]
    packet = report.packet_bytes
    # Conservation: every byte sent arrives; every link moves exactly the bytes routed over it.
    total = m * sum(s.bytes for s in sends)
    assert report.bytes_sent == report.bytes_received == total
    expected = [0] * len(target.links)
    expected_packets = [0] * len(target.links)
    for s in sends:
        for link in target.route_links(s.route[0], s.route[-1]):
            expected[link] += m * s.bytes
            expected_packets[link] += m * max(1, math.ceil(s.bytes / packet))
    assert list(report.link_bytes) == expected
    trace = report.trace
    assert trace is not None
    # No link ever carries two packets at once, and each packet holds it for bytes / bandwidth.
    for link_id, packets in enumerate(trace.packets):
        assert len(packets) == expected_packets[link_id]
        for (_, end_a, *_), (start_b, *_) in zip(packets, packets[1:], strict=False):
            assert start_b >= end_a
        for start, end, *_ in packets:
            assert 0 <= end - start <= packet / target.links[link_id].bandwidth * (1 + 1e-9)
    # Causality along a route: a packet enters hop i+1 only after crossing hop i and its latency.
    timeline: dict[tuple[int, int, int], list[tuple[float, float, int]]] = defaultdict(list)
    for link_id, packets in enumerate(trace.packets):
        for start, end, msg, mb, k in packets:
            timeline[(msg, mb, k)].append((start, end, link_id))
    by_msg = {s.msg: target.route_links(s.route[0], s.route[-1]) for s in sends}
    for (msg, _, _), hops in timeline.items():
        order = {link: i for i, link in enumerate(by_msg[msg])}
        hops.sort(key=lambda h: order[h[2]])
        assert len(hops) == len(by_msg[msg])
        for (_, end_a, link_a), (start_b, _, _) in zip(hops, hops[1:], strict=False):
            assert start_b >= end_a + target.links[link_a].latency - 1e-15
    # Each chip runs one op at a time; it needs at least its compute time per micro-batch.
    per_chip: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for chip, _, _, start, end in trace.ops:
        per_chip[chip].append((start, end))
    for chip, intervals in per_chip.items():
        assert all(b[0] >= a[1] for a, b in zip(intervals, intervals[1:], strict=False))
        assert report.makespan_s >= m * report.chip_busy_s[chip] * (1 - 1e-9)
    for link_id, nbytes in enumerate(report.link_bytes):
        assert report.makespan_s >= nbytes / target.links[link_id].bandwidth * (1 - 1e-9)


@PROPERTY_SETTINGS
@given(
    placed_schedules(),
    st.integers(1, 6),
    st.sampled_from([64, 1000, 4096]),
    st.integers(1, 3),
)
def test_placed_schedules_run_conserve_bytes_and_never_share_a_link(
    case: tuple[Schedule, Target], microbatches: int, packet: int, buffers: int
) -> None:
    sched, target = case
    report = simulate(
        sched,
        target,
        microbatches=microbatches,
        packet_bytes=packet,
        buffers_per_edge=buffers,
        trace=True,
    )
    check_invariants(sched, target, report)
    assert len(report.microbatch_done_s) == microbatches
    assert list(report.microbatch_done_s) == sorted(report.microbatch_done_s)


@PROPERTY_SETTINGS
@given(raw_schedules(), st.integers(1, 4), st.integers(1, 2))
def test_any_schedule_finishes_or_reports_a_deadlock(
    case: tuple[Schedule, Target], microbatches: int, buffers: int
) -> None:
    sched, target = case
    try:
        report = simulate(
            sched,
            target,
            microbatches=microbatches,
            packet_bytes=1000,
            buffers_per_edge=buffers,
            trace=True,
        )
    except ChiplexError as err:
        assert "deadlock" in str(err) and "chip" in str(err) and "message" in str(err)
        return
    check_invariants(sched, target, report)


@settings(max_examples=15, deadline=None)
@given(placed_schedules(), st.integers(1, 5))
def test_the_same_inputs_give_the_same_report(
    case: tuple[Schedule, Target], microbatches: int
) -> None:
    sched, target = case
    first = simulate(sched, target, microbatches=microbatches, packet_bytes=1000)
    second = simulate(sched, target, microbatches=microbatches, packet_bytes=1000)
    assert dataclasses.replace(first, wall_s=0.0) == dataclasses.replace(second, wall_s=0.0)
