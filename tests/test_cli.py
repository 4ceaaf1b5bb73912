"""The command line: exit codes, located errors without tracebacks, no silent overwrites."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chiplex.cli import main

ROOT = Path(__file__).parents[1]
MLP = ROOT / "examples" / "models" / "mlp.mlir"

BAD_IR = {
    "syntax": (
        "func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {\n  %y = nn.relu %x :\n}\n",
        ":2:20: error:",  # just past the `:` that wants a type, not at the next line's `}`
    ),
    "unknown-op": (
        "func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {\n  %y = nn.frobnicate %x : tensor<4xf32>\n"
        "  func.return %y : tensor<4xf32>\n}\n",
        ":2:",
    ),
    "wrong-shapes": (
        "func.func @f(%x: tensor<2x3xf32>, %w: tensor<4x5xf32>) -> tensor<2x5xf32> {\n"
        "  %y = nn.matmul %x, %w : tensor<2x3xf32>, tensor<4x5xf32> -> tensor<2x5xf32>\n"
        "  func.return %y : tensor<2x5xf32>\n}\n",
        ":2:",
    ),
    "dynamic-shape": (
        "func.func @f(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {\n  %y = nn.relu %x : tensor<?x4xf32>\n"
        "  func.return %y : tensor<?x4xf32>\n}\n",
        ":2:",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_IR))
def test_malformed_ir_gives_a_located_error_and_exit_1(case: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    text, location = BAD_IR[case]
    source = tmp_path / f"{case}.mlir"
    source.write_text(text)
    assert main(["compile", str(source), "--target", "tpu-ring8", "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"{case}.mlir{location}" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_errors_never_show_a_traceback_from_the_real_command(tmp_path: Path) -> None:
    source = tmp_path / "bad.mlir"
    source.write_text(BAD_IR["wrong-shapes"][0])
    proc = subprocess.run(
        [sys.executable, "-m", "chiplex.cli", "compile", str(source), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "bad.mlir:2:" in proc.stderr


def test_compile_writes_ir_and_schedule_and_prints_the_table(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "mlp"
    assert main(["compile", str(MLP), "--target", "tpu-ring8", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "estimated throughput" in printed and "capacity MiB" in printed
    schedule = json.loads((out / "schedule.json").read_text())
    assert schedule["format"] == "chiplex.schedule" and schedule["num_chips"] == 8
    assert "mcm.program" in (out / "chiplets.mlir").read_text()
    assert "#mcm.chip<" in (out / "placed.mlir").read_text()


def test_compile_refuses_to_overwrite_without_force(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "o"
    out.mkdir()
    (out / "schedule.json").write_text("precious")
    assert main(["compile", str(MLP), "-o", str(out)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (out / "schedule.json").read_text() == "precious"
    assert main(["compile", str(MLP), "-o", str(out), "--force"]) == 0


def test_missing_input_and_unknown_target(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["compile", str(tmp_path / "nope.mlir")]) == 1
    assert "nope.mlir" in capsys.readouterr().err
    assert main(["compile", str(MLP), "--target", "warp-drive", "-o", str(tmp_path / "o")]) == 1
    assert "unknown target 'warp-drive'" in capsys.readouterr().err


def test_chiplex_opt_runs_our_passes(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "chiplex.opt",
            str(MLP),
            "-p",
            "annotate-costs{target=tpu-ring8},place{strategy=dp},legalize-placement,insert-transfers,split-chiplets",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "mcm.program @mlp" in proc.stdout and "mcm.chiplet 0" in proc.stdout
