"""The event-driven simulator against closed forms, its fault reports, traces and the `simulate` command."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from chiplex.cli import main
from chiplex.errors import ChiplexError
from chiplex.ir.graph import Graph, make_graph
from chiplex.runtime_sim import (
    DEFAULT_PACKET_BYTES,
    analytic_estimate,
    format_report,
    schedule_problems,
    simulate,
    trace_events,
    write_trace,
)
from chiplex.targets.cost import estimate
from chiplex.targets.schedule import (
    ComputeStep,
    RecvStep,
    Schedule,
    SendStep,
    Step,
    build_schedule,
    load_schedule,
)
from chiplex.targets.target import (
    ChipSpec,
    Target,
    build_target,
    load_target,
    preset_names,
    target_from_toml,
)

CHIP = ChipSpec(
    matrix_ops={"bf16": 1e12}, vector_ops={"bf16": 1e11}, sram_bytes=1 << 24, sram_bandwidth=1e11
)
BW = 1e9
LAT = 1e-6


def chain(
    k: int, *, bandwidth: float = BW, latency: float = LAT, topology: str = "chain"
) -> Target:
    return build_target(
        f"{topology}{k}",
        topology,
        CHIP,
        num_chips=k,
        link_bandwidth=bandwidth,
        link_latency=latency,
    )


def op(name: str, duration: float, *, dram_weights: int = 0) -> ComputeStep:
    return ComputeStep(
        op=name,
        kind="nn.add",
        node=0,
        flops=0.0,
        bytes=0,
        weight_bytes=dram_weights,
        duration_s=duration,
        weights_from_dram=dram_weights > 0,
    )


def send(msg: int, route: tuple[int, ...], nbytes: int, tensor: str = "%t") -> SendStep:
    return SendStep(msg=msg, to=route[-1], bytes=nbytes, route=route, tensor=tensor)


def recv(msg: int, src: int, nbytes: int, tensor: str = "%t") -> RecvStep:
    return RecvStep(msg=msg, src=src, bytes=nbytes, tensor=tensor)


def schedule(chips: list[list[Step]], *, target: str = "t", samples: int = 1) -> Schedule:
    return Schedule(
        graph="g",
        target=target,
        num_chips=len(chips),
        samples_per_microbatch=samples,
        chips=tuple(map(tuple, chips)),
    )


def one_message(target: Target, src: int, dst: int, nbytes: int) -> Schedule:
    chips: list[list[Step]] = [[] for _ in range(target.num_chips)]
    chips[src].append(send(0, target.route(src, dst), nbytes))
    chips[dst].append(recv(0, src, nbytes))
    return schedule(chips)


def transfer_time(
    nbytes: int, hops: int, packet: int, bandwidth: float = BW, latency: float = LAT
) -> float:
    """The documented closed form for one uncontended message."""
    return hops * latency + nbytes / bandwidth + (hops - 1) * min(nbytes, packet) / bandwidth


# -- closed forms ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("nbytes", "packet", "hops"),
    [
        (10_000, 4096, 3),
        (4096, 4096, 1),
        (100, 4096, 2),
        (8192, 4096, 4),
        (0, 4096, 2),
        (12_288, 1000, 5),
        (7, 2, 3),
    ],
)
def test_one_message_over_h_hops_takes_the_closed_form(nbytes: int, packet: int, hops: int) -> None:
    target = chain(hops + 1)
    report = simulate(
        one_message(target, 0, hops, nbytes), target, microbatches=1, packet_bytes=packet
    )
    assert report.makespan_s == pytest.approx(transfer_time(nbytes, hops, packet), rel=1e-12)
    assert report.bytes_sent == report.bytes_received == nbytes


def test_ring_messages_take_the_short_way_round() -> None:
    ring = chain(8, topology="ring")
    sched = one_message(ring, 0, 6, 5000)
    assert sched.chips[0][0].route == (0, 7, 6)
    report = simulate(sched, ring, microbatches=1, packet_bytes=1024)
    assert report.makespan_s == pytest.approx(transfer_time(5000, 2, 1024), rel=1e-12)
    used = {
        name for name, nbytes in zip(report.link_names, report.link_bytes, strict=True) if nbytes
    }
    assert used == {"0->7", "7->6"}


def test_mesh_messages_follow_xy_routes_at_the_target_link_speed() -> None:
    mesh = load_target("simba-6x6")
    link = mesh.links[0]
    far = mesh.positions.index((5, 5))
    sched = one_message(mesh, 0, far, 100_000)
    hops = mesh.hops(0, far)
    assert hops == 10
    report = simulate(sched, mesh, microbatches=1, packet_bytes=4096)
    expected = transfer_time(100_000, hops, 4096, link.bandwidth, link.latency)
    assert report.makespan_s == pytest.approx(expected, rel=1e-12)


def test_two_flows_sharing_a_link_take_twice_as_long_and_interleave() -> None:
    target = chain(2, latency=0.0)
    nbytes, packet = 40_960, 4096
    one = simulate(one_message(target, 0, 1, nbytes), target, microbatches=1, packet_bytes=packet)
    two_flows = schedule(
        [
            [send(0, (0, 1), nbytes), send(1, (0, 1), nbytes)],
            [recv(0, 0, nbytes), recv(1, 0, nbytes)],
        ]
    )
    two = simulate(two_flows, target, microbatches=1, packet_bytes=packet, trace=True)
    assert one.makespan_s == pytest.approx(nbytes / BW, rel=1e-12)
    assert two.makespan_s == pytest.approx(2 * one.makespan_s, rel=1e-12)
    # Round robin: packets alternate, so the first message finishes one packet before the second.
    assert two.trace is not None
    packets = two.trace.packets[target.link_between(0, 1).id]
    assert [p[2] for p in packets] == [0, 1] * 10
    first_done = max(end for _, end, msg, _, _ in packets if msg == 0)
    assert first_done == pytest.approx((2 * 10 - 1) * packet / BW, rel=1e-12)


def test_two_flows_from_different_chips_share_the_last_link() -> None:
    target = chain(3, latency=0.0)
    nbytes, packet = 16_384, 4096
    sched = schedule(
        [
            [send(0, (0, 1, 2), nbytes)],
            [send(1, (1, 2), nbytes)],
            [recv(1, 1, nbytes), recv(0, 0, nbytes)],
        ]
    )
    report = simulate(sched, target, microbatches=1, packet_bytes=packet)
    # Link 1->2 never idles once both flows are there: it finishes after serialising both.
    assert report.makespan_s == pytest.approx(2 * nbytes / BW, rel=1e-12)


def pipeline(k: int, duration: float, nbytes: int, *, samples: int = 1) -> Schedule:
    chips: list[list[Step]] = []
    for c in range(k):
        steps: list[Step] = []
        if c > 0:
            steps.append(recv(c - 1, c - 1, nbytes))
        steps.append(op(f"%s{c}", duration))
        if c < k - 1:
            steps.append(send(c, (c, c + 1), nbytes))
        chips.append(steps)
    return schedule(chips, samples=samples)


def test_balanced_pipeline_reaches_one_over_stage_time() -> None:
    k, d, nbytes = 4, 10e-6, 1000
    report = simulate(pipeline(k, d, nbytes, samples=4), chain(k), microbatches=64)
    assert report.period_s == pytest.approx(d, rel=1e-9)
    assert report.throughput == pytest.approx(4 / d, rel=1e-9)
    # The first micro-batch crosses every stage and every link once (one packet per message).
    assert report.latency_s == pytest.approx(k * d + (k - 1) * (LAT + nbytes / BW), rel=1e-9)
    assert report.chip_busy_fraction == pytest.approx([1.0] * k)
    assert report.critical.startswith("chip") and report.saturated
    assert report.analytic_period_s == pytest.approx(d) and report.ratio == pytest.approx(
        1.0, rel=1e-9
    )
    # Completions are exactly one stage time apart after warm-up.
    done = np.array(report.microbatch_done_s)
    assert np.diff(done[k:]) == pytest.approx(d, rel=1e-9)


def test_link_bound_pipeline_runs_at_the_link_rate() -> None:
    nbytes = 8000
    report = simulate(
        pipeline(2, 1e-6, nbytes),
        chain(2, latency=1e-7),
        microbatches=64,
        packet_bytes=4096,
        buffers_per_edge=2,  # double buffering hides the latency, so the link never idles
    )
    assert report.period_s == pytest.approx(nbytes / BW, rel=1e-9)
    assert report.critical == "link 0->1"
    assert report.critical_utilisation == pytest.approx(1.0)
    assert report.ratio == pytest.approx(1.0, rel=1e-9)


@pytest.mark.parametrize(("buffers", "period"), [(1, 2.5e-6), (2, 1.25e-6), (4, 1e-6)])
def test_buffers_hide_latency(buffers: int, period: float) -> None:
    # period = max(d, B / bw, (latency + B / bw) / buffers) for one single-packet message per stage.
    d, nbytes, latency = 1e-6, 500, 2e-6
    report = simulate(
        pipeline(2, d, nbytes), chain(2, latency=latency), microbatches=64, buffers_per_edge=buffers
    )
    assert report.period_s == pytest.approx(period, rel=1e-9)
    assert report.analytic_period_s == pytest.approx(d)
    assert report.saturated == (buffers == 4)


def test_every_byte_sent_is_received_and_links_carry_route_bytes() -> None:
    target = chain(4, topology="ring")
    sched = schedule(
        [
            [op("%a", 1e-6), send(0, (0, 1, 2), 9000), send(1, (0, 3), 5000)],
            [],
            [recv(0, 0, 9000), op("%b", 2e-6)],
            [recv(1, 0, 5000), op("%c", 1e-6)],
        ]
    )
    m = 7
    report = simulate(sched, target, microbatches=m, packet_bytes=1000)
    assert report.bytes_sent == report.bytes_received == m * 14_000
    by_name = dict(zip(report.link_names, report.link_bytes, strict=True))
    assert by_name["0->1"] == by_name["1->2"] == m * 9000 and by_name["0->3"] == m * 5000
    assert sum(report.link_bytes) == m * (2 * 9000 + 5000)


def test_dram_bytes_are_reported_per_chip() -> None:
    sched = schedule(
        [[op("%a", 1e-6, dram_weights=1000), op("%b", 1e-6)], [op("%c", 1e-6, dram_weights=7)]]
    )
    report = simulate(sched, chain(2), microbatches=5)
    assert report.chip_dram_bytes == (5000, 35)
    assert "DRAM" in format_report(report)


def test_empty_chips_and_schedules_run() -> None:
    report = simulate(schedule([[], [], []]), chain(3), microbatches=3)
    assert report.makespan_s == 0.0 and report.bytes_sent == 0 and math.isfinite(report.throughput)


# -- a real schedule ---------------------------------------------------------------------------------
def bert_like_graph(layers: int = 3) -> Graph:
    """A transformer-shaped chain with residual edges."""
    kinds: list[str] = []
    edges: list[tuple[int, int]] = []
    flops: list[float] = []
    out: list[int] = []
    weights: list[int] = []
    seq, hidden = 128, 768
    act = seq * hidden * 2
    x = -1

    def add(kind: str, fl: float, ob: int, wb: int, inputs: list[int]) -> int:
        kinds.append(kind)
        flops.append(fl)
        out.append(ob)
        weights.append(wb)
        edges.extend((i, len(kinds) - 1) for i in inputs if i >= 0)
        return len(kinds) - 1

    for _ in range(layers):
        q = add("nn.matmul", 2 * seq * hidden * hidden, act, hidden * hidden, [x])
        k = add("nn.matmul", 2 * seq * hidden * hidden, act, hidden * hidden, [x])
        v = add("nn.matmul", 2 * seq * hidden * hidden, act, hidden * hidden, [x])
        s = add("nn.batch_matmul", 2 * seq * seq * hidden, 12 * seq * seq * 2, 0, [q, k])
        p = add("nn.softmax", 5 * 12 * seq * seq, 12 * seq * seq * 2, 0, [s])
        c = add("nn.batch_matmul", 2 * seq * seq * hidden, act, 0, [p, v])
        o = add("nn.matmul", 2 * seq * hidden * hidden, act, hidden * hidden, [c])
        r = add("nn.add", seq * hidden, act, 0, [o, x])
        f1 = add("nn.matmul", 8 * seq * hidden * hidden, 4 * act, 4 * hidden * hidden, [r])
        g = add("nn.gelu", 8 * 4 * seq * hidden, 4 * act, 0, [f1])
        f2 = add("nn.matmul", 8 * seq * hidden * hidden, act, 4 * hidden * hidden, [g])
        x = add("nn.layer_norm", 8 * seq * hidden, act, 2 * hidden, [f2, r])
    return make_graph(
        kinds=kinds,
        edges=edges,
        flops=flops,
        output_bytes=out,
        weight_bytes=weights,
        name="bert_like",
    )


def bert_like(layers: int = 3) -> tuple[Schedule, Target, np.ndarray]:
    """bert_like_graph placed contiguously on tpu-ring8."""
    graph = bert_like_graph(layers)
    target = load_target("tpu-ring8")
    n = graph.num_nodes
    placement = np.minimum(np.arange(n) * target.num_chips // n, target.num_chips - 1)
    return build_schedule(graph, target, placement), target, placement


def test_same_inputs_give_the_same_numbers() -> None:
    sched, target, _ = bert_like()
    first = simulate(sched, target, microbatches=16, packet_bytes=2048, trace=True)
    second = simulate(sched, target, microbatches=16, packet_bytes=2048, trace=True)
    assert dataclasses.replace(first, wall_s=0.0) == dataclasses.replace(second, wall_s=0.0)
    assert json.dumps(trace_events(first)) == json.dumps(trace_events(second))


def test_analytic_estimate_matches_the_cost_model() -> None:
    sched, target, placement = bert_like()
    graph = bert_like_graph()
    analytic = analytic_estimate(sched, target)
    cost = estimate(graph, target, placement)
    # Same per-chip compute; links: bytes / bandwidth here (the cost model also adds latency per transfer).
    assert analytic.chip_busy_s == pytest.approx(cost.chip_busy_s.tolist(), rel=1e-12)
    report = simulate(sched, target, microbatches=32)
    assert report.analytic_period_s == analytic.period_s
    assert report.throughput <= report.analytic_throughput * (1 + 1e-9)
    assert 0.5 < report.ratio <= 1.0 + 1e-9


def test_report_table_names_the_numbers() -> None:
    sched, target, _ = bert_like()
    text = format_report(simulate(sched, target, microbatches=8))
    for word in (
        "throughput",
        "analytic",
        "ratio",
        "latency",
        "critical",
        "events/s",
        "chip",
        "link",
    ):
        assert word in text


# -- faults ------------------------------------------------------------------------------------------
def test_recv_without_send_is_reported_with_chip_op_and_message() -> None:
    sched = schedule([[op("%a", 1e-6)], [recv(5, 0, 100, "%x"), op("%b", 1e-6)]])
    with pytest.raises(ChiplexError) as err:
        simulate(sched, chain(2))
    text = str(err.value)
    assert "no chip sends message 5" in text and "chip 1" in text and "%b" in text and "%x" in text


def test_mismatched_sizes_are_reported() -> None:
    sched = schedule(
        [[op("%a", 1e-6), send(3, (0, 1), 1000, "%a")], [recv(3, 0, 2000, "%a"), op("%b", 1e-6)]]
    )
    with pytest.raises(
        ChiplexError, match=r"message 3 .*sizes differ, 1000 bytes sent but 2000 expected"
    ):
        simulate(sched, chain(2))


def test_cycle_of_waits_is_reported_as_a_deadlock() -> None:
    sched = schedule(
        [
            [recv(1, 1, 100, "%b"), op("%a", 1e-6), send(0, (0, 1), 100, "%a")],
            [recv(0, 0, 100, "%a"), op("%b", 1e-6), send(1, (1, 0), 100, "%b")],
        ]
    )
    with pytest.raises(ChiplexError) as err:
        simulate(sched, chain(2))
    text = str(err.value)
    assert "deadlock" in text and "chip 0 -> chip 1 -> chip 0" in text
    assert (
        "message 1" in text
        and "message 0" in text
        and "before op %a" in text
        and "before op %b" in text
    )


def test_recvs_out_of_send_order_run_but_a_cycle_through_both_chips_hangs() -> None:
    # Chip 1 receives in the opposite order chip 0 sends: fine, even with a single buffer per message.
    fine = schedule(
        [
            [send(1, (0, 1), 10), send(0, (0, 1), 10)],
            [recv(0, 0, 10), recv(1, 0, 10), op("%b", 1e-6)],
        ]
    )
    assert simulate(fine, chain(2), microbatches=8, buffers_per_edge=1).bytes_received == 8 * 20
    # Each chip first waits for what the other sends only afterwards: micro-batch 0 never starts.
    stuck = schedule([[recv(1, 1, 10), send(0, (0, 1), 10)], [recv(0, 0, 10), send(1, (1, 0), 10)]])
    with pytest.raises(ChiplexError, match="micro-batch 0"):
        simulate(stuck, chain(2))


@pytest.mark.parametrize(
    ("steps", "needle"),
    [
        ([[send(0, (0, 2), 10)], [], [recv(0, 0, 10)]], "0->2, which is not a link"),
        ([[send(0, (0, 1), 10)], [], [recv(0, 0, 10)]], "goes to chip 1 but chip 2 receives it"),
        (
            [[SendStep(0, 2, 10, (0, 1), "%t")], [], [recv(0, 0, 10)]],
            "must run from chip 0 to chip 2",
        ),
        ([[send(0, (0, 1), 10)], [], []], "no chip receives message 0"),
        (
            [[send(0, (0, 1), 10), send(0, (0, 1), 10)], [recv(0, 0, 10)], []],
            "message 0 is sent 2 times",
        ),
        (
            [[send(0, (0, 1), 10)], [recv(0, 0, 10), recv(0, 0, 10)], []],
            "message 0 is received 2 times",
        ),
        (
            [[send(0, (0, 1), 10)], [recv(0, 2, 10)], []],
            "expects it from chip 2 but chip 0 sends it",
        ),
        ([[op("%a", -1.0)], [], []], "not a finite time"),
    ],
)
def test_invalid_schedules_are_refused_up_front(steps: list[list[Step]], needle: str) -> None:
    sched = schedule(steps)
    assert any(needle in p for p in schedule_problems(sched, chain(3)))
    with pytest.raises(ChiplexError, match=needle):
        simulate(sched, chain(3))


def test_schedule_for_more_chips_than_the_target_is_refused() -> None:
    with pytest.raises(ChiplexError, match="uses 3 chips but target chain2 has 2"):
        simulate(schedule([[], [], []]), chain(2))


@pytest.mark.parametrize("argument", ["microbatches", "packet_bytes", "buffers_per_edge"])
def test_bad_arguments_are_refused(argument: str) -> None:
    with pytest.raises(ChiplexError, match=argument):
        simulate(schedule([[]]), chain(1), **{argument: 0})


# -- traces ------------------------------------------------------------------------------------------
def test_trace_has_a_track_per_chip_and_busy_link(tmp_path: Path) -> None:
    sched, target, _ = bert_like(2)
    report = simulate(sched, target, microbatches=4, trace=True)
    path = tmp_path / "trace.json"
    write_trace(report, path)
    data = json.loads(path.read_text())
    events = data["traceEvents"]
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert {f"chip {c}" for c in range(8)} <= set(names.values())
    busy_links = {report.link_names[i] for i, b in enumerate(report.link_bytes) if b}
    assert {f"link {name}" for name in busy_links} == {
        v for v in names.values() if v.startswith("link")
    }
    slices = [e for e in events if e["ph"] == "X"]
    ops = [e for e in slices if e["pid"] == 1 and e["cat"] != "stall"]
    assert len(ops) == 4 * sum(isinstance(s, ComputeStep) for steps in sched.chips for s in steps)
    for key in {(e["pid"], e["tid"]) for e in slices}:
        track = sorted((e["ts"], e["ts"] + e["dur"]) for e in slices if (e["pid"], e["tid"]) == key)
        assert all(b[0] >= a[1] - 1e-6 for a, b in zip(track, track[1:], strict=False))


def test_trace_needs_a_traced_run() -> None:
    with pytest.raises(ChiplexError, match="trace=True"):
        trace_events(simulate(schedule([[]]), chain(1)))


# -- command line --------------------------------------------------------------------------------------
@pytest.fixture
def schedule_file(tmp_path: Path) -> Path:
    sched, _, _ = bert_like(2)
    path = tmp_path / "schedule.json"
    sched.write(path)
    return path


def test_simulate_command_prints_the_report(
    schedule_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["simulate", str(schedule_file), "--target", "tpu-ring8", "--microbatches", "8"]) == 0
    )
    out = capsys.readouterr()
    assert "throughput" in out.out and "ratio" in out.out and out.err == ""


def test_simulate_command_defaults_to_the_schedule_target(
    schedule_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "simulate",
                str(schedule_file),
                "--microbatches",
                "2",
                "--packet-bytes",
                "512",
                "--buffers",
                "1",
            ]
        )
        == 0
    )
    assert "tpu-ring8" in capsys.readouterr().out


def test_simulate_command_warns_on_another_target(
    schedule_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = tmp_path / "ring9.toml"
    toml.write_text(
        'name = "ring9"\n[chip]\nmatrix_ops = { bf16 = 1e12 }\nvector_ops = { bf16 = 1e11 }\n'
        "sram_bytes = 1048576\nsram_bandwidth = 1e11\n[link]\nbandwidth = 1e9\nlatency = 1e-6\n"
        '[topology]\nkind = "ring"\nnum_chips = 9\n'
    )
    assert main(["simulate", str(schedule_file), "--target", str(toml), "--microbatches", "2"]) == 0
    assert "compiled for target 'tpu-ring8', simulating it on 'ring9'" in capsys.readouterr().err


def test_simulate_command_runs_a_user_target_schedule_without_the_target_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The user compiles for their own target file, then moves or deletes it: the schedule carries it.
    toml = tmp_path / "mine.toml"
    toml.write_text(
        'name = "my-mcm"\n[chip]\nmatrix_ops = { int8 = 16e12, bf16 = 8e12 }\nvector_ops = { bf16 = 1e12 }\n'
        'sram_bytes = "8 MiB"\nsram_bandwidth = 1e12\n[link]\nbandwidth = 25e9\nlatency = 1e-6\n'
        '[topology]\nkind = "ring"\nnum_chips = 3\n'
    )
    out = tmp_path / "out"
    mlp = Path(__file__).parents[1] / "examples" / "models" / "mlp.mlir"
    assert main(["compile", str(mlp), "--target", str(toml), "-o", str(out)]) == 0
    compiled = capsys.readouterr().out
    estimate = compiled.split("estimated throughput ")[1].split(" samples/s")[0]
    toml.unlink()
    assert main(["simulate", str(out), "--microbatches", "64"]) == 0
    report = capsys.readouterr().out
    assert "on my-mcm:" in report and f"analytic     {estimate} samples/s" in report
    assert load_schedule(out).compiled_for == target_from_toml(
        'name = "my-mcm"\n[chip]\nmatrix_ops = { i8 = 16e12, bf16 = 8e12 }\nvector_ops = { bf16 = 1e12 }\n'
        "sram_bytes = 8388608\nsram_bandwidth = 1e12\n[link]\nbandwidth = 25e9\nlatency = 1e-6\n"
        '[topology]\nkind = "ring"\nnum_chips = 3\n'
    )


def test_every_preset_round_trips_through_a_schedule(tmp_path: Path) -> None:
    graph = bert_like_graph(1)
    for name in preset_names():
        target = load_target(name)
        path = tmp_path / f"{name}.json"
        build_schedule(graph, target, np.zeros(graph.num_nodes, dtype=np.int64)).write(path)
        assert load_schedule(path).compiled_for == target, name


def test_simulate_command_warns_when_the_target_file_changed(
    schedule_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chiplex.testing import target_toml

    bigger = dataclasses.replace(load_target("tpu-ring8").chip, sram_bytes=2**25)
    toml = tmp_path / "tpu-ring8.toml"
    toml.write_text(target_toml(dataclasses.replace(load_target("tpu-ring8"), chip=bigger)))
    assert main(["simulate", str(schedule_file), "--target", str(toml), "--microbatches", "2"]) == 0
    assert "differs from the target" in (err := capsys.readouterr().err)
    assert "(chip.sram_bytes)" in err


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda spec: spec["chip"].update(sram_bytes=-3), "target_spec.chip.sram_bytes: expected"),
        (lambda spec: spec.pop("link"), "target_spec.link: missing (required)"),
        (lambda spec: spec.update(name="other"), "target is 'tpu-ring8' but target_spec describes"),
        (lambda spec: spec["topology"].update(num_chips=2), "num_chips = 8 but target_spec"),
    ],
)
def test_a_hand_edited_target_spec_is_a_located_error(
    schedule_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit: Callable[[dict], None],
    message: str,
) -> None:
    data = json.loads(schedule_file.read_text())
    edit(data["target_spec"])
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))
    assert main(["simulate", str(edited), "--microbatches", "2"]) == 1
    err = capsys.readouterr().err
    assert f"{edited}: {message}" in err and "Traceback" not in err


def test_simulate_command_asks_for_the_file_of_a_user_target(
    schedule_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(schedule_file.read_text())
    # As if written by hand or by a chiplex before target_spec: the schedule keeps the target's name only.
    del data["target_spec"]
    data["target"] = "my-mcm"
    mine = tmp_path / "schedule.json"
    mine.write_text(json.dumps(data))
    assert main(["simulate", str(mine), "--microbatches", "2"]) == 1
    err = capsys.readouterr().err
    assert "compiled for target 'my-mcm', which is not a preset" in err
    assert "--target FILE.toml" in err and "Traceback" not in err


def test_simulate_command_refuses_to_overwrite_a_trace(
    schedule_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "trace.json"
    args = ["simulate", str(schedule_file), "--microbatches", "2", "--trace", str(trace)]
    assert main(args) == 0 and json.loads(trace.read_text())["traceEvents"]
    trace.write_text("keep me")
    assert main(args) == 1
    assert "refusing to overwrite" in capsys.readouterr().err and trace.read_text() == "keep me"
    assert main([*args, "--force"]) == 0 and trace.read_text() != "keep me"


def test_simulate_command_reports_user_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", str(tmp_path / "missing.json"), "--target", "tpu-ring8"]) == 1
    assert "schedule file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(schedule([[send(0, (0, 2), 10)], [], [recv(0, 0, 10)]]).to_json()))
    assert main(["simulate", str(bad), "--target", "tpu-ring8"]) == 1
    err = capsys.readouterr().err
    assert "not a link of tpu-ring8" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["simulate", str(bad), "--microbatches", "0"])


def test_simulate_command_takes_compiles_output_directory_and_sized_packets(
    schedule_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `chiplex compile -o DIR` reports "wrote DIR/": a user passes DIR on; packet sizes take the
    # units target TOML files take.
    args = ["simulate", str(schedule_file.parent), "--microbatches", "2", "--packet-bytes", "1KiB"]
    assert main(args) == 0
    assert "1024 B packets" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["simulate", str(empty)]) == 1
    assert f"{empty} is a directory without a schedule.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", str(schedule_file), "--packet-bytes", "1 Kb"])
    assert "expected bytes, bare or with a unit like 4KiB" in capsys.readouterr().err


def test_help_states_the_real_packet_default() -> None:
    from chiplex.commands.simulate import PACKET_BYTES_HELP_DEFAULT

    assert PACKET_BYTES_HELP_DEFAULT == DEFAULT_PACKET_BYTES


def test_the_steady_period_leaves_out_the_drain_and_finds_longer_patterns() -> None:
    from chiplex.runtime_sim.simulator import steady_period

    # 60 completions 1.0 s apart, then a drain whose last four come 0.5 s apart: the mean over the
    # second half would read 0.93 s.
    steady = [float(i) for i in range(60)]
    drained = steady + [59.5, 60.0, 60.5, 61.0]
    assert steady_period(drained, 2) == (pytest.approx(1.0, rel=1e-12), True)
    # A pattern of two (0.8 s, 1.2 s) with one buffer: a single interval is not the period, the pair is.
    alternating = [0.0]
    for i in range(63):
        alternating.append(alternating[-1] + (0.8 if i % 2 else 1.2))
    assert steady_period(alternating, 1) == (pytest.approx(1.0, rel=1e-12), True)
    # No pattern holds (still accelerating): the mean rate over the second half, whole buffer cycles.
    accelerating = [float(i) ** 0.5 for i in range(16)]
    assert steady_period(accelerating, 2) == (
        pytest.approx((accelerating[15] - accelerating[9]) / 6, rel=1e-12),
        False,
    )


def test_searches_judge_an_unsettled_pipeline_by_its_steady_state() -> None:
    import warnings

    from chiplex.passes.strategies import place_dp
    from chiplex.runtime_sim.evaluate import EvalSettings, Evaluator
    from chiplex.testing import nn_graph, target_for

    # dp's 12-chip split of a 57-op graph: 16 micro-batches end before the pipeline settles and read
    # 11.7% fast; the evaluator notices (`report.steady` is false) and simulates 64.
    rng = np.random.default_rng(15)
    graph = nn_graph(lambda lo, hi: int(rng.integers(lo, hi + 1)), int(rng.integers(20, 60)))
    target = target_for(graph, 12, slack=2.0, topology="ring")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        placement = place_dp(graph, target)
    short = Evaluator(graph, target, EvalSettings(steady_microbatches=0))
    assert not short.report(placement).steady
    long = short.report(placement, 64)
    assert long.steady
    judged = Evaluator(graph, target)(placement)
    assert judged.throughput == long.throughput
    assert short(placement).throughput > 1.05 * long.throughput
    # `chiplex simulate` says when its run was too short for a steady state, and not otherwise.
    from chiplex.runtime_sim.report import format_report

    assert "no steady state within 16 micro-batches" in format_report(short.report(placement))
    assert "no steady state" not in format_report(long)
