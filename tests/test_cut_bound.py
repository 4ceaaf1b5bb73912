"""The pipeline-cut term of the throughput bound (`chiplex.targets.cut_bound`): sound, and exact where
it is easy to compute by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chiplex.ir.graph import Graph, make_graph
from chiplex.runtime_sim import simulate
from chiplex.targets.cost import PIPELINE_CUTS, estimate, op_times, throughput_upper_bound
from chiplex.targets.cut_bound import prefix_cut_bandwidth
from chiplex.targets.legality import is_legal
from chiplex.targets.schedule import build_schedule
from chiplex.targets.target import ChipSpec, Target, build_target, load_target
from chiplex.testing import graph_and_target, placements

MICROSECOND_OF_MATMUL = 8e6  # flops: 1 us on the test chip's bf16 matrix unit (8 TFLOP/s)


def chip(sram: int = 1 << 30) -> ChipSpec:
    return ChipSpec(
        matrix_ops={"bf16": 8e12},
        vector_ops={"bf16": 1e12},
        sram_bytes=sram,
        sram_bandwidth=400e9,
        buffers_per_edge=2,
    )


def chain(outputs: list[int]) -> Graph:
    """A chain of matmuls, 1 us each, op i sending outputs[i] bytes to op i + 1."""
    n = len(outputs)
    return make_graph(
        kinds=["nn.matmul"] * n,
        edges=[(i, i + 1) for i in range(n - 1)],
        flops=[MICROSECOND_OF_MATMUL] * n,
        output_bytes=outputs,
        weight_bytes=[0] * n,
        dtypes=["bf16"] * n,
    )


def ring(num_chips: int) -> Target:
    return build_target(
        "test-ring", "ring", chip(), num_chips=num_chips, link_bandwidth=4e9, link_latency=5e-7
    )


def test_indivisible_ops_on_a_chain_give_the_best_split_not_the_average() -> None:
    # Three 1 us ops on two chips: the work over the chips says 1.5 us, but ops are indivisible and
    # the best split (2 + 1) has a 2 us stage. The small messages (1 KiB, 0.26 us) never bind.
    graph = chain([1024, 1024, 1024])
    assert op_times(graph, ring(2)) == pytest.approx([1e-6] * 3, rel=1e-2)
    bound = throughput_upper_bound(graph, ring(2))
    assert bound.reason == PIPELINE_CUTS
    assert bound.period_s == pytest.approx(float(op_times(graph, ring(2))[:2].sum()), rel=1e-4)
    assert dict(bound.terms)[next(n for n, _ in bound.terms if n.startswith("total work"))] == (
        pytest.approx(bound.period_s * 0.75, rel=1e-2)
    )


def test_a_message_longer_than_the_period_cannot_cross_a_cut() -> None:
    # Four 1 us ops on two chips. Op 1 sends 40 KB (10 us on a 4 GB/s link), so the balanced cut
    # 2 + 2 is out; 1 + 3 and 3 + 1 remain: 3 us, where the work over the chips says 2 us.
    graph = chain([1024, 40_000, 1024, 1024])
    target = ring(2)
    times = op_times(graph, target)
    bound = throughput_upper_bound(graph, target)
    assert bound.reason == PIPELINE_CUTS
    assert bound.period_s == pytest.approx(float(times[1:].sum()), rel=1e-4)
    # and the best placement the simulator sees is indeed that split
    best = simulate(build_schedule(graph, target, np.array([0, 0, 0, 1])), target, microbatches=64)
    assert best.throughput <= bound.throughput * 1.01
    assert best.throughput >= bound.throughput * 0.9


def test_the_bytes_of_a_cut_are_limited_by_the_links_leaving_it() -> None:
    # Two 1 us ops, 8 KB between them: on a 2-chip ring one link leaves chip 0 (2 us per 8 KB), so a
    # cut costs 2 us and one chip (2 us of work) ties with it; on a 4 GB/s link the bound is 2 us.
    graph = chain([8000, 1024])
    target = ring(2)
    assert prefix_cut_bandwidth(target).tolist() == [4e9]
    bound = throughput_upper_bound(graph, target)
    assert bound.period_s == pytest.approx(2e-6, rel=2e-2)
    # On a 4-chip ring, the first chip's cut has two links leaving it (to chip 1, and the wrap to 3).
    assert prefix_cut_bandwidth(ring(4)).tolist() == [8e9, 8e9, 8e9]
    assert prefix_cut_bandwidth(load_target("tpu-mesh4x4"))[0] == 8e9  # chip 0: right and down


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_and_target(max_ops=40, max_chips=8, with_rules=False), st.data())
def test_the_cut_term_never_exceeds_a_legal_placements_estimated_period(
    case: tuple[Graph, Target], data: st.DataObject
) -> None:
    # The estimate's period is a lower bound of the simulated one (test_fidelity), and every rule the
    # cut term uses is one of the estimate's terms (chip work, link busy time, a message's serialisation
    # and buffer round trip): so the bound's period must be at most every legal placement's estimate.
    graph, target = case
    bound = throughput_upper_bound(graph, target)
    assert PIPELINE_CUTS in dict(bound.terms)
    for _ in range(4):
        placement = data.draw(placements(graph, target))
        if is_legal(graph, target, placement):
            assert bound.period_s <= estimate(graph, target, placement).period_s * (1 + 1e-6)


# -- cp optimises dp's stage model (optimize.mzn) ------------------------------------------------------
def test_cp_keeps_a_long_message_off_the_cut_and_agrees_with_the_period_model() -> None:
    # The chain of four 1 us ops whose op 1 sends 40 KB (10 us on the link): the compute bottleneck
    # alone would cut 2 + 2 (2 us), which the link makes 10 us; optimize.mzn's period model cuts
    # 1 + 3 or 3 + 1 (3 us) and proves it.
    from chiplex.targets.period_model import period_model
    from chiplex.targets.solver import minizinc_available, optimize

    if not minizinc_available():
        pytest.skip("MiniZinc is not installed")
    graph = chain([1024, 40_000, 1024, 1024])
    target = ring(2)
    model = period_model(graph, target)
    assert model.period(np.array([0, 0, 1, 1])) == pytest.approx(10e-6, rel=1e-2)
    result = optimize(graph, target, time_limit=10)
    assert result.proved_optimal
    assert result.placement[1] == result.placement[2]  # the 40 KB result stays on its chip
    assert result.period_s == pytest.approx(model.period(result.placement))
    assert result.period_s == pytest.approx(float(op_times(graph, target)[:3].sum()), rel=1e-2)
