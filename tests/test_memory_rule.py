"""The memory rule everywhere it lives agrees with the checker: receive buffers per edge (k = 1, 2, 3)
and shared params stored once per chip that reads them.

The rule is implemented five times (the checker `legality.chip_memory`, the MiniZinc model
`legality.mzn`, dp's incremental stage memory, the repair heuristic's segment table and local moves,
the testing kit's capacities); the checker is the oracle.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chiplex.errors import ChiplexError
from chiplex.ir.graph import Graph, graph_from_module, make_graph
from chiplex.ir.parse import parse_module
from chiplex.passes.strategies import _candidate_orders, place_dp, place_greedy
from chiplex.targets import heuristics, solver
from chiplex.targets.legality import (
    check_placement,
    chip_memory,
    chip_weights,
    is_legal,
    resolve_rules,
)
from chiplex.targets.target import Target, load_target, target_from_toml
from chiplex.testing import (
    graph_and_target,
    min_capacity,
    nn_graph,
    placements,
    reference_placement,
)

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MINIZINC = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BUFFERS = [1, 2, 3]


def memory_broken(graph: Graph, target: Target, placement: np.ndarray) -> bool:
    return any(v.rule == "memory" for v in check_placement(graph, target, placement))


def hand_weights(graph: Graph, placement: np.ndarray, num_chips: int) -> list[int]:
    """Param bytes per chip counted by hand: the set of params each chip's ops read."""
    params: list[set[int]] = [set() for _ in range(num_chips)]
    for v, p in zip(graph.read_node.tolist(), graph.read_param.tolist(), strict=True):
        params[int(placement[v])].add(p)
    return [sum(int(graph.param_bytes[p]) for p in chip) for chip in params]


# -- k receive buffers per edge -------------------------------------------------------------------------
@pytest.mark.parametrize("buffers", BUFFERS)
@MINIZINC  # each example runs MiniZinc; test_solver_properties covers more with 1-3 buffers drawn
@given(data=st.data())
def test_minizinc_and_the_checker_agree_on_memory(buffers: int, data: st.DataObject) -> None:
    graph, target = data.draw(
        graph_and_target(max_ops=14, max_chips=4, feasible=False, buffers_per_edge=buffers)
    )
    placement = data.draw(placements(graph, target))
    if (placement < 0).any() or (placement >= target.num_chips).any():
        return  # chip-range hides every other rule in both
    model = "memory" in solver.check_with_minizinc(graph, target, placement)
    assert model == memory_broken(graph, target, placement)


@pytest.mark.parametrize("buffers", BUFFERS)
@PROPERTY
@given(data=st.data())
def test_the_repair_heuristic_segments_match_the_checker(buffers: int, data: st.DataObject) -> None:
    graph, target = data.draw(
        graph_and_target(max_ops=24, max_chips=4, with_rules=False, buffers_per_edge=buffers)
    )
    problem = heuristics.problem_for(graph, resolve_rules(graph, target))
    seq = heuristics.sequence_of(problem, np.arange(graph.num_nodes))
    end = heuristics.segment_ends(problem, seq)
    n, cap = graph.num_nodes, target.chip.capacity_bytes
    j = data.draw(st.integers(0, n - 1))
    for i in range(j + 1, n + 1):
        # Segment [j, i) alone on chip 1, the rest on chips 0 and 2: the checker's memory of chip 1.
        placement = np.where(np.arange(n) < j, 0, np.where(np.arange(n) < i, 1, 2))
        memory = chip_memory(graph, placement, 3, buffers)
        fits = memory.total[1] <= cap
        assert fits == (i <= end[j]), (j, i, end[j], memory.total[1], cap)
        state = heuristics.LocalState(problem, placement)
        assert state.chip_memory(placement, 1) == memory.total[1]


