"""Outputs: atomic writes, an output directory that never mixes two runs, clear errors for bad paths."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from chiplex import fileio
from chiplex.cli import main
from chiplex.errors import ChiplexError

ROOT = Path(__file__).parents[1]
MLP = ROOT / "examples" / "models" / "mlp.mlir"


def _disk_full(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_atomic_write_keeps_the_old_file_when_the_disk_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "placed.mlir"
    fileio.atomic_write_text(path, "old run\n")
    monkeypatch.setattr(os, "fsync", _disk_full)
    with pytest.raises(ChiplexError, match=r"cannot write .*placed\.mlir: No space left"):
        fileio.atomic_write_text(path, "new run\n" * 1000)
    assert path.read_text() == "old run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["placed.mlir"]  # no temporary left


def test_a_failed_compile_write_leaves_the_previous_run_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "o"
    assert main(["compile", str(MLP), "-o", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(os, "fsync", _disk_full)
    code = main(["compile", str(MLP), "--strategy", "greedy", "-o", str(out), "--force"])
    assert code == 1 and "No space left on device" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_force_removes_the_schedule_of_an_earlier_run_that_this_run_does_not_make(
    tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "o"
    assert main(["compile", str(MLP), "-o", str(out)]) == 0
    assert (out / "schedule.json").exists()
    capsys.readouterr()
    unsplit = "annotate-costs{target=tpu-ring8},place,legalize-placement"
    assert main(["compile", str(MLP), "--pipeline", unsplit, "-o", str(out), "--force"]) == 0
    printed = capsys.readouterr().out
    assert not (out / "schedule.json").exists()
    assert "(placed.mlir, chiplets.mlir)" in printed and "schedule.json" not in printed


def test_user_files_in_the_output_directory_are_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["compile", str(MLP), "-o", str(out), "--force"]) == 0
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("make", "output", "message"),
    [
        (lambda d: (d / "afile").write_text("x"), "afile", "it is a file"),
        (lambda d: (d / "afile").write_text("x"), "afile/sub", "afile is a file"),
        (lambda d: (d / "o" / "schedule.json").mkdir(parents=True), "o", "it is a directory"),
    ],
)
def test_bad_output_paths_are_clear_errors(
    tmp_path: Path, make, output: str, message: str, capsys
) -> None:  # type: ignore[no-untyped-def]
    make(tmp_path)
    code = main(["compile", str(MLP), "-o", str(tmp_path / output), "--force"])
    err = capsys.readouterr().err
    assert code == 1 and message in err and "Traceback" not in err


def test_import_torch_and_simulate_refuse_bad_paths_before_working(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert main(["import-torch", "mlp", "-o", str(blocker / "m.mlir")]) == 1
    assert "afile is not a directory" in capsys.readouterr().err
    assert main(["import-torch", "mlp", "-o", str(blocker)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert blocker.read_text() == "x"
    out = tmp_path / "o"
    assert main(["compile", str(MLP), "-o", str(out)]) == 0
    assert main(["simulate", str(out / "schedule.json"), "--trace", str(tmp_path)]) == 1
    assert "it is a directory" in capsys.readouterr().err
