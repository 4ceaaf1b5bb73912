"""The constraint solver layer: repair, optimize, explain, the MiniZinc models and `chiplex check`."""

from __future__ import annotations

import re
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from chiplex.cli import main
from chiplex.errors import ChiplexError
from chiplex.ir.graph import Graph, make_graph
from chiplex.targets import heuristics, solver
from chiplex.targets.cost import op_times
from chiplex.targets.legality import RULES, check_placement, is_legal, resolve_rules
from chiplex.targets.target import ChipSpec, Target, TargetRules, build_target, load_target
from chiplex.testing import noisy_placement, target_for, target_toml, transformer_graph

ROOT = Path(__file__).parents[1]
MIB = 2**20

pytestmark = pytest.mark.skipif(not solver.minizinc_available(), reason="MiniZinc is not installed")


def chain(n: int, weight: int = MIB, out: int = 1024, names: list[str] | None = None) -> Graph:
    """n matmuls in a chain, each with `weight` bytes of weights."""
    return make_graph(
        kinds=["nn.matmul"] * n,
        edges=[(i, i + 1) for i in range(n - 1)],
        flops=[1e9 * (i + 1) for i in range(n)],
        output_bytes=[out] * n,
        weight_bytes=[weight] * n,
        op_names=names,
    )


def ring(
    k: int, capacity: int, rules: TargetRules | None = None, dram: int = 0, buffers: int = 1
) -> Target:
    # The sizes in these tests are worked out for one receive buffer per edge.
    chip = ChipSpec(
        buffers_per_edge=buffers,
        matrix_ops={"bf16": 1e12},
        vector_ops={"bf16": 1e11},
        sram_bytes=capacity - dram,
        sram_bandwidth=1e11,
        dram_bytes=dram,
        dram_bandwidth=1e10 if dram else 0.0,
    )
    return build_target(
        "test", "ring", chip, num_chips=k, link_bandwidth=1e9, link_latency=1e-6, rules=rules
    )


def no_solver(*args: object, **kwargs: object) -> None:
    raise AssertionError("MiniZinc must not be called here")


# -- repair --------------------------------------------------------------------------------------------
def test_a_legal_candidate_comes_back_unchanged_without_a_solver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(solver, "_run_minizinc", no_solver)
    monkeypatch.setattr(heuristics, "heuristic_repair", no_solver)
    graph, target = chain(6), ring(4, 3 * MIB)
    legal = np.array([0, 0, 1, 1, 2, 3])
    result = solver.repair(graph, target, legal, exact=True)
    assert result.method == "unchanged" and result.proved_optimal
    assert result.changed == 0 and result.distance == 0
    assert np.array_equal(result.placement, legal)


def test_repair_moves_the_one_misplaced_op() -> None:
    graph, target = chain(6), ring(4, 3 * MIB)
    candidate = np.array([0, 0, 1, 0, 2, 3])  # op 3 flows backwards
    result = solver.repair(graph, target, candidate)
    assert is_legal(graph, target, result.placement)
    assert result.method == "heuristic" and result.changed == 1
    exact = solver.repair(graph, target, candidate, exact=True, time_limit=10)
    assert exact.proved_optimal and (exact.changed, exact.distance) == (1, 1)
    assert np.array_equal(exact.placement, [0, 0, 1, 1, 2, 3])


def test_repair_handles_chips_outside_the_target() -> None:
    graph, target = chain(4), ring(4, 3 * MIB)
    result = solver.repair(graph, target, np.array([-1, 0, 1, 7]))
    assert is_legal(graph, target, result.placement)
    assert result.changed == 2 and result.distance == int(
        np.abs(result.placement - [-1, 0, 1, 7]).sum()
    )


def test_repair_uses_minizinc_when_the_heuristic_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heuristics, "heuristic_repair", lambda problem, candidate, known=None: None)
    graph, target = chain(6), ring(4, 3 * MIB)
    candidate = np.array([3, 2, 1, 0, 0, 0])
    result = solver.repair(graph, target, candidate, time_limit=10)
    assert result.method == "minizinc" and result.proved_optimal
    assert is_legal(graph, target, result.placement)