@pytest.mark.parametrize("buffers", BUFFERS)
@PROPERTY
@given(data=st.data())
def test_dp_splits_contiguously_whenever_the_kit_says_a_split_fits(
    buffers: int, data: st.DataObject
) -> None:
    # The kit's capacity is the smallest at which a contiguous cut fits (slack 1.0 is drawn often):
    # dp, whose stage memory must equal the checker's, has to find a contiguous legal split too.
    graph, target = data.draw(
        graph_and_target(max_ops=30, max_chips=5, with_rules=False, buffers_per_edge=buffers)
    )
    placement = place_dp(graph, target)
    assert check_placement(graph, target, placement) == []
    # Contiguous in one of the topological orders dp splits (the graph's own, or an alternative).
    orders = [np.arange(graph.num_nodes) if o is None else o for o in _candidate_orders(graph)]
    assert any((np.diff(placement[o]) >= 0).all() for o in orders), (
        "dp fell back to a non-contiguous repair"
    )
    assert check_placement(graph, target, place_greedy(graph, target)) == []


@pytest.mark.parametrize("buffers", BUFFERS)
@PROPERTY
@given(data=st.data())
def test_the_kit_capacity_is_tight_under_the_checker(buffers: int, data: st.DataObject) -> None:
    graph, target = data.draw(graph_and_target(max_ops=24, max_chips=4, buffers_per_edge=buffers))
    k = target.num_chips
    need = min_capacity(graph, k, buffers)
    reference = reference_placement(graph, k, need, buffers)
    assert reference is not None
    tight = dataclasses.replace(
        target,
        rules=dataclasses.replace(target.rules, max_hop_span=None, pinned=(), colocated=()),
        chip=dataclasses.replace(target.chip, sram_bytes=need, dram_bytes=0),
    )
    assert not memory_broken(graph, tight, reference)
    assert reference_placement(graph, k, need - 1, buffers) is None


def test_more_buffers_need_more_memory() -> None:
    graph = make_graph(
        kinds=["nn.matmul"] * 3,
        edges=[(0, 1), (1, 2)],
        flops=[1.0] * 3,
        output_bytes=[100, 100, 100],
        weight_bytes=[1000, 1000, 1000],
    )
    placement = np.array([0, 1, 1])
    for buffers in BUFFERS:
        memory = chip_memory(graph, placement, 2, buffers)
        assert memory.receive.tolist() == [0, 100 * buffers]
        assert memory.total[1] == 2000 + 100 * buffers + 200


# -- the target file ---------------------------------------------------------------------------------------
TOML = """
[chip]
matrix_ops = {{ i8 = 1e12 }}
vector_ops = {{ i8 = 1e11 }}
sram_bytes = 1048576
sram_bandwidth = 1e11
{extra}
[link]
bandwidth = 1e9
latency = 1e-6
[topology]
kind = "ring"
num_chips = 4
"""


def test_buffers_per_edge_comes_from_the_target_file() -> None:
    assert target_from_toml(TOML.format(extra=""), "t.toml").chip.buffers_per_edge == 2
    chip = target_from_toml(TOML.format(extra="buffers_per_edge = 3"), "t.toml").chip
    assert chip.buffers_per_edge == 3
    for bad in ("0", "1.5", "true", '"2"'):
        with pytest.raises(ChiplexError, match=r"t.toml \[chip\]: 'buffers_per_edge' must be"):
            target_from_toml(TOML.format(extra=f"buffers_per_edge = {bad}"), "t.toml")


def test_presets_state_their_buffering() -> None:
    from importlib import resources

    from chiplex.targets.target import preset_names

    for name in preset_names():
        text = (resources.files("chiplex.targets") / "presets" / f"{name}.toml").read_text()
        assert "buffers_per_edge =" in text, name
        assert load_target(name).chip.buffers_per_edge >= 1


# -- shared params -------------------------------------------------------------------------------------------
SHARED = """
func.func @f(%x: tensor<4x64xbf16>) -> tensor<4x64xbf16> {
  %w = nn.param "shared.weight" : tensor<64x64xi8>
  %a = nn.matmul %x, %w : tensor<4x64xbf16>, tensor<64x64xi8> -> tensor<4x64xbf16>
  %r = nn.relu %a : tensor<4x64xbf16>
  %b = nn.matmul %r, %w : tensor<4x64xbf16>, tensor<64x64xi8> -> tensor<4x64xbf16>
  %v = nn.param "own.weight" : tensor<64x64xi8>
  %c = nn.matmul %b, %v : tensor<4x64xbf16>, tensor<64x64xi8> -> tensor<4x64xbf16>
  func.return %c : tensor<4x64xbf16>
}
"""


