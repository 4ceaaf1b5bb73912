"""The analytic estimate against the simulator (the judge), and the upper bound against both."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chiplex.ir.graph import Graph
from chiplex.passes.strategies import place_dp
from chiplex.runtime_sim import simulate
from chiplex.targets.cost import PIPELINE_CUTS, estimate, throughput_upper_bound
from chiplex.targets.legality import is_legal
from chiplex.targets.schedule import build_schedule
from chiplex.targets.target import Target
from chiplex.testing import graph_and_target, nn_graph, placements, target_for, transformer_graph

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def simulated_and_estimated(
    graph: Graph, target: Target, placement: np.ndarray
) -> tuple[float, float]:
    report = simulate(build_schedule(graph, target, placement), target, microbatches=64)
    return report.throughput, estimate(graph, target, placement).throughput


@PROPERTY
@given(graph_and_target(max_ops=30, max_chips=6, with_rules=False), st.data())
def test_the_simulator_never_beats_the_estimate(
    case: tuple[Graph, Target], data: st.DataObject
) -> None:
    # Every term of the estimate is a lower bound on the period (a busy resource, a buffer's round
    # trip, a cycle of waits without contention): the simulator can be slower, never faster (up to
    # its measuring window over a finite run: 64 micro-batches here. With 32, a link-bound 3-chip chain
    # with three buffers per edge measured 7% above its steady state, which it approaches as the run
    # grows: 1.07x at 32, 1.03x at 64, 1.007x at 256 micro-batches).
    graph, target = case
    placement = data.draw(placements(graph, target))
    if not is_legal(graph, target, placement):
        placement = place_dp(graph, target)
    simulated, estimated = simulated_and_estimated(graph, target, placement)
    assert simulated <= estimated * 1.05


@pytest.mark.parametrize("buffers", [1, 2, 3])
def test_the_estimate_is_within_five_percent_on_random_small_graphs(buffers: int) -> None:
    # dp placements of 30 random NN-shaped graphs on rings, chains and meshes: the estimate is within
    # 0.95-1.05 of the simulator in at least 85% of them (80% with one buffer per edge). The rest: link
    # contention interleaved with buffer waits, for which the estimate has no closed form (`chiplex
    # compile` prints both).
    inside, ratios = 0, []
    cases = 30
    for seed in range(cases):
        rng = np.random.default_rng(1000 * buffers + seed)
        graph = nn_graph(
            lambda lo, hi, rng=rng: int(rng.integers(lo, hi + 1)),
            int(rng.integers(2, 40)),
            shared_params=bool(seed % 2),
        )
        target = target_for(
            graph,
            int(rng.integers(1, 7)),
            slack=float(rng.choice([1.0, 1.2, 2.0])),
            topology=("ring", "chain", "mesh")[seed % 3],
            dram_share=float(rng.choice([0.0, 0.0, 0.25])),
            buffers_per_edge=buffers,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            placement = place_dp(graph, target)
        simulated, estimated = simulated_and_estimated(graph, target, placement)
        ratios.append(simulated / estimated)
        inside += 0.95 <= ratios[-1] <= 1.05
    # Measured: 25, 27 and 29 of 30 inside for 1, 2 and 3 buffers; the worst 0.74-0.83. One buffer per
    # edge couples the stages most, and there contention interleaves with the waits most often.
    assert inside >= (0.8 if buffers == 1 else 0.85) * cases, sorted(ratios)[:5]
    assert max(ratios) <= 1.05  # the simulator's measuring window, not a faster schedule


@PROPERTY
@given(graph_and_target(max_ops=30, max_chips=6, with_rules=False), st.data())
def test_no_simulated_placement_beats_the_upper_bound(
    case: tuple[Graph, Target], data: st.DataObject
) -> None:
    graph, target = case
    bound = throughput_upper_bound(graph, target)
    assert bound.reason in dict(bound.terms)
    assert PIPELINE_CUTS in dict(bound.terms)  # the pipeline-cut term is checked with the rest
    assert bound.period_s == pytest.approx(max(p for _, p in bound.terms))
    for _ in range(3):
        placement = data.draw(placements(graph, target))
        if not is_legal(graph, target, placement):
            placement = place_dp(graph, target)
        # 256 micro-batches and 1%: the simulator's measuring window over a finite run overstates a
        # link-bound pipeline's steady state by about 1% at 64 (measured 1.011x on a placement whose
        # period the pipeline-cut bound gives exactly), 0.7% at 256.
        report = simulate(build_schedule(graph, target, placement), target, microbatches=256)
        assert report.throughput <= bound.throughput * 1.01


def test_the_bound_names_dram_streaming_when_the_weights_exceed_the_sram() -> None:
    graph = transformer_graph(300, hidden=768, tokens=128)
    target = target_for(graph, 4, slack=1.0, dram_share=0.8)
    bound = throughput_upper_bound(graph, target)
    names = dict(bound.terms)
    assert "DRAM traffic over DRAM bandwidth" in names
    assert any("with unavoidable DRAM streaming" in name for name in names)
    streamed = graph.total_weight_bytes - 4 * target.chip.sram_bytes
    assert names["DRAM traffic over DRAM bandwidth"] == pytest.approx(
        streamed / (4 * target.chip.dram_bandwidth)
    )


# -- quick infeasibility proofs, whatever the graph's size ----------------------------------------------
def test_a_384_layer_bert_stack_is_rejected_before_any_search(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chiplex.passes import search as search_module
    from chiplex.targets import solver
    from chiplex.targets.target import load_target

    graph = transformer_graph(384 * 29, hidden=768, tokens=128)  # ~384 encoder layers, 11k ops
    assert graph.num_nodes > 11_000
    target = load_target("simba-6x6")

    def no_solver(*args: object, **kwargs: object) -> None:
        raise AssertionError("the quick proofs must decide before MiniZinc runs")

    monkeypatch.setattr(solver, "_run_minizinc", no_solver)
    messages = solver.quick_infeasibility(graph, target)
    assert any(m.startswith("total weights") and "36 chips" in m for m in messages)
    for attempt in (
        lambda: place_dp(graph, target),
        lambda: solver.repair(graph, target, np.zeros(graph.num_nodes, dtype=np.int64)),
        lambda: solver.optimize(graph, target),
        lambda: search_module.search(graph, target, "random", search_module.Budget(evaluations=4)),
    ):
        with pytest.raises(solver.InfeasibleError, match="total weights"):
            attempt()


def test_compile_prints_the_estimate_and_the_simulation_for_a_users_target(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from chiplex.cli import main

    target = tmp_path / "my targets" / "ring3.toml"
    target.parent.mkdir()
    target.write_text(
        "[chip]\nmatrix_ops = { bf16 = 1e12 }\nvector_ops = { bf16 = 1e11 }\n"
        "sram_bytes = 100000000\nsram_bandwidth = 1e11\nbuffers_per_edge = 1\n"
        '[link]\nbandwidth = 1e9\nlatency = 1e-6\n[topology]\nkind = "ring"\nnum_chips = 3\n'
    )
    mlp = Path(__file__).parents[1] / "examples" / "models" / "mlp.mlir"
    assert main(["compile", str(mlp), "--target", str(target), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "estimated throughput" in out and "(analytic model: period" in out
    assert "simulated throughput" in out and "1 buffers per edge" in out


@PROPERTY
@given(graph_and_target(min_ops=2, max_ops=30, max_chips=4, with_rules=False), st.data())
def test_dp_stage_times_are_the_cost_models_with_dram_streaming(
    case: tuple[Graph, Target], data: st.DataObject
) -> None:
    # dp's stage time (roofline + streaming extra) equals the chip busy time `cost.op_durations` gives
    # a stage [i, j) alone on a chip with DRAM, whose weights take SRAM first-come.
    import dataclasses

    from chiplex.passes.strategies import _streaming_extra, streaming_time
    from chiplex.targets.cost import op_durations, op_times
    from chiplex.targets.legality import chip_memory

    graph, target = case
    n = graph.num_nodes
    unshared = graph.total_weight_bytes == int(graph.weight_bytes.sum())
    if not unshared:
        return  # with shared params dp's streaming term is an estimate (reads, not stored params)
    sram = data.draw(st.integers(0, int(graph.weight_bytes.sum()) + 2**20))
    chip = dataclasses.replace(target.chip, sram_bytes=sram, dram_bytes=2**40, dram_bandwidth=1e9)
    target = dataclasses.replace(target, chip=chip)
    i = data.draw(st.integers(0, n - 1))
    j = data.draw(st.integers(i + 1, n))
    placement = np.where(np.arange(n) < i, 0, np.where(np.arange(n) < j, 1, 2))
    k = 3
    target = dataclasses.replace(target, num_chips=max(target.num_chips, k))
    memory = chip_memory(graph, placement, k, chip.buffers_per_edge)
    durations, _ = op_durations(graph, target, placement)
    budget = np.array([sram - memory.receive[1] - memory.working_set[1]], dtype=np.float64)
    read_prefix = np.concatenate([[0], np.cumsum(graph.weight_bytes)])
    extra = streaming_time(_streaming_extra(graph, target), read_prefix, np.array([i]), j, budget)
    expected = float(durations[i:j].sum())
    assert float(op_times(graph, target)[i:j].sum() + extra[0]) == pytest.approx(expected)
