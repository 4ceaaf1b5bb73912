"""Solver back ends (auto, cp-sat, highs, gecode), the per-chip weight bound and the `--solver` choice.

- every back end's exact repair and optimum agree with brute force over the checker (the oracle) and
  with each other on tiny instances, and explain decides feasibility the same way;
- the FlatZinc translator solves a hand-written model and refuses what it cannot translate;
- the per-chip weight bound never falls below the weight any chip of a legal placement holds, and it
  proves infeasibility with its reason where total weights alone would fit (the ViT-B/16 case);
- unknown solver names are clear errors wherever a solver is chosen.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chiplex.cli import main
from chiplex.errors import ChiplexError
from chiplex.ir.graph import Graph, make_graph
from chiplex.targets import flatzinc, heuristics, legality, solver
from chiplex.targets.legality import is_legal, resolve_rules
from chiplex.targets.solver_choice import SOLVERS, backend_for, solver_for, with_solver
from chiplex.targets.target import (
    ChipSpec,
    Target,
    build_target,
    load_target,
    target_from_toml,
)
from chiplex.testing import (
    graph_and_target,
    nn_graph,
    placements,
    target_for,
    transformer_graph,
    with_capacity,
)

ROOT = Path(__file__).parents[1]
pytestmark = pytest.mark.skipif(not solver.minizinc_available(), reason="MiniZinc is not installed")
FEW = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""Each example runs every back end (about 0.3-1 s per call): a few examples per property."""


def brute_force(graph: Graph, target: Target) -> list[np.ndarray]:
    rules = resolve_rules(graph, target)
    chips = range(target.num_chips)
    return [
        np.array(p, dtype=np.int64)
        for p in itertools.product(chips, repeat=graph.num_nodes)
        if is_legal(graph, target, np.array(p, dtype=np.int64), rules)
    ]


@FEW
@given(graph_and_target(min_ops=2, max_ops=7, max_chips=3), st.data())
def test_every_back_end_proves_the_brute_force_repair(
    case: tuple[Graph, Target], data: st.DataObject
) -> None:
    graph, target = case
    legal = brute_force(graph, target)
    candidate = data.draw(placements(graph, target))
    candidate = np.clip(candidate, 0, target.num_chips - 1)
    if not legal:
        for backend in SOLVERS:
            with pytest.raises(solver.InfeasibleError):
                solver.repair(graph, target, candidate, exact=True, solver=backend)
        return
    best = min((int((p != candidate).sum()), int(np.abs(p - candidate).sum())) for p in legal)
    for backend in SOLVERS:
        result = solver.repair(graph, target, candidate, exact=True, time_limit=20, solver=backend)
        assert is_legal(graph, target, result.placement), backend
        assert (result.changed, result.distance) == best, backend
        assert result.proved_optimal, backend


@FEW
@given(graph_and_target(min_ops=2, max_ops=7, max_chips=3))
def test_every_back_end_proves_the_brute_force_optimum(case: tuple[Graph, Target]) -> None:
    from chiplex.targets.period_model import period_model

    graph, target = case
    legal = brute_force(graph, target)
    if not legal:
        return
    model = period_model(graph, target)  # optimize.mzn's objective
    best = min(model.period(p) for p in legal)
    for backend in SOLVERS:
        result = solver.optimize(graph, target, time_limit=20, solver=backend)
        assert is_legal(graph, target, result.placement), backend
        assert result.period_s == pytest.approx(best, rel=1e-6), backend
        assert result.proved_optimal, backend


def five_matmuls_on_two_chips() -> tuple[Graph, Target]:
    """The case hypothesis found: HiGHS at a 1e-9 feasibility tolerance proved a false bound on
    optimize.mzn (time coefficients up to 2^29 beside 0/1 columns) and claimed 1.012 us optimal."""
    graph = make_graph(
        kinds=["nn.matmul"] * 5,
        edges=[(0, 1), (0, 2), (1, 4), (2, 3)],
        flops=[524288, 524288, 524288, 131072, 524288],
        output_bytes=[8192, 2048, 2048, 2048, 8192],
        weight_bytes=[32768, 32768, 32768, 8192, 32768],
        op_names=[f"l0.mm{i}" for i in range(5)],
        name="nn",
    )
    chip = ChipSpec(
        matrix_ops={"i8": 16e12, "bf16": 8e12, "f32": 2e12},
        vector_ops={"i8": 1e12, "bf16": 1e12, "f32": 0.5e12},
        sram_bytes=188416,
        sram_bandwidth=400e9,
        buffers_per_edge=1,
    )
    target = build_target(
        "generated", "ring", chip, num_chips=2, link_bandwidth=4e9, link_latency=500e-9
    )
    return graph, target


