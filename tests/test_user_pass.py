"""Users write a lowering pass in one file and run it in a pipeline."""

from __future__ import annotations

from pathlib import Path

from chiplex.cli import main
from chiplex.compile import compile_module
from chiplex.ir.parse import load_module
from chiplex.passes import PASSES, load_plugin

ROOT = Path(__file__).parents[1]
PLUGIN = ROOT / "examples" / "passes" / "decompose_softmax.py"


def test_plugin_pass_runs_inside_the_pipeline() -> None:
    assert load_plugin(str(PLUGIN)) == ["decompose-softmax"]
    assert "decompose-softmax" in PASSES
    module = load_module(ROOT / "examples" / "models" / "bert_layer.mlir")
    before = {op.name for op in module.walk()}
    result = compile_module(
        module,
        "tpu-ring8",
        pipeline="decompose-softmax,annotate-costs{target=tpu-ring8},place,legalize-placement,"
        "insert-transfers,split-chiplets",
    )
    kinds = set(result.graph.kinds)
    assert "nn.softmax" in before
    assert result.schedule is not None
    after = {s.kind for steps in result.schedule.chips for s in steps if hasattr(s, "kind")}
    assert "nn.softmax" not in after and {"nn.exp", "nn.reduce_max", "nn.div"} <= after
    # The graph is the placed function's (after the plugin pass), so placement covers every op.
    assert "nn.softmax" not in kinds and "nn.exp" in kinds
    assert (result.placement >= 0).all()


def test_plugin_errors_are_clear(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    assert (
        main(
            [
                "compile",
                str(ROOT / "examples" / "models" / "mlp.mlir"),
                "--plugin",
                str(empty),
                "-o",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )
    assert "defines no ModulePass" in capsys.readouterr().err
