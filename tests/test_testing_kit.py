"""chiplex.testing: the strategies make NN-shaped graphs, sized targets and mixed candidates, and the
README's few-line property test works as advertised."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.vendor.pretty import pretty

import chiplex.testing as kit
from chiplex.errors import ChiplexError
from chiplex.ir.graph import Graph, make_graph
from chiplex.targets import legality
from chiplex.targets.solver import repair
from chiplex.targets.target import (
    Target,
    TargetRules,
    load_target,
    preset_names,
    target_from_toml,
)
from chiplex.testing import (
    graph_and_target,
    graphs_for,
    is_legal,
    min_capacity,
    nn_graphs,
    noisy_placement,
    placements,
    reference_placement,
    targets,
    transformer_graph,
)

KIT = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_the_checker_is_re_exported() -> None:
    assert kit.check_placement is legality.check_placement
    assert kit.is_legal is legality.is_legal
    assert set(kit.__all__) >= {"nn_graphs", "targets", "placements", "graph_and_target"}


@KIT
@given(nn_graphs(min_ops=1, max_ops=50))
def test_nn_graphs_are_well_formed(graph: Graph) -> None:
    n = graph.num_nodes
    assert 1 <= n <= 50
    assert (graph.src < graph.dst).all() and (graph.dst < n).all()
    assert (graph.flops > 0).all() and (graph.output_bytes > 0).all()
    matmul = np.array([k == "nn.matmul" for k in graph.kinds])
    assert (graph.weight_bytes[matmul] > 0).all()
    assert set(graph.kinds) <= {"nn.matmul", *kit.ELEMENTWISE}
    # Every op but the first reads an earlier op: one connected, layered dataflow.
    assert set(graph.dst.tolist()) == set(range(1, n))
    assert all(
        name.startswith(f"l{i // kit.OPS_PER_LAYER}.") for i, name in enumerate(graph.op_names)
    )


def test_nn_graphs_have_skip_edges_and_branches() -> None:
    rng = np.random.default_rng(0)
    graphs = [kit.nn_graph(lambda lo, hi: int(rng.integers(lo, hi + 1)), 30) for _ in range(20)]
    assert sum(bool((g.dst - g.src > 1).any()) for g in graphs) >= 10  # residual connections
    assert sum(int(np.bincount(g.src).max()) > 1 for g in graphs) >= 10  # fan-out (q/k/v-like)


@KIT
@given(graph_and_target(max_ops=30, max_chips=6))
def test_generated_pairs_have_a_legal_placement(case: tuple[Graph, Target]) -> None:
    graph, target = case
    assert 1 <= target.num_chips <= 6
    buffers = target.chip.buffers_per_edge
    reference = reference_placement(graph, target.num_chips, target.chip.capacity_bytes, buffers)
    assert reference is not None
    # The target's rules (hop span, pins, colocation) were drawn from a legal placement, so some
    # legal placement exists; the plain reference satisfies the structural and memory rules.
    rules = legality.resolve_rules(graph, target)
    plain = legality.PlacementRules(
        target.num_chips,
        target.chip.capacity_bytes,
        None,
        np.full(graph.num_nodes, -1),
        (),
        buffers,
    )
    assert legality.check_placement(graph, target, reference, plain) == []
    if rules.max_hop_span is None and not (rules.pinned >= 0).any() and not rules.colocated:
        assert is_legal(graph, target, reference)
    else:
        assert is_legal(graph, target, repair(graph, target, reference, time_limit=10).placement)


@KIT
@given(targets(min_chips=2, max_chips=9))
def test_targets_cover_topologies_and_rules(target: Target) -> None:
    assert 2 <= target.num_chips <= 9
    assert target.topology in ("ring", "chain", "mesh")
    assert target.chip.capacity_bytes > 0
    for chip in range(target.num_chips - 1):
        assert target.hops(chip, chip + 1) == 1


@KIT
@given(graph_and_target(max_ops=20, max_chips=5), st.data())
def test_placements_fit_the_graph(case: tuple[Graph, Target], data: st.DataObject) -> None:
    graph, target = case
    placement = data.draw(placements(graph, target))
    assert placement.shape == (graph.num_nodes,) and placement.dtype == np.int64
    assert ((placement >= -1) & (placement <= target.num_chips)).all()


def test_placements_are_sometimes_legal_and_mostly_not() -> None:
    graph = transformer_graph(28)
    target = kit.target_for(graph, 4)
    seen: list[bool] = []

    @settings(max_examples=60, deadline=None, database=None)
    @given(placements(graph, target))
    def collect(placement: np.ndarray) -> None:
        seen.append(is_legal(graph, target, placement))

    collect()
    assert any(seen) and seen.count(False) > len(seen) / 2


def test_min_capacity_is_tight_for_the_block_order() -> None:
    graph = transformer_graph(56, seed=2)
    need = min_capacity(graph, 4)
    assert reference_placement(graph, 4, need) is not None
    assert reference_placement(graph, 4, need - 1) is None


def test_transformer_graph_looks_like_bert() -> None:
    graph = transformer_graph(28, seed=0)
    assert graph.num_nodes == 28 and graph.op_names[3] == "encoder.0.attn.v"
    assert graph.kinds.count("nn.matmul") == 12  # q, k, v, out, ffn w1, w2 per layer
    assert graph.weight_bytes[1] == 768 * 768  # int8 weights


def test_noisy_placement_moves_a_share_of_the_ops() -> None:
    base = np.repeat(np.arange(8), 125)
    noisy = noisy_placement(base, 8, share=0.2, seed=0)
    moved = (noisy != base).mean()
    assert 0.1 < moved < 0.25 and (np.abs(noisy - base) <= 2).all()
    assert ((noisy >= 0) & (noisy < 8)).all()


# The README's example, verbatim in spirit: property-test your own placer in a few lines.
def my_placer(graph: Graph, target: Target) -> np.ndarray:
    from chiplex.targets.solver import optimize

    return optimize(graph, target, time_limit=2).placement


@settings(max_examples=15, deadline=None)
@given(graph_and_target(max_ops=20, max_chips=4))
def test_the_readme_example(case: tuple[Graph, Target]) -> None:
    graph, target = case
    assert is_legal(graph, target, my_placer(graph, target))


# -- rules independent of the block cuts, and assertion messages in full -------------------------------
def rule_blind_placer(graph: Graph, target: Target) -> np.ndarray:
    """First fit along the block order: legal on memory and structure, blind to pins, colocation and
    the hop span."""
    placement = reference_placement(
        graph, target.num_chips, target.chip.capacity_bytes, target.chip.buffers_per_edge
    )
    assert placement is not None
    return placement


def test_a_rule_blind_placer_is_caught() -> None:
    from hypothesis import find

    def broken(case: tuple[Graph, Target]) -> bool:
        graph, target = case
        chip = target.chip
        if (
            reference_placement(graph, target.num_chips, chip.capacity_bytes, chip.buffers_per_edge)
            is None
        ):
            return False  # first fit found no cut at this capacity (seen once in CI-like runs): not a catch
        return not is_legal(graph, target, rule_blind_placer(graph, target))

    graph, target = find(
        graph_and_target(max_ops=20, max_chips=4),
        broken,
        settings=settings(max_examples=300, deadline=None, database=None),
    )
    rules = {
        v.rule for v in legality.check_placement(graph, target, rule_blind_placer(graph, target))
    }
    assert rules & {"pinned", "colocated", "hop-span"} and not rules & {
        "memory",
        "acyclic-dataflow",
    }


@KIT
@given(graph_and_target(min_ops=2, max_ops=20, max_chips=4))
def test_rules_are_drawn_off_the_block_cuts_yet_stay_satisfiable(
    case: tuple[Graph, Target],
) -> None:
    graph, target = case
    if target.rules.pinned or target.rules.colocated or target.rules.max_hop_span is not None:
        result = repair(graph, target, rule_blind_placer(graph, target), time_limit=10)
        assert is_legal(graph, target, result.placement)


def test_violation_report_prints_every_violation_in_full() -> None:
    graph = transformer_graph(28)
    target = kit.target_for(graph, 4)
    crammed = np.zeros(graph.num_nodes, dtype=np.int64)
    crammed[::2] = 3  # backwards edges everywhere, and chip 3 overfull
    report = kit.violation_report(graph, target, crammed)
    violations = legality.check_placement(graph, target, crammed)
    assert report.count("\n  [") == len(violations) > 5
    assert all(str(v) in report for v in violations)
    with pytest.raises(AssertionError) as info:
        kit.assert_legal(graph, target, crammed)
    assert str(info.value) == report
    assert kit.violation_report(graph, target, rule_blind_placer(graph, target)).startswith("legal")


def test_a_small_memory_overflow_reads_in_kib_and_the_rules_in_words() -> None:
    # Two ops on two chips of 37 KiB: the second needs 38 KiB. In MiB both read "0.04 MiB".
    graph = make_graph(
        kinds=["nn.add", "nn.matmul"],
        edges=[(0, 1)],
        flops=[512.0, 262144.0],
        output_bytes=[1024, 4096],
        weight_bytes=[0, 32 * 1024],
    )
    target = kit.target_for(graph, 2)
    target = dataclasses.replace(
        target,
        chip=dataclasses.replace(target.chip, sram_bytes=37 * 1024, dram_bytes=0),
        rules=TargetRules(max_hop_span=1, pinned=(("op1", 1),), colocated=()),
    )
    report = kit.violation_report(graph, target, np.array([0, 1]))
    assert report.startswith("1 violation of ")
    assert "rules: max_hop_span 1, pinned 'op1' to chip 1):" in report
    assert re.search(r"\[memory\] chip 1 needs [\d.]+ KiB .* > capacity 37\.00 KiB", report), report


def test_a_placement_written_as_a_dict_of_op_names_is_checked() -> None:
    """A hand-built placement {op name: chip} checks like the array, and its violations are data
    that name the ops."""
    graph = transformer_graph(6)
    target = kit.target_for(graph, 3)
    by_name = {name: [0, 0, 0, 1, 2, 1][i] for i, name in enumerate(graph.op_names)}
    violations = kit.check_placement(graph, target, by_name)
    assert violations == kit.check_placement(graph, target, np.array([0, 0, 0, 1, 2, 1]))
    backwards = [v for v in violations if v.rule == "acyclic-dataflow"]
    assert backwards and backwards[0].op_names == (
        "encoder.0.attn.scores",
        "encoder.0.attn.softmax",
    )
    assert backwards[0].chips == (2, 1)
    assert not kit.is_legal(graph, target, by_name)
    assert "[acyclic-dataflow]" in kit.violation_report(graph, target, by_name)
    repaired = repair(graph, target, by_name).placement
    assert kit.is_legal(graph, target, dict(zip(graph.op_names, repaired.tolist(), strict=True)))
    # With or without the IR's `%`, as chiplex check and the target rules accept names.
    percent = {f"%{name}": int(chip) for name, chip in zip(graph.op_names, repaired, strict=True)}
    assert kit.is_legal(graph, target, percent)


def test_a_dict_placement_with_a_wrong_name_says_which() -> None:
    graph = transformer_graph(6)
    target = kit.target_for(graph, 3)
    typo = {name: 0 for name in graph.op_names} | {"encoder.0.attn.qq": 0}
    with pytest.raises(
        ChiplexError, match=r"'encoder\.0\.attn\.qq'.*did you mean 'encoder\.0\.attn\.q'"
    ):
        kit.check_placement(graph, target, typo)
    partial = {name: 0 for name in graph.op_names[:4]}
    with pytest.raises(
        ChiplexError, match=r"no chip for 2 of the 6 ops .*: encoder\.0\.attn\.scores"
    ):
        kit.is_legal(graph, target, partial)
    with pytest.raises(ChiplexError, match="maps to 'one', not a chip number"):
        kit.check_placement(graph, target, dict(partial, **{graph.op_names[4]: "one"}))


def _same_graph(a: Graph, b: Graph) -> bool:
    arrays = ("flops", "output_bytes", "weight_bytes", "src", "dst", "param_bytes", "read_param")
    return (a.op_names, a.kinds, a.dtypes, a.name) == (
        b.op_names,
        b.kinds,
        b.dtypes,
        b.name,
    ) and all(np.array_equal(getattr(a, field), getattr(b, field)) for field in arrays)


@KIT
@given(graph_and_target(max_ops=20, max_chips=9))
def test_graphs_and_targets_print_as_the_code_that_rebuilds_them(
    case: tuple[Graph, Target],
) -> None:
    graph, target = case
    shown = pretty(case)
    assert "array(" not in shown and "ChipSpec(" not in shown
    assert len(shown.splitlines()) <= graph.num_nodes + 60  # a line per op, not per array entry
    rebuilt_graph, rebuilt_target = eval(  # noqa: S307 - our own printout
        shown, {"make_graph": make_graph, "target_from_toml": target_from_toml}
    )
    assert _same_graph(rebuilt_graph, graph)
    assert rebuilt_target == target
    assert target_from_toml(kit.target_toml(target)) == target


def test_every_preset_round_trips_through_target_toml() -> None:
    for name in preset_names():
        target = load_target(name)
        assert target_from_toml(kit.target_toml(target), name) == target, name


def test_a_falsifying_example_shows_the_graph_and_target_as_code() -> None:
    @settings(max_examples=20, database=None, derandomize=True)
    @given(graph_and_target(min_ops=2, max_ops=8, max_chips=3, with_rules=False))
    def everything_on_chip_zero(case: tuple[Graph, Target]) -> None:
        graph, target = case
        kit.assert_legal(graph, target, np.zeros(graph.num_nodes, dtype=np.int64))

    with pytest.raises(AssertionError) as info:
        everything_on_chip_zero()
    shown = "\n".join(getattr(info.value, "__notes__", []))
    assert "make_graph(  # nn: 2 ops, 1 edge" in shown, shown
    assert "#   0 l0." in shown and "target_from_toml(" in shown and "[chip]" in shown
    assert "array(" not in shown and "Link(" not in shown


MY_MESH = target_from_toml(
    """