@pytest.mark.parametrize("backend", SOLVERS)
def test_every_back_end_proves_the_optimum_of_five_matmuls_on_two_chips(backend: str) -> None:
    from chiplex.targets.period_model import period_model

    graph, target = five_matmuls_on_two_chips()
    assert graph.activation_in_bytes.tolist() == [0, 8192, 8192, 2048, 2048]
    periods = sorted(period_model(graph, target).period(p) for p in brute_force(graph, target))
    assert periods[:2] == pytest.approx([4.5568e-07, 1.012e-06])  # all on chip 0, then a 4-1 split
    result = solver.optimize(graph, target, time_limit=20, solver=backend)
    assert result.period_s == pytest.approx(periods[0], rel=1e-6)
    assert result.placement.tolist() == [0, 0, 0, 0, 0]
    assert result.proved_optimal and result.claim == "proved optimal"


def test_a_bound_above_the_returned_placement_is_not_a_proof() -> None:
    """The guard behind every claimed optimum: a solver's bound must meet the exact objective of the
    placement it returned; one above it disproves itself (a MIP's numerical trouble) and is warned."""
    claim = solver._Outcome("OPTIMAL_SOLUTION", {}, "", bound=534773759.0)
    with pytest.warns(solver.SolverWarning, match="exceeds the objective 79635852"):
        assert not solver._bound_agrees(claim, 79635852, "optimize")
    assert solver._bound_agrees(claim, 534773759, "optimize")
    assert not solver._bound_agrees(claim, 534773761, "optimize")  # the bound falls short
    assert solver._bound_agrees(solver._Outcome("OPTIMAL_SOLUTION", {}, "", None), 7, "optimize")


@FEW
@given(graph_and_target(min_ops=2, max_ops=7, max_chips=3, feasible=False))
def test_every_back_end_decides_feasibility_like_brute_force(case: tuple[Graph, Target]) -> None:
    graph, target = case
    feasible = bool(brute_force(graph, target))
    for backend in SOLVERS:
        messages = solver.explain(graph, target, time_limit=20, solver=backend)
        assert not (messages and messages[0].startswith("undecided")), backend
        assert (not messages) == feasible, (backend, messages)


@FEW
@given(graph_and_target(min_ops=2, max_ops=25, max_chips=5))
def test_the_chip_weight_bound_holds_for_every_legal_chip(case: tuple[Graph, Target]) -> None:
    """The bound is what infeasibility proofs rest on: no chip of a legal placement exceeds it."""
    graph, target = case
    problem = heuristics.problem_for(graph, resolve_rules(graph, target))
    bound = solver.chip_weight_bound(problem, time_limit=20)
    assert bound.held <= problem.capacity
    placement = heuristics.heuristic_optimize(problem, np.ones(graph.num_nodes))
    if placement is not None:
        # The bound counts what the memory rule stores: each op's own params, a shared one once.
        for chip in range(target.num_chips):
            assert heuristics.weights_of(problem, placement == chip) <= bound.held
    if bound.witness is not None:
        # The witness is a set of ops that fits one chip on its own and holds that much.
        assert heuristics.weights_of(problem, bound.witness) <= bound.held


def three_shared_params_on_two_chips() -> tuple[Graph, Target]:
    """A chain of 6 ops as split-rows leaves it: ops 2i and 2i+1 share a 3000 B param, each op has a
    16 B one of its own. A chip of 4800 B stores one shared param, not two: 2 chips hold 2 x 3032 B
    of the 9096 B, although 9096 B fit in 2 x 4800 B."""
    graph = make_graph(
        kinds=["nn.matmul"] * 6,
        edges=[(i, i + 1) for i in range(5)],
        flops=[1e5] * 6,
        output_bytes=[64] * 6,
        params=[(0, 3), (0, 4), (1, 5), (1, 6), (2, 7), (2, 8)],
        param_bytes=[3000, 3000, 3000] + [16] * 6,
        op_names=[f"rows{i}" for i in range(6)],
    )
    chip = ChipSpec(
        matrix_ops={"bf16": 8e12},
        vector_ops={"bf16": 1e12},
        sram_bytes=4800,
        sram_bandwidth=400e9,
        buffers_per_edge=1,
    )
    target = build_target("chain2", "chain", chip, num_chips=2, link_bandwidth=4e9, link_latency=0)
    return graph, target