def test_repair_rejects_a_candidate_of_the_wrong_length() -> None:
    with pytest.raises(ChiplexError, match="3 entries for 6 ops"):
        solver.repair(chain(6), ring(4, 3 * MIB), np.zeros(3, dtype=int))


def test_repair_of_an_impossible_graph_raises_with_the_reason() -> None:
    graph = chain(3, weight=9 * MIB, names=["a", "encoder.3.ffn.w1", "c"])
    with pytest.raises(solver.InfeasibleError) as err:
        solver.repair(graph, ring(4, 8 * MIB), np.zeros(3, dtype=int))
    assert any(
        "`encoder.3.ffn.w1` (9.00 MiB) exceed one chip's SRAM (8.00 MiB)" in m
        for m in err.value.messages
    )


def test_a_time_limit_falls_back_to_the_heuristic_with_a_warning() -> None:
    graph = transformer_graph(100, seed=0)
    target = target_for(graph, 36, slack=1.2, topology="mesh")
    start = solver.optimize(graph, target, time_limit=0.1).placement
    candidate = noisy_placement(start, 36, seed=1)
    with pytest.warns(solver.SolverWarning, match="time limit"):
        result = solver.repair(graph, target, candidate, exact=True, time_limit=0.5)
    assert result.method == "heuristic" and not result.proved_optimal
    assert is_legal(graph, target, result.placement)


def test_no_placement_within_the_time_limit_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heuristics, "heuristic_repair", lambda problem, candidate, known=None: None)
    monkeypatch.setattr(heuristics, "heuristic_optimize", lambda problem, times: None)
    graph = transformer_graph(300, seed=0)
    target = target_for(graph, 36, slack=1.2, topology="mesh")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", solver.SolverWarning)
        with pytest.raises(solver.SolverTimeoutError, match="within 0.05 s"):
            solver.repair(graph, target, np.zeros(graph.num_nodes, dtype=int), time_limit=0.05)


def test_repair_respects_pins_colocation_and_hop_span() -> None:
    names = [f"op{i}" for i in range(8)]
    rules = TargetRules(max_hop_span=1, pinned=(("op7", 3),), colocated=(("op2", "op3"),))
    graph, target = chain(8, names=names), ring(4, 3 * MIB, rules)
    candidate = np.array([0, 0, 1, 2, 2, 2, 3, 2])
    for exact in (False, True):
        result = solver.repair(graph, target, candidate, exact=exact, time_limit=10)
        assert is_legal(graph, target, result.placement)
        assert result.placement[7] == 3 and result.placement[2] == result.placement[3]


# -- optimize ------------------------------------------------------------------------------------------
def test_optimize_balances_the_bottleneck_and_proves_it() -> None:
    graph, target = chain(6), ring(3, 4 * MIB)
    result = solver.optimize(graph, target, time_limit=10)
    times = op_times(graph, target)
    assert is_legal(graph, target, result.placement)
    busy = np.bincount(result.placement, weights=times, minlength=3)
    assert result.period_s == pytest.approx(busy.max())
    assert result.proved_optimal and result.bound_s == pytest.approx(result.period_s)
    # Flops 1..6 (x 1e9), at most 3 ops (1 MiB each) per 4 MiB chip: (1,2,3 | 4,5 | 6) -> 9.
    assert result.period_s == pytest.approx(9e9 / 1e12)


def test_optimize_is_deterministic() -> None:
    graph = transformer_graph(60, seed=3)
    target = target_for(graph, 8, slack=1.3)
    first = solver.optimize(graph, target, time_limit=5, seed=1)
    second = solver.optimize(graph, target, time_limit=5, seed=1)
    assert np.array_equal(first.placement, second.placement)
    assert first.bound_s <= first.period_s * (1 + 1e-9)


def test_optimize_of_an_impossible_graph_raises() -> None:
    with pytest.raises(
        solver.InfeasibleError, match="total weights 12.00 MiB > 2 chips x 4.00 MiB"
    ):
        solver.optimize(chain(4, weight=3 * MIB), ring(2, 4 * MIB), time_limit=5)