name = "my-mesh3x3"
[chip]
matrix_ops = { i8 = 4e12, bf16 = 2e12 }
vector_ops = { i8 = 2.5e11, bf16 = 1.25e11 }
sram_bytes = 1048576
sram_bandwidth = 4e11
[link]
bandwidth = 2.5e10
latency = 2e-8
[topology]
kind = "mesh"
shape = [3, 3]
[rules]
max_hop_span = 2
[[rules.pinned]]
ops = "l0.*"
chip = 0
""",
    "my-mesh3x3.toml",
)


@settings(max_examples=60, deadline=None)  # no health check suppressed: generation stays cheap
@given(graphs_for(MY_MESH, min_ops=3, max_ops=40))
def test_graphs_for_my_target_always_have_a_legal_placement(graph: Graph) -> None:
    """On a user's small-SRAM mesh with rules, plain `nn_graphs` often draws graphs that fit nowhere
    (a 4x512x512 bf16 weight is 2 MiB); `graphs_for` sizes them to the target instead."""
    assert 3 <= graph.num_nodes <= 40
    result = repair(graph, MY_MESH, np.zeros(graph.num_nodes, dtype=np.int64), time_limit=10)
    kit.assert_legal(graph, MY_MESH, result.placement)


def test_graphs_for_reaches_the_op_counts_asked_for() -> None:
    sizes = []

    @settings(max_examples=40, deadline=None)
    @given(graphs_for(MY_MESH, min_ops=5, max_ops=25))
    def collect(graph: Graph) -> None:
        sizes.append(graph.num_nodes)

    collect()
    assert min(sizes) >= 5 and max(sizes) >= 20


def test_graphs_take_the_dtypes_asked_for() -> None:
    @settings(max_examples=20, deadline=None)
    @given(graphs_for(MY_MESH, max_ops=10, activation_dtypes=["f32"], weight_dtypes=["f32"]))
    def f32_everywhere(graph: Graph) -> None:
        assert set(graph.dtypes) == {"f32"}
        tokens_times_width = graph.output_bytes // 4
        assert (tokens_times_width * 4 == graph.output_bytes).all()

    f32_everywhere()
    rng = np.random.default_rng(0)
    graph = kit.nn_graph(lambda lo, hi: int(rng.integers(lo, hi + 1)), 12, activation_dtype="i8")
    assert set(graph.dtypes) == {"i8"}


def test_graph_prefix_keeps_the_params_its_ops_read() -> None:
    rng = np.random.default_rng(3)
    graph = kit.nn_graph(lambda lo, hi: int(rng.integers(lo, hi + 1)), 30, shared_params=True)
    prefix = kit.graph_prefix(graph, 12)
    assert prefix.op_names == graph.op_names[:12]
    assert np.array_equal(prefix.weight_bytes, graph.weight_bytes[:12])
    assert prefix.total_weight_bytes <= graph.total_weight_bytes
    assert (prefix.dst < 12).all()


def test_a_target_too_small_for_any_op_is_a_clear_error() -> None:
    tiny = dataclasses.replace(MY_MESH, chip=dataclasses.replace(MY_MESH.chip, sram_bytes=4096))

    @given(graphs_for(tiny))
    def anything(graph: Graph) -> None:
        pass

    with pytest.raises(ChiplexError, match=r"target my-mesh3x3: a chip holds 4.00 KiB, less than"):
        anything()


@settings(max_examples=30, deadline=None)
@given(graph_and_target(max_ops=15, topologies=["mesh"], activation_dtypes=["f32", "i8"]))
def test_graph_and_target_take_topologies_and_dtypes(case: tuple[Graph, Target]) -> None:
    graph, target = case
    assert target.topology == "mesh"
    assert len(set(graph.dtypes)) == 1 and graph.dtypes[0] in ("f32", "i8")
    legal = kit.reference_placement(
        graph, target.num_chips, target.chip.capacity_bytes, target.chip.buffers_per_edge
    )
    assert legal is not None


def test_min_capacity_builds_the_placement_problem_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bisection over the capacity (about 25 cuts) reuses one precomputed problem: rebuilding it per
    cut made graph_and_target's draws slow enough to trip hypothesis' too_slow health check at 150
    ops."""
    from chiplex.targets import heuristics

    builds = []
    build = heuristics._build_problem
    monkeypatch.setattr(
        heuristics, "_build_problem", lambda graph, rules: builds.append(1) or build(graph, rules)
    )
    graph = transformer_graph(60, seed=4)
    need = min_capacity(graph, 6)
    assert len(builds) == 1
    assert (
        kit._greedy_cut(graph, 6, need) is not None and kit._greedy_cut(graph, 6, need - 1) is None
    )


@settings(max_examples=40, deadline=None)  # no health check suppressed
@given(graph_and_target(max_ops=25, max_chips=8), st.data())
def test_legal_placements_are_legal_and_varied(
    case: tuple[Graph, Target], data: st.DataObject
) -> None:
    """`assume(is_legal(...))` over `placements` throws most examples away and keeps mostly one
    reference placement; `legal_placements` repairs each candidate instead."""
    graph, target = case
    drawn = [data.draw(kit.legal_placements(graph, target)) for _ in range(4)]
    for placement in drawn:
        kit.assert_legal(graph, target, placement)


def test_legal_placements_differ_from_one_reference() -> None:
    graph = transformer_graph(40, seed=2)
    target = kit.target_for(graph, 6, slack=1.5)
    seen: set[tuple[int, ...]] = set()

    @settings(max_examples=40, deadline=None, derandomize=True, database=None)
    @given(kit.legal_placements(graph, target))
    def collect(placement: np.ndarray) -> None:
        kit.assert_legal(graph, target, placement)
        seen.add(tuple(placement.tolist()))

    collect()
    assert len(seen) >= 10