def test_the_chip_weight_bound_counts_shared_params_once_per_chip() -> None:
    graph, target = three_shared_params_on_two_chips()
    problem = heuristics.problem_for(graph, resolve_rules(graph, target))
    assert problem.weight.tolist() == [16] * 6 and problem.shared_bytes.tolist() == [3000] * 3
    bound = solver.chip_weight_bound(problem, time_limit=20)
    assert (bound.held, bound.proved) == (3032, True)  # one shared param and its 2 readers' own
    assert not brute_force(graph, target)
    messages = solver.explain(graph, target, time_limit=20)
    assert messages == [
        "no chip of 4.69 KiB SRAM can hold more than 2.96 KiB of weights (the heaviest fitting set, "
        "2 consecutive ops, holds 2.96 KiB of weights + 0 B of receive buffers + the 128 B working "
        "set of `rows1`), so 2 chips hold at most 5.92 KiB of the 8.88 KiB of weights"
    ]
    # One more chip fits: each chip takes a pair of ops, the bound holds for every legal placement.
    wider = build_target(
        "chain3", "chain", target.chip, num_chips=3, link_bandwidth=4e9, link_latency=0
    )
    legal = brute_force(graph, wider)
    assert legal and not solver.explain(graph, wider, time_limit=20)
    problem = heuristics.problem_for(graph, resolve_rules(graph, wider))
    held = solver.chip_weight_bound(problem, time_limit=20).held
    assert held == max(
        heuristics.weights_of(problem, p == chip) for p in legal for chip in range(3)
    )


def tight_transformer() -> tuple[Graph, Target]:
    """A transformer on 4 chips whose total weights plus one working set fit 4 chips, but whose
    weights cannot be spread over 4 chips: every chip also needs room for working sets and buffers."""
    graph = transformer_graph(60, seed=0)
    total = int(graph.weight_bytes.sum())
    largest = int(graph.working_set_bytes.max())
    capacity = (total + largest) // 4 + 1
    return graph, with_capacity(target_for(graph, 4), capacity)


def test_the_chip_weight_bound_proves_infeasibility_with_its_reason() -> None:
    graph, target = tight_transformer()
    total = int(graph.weight_bytes.sum())
    assert total + int(graph.working_set_bytes.max()) <= 4 * target.chip.capacity_bytes
    messages = solver.explain(graph, target, time_limit=20)
    assert len(messages) == 1, messages
    assert "can hold more than" in messages[0] and "4 chips hold at most" in messages[0]
    assert "working set of" in messages[0]
    with pytest.raises(solver.InfeasibleError, match="can hold more than"):
        solver.repair(graph, target, np.zeros(graph.num_nodes, dtype=np.int64), exact=True)


@pytest.mark.slow
def test_vit_b16_on_tpu_ring8_is_proved_infeasible_with_the_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["check", str(ROOT / "examples/models/vit_b16.mlir"), "--target", "tpu-ring8"])
    out = capsys.readouterr().out
    assert code == 1
    assert "no chip of 13.00 MiB SRAM can hold more than 9.72 MiB of weights" in out
    assert "8 chips hold at most 77.79 MiB of the 82.56 MiB" in out


# -- the FlatZinc translator ---------------------------------------------------------------------------
FZN = """
var 0..3: x :: output_var;
var 0..3: y :: output_var;
var bool: b :: output_var;
array [1..2] of int: c = [1,1];
constraint int_lin_le(c,[x,y],4);
constraint int_le(x,y);
constraint int_eq_reif(x,2,b);
constraint bool_clause([b],[]);
solve maximize y;
"""


def test_cp_sat_and_highs_solve_a_small_flatzinc_model(tmp_path: Path) -> None:
    answer = flatzinc.solve_with_cp_sat(FZN, time_limit=5, seed=0)
    assert answer.status == "OPTIMAL_SOLUTION"
    assert answer.values == {"x": 2, "y": 2, "b": True}
    # HiGHS (in its own process: its symbols clash with ortools') reads linear FlatZinc only.
    path = tmp_path / "m.fzn"
    path.write_text(FZN)
    with pytest.raises(ChiplexError, match="int_eq_reif is not linear"):
        flatzinc.solve_in_subprocess("highs", str(path), time_limit=5, seed=0)
    linear = FZN.replace("constraint int_eq_reif(x,2,b);\n", "constraint bool2int(b,x);\n")
    path.write_text(linear.replace("var 0..3: x", "var 0..1: x"))
    answer = flatzinc.solve_in_subprocess("highs", str(path), time_limit=5, seed=0)
    assert answer.status == "OPTIMAL_SOLUTION"
    assert answer.values == {"x": 1, "y": 3, "b": True}