def test_a_shared_param_is_stored_once_per_chip_that_reads_it() -> None:
    graph = graph_from_module(parse_module(SHARED, "shared.mlir"))
    assert graph.weight_bytes.tolist() == [4096, 0, 4096, 4096]  # what each op reads
    assert graph.total_weight_bytes == 8192  # two params, each once
    assert graph.private_weight_bytes.tolist() == [0, 0, 0, 4096]
    one_chip = np.zeros(4, dtype=np.int64)
    assert chip_weights(graph, one_chip, 1).tolist() == [8192]  # not 12288
    split = np.array([0, 0, 1, 1])
    assert chip_weights(graph, split, 2).tolist() == [4096, 8192]  # a copy on each reader chip
    assert chip_memory(graph, one_chip, 1).weights.tolist() == [8192]


def test_shared_params_decide_feasibility_everywhere() -> None:
    # Capacity for the three matmuls' weights stored as two params on one chip, not as three.
    graph = graph_from_module(parse_module(SHARED, "shared.mlir"))
    working = int(graph.working_set_bytes.max())
    text = TOML.format(extra="").replace("1048576", str(8192 + working)).replace("= 4", "= 1")
    target = target_from_toml(text, "one.toml")
    one_chip = np.zeros(4, dtype=np.int64)
    assert is_legal(graph, target, one_chip)
    assert solver.check_with_minizinc(graph, target, one_chip) == []
    assert solver.explain(graph, target) == []
    assert place_dp(graph, target).tolist() == [0, 0, 0, 0]
    assert place_greedy(graph, target).tolist() == [0, 0, 0, 0]
    problem = heuristics.problem_for(graph, resolve_rules(graph, target))
    seq = heuristics.sequence_of(problem, np.arange(4))
    assert heuristics.segment_ends(problem, seq)[0] == 4


@PROPERTY
@given(st.integers(0, 2**32 - 1), st.integers(2, 40), st.integers(1, 6))
def test_chip_weights_match_a_hand_count(seed: int, num_ops: int, num_chips: int) -> None:
    rng = np.random.default_rng(seed)
    graph = nn_graph(lambda lo, hi: int(rng.integers(lo, hi + 1)), num_ops, shared_params=True)
    placement = np.sort(rng.integers(0, num_chips, size=num_ops))
    expected = hand_weights(graph, placement, num_chips)
    assert chip_weights(graph, placement, num_chips).tolist() == expected
    assert chip_memory(graph, placement, num_chips).weights.tolist() == expected
    problem = heuristics.problem_for(graph, resolve_rules(graph, _any_target(num_chips)))
    for c in range(num_chips):
        assert heuristics.weights_of(problem, placement == c) == expected[c]


def _any_target(num_chips: int) -> Target:
    text = TOML.format(extra="").replace("num_chips = 4", f"num_chips = {num_chips}")
    return target_from_toml(text, "any.toml")


def test_a_shared_param_streams_once_and_the_emitter_agrees(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # SRAM for one 4 KiB param besides the working set: the shared %w (first read by %a) stays in SRAM,
    # so %b reads it from there too; %v no longer fits and %c streams it from DRAM. Counting %w once per
    # reader would have streamed %b as well.
    from chiplex.compile import compile_module
    from chiplex.targets.schedule import build_schedule

    graph = graph_from_module(parse_module(SHARED, "shared.mlir"))
    sram = int(graph.working_set_bytes.max()) + 4096 + 100
    extra = "dram_bytes = 1048576\ndram_bandwidth = 1e9"
    text = TOML.format(extra=extra).replace("1048576\nsram", f"{sram}\nsram", 1)
    path = tmp_path / "one.toml"
    path.write_text(text.replace("num_chips = 4", "num_chips = 1"))
    result = compile_module(parse_module(SHARED, "shared.mlir"), str(path))
    assert result.placement.tolist() == [0, 0, 0, 0]
    steps = [s for s in result.schedule.chips[0] if s.type == "compute"]
    assert [s.weights_from_dram for s in steps] == [False, False, False, True]
    direct = build_schedule(result.graph, result.target, result.placement)
    assert result.schedule == direct
