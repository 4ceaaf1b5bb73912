"""A long compile says where it is: the phase running on a terminal, its longest phases at the end;
and `--simulate` simulates a large model once, not twice."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

import chiplex.runtime_sim
from chiplex.cli import main
from chiplex.commands import _progress
from chiplex.compile import compile_module
from chiplex.ir.parse import load_module

ROOT = Path(__file__).parents[1]
MLP = ROOT / "examples" / "models" / "mlp.mlir"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_compile_module_names_each_phase_as_it_starts() -> None:
    phases: list[str] = []
    compile_module(load_module(str(MLP)), "tpu-ring8", phase=phases.append)
    passes = ["host-embeddings", "shard-params", "rematerialize", "annotate-costs", "place"]
    lowering = ["legalize-placement", "placed IR", "insert-transfers", "split-chiplets"]
    assert phases == [*passes, *lowering, "verify", "emit"]


def test_a_terminal_shows_the_phase_running(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["compile", str(MLP), "-o", str(tmp_path / "out")]) == 0
    shown = terminal.getvalue()
    for phase in ("read input", "place", "emit", "write"):
        assert f"\rcompile: {phase} [" in shown, shown
    assert shown.endswith("\r"), "the status line is cleared before the results"


def test_a_log_gets_no_status_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["compile", str(MLP), "-o", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "compile:" not in captured.err and "\r" not in captured.err
    assert "; CPU: " not in captured.out  # a quick compile lists no phases


def test_a_long_compile_names_its_longest_phases(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(_progress, "LONG_CPU_S", 0.0)
    assert main(["compile", str(MLP), "-o", str(tmp_path / "out")]) == 0
    wrote = [line for line in capsys.readouterr().out.splitlines() if line.startswith("wrote ")]
    assert len(wrote) == 1 and "; CPU: " in wrote[0]
    listed = wrote[0].split("; CPU: ")[1].split(", ")
    assert len(listed) == _progress.LISTED_PHASES
    assert all(item.endswith(" s") for item in listed)


@pytest.mark.parametrize(("microbatches", "runs"), [(None, 1), (16, 2)])
def test_simulate_runs_the_summarys_simulation_once(  # type: ignore[no-untyped-def]
    tmp_path: Path, capsys, monkeypatch, microbatches: int | None, runs: int
) -> None:
    calls: list[int] = []
    simulate = chiplex.runtime_sim.simulate

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs.get("microbatches", 64))
        return simulate(*args, **kwargs)

    monkeypatch.setattr(chiplex.runtime_sim, "simulate", counted)
    extra = [] if microbatches is None else ["--microbatches", str(microbatches)]
    assert main(["compile", str(MLP), "-o", str(tmp_path / "out"), "--simulate", *extra]) == 0
    out = capsys.readouterr().out
    assert len(calls) == runs
    assert "simulated throughput" in out and "throughput " in out.split("wrote ")[1]


def test_phase_cpu_counts_a_solver_subprocess() -> None:
    # `--strategy cp` and MiniZinc solve in child processes: their CPU belongs to the phase.
    import subprocess

    before = _progress.cpu_seconds()
    burn = "import time\nstart = time.process_time()\nwhile time.process_time() - start < 0.3: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)
    assert _progress.cpu_seconds() - before >= 0.25