def test_weight_totals_that_round_alike_are_told_apart() -> None:
    assert legality.bytes_apart(7_086_000, 7_086_100) == (
        "6.76 MiB (7,086,000 B)",
        "6.76 MiB (7,086,100 B)",
    )
    assert legality.bytes_apart(3032 * 2, 9096) == ("5.92 KiB", "8.88 KiB")


def test_unknown_flatzinc_constraints_are_refused() -> None:
    text = "var 0..3: x;\nconstraint fzn_mystery(x);\nsolve satisfy;\n"
    with pytest.raises(ChiplexError, match="does not translate fzn_mystery"):
        flatzinc.solve_with_cp_sat(text, time_limit=1, seed=0)


# -- choosing a back end -------------------------------------------------------------------------------
def test_unknown_solver_names_are_clear_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(
        ChiplexError, match="unknown solver 'nope'; expected one of auto, cp-sat, highs, gecode"
    ):
        solver_for(None, "nope")
    code = main(
        [
            "check",
            str(ROOT / "examples/models/mlp.mlir"),
            "--target",
            "tpu-ring8",
            "--solver",
            "nope",
        ]
    )
    assert code == 1
    assert (
        "check --solver: unknown solver 'nope'; expected one of auto, cp-sat, highs, gecode"
        in capsys.readouterr().err
    )


def test_the_target_toml_chooses_the_default_back_end() -> None:
    text = (ROOT / "src/chiplex/targets/presets/tpu-ring8.toml").read_text()
    target = target_from_toml(text + '\n[solver]\nbackend = "gecode"\n', "mine.toml")
    assert target.solver == "gecode" and solver_for(target) == "gecode"
    assert solver_for(target, "highs") == "highs"  # an explicit choice wins
    assert solver_for(load_target("tpu-ring8")) == "auto"
    assert backend_for("auto", "repair.mzn") == "order-mip"
    assert (
        backend_for("order-mip", "optimize.mzn") == "highs"
    )  # order-mip formulates repair/satisfy
    assert backend_for("auto", "satisfy.mzn") == backend_for("auto", "optimize.mzn") == "cp-sat"
    assert backend_for("highs", "repair.mzn") == "highs"
    with pytest.raises(ChiplexError, match=r"mine.toml \[solver\] backend: unknown solver 'cbc'"):
        target_from_toml(text + '\n[solver]\nbackend = "cbc"\n', "mine.toml")
    with pytest.raises(
        ChiplexError, match=r"mine.toml \[solver\]: expected only the key 'backend'"
    ):
        target_from_toml(text + '\n[solver]\nname = "gecode"\n', "mine.toml")
    assert with_solver(target, None) is target


def test_pass_options_choose_the_back_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = ROOT / "examples/models/mlp.mlir"
    pipeline = (
        "annotate-costs{target=tpu-ring8},place{strategy=cp solver=%s},"
        "legalize-placement{solver=gecode},insert-transfers,split-chiplets"
    )
    ok = main(["compile", str(model), "--pipeline", pipeline % "highs", "-o", str(tmp_path / "a")])
    assert ok == 0
    bad = main(["compile", str(model), "--pipeline", pipeline % "bogus", "-o", str(tmp_path / "b")])
    assert bad == 1
    err = capsys.readouterr().err
    assert "place: unknown solver 'bogus'; expected one of auto, cp-sat, highs, gecode" in err


def test_a_chain_that_cannot_fit_is_infeasible_on_every_back_end() -> None:
    graph = make_graph(
        kinds=["nn.matmul"] * 4,
        edges=[(0, 1), (1, 2), (2, 3)],
        flops=[1e9] * 4,
        output_bytes=[1024] * 4,
        weight_bytes=[3 * 2**20] * 4,
    )
    target = with_capacity(target_for(graph, 3), 5 * 2**20)
    for backend in SOLVERS:
        messages = solver.explain(graph, target, solver=backend)
        assert messages and not messages[0].startswith("undecided"), backend


