"""Reproducibility as a user checks it: run a real `chiplex` command twice, in separate processes with
different PYTHONHASHSEEDs (and, where the command has it, `--workers 1` against `--workers 2`), and
diff what it wrote byte for byte. Printed reports are compared too, after masking the wall-clock
times they show (the only fields that may differ; README "Reproducibility").

Each pair of processes runs concurrently, as two users' runs on one machine would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from chiplex.ir.graph import Graph
from chiplex.passes.search import Budget, search
from chiplex.targets import heuristics
from chiplex.targets.legality import resolve_rules
from chiplex.targets.target import Target
from chiplex.testing import nn_graph, target_for

ROOT = Path(__file__).parents[1]
MODELS = ROOT / "examples" / "models"

# A user's own target: six chips joined by an irregular set of links (not a preset), sized so that
# the mlp needs all six and the searches repair candidates.
USER_TARGET = """\
name = "my-mcm"
description = "six chiplets on an irregular set of links"

[chip]
matrix_ops = { i8 = 8.0e12, bf16 = 4.0e12, f32 = 1.0e12 }
vector_ops = { bf16 = 0.5e12, f32 = 0.25e12 }
sram_bytes = "8 MiB"
sram_bandwidth = 200.0e9

[link]
bandwidth = 2.0e9
latency = 700.0e-9

[topology]
kind = "links"
num_chips = 6
links = [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [0, 3], [1, 4]]
"""

# Wall-clock measures in the printed reports: "in 0.3 s", "0.009 s (1,202,181 events/s)",
# "PPO's own time 0.0 s against 0.3 s of evaluations (12%)".
WALL_TIME = [
    (re.compile(r"\d[\d,]*(\.\d+)? events/s"), "<rate> events/s"),
    (re.compile(r"\b\d+(\.\d+)? s\b"), "<t> s"),
    (re.compile(r"of evaluations \(\d+%\)"), "of evaluations (<p>%)"),
]


def without_wall_time(report: str) -> str:
    for pattern, mask in WALL_TIME:
        report = pattern.sub(mask, report)
    return report


@dataclass
class Run:
    directory: Path
    stdout: str

    def files(self) -> dict[str, bytes]:
        """Every file the command wrote, by its path relative to the run's directory."""
        return {
            str(p.relative_to(self.directory)): p.read_bytes()
            for p in sorted(self.directory.rglob("*"))
            if p.is_file() and p.name != "my_mcm.toml"
        }


def run_twice(
    tmp_path: Path, args: list[str], *, workers: str | None = None, timeout: float = 240
) -> tuple[Run, Run]:
    """`chiplex ARGS` in two fresh directories at once, with PYTHONHASHSEED 0 and 1 (and
    1 and 2 after the option `workers` names), each directory holding the user's target file."""
    runs, procs = [], []
    for index, hash_seed in enumerate(("0", "1")):
        directory = tmp_path / f"run{index}"
        directory.mkdir(parents=True)
        (directory / "my_mcm.toml").write_text(USER_TARGET)
        extra = [workers, str(index + 1)] if workers else []
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "chiplex.cli", *args, *extra],
                cwd=directory,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        runs.append(directory)
    results = []
    for directory, proc in zip(runs, procs, strict=True):
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, f"chiplex {' '.join(args)}: exit {proc.returncode}\n{err}"
        results.append(Run(directory, out))
    return results[0], results[1]


def assert_identical(first: Run, second: Run, expected: set[str]) -> None:
    files_a, files_b = first.files(), second.files()
    assert expected <= set(files_a), sorted(files_a)
    assert files_a.keys() == files_b.keys()
    differing = [name for name in files_a if files_a[name] != files_b[name]]
    assert not differing, f"files differ between the two runs: {differing}"
    assert without_wall_time(first.stdout) == without_wall_time(second.stdout)


def test_the_wall_time_mask_keeps_the_numbers_that_must_not_vary() -> None:
    line = "simulated throughput 467,632.4 samples/s ... period 68.430 us, 100.0% busy"
    assert without_wall_time(line) == line
    assert without_wall_time("simulation   11,004 events in 0.009 s (1,202,181 events/s)") == (
        "simulation   11,004 events in <t> s (<rate> events/s)"
    )


@pytest.mark.parametrize("strategy", ["dp", "greedy", "cp", "learned"])
def test_compile_writes_identical_files_and_numbers(tmp_path: Path, strategy: str) -> None:
    first, second = run_twice(
        tmp_path,
        ["compile", str(MODELS / "mlp.mlir"), "--target", "my_mcm.toml"]
        + ["--strategy", strategy, "-o", "out", "--simulate"],
    )
    assert "simulated throughput" in first.stdout
    assert_identical(first, second, {"out/placed.mlir", "out/chiplets.mlir", "out/schedule.json"})


@pytest.mark.parametrize("strategy", ["random", "anneal"])
def test_search_is_identical_across_hash_seeds_and_worker_counts(
    tmp_path: Path, strategy: str
) -> None:
    first, second = run_twice(
        tmp_path,
        ["search", str(MODELS / "mlp.mlir"), "--target", "my_mcm.toml", "--strategy", strategy]
        + ["--budget", "40", "--full-budget", "--seed", "3", "-o", "best.mlir", "--no-progress"],
        workers="--workers",
    )
    assert "evaluations    40 in" in first.stdout
    assert_identical(first, second, {"best.mlir"})


