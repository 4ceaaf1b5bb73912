"""`chiplex-opt`: chiplex's passes and plugins, its own help, and chiplex's error handling."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chiplex.opt import main

ROOT = Path(__file__).parents[1]
MLP = ROOT / "examples" / "models" / "mlp.mlir"
PLUGIN = ROOT / "examples" / "passes" / "decompose_softmax.py"


def test_help_lists_chiplex_passes_and_not_xdsls(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for name in ("annotate-costs{target=None}", "place{strategy=dp", "split-chiplets"):
        assert name in text
    assert "convert-linalg-to-loops" not in text and "exit codes:" in text


def test_list_passes_describes_each_pass_in_a_whole_sentence(capsys) -> None:  # type: ignore[no-untyped-def]
    """A docstring's first line can stop mid-sentence ("..., is"): the list shows the sentence."""
    assert main(["--list-passes"]) == 0
    summaries: dict[str, str] = {}
    name = ""
    for line in capsys.readouterr().out.splitlines()[1:]:
        if line.startswith("      "):
            summaries[name] += " " + line.strip()
        else:
            name = line.strip().split("{")[0]
            summaries[name] = ""
    assert "host-embeddings" in summaries and "split-chiplets" in summaries
    for name, summary in summaries.items():
        if summary:
            assert summary.rstrip().endswith("."), f"{name}: {summary}"


def test_bad_ir_is_located_and_never_truncates_the_output(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mlir"
    bad.write_text(MLP.read_text().replace('nn.param "layers.0.bias"', 'nn.param "layers.0.bias'))
    out = tmp_path / "out.mlir"
    out.write_text("precious\n")
    proc = subprocess.run(
        [sys.executable, "-m", "chiplex.opt", str(bad), "-o", str(out), "--force"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "bad.mlir:8:" in proc.stderr and "unterminated string literal" in proc.stderr
    assert out.read_text() == "precious\n"


def test_unknown_pass_missing_file_and_existing_output(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main([str(MLP), "-p", "frobnicate"]) == 1
    err = capsys.readouterr().err
    assert "Unrecognized passes: ['frobnicate']" in err and "did you mean" not in err
    assert main([str(MLP), "-p", "anotate-costs{target=tpu-ring8},canonicalise"]) == 1
    assert (
        "(did you mean 'annotate-costs' for 'anotate-costs', 'canonicalize' for 'canonicalise'?)"
        in capsys.readouterr().err
    )
    assert main([str(tmp_path / "nope.mlir")]) == 1
    assert "nope.mlir: error: no such file" in capsys.readouterr().err
    out = tmp_path / "out.mlir"
    out.write_text("mine")
    assert main([str(MLP), "-o", str(out)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err and out.read_text() == "mine"
    assert main([str(MLP), "-p", "place", "-o", str(out), "--force"]) == 1  # no target anywhere
    assert "place: no target" in capsys.readouterr().err and out.read_text() == "mine"


def test_plugins_and_xdsl_passes_run(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    layer = ROOT / "examples" / "models" / "bert_layer.mlir"
    out = tmp_path / "lowered.mlir"
    assert (
        main([str(layer), "--plugin", str(PLUGIN), "-p", "decompose-softmax,dce", "-o", str(out)])
        == 0
    )
    text = out.read_text()
    assert "nn.exp" in text and "nn.softmax" not in text
    assert main(["--plugin", str(PLUGIN), "--list-passes"]) == 0
    assert "decompose-softmax" in capsys.readouterr().out