# -- explain -------------------------------------------------------------------------------------------
def test_explain_is_empty_when_a_placement_exists() -> None:
    assert solver.explain(chain(6), ring(4, 3 * MIB)) == []


@pytest.mark.parametrize(
    ("graph", "target", "pattern"),
    [
        (
            chain(4, weight=5 * MIB),
            ring(8, 4 * MIB, dram=MIB),
            r"exceed one chip's memory \(SRAM \+ DRAM\)",
        ),
        (
            chain(8, weight=3 * MIB),
            ring(2, 4 * MIB),
            r"^total weights 24.00 MiB > 2 chips x 4.00 MiB SRAM$",
        ),
        (
            chain(3, names=["a", "b", "c"]),
            ring(2, 4 * MIB, TargetRules(pinned=(("c", 2),))),
            r"op `c` is pinned to chip 2, but the target has chips 0..1",
        ),
        (
            chain(3, names=["a", "b", "c"]),
            ring(3, 4 * MIB, TargetRules(pinned=(("a", 2), ("c", 0)))),
            r"`a` is pinned to chip 2 but `c`, which depends on it \(2 edges on\), is pinned to chip 0",
        ),
        (
            chain(3, names=["a", "b", "c"]),
            ring(4, 4 * MIB, TargetRules(max_hop_span=1, pinned=(("a", 0), ("c", 3)))),
            r"2 edges apart, but with max_hop_span 1 data moves at most 2 chips",
        ),
        (
            chain(3, names=["a", "b", "c"]),
            ring(3, 2 * MIB, TargetRules(colocated=(("a", "c"),))),
            r"ops `a`, `b`, `c` must share one chip",
        ),
        (
            chain(3, names=["a", "b", "c"]),
            ring(3, 4 * MIB, TargetRules(pinned=(("a", 0), ("c", 1)), colocated=(("a", "c"),))),
            r"`a` and `c` must share a chip .* pinned to chips 0 and 1",
        ),
    ],
)
def test_explain_names_the_cheap_reason(graph: Graph, target: Target, pattern: str) -> None:
    messages = solver.explain(graph, target)
    assert messages and any(re.search(pattern, m) for m in messages), messages


def test_explain_finds_a_minimal_conflicting_set_of_rules_with_the_solver() -> None:
    # Two 3 MiB chains joined at the end: a chip holds one op (4 MiB chips), so the 4-op graph needs 4
    # chips; with max_hop_span 1 the edge 0 -> 3 forces op 3 within one chip of op 0. Each rule alone
    # can be met; together they cannot.
    graph = make_graph(
        kinds=["nn.matmul"] * 4,
        edges=[(0, 1), (1, 2), (2, 3), (0, 3)],
        flops=[1e9] * 4,
        output_bytes=[1024] * 4,
        weight_bytes=[3 * MIB] * 4,
    )
    target = ring(4, 4 * MIB, TargetRules(max_hop_span=1))
    messages = solver.explain(graph, target, time_limit=10)
    assert len(messages) == 1
    assert (
        "no placement satisfies memory (4 chips of 4.00 MiB SRAM) and hop-span (max_hop_span 1)"
        in messages[0]
    )


def test_a_conflict_of_pins_and_groups_names_them_as_the_target_file_writes_them() -> None:
    # A chain a -> b -> c -> d on 3 chips: c pinned to chip 1, and a colocated with d (so with
    # everything between): chip 0 would stay empty. Each rule alone can be met.
    graph = make_graph(
        kinds=["nn.matmul"] * 4,
        edges=[(0, 1), (1, 2), (2, 3)],
        flops=[1e9] * 4,
        output_bytes=[1024] * 4,
        weight_bytes=[MIB] * 4,
        op_names=["%a", "%b", "%c", "%d"],
    )
    rules = TargetRules(pinned=(("c", 1),), colocated=(("a", "d"),))
    messages = solver.explain(graph, ring(3, 64 * MIB, rules), time_limit=10)
    assert messages == [
        "no placement satisfies pinned ('c' to chip 1: 1 op) and colocated (['a', 'd']) together "
        "(each alone, with the structural rules, can be met; drop or relax one of them)"
    ]