def test_finetune_checkpoint_is_identical_across_hash_seeds_and_worker_counts(
    tmp_path: Path,
) -> None:
    first, second = run_twice(
        tmp_path,
        ["finetune", str(MODELS / "mlp.mlir"), "--target", "my_mcm.toml", "--from-scratch"]
        + ["--budget", "12", "--full-budget", "-o", "policy.pt", "--no-progress"],
        workers="--workers",
    )
    assert_identical(first, second, {"policy.pt"})


def test_finetune_records_the_command_that_reproduces_it(tmp_path: Path) -> None:
    """`created_by` names what decides the policy, whatever the caller's sys.argv (here pytest's:
    the handler used to copy it) and without the worker count."""
    from chiplex.cli import main
    from chiplex.learned.checkpoint import load_checkpoint

    out = tmp_path / "policy.pt"
    args = ["finetune", str(MODELS / "mlp.mlir"), "--target", "tpu-ring8", "--budget", "2"]
    assert main([*args, "--workers", "1", "--no-progress", "-o", str(out)]) == 0
    assert load_checkpoint(out).header.created_by == (
        f"chiplex finetune {MODELS / 'mlp.mlir'} --target tpu-ring8 --budget 2 --seed 0 -o {out}"
    )


def test_train_run_is_identical_across_hash_seeds_and_worker_counts(tmp_path: Path) -> None:
    first, second = run_twice(
        tmp_path,
        ["train", "-o", "run", "--updates", "2", "--graphs", "2", "--no-zoo"]
        + [
            "--targets-per-graph",
            "1",
            "--samples",
            "4",
            "--checkpoint-every",
            "1",
            "--no-progress",
        ],
        workers="--workers",
    )
    assert_identical(first, second, {"run/checkpoint.pt", "run/history.json", "run/pretrain.json"})


def test_simulate_and_check_print_and_write_identically(tmp_path: Path) -> None:
    schedule = tmp_path / "compiled"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "chiplex.cli",
            "compile",
            str(MODELS / "mlp.mlir"),
            "-o",
            str(schedule),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    first, second = run_twice(
        tmp_path,
        ["simulate", str(schedule / "schedule.json"), "--target", "tpu-ring8"]
        + ["--microbatches", "16", "--trace", "trace.json"],
    )
    assert_identical(first, second, {"trace.json"})
    for index, name in enumerate(("check_placed", "check_feasible")):
        args = (
            ["check", str(schedule / "placed.mlir"), "--target", "tpu-ring8"]
            if index == 0
            else ["check", str(MODELS / "bert_layer.mlir"), "--target", "my_mcm.toml"]
        )
        first, second = run_twice(tmp_path / name, args)
        assert_identical(first, second, set())
        assert "legal" in first.stdout


def test_import_torch_and_chiplex_opt_write_identical_ir(tmp_path: Path) -> None:
    first, second = run_twice(tmp_path / "import", ["import-torch", "mlp", "-o", "mlp.mlir"])
    assert_identical(first, second, {"mlp.mlir"})
    procs = []
    for index, hash_seed in enumerate(("0", "1")):
        procs.append(
            subprocess.run(
                [sys.executable, "-m", "chiplex.opt", str(MODELS / "bert_layer.mlir")]
                + ["-p", "annotate-costs{target=tpu-ring8},place{strategy=cp}"],
                env={**os.environ, "PYTHONHASHSEED": hash_seed},
                capture_output=True,
                text=True,
            )
        )
        assert procs[index].returncode == 0, procs[index].stderr
    assert procs[0].stdout == procs[1].stdout
    assert "#mcm.chip<" in procs[0].stdout


def tight_instance() -> tuple[Graph, Target]:
    """35 ops on a 6-chip chain at 0.96x the smallest capacity: neither heuristic places the graph,
    so repairs start from the feasibility model's witness, which each process remembers once found."""
    rng = np.random.default_rng(0)
    num_ops, chips = int(rng.integers(12, 40)), int(rng.integers(3, 9))
    graph = nn_graph(lambda lo, hi: int(rng.integers(lo, hi + 1)), num_ops, name="tight")
    slack = float(rng.uniform(0.9, 1.0))
    return graph, target_for(graph, chips, slack=slack, topology="chain", name="tight")


def test_a_search_whose_repairs_need_the_solver_is_identical_on_one_and_two_workers() -> None:
    """With one worker every repair after the first sees the remembered witness; with two, each
    process finds it again. The repair used to answer the first one per process exactly (MiniZinc)
    and the others heuristically, so the best placement depended on the worker count."""
    graph, target = tight_instance()
    assert (graph.num_nodes, target.num_chips) == (35, 6)
    problem = heuristics.problem_for(graph, resolve_rules(graph, target))
    assert heuristics.heuristic_optimize(problem, np.ones(graph.num_nodes)) is None
    results = [
        search(graph, target, "random", Budget(evaluations=32), 0, workers=w, stop_at_bound=False)
        for w in (1, 2)
    ]
    assert results[0].repaired > 0
    assert np.array_equal(results[0].placement, results[1].placement)
    assert results[0].throughput == results[1].throughput