# -- honest claims -------------------------------------------------------------------------------------
def test_answers_say_what_is_proved(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", str(ROOT / "examples/models/mlp.mlir"), "--target", "tpu-ring8"])
    out = capsys.readouterr().out
    assert code == 0 and "(proved by this witness)" in out
    assert "proved optimal, solver cp-sat" in out
    graph = transformer_graph(40, seed=1)
    target = target_for(graph, 4, slack=1.2)
    candidate = np.zeros(graph.num_nodes, dtype=np.int64)
    candidate[::3] = 3
    quick = solver.repair(graph, target, candidate)
    assert quick.claim.endswith("feasible only (not proved the fewest)")
    exact = solver.repair(graph, target, candidate, exact=True, time_limit=20)
    assert exact.proved_optimal and exact.claim == f"{exact.changed} ops moved, proved the fewest"
    assert exact.changed <= quick.changed
    best = solver.optimize(graph, target, time_limit=20)
    if best.proved_optimal:
        assert best.claim == "proved optimal"
    else:
        assert best.claim.startswith("feasible only, not proved optimal (lower bound")


def test_repair_answers_when_its_heuristic_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another legal placement (the optimize heuristic's, else satisfy.mzn's) bounds the exact search,
    so a feasible instance gets a legal answer even when the repair heuristic finds none."""
    graph = transformer_graph(40, seed=2)
    target = target_for(graph, 4, slack=1.2)
    candidate = np.arange(graph.num_nodes) % 4
    monkeypatch.setattr(heuristics, "heuristic_repair", lambda problem, candidate, known=None: None)
    result = solver.repair(graph, target, candidate, time_limit=20)
    assert is_legal(graph, target, result.placement)
    monkeypatch.setattr(heuristics, "heuristic_optimize", lambda problem, times: None)
    result = solver.repair(graph, target, candidate, time_limit=20)
    assert is_legal(graph, target, result.placement)


def cut_order_trap() -> tuple[Graph, Target]:
    """8 ops on 3 chips at 0.97x the smallest capacity: both legal placements ([0, 1, 1, 1, 0, 0, 2, 2]
    and [0, 1, 1, 2, 0, 0, 2, 2]) put the branch 4 -> 5 off op 0 on chip 0 and ops 1 and 2 on chip 1,
    which no cut of the candidate's, block or layer order does: both heuristics find nothing."""
    rng = np.random.default_rng(1)
    num_ops, chips = int(rng.integers(6, 11)), int(rng.integers(2, 5))
    graph = nn_graph(lambda lo, hi: int(rng.integers(lo, hi + 1)), num_ops, name="trap")
    return graph, target_for(graph, chips, slack=0.97, topology="chain", name="trap")


def test_repair_starts_from_the_witness_of_the_feasibility_question(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the heuristics find no placement but `explain` found one, repair does not need another
    solve: it cuts the witness's order nearest the candidate (issue 16: nn17 and nn65 of
    solver_decide.py got no placement, or one with no time left for the proof, this way)."""
    graph, target = cut_order_trap()
    assert (graph.num_nodes, target.num_chips) == (8, 3)
    problem = heuristics.problem_for(graph, resolve_rules(graph, target))
    candidate = np.zeros(graph.num_nodes, dtype=np.int64)
    assert heuristics.heuristic_repair(problem, candidate) is None
    assert heuristics.heuristic_optimize(problem, np.ones(graph.num_nodes)) is None
    legal = brute_force(graph, target)
    assert legal, "the instance is feasible"
    best = min(int((p != candidate).sum()) for p in legal)
    for witness in legal:  # any witness: its order has a legal cut at least as near as itself
        near = heuristics.heuristic_repair(problem, candidate, known=witness)
        assert near is not None and is_legal(graph, target, near)
        assert best <= (near != candidate).sum() <= (witness != candidate).sum()
    solver._KNOWN_PLACEMENT.pop(problem, None)
    assert solver.explain(graph, target, time_limit=20) == []
    assert solver._KNOWN_PLACEMENT.get(problem) is not None
    # The heuristic repair answers from the witness's order without a solver; the exact one solves
    # repair.mzn from there, not satisfy.mzn again.
    models: list[str] = []
    run = solver._run_minizinc

    def recorded(model: str, *args: object, **kwargs: object) -> object:
        models.append(model)
        return run(model, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(solver, "_run_minizinc", recorded)
    result = solver.repair(graph, target, candidate, time_limit=20)
    assert models == [] and result.method == "heuristic"
    assert is_legal(graph, target, result.placement)
    result = solver.repair(graph, target, candidate, exact=True, time_limit=20)
    assert models == ["repair.mzn"]
    assert result.proved_optimal and result.changed == best
    assert is_legal(graph, target, result.placement)