def test_the_model_finds_memory_conflicts_the_cheap_checks_miss() -> None:
    # Every op fits and total weights fit 2 chips, but the receive buffers do not: a producer whose
    # 3 MiB output every later chip must buffer.
    graph = make_graph(
        kinds=["nn.matmul"] * 3,
        edges=[(0, 1), (0, 2), (1, 2)],
        flops=[1e9] * 3,
        output_bytes=[3 * MIB, 16, 16],
        weight_bytes=[0, 3 * MIB, 3 * MIB],
    )
    target = ring(2, 6 * MIB + 16 * 2)
    messages = solver.explain(graph, target, time_limit=10)
    assert len(messages) == 1 and messages[0].startswith("the ops do not fit 2 chips"), messages
    # The reason in chips and MiB: the per-chip weight bound, the weights, the largest working set.
    assert "no chip holds more than 3.00 MiB of weights, 2 chips up to 6.00 MiB" in messages[0]
    assert "largest working set (up to 3.00 MiB)" in messages[0]


# -- the models ----------------------------------------------------------------------------------------
def model_text(name: str) -> str:
    return (resources.files("chiplex.targets") / "models" / name).read_text()


def test_each_rule_is_one_named_constraint_item_of_the_shared_model() -> None:
    text = model_text("legality.mzn")
    for rule in RULES:
        assert len(re.findall(rf'^constraint :: "{rule}"', text, flags=re.M)) == 1, rule
    for model in ("repair.mzn", "optimize.mzn", "check.mzn", "satisfy.mzn"):
        assert 'include "legality.mzn";' in model_text(model)


def test_check_with_minizinc_names_each_broken_rule() -> None:
    names = [f"op{i}" for i in range(5)]
    rules = TargetRules(max_hop_span=1, pinned=(("op4", 3),), colocated=(("op0", "op1"),))
    graph, target = chain(5, names=names), ring(4, 3 * MIB, rules)
    cases = {
        (0, 0, 1, 2, 3): set(),
        (0, 0, 1, 2, 4): {"chip-range"},
        (0, 0, 2, 1, 3): {"acyclic-dataflow"},
        (0, 0, 0, 0, 3): {"no-skipping-chips", "hop-span", "memory"},
        (0, 0, 1, 1, 2): {"pinned"},
        (0, 1, 1, 2, 3): {"colocated"},
    }
    for placement, broken in cases.items():
        placement_array = np.array(placement)
        checker = list(
            dict.fromkeys(v.rule for v in check_placement(graph, target, placement_array))
        )
        assert broken <= set(checker) and (checker == []) == (broken == set())
        assert solver.check_with_minizinc(graph, target, placement_array) == checker


def test_memory_sizes_are_scaled_exactly_for_gecode() -> None:
    graph = chain(4, weight=3 * 2**30, out=2**30)  # 3 GiB weights: beyond 32-bit bytes
    target = ring(4, 6 * 2**30)
    problem = heuristics.problem_for(graph, resolve_rules(graph, target))
    scale = solver._memory_scale(problem)
    assert scale.exact and scale.unit == 2**30 and scale.capacity == 6
    assert solver.check_with_minizinc(graph, target, np.array([0, 1, 2, 3])) == []
    assert solver.check_with_minizinc(graph, target, np.array([0, 0, 1, 2])) == ["memory"]


# -- chiplex check -------------------------------------------------------------------------------------
def placed_mlp(tmp_path: Path, chip_of_first: int | None = None) -> Path:
    """examples/models/mlp.mlir placed for tpu-ring8; with `chip_of_first`, the ops on chip 0 moved there."""
    from chiplex.compile import module_text, run_pipeline
    from chiplex.ir.parse import load_module

    module, _ = run_pipeline(
        load_module(ROOT / "examples" / "models" / "mlp.mlir"),
        "annotate-costs{target=tpu-ring8},place",
    )
    text = module_text(module)
    if chip_of_first is not None:
        text = text.replace("#mcm.chip<0>", f"#mcm.chip<{chip_of_first}>")
    path = tmp_path / "placed.mlir"
    path.write_text(text)
    return path


