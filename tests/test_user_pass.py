"""Users write a lowering pass in one file and run it in a pipeline."""

from __future__ import annotations

import sys
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


BREAKS_IR = """\
from dataclasses import dataclass

from xdsl.dialects.builtin import IntegerAttr, TensorType, bf16, i64
from xdsl.passes import ModulePass

from chiplex.ir import nn


@dataclass(frozen=True)
class BadRelu(ModulePass):
    name = "bad-relu"

    def apply(self, ctx, op) -> None:
        relu = next(o for o in op.walk() if isinstance(o, nn.ReluOp))
        wrong = nn.ReluOp.create(operands=[relu.input], result_types=[TensorType(bf16, [7, 7])])
        relu.parent.insert_op_before(wrong, relu)
        relu.results[0].replace_all_uses_with(wrong.results[0])
        relu.detach()
        relu.erase()


@dataclass(frozen=True)
class BadAxis(ModulePass):
    name = "bad-axis"

    def apply(self, ctx, op) -> None:
        softmax = next(o for o in op.walk() if isinstance(o, nn.SoftmaxOp))
        softmax.properties["axis"] = IntegerAttr(9, i64)
"""


def test_a_pass_that_leaves_invalid_ir_is_named_with_the_op(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from chiplex.opt import main as opt_main

    plugin = tmp_path / "breaks_ir.py"
    plugin.write_text(BREAKS_IR)
    mlp = ROOT / "examples" / "models" / "mlp.mlir"
    # Caught right after the pass, before annotate-costs reads the broken op.
    rest = (
        ",annotate-costs{target=tpu-ring8},place,legalize-placement,insert-transfers,split-chiplets"
    )
    args = ["compile", str(mlp), "--plugin", str(plugin), "--pipeline", f"bad-relu{rest}"]
    assert main([*args, "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "chiplex: error: pass 'bad-relu' produced invalid IR: nn.relu" in err
    assert "(built by a pass): result 'result' at position 0 does not verify" in err
    assert opt_main([str(mlp), "--plugin", str(plugin), "-p", "bad-relu,canonicalize"]) == 1
    assert "pass 'bad-relu' produced invalid IR: nn.relu" in capsys.readouterr().err
    # An op the pass changed but did not build is located in the user's file.
    layer = ROOT / "examples" / "models" / "bert_layer.mlir"
    assert opt_main([str(layer), "--plugin", str(plugin), "-p", "bad-axis"]) == 1
    err = capsys.readouterr().err
    assert f"pass 'bad-axis' produced invalid IR: {layer}:" in err
    assert "nn.softmax %layers.0.attn.softmax: nn.softmax: axis 9 is out of range" in err


def _plugin(
    path: Path, name: str, body: str = "", decorate: bool = True, apply: str = "self, ctx, op"
) -> Path:
    path.write_text(
        "from __future__ import annotations\n"
        "from dataclasses import dataclass\n"
        "from xdsl.passes import ModulePass\n\n"
        + ("@dataclass(frozen=True)\n" if decorate else "")
        + "class MyPass(ModulePass):\n"
        + (f"    name = '{name}'\n" if name else "")
        + body
        + f"\n    def apply({apply}) -> None:\n        pass\n"
    )
    return path


def test_a_plugin_pass_that_cannot_be_registered_is_located(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from chiplex.opt import main as opt_main

    mlp = str(ROOT / "examples" / "models" / "mlp.mlir")
    cases = [
        (
            _plugin(tmp_path / "noname.py", ""),
            'pass class MyPass has no name: add name = "my-pass"',
        ),
        (
            _plugin(tmp_path / "plain.py", "tag", "    factor: int = 2\n", decorate=False),
            "pass class MyPass declares options (factor) but is not a dataclass: decorate it with "
            "@dataclass(frozen=True)",
        ),
        (
            _plugin(tmp_path / "shadow.py", "place"),
            "pass 'place' (MyPass) has the name of a chiplex pass: choose another",
        ),
        (
            _plugin(tmp_path / "dotted.py", "my.pass"),
            "pass name 'my.pass' cannot be written in a pipeline: use letters, digits, - and _",
        ),
        (
            _plugin(tmp_path / "sig.py", "sig", apply="self, module"),
            "pass class MyPass: apply must take (self, ctx, op), not (self, module)",
        ),
        (
            _plugin(tmp_path / "unresolved.py", "unresolved", "    limit: ByteSize = 0\n"),
            "pass class MyPass: its option types do not resolve (NameError: name 'ByteSize' is "
            "not defined); import what they name at run time, not under TYPE_CHECKING",
        ),
        (
            _plugin(tmp_path / "listed.py", "listed", "    sizes: list[int] | None = None\n"),
            "pass class MyPass: option 'sizes' has type list[int] | None, which no pipeline "
            "string gives",
        ),
    ]
    for plugin, message in cases:
        assert opt_main([mlp, "--plugin", str(plugin), "-p", "canonicalize"]) == 1
        err = capsys.readouterr().err
        assert f"chiplex-opt: error: {plugin}:5: error: {message}" in err, err
        assert "Traceback" not in err and "internal error" not in err
    first, second = _plugin(tmp_path / "a.py", "twin"), _plugin(tmp_path / "b.py", "twin")
    args = ["compile", mlp, "-o", str(tmp_path / "o"), "--plugin", str(first), "--plugin"]
    assert main([*args, str(second)]) == 1
    assert f"{second}:5: error: pass 'twin' (MyPass) is already defined by {first}" in (
        capsys.readouterr().err
    )
    # One file given twice is one plugin.
    assert opt_main([mlp, "--plugin", str(first), "--plugin", str(first), "-p", "twin"]) == 0
    capsys.readouterr()
    from chiplex.errors import ChiplexError
    from chiplex.passes import PASSES, register_pass

    place = PASSES["place"]
    shadow = _load(tmp_path / "shadow.py")
    try:
        register_pass(shadow)
    except ChiplexError as err:
        assert "has the name of a chiplex pass" in str(err)
    else:
        raise AssertionError("register_pass replaced chiplex's place")
    assert PASSES["place"] is place


def _load(path: Path) -> type:
    namespace: dict[str, object] = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - our test file
    return namespace["MyPass"]  # type: ignore[return-value]


def test_an_unknown_pass_with_no_near_name_says_how_to_load_ones_own(capsys) -> None:  # type: ignore[no-untyped-def]
    assert (
        main(["compile", str(ROOT / "examples" / "models" / "mlp.mlir"), "--pipeline", "my-pass"])
        == 1
    )
    assert "load its file with --plugin my_pass.py, or call chiplex.passes.register_pass" in (
        capsys.readouterr().err
    )


def test_a_plugin_whose_passes_the_pipeline_does_not_run_is_warned_about(
    tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from chiplex.opt import main as opt_main

    plugin = _plugin(tmp_path / "mine.py", "mine")
    mlp = str(ROOT / "examples" / "models" / "mlp.mlir")
    args = ["compile", mlp, "--plugin", str(plugin), "--target", "tpu-ring4"]
    assert main([*args, "-o", str(tmp_path / "a")]) == 0
    assert (
        f"chiplex: warning: --plugin {plugin}: its pass mine is not in the default pipeline (no "
        "--pipeline), so it changes nothing; add it, e.g. --pipeline 'mine,annotate-costs{"
        "target=tpu-ring4},place,legalize-placement,insert-transfers,split-chiplets'"
    ) in capsys.readouterr().err
    assert opt_main([mlp, "--plugin", str(plugin), "-p", "canonicalize"]) == 0
    assert "its pass mine is not in the pipeline (-p)" in capsys.readouterr().err
    assert opt_main([mlp, "--plugin", str(plugin), "-p", "mine,canonicalize"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_an_error_from_chiplex_code_a_pass_calls_is_located_in_the_pass_even_under_a_chiplex_dir(
    tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from chiplex.opt import main as opt_main

    plugin = tmp_path / "chiplex" / "builds_bad.py"  # say, a user's clone called chiplex/
    plugin.parent.mkdir()
    plugin.write_text(
        "from dataclasses import dataclass\n"
        "from xdsl.passes import ModulePass\n"
        "from chiplex.ir import nn\n\n"
        "@dataclass(frozen=True)\n"
        "class BuildsBad(ModulePass):\n"
        "    name = 'builds-bad'\n\n"
        "    def apply(self, ctx, op) -> None:\n"
        "        relu = next(o for o in op.walk() if isinstance(o, nn.ReluOp))\n"
        "        nn.MatmulOp(relu.input, relu.input)  # K mismatch: nn.py raises\n"
    )
    mlp = str(ROOT / "examples" / "models" / "mlp.mlir")
    assert opt_main([mlp, "--plugin", str(plugin), "-p", "builds-bad"]) == 1
    err = capsys.readouterr().err
    assert f"{plugin}:11: error: pass 'builds-bad' failed: VerifyException: nn.matmul" in err


def test_a_lowering_pass_run_after_annotate_costs_is_named_at_once(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    layer = str(ROOT / "examples" / "models" / "bert_layer.mlir")
    tail = "legalize-placement,insert-transfers,split-chiplets"
    for pipeline in (
        f"annotate-costs{{target=tpu-ring8}},decompose-softmax,place,{tail}",
        f"annotate-costs{{target=tpu-ring8}},place,{tail},decompose-softmax",  # inside the chiplets
    ):
        args = ["compile", layer, "--plugin", str(PLUGIN), "-o", str(tmp_path / "o")]
        assert main([*args, "--pipeline", pipeline]) == 1
        assert (
            "pass 'decompose-softmax' ran after annotate-costs and left 5 ops without a cost "
            "(first: nn.reduce_max %layers.0.attn.softmax): put it before annotate-costs"
        ) in capsys.readouterr().err


def test_a_plugin_given_by_a_relative_path_is_located_and_imports_its_neighbours(
    tmp_path: Path, capsys, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from chiplex.opt import main as opt_main

    project = tmp_path / "project" / "passes"
    project.mkdir(parents=True)
    (project / "count_helpers.py").write_text("def describe(n):\n    return f'{n} ops counted'\n")
    (project / "counting.py").write_text(
        "from dataclasses import dataclass\n"
        "from xdsl.passes import ModulePass\n"
        "from count_helpers import describe\n\n"
        "@dataclass(frozen=True)\n"
        "class Count(ModulePass):\n"
        "    name = 'count'\n\n"
        "    def apply(self, ctx, op) -> None:\n"
        "        print(describe(sum(1 for _ in op.walk())))\n"
    )
    (project / "broken.py").write_text("x = 1\nraise RuntimeError('boom at import')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the plugin's directory joins it
    mlp = str(ROOT / "examples" / "models" / "mlp.mlir")
    out = str(tmp_path / "o.mlir")
    assert opt_main([mlp, "--plugin", "project/passes/counting.py", "-p", "count", "-o", out]) == 0
    assert "27 ops counted" in capsys.readouterr().out
    assert opt_main([mlp, "--plugin", "project/passes/broken.py"]) == 1
    assert (
        "chiplex-opt: error: project/passes/broken.py:2: error: failed to load pass plugin: "
        "RuntimeError: boom at import"
    ) in capsys.readouterr().err


def test_two_plugins_with_one_file_name_keep_their_own_annotations(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from chiplex.opt import main as opt_main

    head = (
        "from __future__ import annotations\n"
        "from dataclasses import dataclass\n"
        "from xdsl.passes import ModulePass\n"
    )
    first, second = tmp_path / "a" / "passes.py", tmp_path / "b" / "passes.py"
    first.parent.mkdir()
    second.parent.mkdir()
    first.write_text(
        head + "from chiplex.passes.options import ByteSize\n\n"
        "@dataclass(frozen=True)\nclass Limit(ModulePass):\n    name = 'limit'\n"
        "    limit: ByteSize = 0\n\n    def apply(self, ctx, op) -> None:\n"
        "        print('limit', self.limit)\n"
    )
    second.write_text(
        head + "\n@dataclass(frozen=True)\nclass Factor(ModulePass):\n    name = 'factor'\n"
        "    factor: int = 1\n\n    def apply(self, ctx, op) -> None:\n"
        "        print('factor', self.factor)\n"
    )
    mlp = str(ROOT / "examples" / "models" / "mlp.mlir")
    args = [mlp, "--plugin", str(first), "--plugin", str(second), "-o", str(tmp_path / "o.mlir")]
    assert opt_main([*args, "-p", "limit{limit=1KiB},factor{factor=2}"]) == 0
    assert "limit 1024\nfactor 2\n" in capsys.readouterr().out


def test_a_plugin_may_add_a_placement_strategy_only(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from chiplex.passes.strategies import STRATEGIES

    plugin = tmp_path / "one_chip.py"
    plugin.write_text(
        "import numpy as np\n"
        "from chiplex.passes.strategies import STRATEGIES\n\n"
        "def one_chip(graph, target, seed):\n"
        "    return np.zeros(graph.num_nodes, dtype=np.int64)\n\n"
        "STRATEGIES['one-chip'] = one_chip\n"
    )
    mlp = str(ROOT / "examples" / "models" / "mlp.mlir")
    args = ["compile", mlp, "--plugin", str(plugin), "--strategy", "one-chip"]
    try:
        assert main([*args, "--target", "tpu-ring8-2xsram", "-o", str(tmp_path / "o")]) == 0
        placed = (tmp_path / "o" / "placed.mlir").read_text()
        assert "#mcm.chip<0>" in placed and "#mcm.chip<1>" not in placed
        assert "warning" not in capsys.readouterr().err
    finally:
        STRATEGIES.pop("one-chip", None)