def test_check_command_reports_a_legal_placement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = placed_mlp(tmp_path)
    assert main(["check", str(path), "--target", "tpu-ring8", "--minizinc"]) == 0
    out = capsys.readouterr().out
    assert "legal" in out and "the MiniZinc model agrees" in out


def test_check_command_lists_violations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = placed_mlp(tmp_path, chip_of_first=9)
    assert main(["check", str(path), "--target", "tpu-ring8"]) == 1
    out = capsys.readouterr().out
    assert "illegal placement on tpu-ring8" in out and "[chip-range]" in out


def test_check_command_locates_each_violation_in_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A user who edits placed IR by hand needs the line of the op a rule names, not only its name.
    path = placed_mlp(tmp_path)
    lines = path.read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if "%act.relu = " in line)
    lines[row] = lines[row].replace("#mcm.chip<0>", "#mcm.chip<3>")
    path.write_text("\n".join(lines) + "\n")
    assert main(["check", str(path), "--target", "tpu-ring8"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("illegal placement on tpu-ring8: 1 violation"), out
    col = len(lines[row]) - len(lines[row].lstrip()) + 1
    consumer = next(i for i, line in enumerate(lines) if "%layers.1.matmul = " in line)
    assert out[1] == (
        f"  {path}:{consumer + 1}:{col}: [acyclic-dataflow] edge %act.relu -> %layers.1.matmul "
        "flows backwards from chip 3 to chip 1"
    )

    # An op left unplaced is located too.
    lines[row] = lines[row].replace(", mcm.chip = #mcm.chip<3>", "")
    path.write_text("\n".join(lines) + "\n")
    assert main(["check", str(path), "--target", "tpu-ring8"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"chiplex: error: {path}:{row + 1}:{col}: 1 of 14 ops have no mcm.chip"
    ), err


def test_check_command_proves_that_a_placement_exists(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["check", str(ROOT / "examples" / "models" / "mlp.mlir"), "--target", "tpu-ring8"])
        == 0
    )
    assert "a legal placement exists on tpu-ring8" in capsys.readouterr().out


def test_check_command_takes_a_model_as_compile_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `chiplex compile bert_base` works, so `chiplex check bert_base` must too (it said "no such file").
    assert main(["check", "mlp", "--target", "tpu-ring8"]) == 0
    assert "mlp: a legal placement exists on tpu-ring8" in capsys.readouterr().out
    model = tmp_path / "mine.py"
    model.write_text(
        "import torch\n\n"
        "def build():\n"
        "    return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU())\n"
    )
    assert main(["check", f"{model}:build", "--input-shape", "4x64", "--target", "tpu-ring4"]) == 0
    assert "a legal placement exists on tpu-ring4" in capsys.readouterr().out
    # An IR file or a model without a recorded target asks for --target, naming the presets.
    assert main(["check", "mlp"]) == 1
    err = capsys.readouterr().err
    assert "no target to check mlp against: pass --target" in err and "tpu-ring8" in err


def test_check_command_names_the_recorded_target_it_cannot_find(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = tmp_path / "mine.toml"
    toml.write_text(target_toml(load_target("tpu-ring4")))
    monkeypatch.chdir(tmp_path)
    assert main(["compile", "mlp", "--target", "mine.toml", "-o", "out"]) == 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path / "out")  # the recorded "mine.toml" is not here
    assert main(["check", "placed.mlir"]) == 1
    err = capsys.readouterr().err
    assert "target file not found: mine.toml (the target placed.mlir records; pass --target)" in err


def test_check_command_says_why_no_placement_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = tmp_path / "tiny.toml"
    toml.write_text(
        'name = "tiny"\n[chip]\nmatrix_ops = { bf16 = 1e12 }\nvector_ops = { bf16 = 1e11 }\n'
        "sram_bytes = 4096\nsram_bandwidth = 1e11\n[link]\nbandwidth = 1e9\nlatency = 1e-6\n"
        '[topology]\nkind = "ring"\nnum_chips = 2\n'
    )
    code = main(["check", str(ROOT / "examples" / "models" / "mlp.mlir"), "--target", str(toml)])
    out = capsys.readouterr().out
    assert (
        code == 1 and "no legal placement exists on tiny" in out and "exceed one chip's SRAM" in out
    )
