"""Bad input a hostile but realistic user writes: every case ends in a located error with exit code 1
(or works), never a traceback, a hang, or a file written that should not be."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chiplex.cli import main
from chiplex.errors import ChiplexError
from chiplex.ir.parse import parse_module
from chiplex.targets.schedule import load_schedule
from chiplex.targets.target import load_target

ROOT = Path(__file__).parents[1]
MLP = ROOT / "examples" / "models" / "mlp.mlir"
PRESET = ROOT / "src" / "chiplex" / "targets" / "presets" / "tpu-ring8.toml"

SMALL = """\
func.func @f(%x: tensor<4x8xbf16>) -> tensor<4x8xbf16> {
  %w = nn.param "w" : tensor<8x8xi8>
  %y = nn.matmul %x, %w : tensor<4x8xbf16>, tensor<8x8xi8> -> tensor<4x8xbf16>
  %z = nn.relu %y : tensor<4x8xbf16>
  func.return %z : tensor<4x8xbf16>
}
"""


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chiplex.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def user_target(tmp_path: Path, name: str = "my_mcm", **replace: str) -> Path:
    """A target file as a user writes one: a copy of the tpu-ring8 preset, renamed and edited."""
    text = PRESET.read_text().replace('name = "tpu-ring8"', f'name = "{name}"')
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


# -- hangs -------------------------------------------------------------------------------------------
def test_an_unterminated_string_literal_fails_fast_and_located(tmp_path: Path) -> None:
    # xDSL's lexer backtracked exponentially on this: minutes for one line.
    bad = tmp_path / "unterminated.mlir"
    bad.write_text(MLP.read_text().replace('nn.param "layers.0.bias"', 'nn.param "layers.0.bias'))
    proc = run_cli("check", str(bad), "--target", "tpu-ring8", timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert re.search(r"unterminated\.mlir:\d+:\d+: error: unterminated string literal", proc.stderr)
    assert "Traceback" not in proc.stderr


def test_absurd_message_sizes_and_microbatch_counts_are_refused_not_run(tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert main(["compile", str(MLP), "-o", str(out)]) == 0
    data = json.loads((out / "schedule.json").read_text())
    for chip in data["chips"]:
        for step in chip["steps"]:
            if step["type"] in ("send", "recv"):
                step["bytes"] = 10**15
    for message in data["messages"]:
        message["bytes"] = 10**15
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps(data))
    proc = run_cli("simulate", str(huge), "--target", "tpu-ring8", timeout=30)
    assert proc.returncode == 1 and "micro-batches" in proc.stderr and "events" in proc.stderr
    proc = run_cli(
        "simulate", str(out / "schedule.json"), "--microbatches", "1000000000", timeout=30
    )
    assert proc.returncode == 1 and "use fewer micro-batches" in proc.stderr


# -- target files on the command line ----------------------------------------------------------------
def test_compile_with_a_user_written_target_file(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # A path with a dot, a dash and a space: none of them is a pipeline token.
    folder = tmp_path / "my targets"
    folder.mkdir()
    target = user_target(folder, "my-mcm.v2")
    out = tmp_path / "out"
    assert main(["compile", str(MLP), "--target", str(target), "-o", str(out)]) == 0
    assert "mlp on my-mcm.v2" in capsys.readouterr().out
    assert json.loads((out / "schedule.json").read_text())["target"] == "my-mcm.v2"
    # The README's form: the target file named inside --pipeline, quoted.
    pipeline = (
        f'annotate-costs{{target="{target}"}},place{{strategy=greedy}},'
        "legalize-placement{repair=true},insert-transfers,split-chiplets"
    )
    assert main(["compile", str(MLP), "--pipeline", pipeline, "-o", str(out), "--force"]) == 0
    # Unquoted, the error says how to quote it.
    assert main(["compile", str(MLP), "--pipeline", "annotate-costs{target=my.toml}"]) == 1
    assert 'target="my_mcm.toml"' in capsys.readouterr().err


def test_compile_target_disagreeing_with_the_pipeline_is_an_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "o"
    pipeline = (
        "annotate-costs{target=simba-6x6},place,legalize-placement,insert-transfers,split-chiplets"
    )
    code = main(
        ["compile", str(MLP), "--target", "tpu-ring8", "--pipeline", pipeline, "-o", str(out)]
    )
    assert code == 1
    assert "disagrees with the pipeline's target=simba-6x6" in capsys.readouterr().err
    assert not out.exists()
    # The pipeline's target alone is fine, and is what the schedule names.
    assert main(["compile", str(MLP), "--pipeline", pipeline, "-o", str(out)]) == 0
    assert load_schedule(out / "schedule.json").target == "simba-6x6"


def test_a_pipeline_that_skips_legalize_placement_never_emits_an_illegal_schedule(
    tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    first = tmp_path / "first"
    assert main(["compile", str(MLP), "-o", str(first)]) == 0
    # Every op on chip 0: 16 MiB of weights on a 13 MiB chip.
    crammed = tmp_path / "crammed.mlir"
    crammed.write_text(
        re.sub(r"#mcm\.chip<\d+>", "#mcm.chip<0>", (first / "placed.mlir").read_text())
    )
    out = tmp_path / "o"
    capsys.readouterr()
    code = main(
        ["compile", str(crammed), "--pipeline", "insert-transfers,split-chiplets", "-o", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 1 and "[memory]" in err and "no schedule emitted" in err
    assert not (out / "schedule.json").exists()


def test_plugin_with_future_annotations_and_an_option_loads_and_runs(
    tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    plugin = tmp_path / "count_ops.py"
    plugin.write_text(
        "from __future__ import annotations\n"
        "from dataclasses import dataclass\n"
        "from xdsl.passes import ModulePass\n\n"
        "@dataclass(frozen=True)\n"
        "class CountOps(ModulePass):\n"
        "    name = 'count-ops'\n"
        "    label: str = 'ops'\n\n"
        "    def apply(self, ctx, op) -> None:\n"
        "        print(self.label, sum(1 for _ in op.walk()))\n"
    )
    pipeline = "count-ops{label=counted},annotate-costs{target=tpu-ring8},place,legalize-placement"
    args = ["compile", str(MLP), "--plugin", str(plugin), "--pipeline", pipeline]
    assert main([*args, "-o", str(tmp_path / "o")]) == 0
    assert re.search(r"^counted \d+$", capsys.readouterr().out, re.M)


def test_a_user_pass_that_raises_is_reported_at_its_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    plugin = tmp_path / "broken.py"
    plugin.write_text(
        "from dataclasses import dataclass\n"
        "from xdsl.passes import ModulePass\n\n"
        "@dataclass(frozen=True)\n"
        "class Broken(ModulePass):\n"
        "    name = 'broken'\n\n"
        "    def apply(self, ctx, op) -> None:\n"
        "        raise KeyError('no such thing')\n"
    )
    code = main(["compile", str(MLP), "--plugin", str(plugin), "--pipeline", "broken"])
    err = capsys.readouterr().err
    assert code == 1 and f"{plugin}:9: error: pass 'broken' failed: KeyError" in err


# -- target TOML schema --------------------------------------------------------------------------------
BAD_TARGETS = [
    ({"num_chips = 8": 'num_chips = "8"'}, "topology.num_chips: expected a whole number"),
    (
        {'kind = "ring"\nnum_chips = 8': 'kind = "mesh"\nshape = [6]'},
        "topology.shape: expected exactly 2",
    ),
    (
        {"num_chips = 8": "num_chips = 8\n[rules]\npinned = [{ chip = 0 }]"},
        "rules.pinned[0].ops: missing",
    ),
    (
        {"num_chips = 8": 'num_chips = 8\n[rules]\npinned = [{ ops = "x", chip = 9 }]'},
        "chip 9 does not exist",
    ),
    ({"bandwidth = 4.0e9": "bandwidth = nan"}, "link.bandwidth: expected a finite number > 0"),
    ({"bandwidth = 4.0e9": "bandwidth = inf"}, "link.bandwidth: expected a finite number > 0"),
    ({"bandwidth = 4.0e9": "bandwidth = 0"}, "link.bandwidth: expected a finite number > 0"),
    ({"latency = 500.0e-9": "latency = -1e-9"}, "link.latency: expected a finite number >= 0"),
    ({"i8 = 16.0e12": "i8 = -16.0e12"}, "chip.matrix_ops.i8: expected a finite number > 0"),
    ({"sram_bandwidth = 400.0e9": "sram_bandwidth = nan"}, "chip.sram_bandwidth"),
    ({"num_chips = 8": "num_chips = 0"}, "topology.num_chips: expected a whole number >= 1"),
    ({"num_chips = 8": "num_chips = 100000000"}, "topology.num_chips"),
    ({"sram_bytes = 13631488": "sram_byte = 13631488"}, "did you mean 'sram_bytes'"),
    ({"sram_bytes = 13631488": "sram_bytes = 1.5"}, "chip.sram_bytes: expected a whole number"),
    ({"[link]": "[link]\nlatency = 1"}, "invalid TOML"),
    ({"sram_bytes = 13631488": 'sram_bytes = "13 Mb"'}, "or a size like '13 MiB' (units: B, kB"),
    ({"sram_bytes = 13631488": 'sram_bytes = "0.5 B"'}, "got '0.5 B'"),
    ({"sram_bytes = 13631488": 'sram_bytes = "2000 TiB"'}, "got '2000 TiB' (2,199,023,255,552,000"),
]


@pytest.mark.parametrize(("edits", "message"), BAD_TARGETS)
def test_bad_target_files_name_file_and_key(
    tmp_path: Path, edits: dict[str, str], message: str
) -> None:
    path = user_target(tmp_path, "bad", **edits)
    with pytest.raises(ChiplexError) as info:
        load_target(str(path))
    assert str(info.value).startswith(str(path)) and message in str(info.value)


def test_sizes_in_a_target_file_may_carry_a_unit(tmp_path: Path) -> None:
    in_bytes = load_target("tpu-ring8")
    with_units = load_target(
        str(user_target(tmp_path, "units", **{"sram_bytes = 13631488": 'sram_bytes = "13 MiB"'}))
    )
    assert with_units.chip == in_bytes.chip
    decimal = load_target(
        str(
            user_target(
                tmp_path,
                "decimal",
                **{
                    "sram_bytes = 13631488": 'sram_bytes = "1.1 MB"\n'
                    'dram_bytes = "0.5 GiB"\ndram_bandwidth = 1e9'
                },
            )
        )
    )
    assert (decimal.chip.sram_bytes, decimal.chip.dram_bytes) == (1_100_000, 2**29)


def test_a_pin_whose_ancestors_outweigh_its_chips_is_reported_without_retrying_splits(
    tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    # bert_layer's 6.76 MiB of weights all precede its last layer norm; pinned to chip 0 of 4 MiB they
    # cannot fit, and no split of rows or matrices makes them lighter, so compile says so at once.
    edits = {
        "sram_bytes = 13631488": 'sram_bytes = "4 MiB"',
        "num_chips = 8": 'num_chips = 8\n[rules]\npinned = [{ ops = "layers.0.ln2.layer_norm", chip = 0 }]',
    }
    target = user_target(tmp_path, "pinned", **edits)
    out = tmp_path / "o"
    layer = ROOT / "examples" / "models" / "bert_layer.mlir"
    assert main(["compile", str(layer), "--target", str(target), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "is pinned to chip 0, but it and the ops it depends on hold" in err
    assert "retrying" not in err and not out.exists()


def test_pin_globs_match_op_names_without_their_percent_sign(tmp_path: Path) -> None:
    from chiplex.ir.graph import graph_from_func
    from chiplex.ir.parse import load_module
    from chiplex.targets.legality import RuleWarning, resolve_rules

    func = next(op for op in load_module(str(MLP)).walk() if op.name == "func.func")
    graph = graph_from_func(func)  # type: ignore[arg-type]
    assert graph.op_names[1] == "%layers.0.add"
    pins = 'pinned = [{ ops = "layers.0.add", chip = 1 }, { ops = "%act.relu", chip = 1 }]'
    target = load_target(
        str(user_target(tmp_path, "pins", **{"num_chips = 8": f"num_chips = 8\n[rules]\n{pins}"}))
    )
    rules = resolve_rules(graph, target)
    assert rules.pinned[1] == rules.pinned[2] == 1 and (rules.pinned >= 0).sum() == 2
    typo = 'pinned = [{ ops = "layers.0.addd", chip = 1 }]'
    target = load_target(
        str(user_target(tmp_path, "typo", **{"num_chips = 8": f"num_chips = 8\n[rules]\n{typo}"}))
    )
    with pytest.warns(
        RuleWarning, match="pinned pattern 'layers.0.addd' matches no op or parameter"
    ):
        assert (resolve_rules(graph, target).pinned < 0).all()


def test_a_rule_matching_nothing_is_one_warning_line_through_the_cli(
    tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    typo = 'colocated = [["layers.0.matmull", "layers.1.matmul"]]'
    target = user_target(tmp_path, "typo", **{"num_chips = 8": f"num_chips = 8\n[rules]\n{typo}"})
    assert main(["compile", str(MLP), "--target", str(target), "-o", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    warning = (
        "chiplex: warning: target typo: [rules] colocated pattern 'layers.0.matmull' matches no op "
        "or parameter of mlp (op names look like 'layers.0.matmul')\n"
    )
    assert err == warning


def test_a_bad_target_file_through_the_cli_exits_1_and_writes_nothing(tmp_path: Path) -> None:
    path = user_target(tmp_path, "bad", **{"bandwidth = 4.0e9": "bandwidth = nan"})
    out = tmp_path / "o"
    proc = run_cli("compile", str(MLP), "--target", str(path), "-o", str(out))
    assert (
        proc.returncode == 1 and "link.bandwidth" in proc.stderr and "Traceback" not in proc.stderr
    )
    assert not out.exists()


# -- schedule JSON schema ------------------------------------------------------------------------------
def _edit(data: dict, path: str, value: object) -> None:
    *parents, last = path.split(".")
    node: object = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]  # type: ignore[index]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value  # type: ignore[index]


BAD_SCHEDULES = [
    ("num_chips", 0, "num_chips: expected a whole number >= 1"),
    ("num_chips", "8", "num_chips: expected a whole number"),
    ("chips", [], "chips: expected at least 1 item,"),
    ("chips.0.steps.0.duration_s", float("nan"), "chips[0].steps[0].duration_s"),
    ("chips.0.steps.0.duration_s", -1.0, "chips[0].steps[0].duration_s"),
    ("chips.0.steps.0.flops", "many", "chips[0].steps[0].flops"),
    ("chips.0.steps.0.type", "teleport", "chips[0].steps[0].type: expected one of"),
    ("chips.0.steps", {}, "chips[0].steps: expected a list"),
    ("samples_per_microbatch", 0, "samples_per_microbatch"),
    ("messages.0.route", [0], "messages[0].route"),
]


@pytest.mark.parametrize(("where", "value", "message"), BAD_SCHEDULES)
def test_bad_schedules_name_file_and_key(
    tmp_path: Path, where: str, value: object, message: str
) -> None:
    out = tmp_path / "o"
    assert main(["compile", str(MLP), "-o", str(out)]) == 0
    data = json.loads((out / "schedule.json").read_text())
    _edit(data, where, value)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ChiplexError) as info:
        load_schedule(bad)
    assert str(info.value).startswith(str(bad)) and message in str(info.value)


# -- IR edge cases ---------------------------------------------------------------------------------------
BAD_IR = {
    "stray-token": (SMALL + "}\n", ":7:1: error: unexpected text after the end of the module"),
    "gigantic-dimension": (
        SMALL.replace("4x8xbf16", "4x99999999999999999xbf16").replace(
            "8x8xi8", "99999999999999999x99999999999999999xi8"
        ),
        # The verifier rejects the first op using such a tensor, with its line and a caret.
        ":2:3: error: nn.param: result #0 tensor<99999999999999999x99999999999999999xi8> holds",
    ),
    "absurd-chip": (
        SMALL.replace("nn.relu %y :", "nn.relu %y {mcm.chip = #mcm.chip<99999999999999999999>} :"),
        ":4:41: error: #mcm.chip id 99999999999999999999 is absurd",
    ),
    "two-functions": (SMALL + SMALL.replace("@f", "@g"), ":7:1: expected exactly one func.func"),
    "two-blocks": (
        SMALL.replace(
            "  func.return %z", "  func.return %z : tensor<4x8xbf16>\n^bb1:\n  func.return %y"
        ),
        ":7:3: function @f has 2 blocks",
    ),
    "no-compute-op": (
        "func.func @f(%x: tensor<4xbf16>) -> tensor<4xbf16> {\n  func.return %x : tensor<4xbf16>\n}\n",
        ":1:1: function @f has no compute op",
    ),
    "use-before-def": (
        SMALL.replace("%z = nn.relu %y", "%z = nn.relu %q").replace(
            "  func.return", "  %q = nn.relu %z : tensor<4x8xbf16>\n  func.return"
        ),
        ":4:3: error: nn.relu uses %q before it is defined (at ",
    ),
    "self-cycle": (
        SMALL.replace("%z = nn.relu %y", "%z = nn.relu %z"),
        ":4:3: error: nn.relu reads its own result %z",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_IR))
@pytest.mark.parametrize("command", ["check", "compile"])
def test_ir_edge_cases_are_located(case: str, command: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    text, location = BAD_IR[case]
    source = tmp_path / f"{case}.mlir"
    source.write_text(text)
    args = ["--target", "tpu-ring8"] + (["-o", str(tmp_path / "o")] if command == "compile" else [])
    assert main([command, str(source), *args]) == 1
    err = capsys.readouterr().err
    assert f"{case}.mlir{location}" in err, err
    assert not (tmp_path / "o").exists()


def test_a_leading_byte_order_mark_is_not_part_of_the_program() -> None:
    module = parse_module("\ufeff" + SMALL, "bom.mlir")
    assert len(list(module.walk())) == 6
    with pytest.raises(ChiplexError, match=r"bom\.mlir:1:\d+: error"):
        parse_module("\ufeff\ufeff" + SMALL, "bom.mlir")


# -- found by the fuzzer ---------------------------------------------------------------------------------
def test_fuzz_finds_a_step_type_that_is_a_list(tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert main(["compile", str(MLP), "-o", str(out)]) == 0
    data = json.loads((out / "schedule.json").read_text())
    data["chips"][0]["steps"][0]["type"] = ["compute"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ChiplexError, match=r"chips\[0\]\.steps\[0\]\.type: expected one of"):
        load_schedule(bad)


def test_fuzz_finds_a_file_name_too_long(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    name = str(tmp_path / ("x" * 300 + ".json"))
    assert main(["simulate", name, "--target", "tpu-ring8"]) == 1
    err = capsys.readouterr().err
    assert "File name too long" in err and "internal error" not in err


def test_a_failing_torch_export_prints_no_logged_traceback(tmp_path: Path) -> None:
    # torch.export logs a traceback through its own logging handler before raising; the user sees
    # only chiplex's one-line error.
    factory = tmp_path / "factory.py"
    factory.write_text("import torch\ndef make():\n    return torch.nn.Linear(8, 8)\n")
    proc = run_cli(
        "import-torch",
        f"{factory}:make",
        "--input-shape",
        "2x3",
        "-o",
        str(tmp_path / "m.mlir"),
        timeout=300,
    )
    assert proc.returncode == 1 and "torch.export could not capture Linear" in proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    # torch's message names neither the inputs nor a line of the user's code; torch's own
    # frames are not the user's, so no line is named.
    assert "; example inputs: 2x3 float32" in proc.stderr and "raised at" not in proc.stderr


def test_an_error_inside_forward_names_the_users_line_and_the_inputs(tmp_path: Path) -> None:
    # One --dtype applies to every input: the image got int64 too, and torch's message alone
    # ("Input type (long int) and bias type (float) should be the same") says neither where
    # nor with what.
    factory = tmp_path / "towers.py"
    factory.write_text(
        "import torch\n\n"
        "class Towers(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.emb = torch.nn.Embedding(10, 4)\n"
        "        self.conv = torch.nn.Conv2d(3, 4, 3)\n\n"
        "    def forward(self, ids, image):\n"
        "        text = self.emb(ids).sum(1)\n"
        "        picture = self.conv(image).mean((2, 3))\n"
        "        return text + picture\n\n"
        "def make():\n"
        "    return Towers()\n"
    )
    proc = run_cli(
        "import-torch",
        f"{factory}:make",
        "--input-shape",
        "2x5",
        "--input-shape",
        "2x3x8x8",
        "--dtype",
        "int64",
        "-o",
        str(tmp_path / "m.mlir"),
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "could not capture Towers: RuntimeError: " in lines[0]
    assert (
        f"; raised at {factory}:11 in forward: picture = self.conv(image).mean((2, 3))" in lines[0]
    )
    assert lines[0].endswith("; example inputs: 2x5 int64, 2x3x8x8 int64")


def test_a_branch_on_a_tensor_value_is_one_located_line_not_torchs_partial_graph(
    tmp_path: Path,
) -> None:
    # torch.export prints its partial graph to stderr and logs guesses at the user's code before
    # raising; the user sees one line naming the branch and what to do instead.
    factory = tmp_path / "branchy.py"
    factory.write_text(
        "import torch\n\n"
        "class Branchy(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        if x.sum() > 0:\n"
        "            return x * 2\n"
        "        return x\n\n"
        "def make():\n"
        "    return Branchy()\n"
    )
    out = tmp_path / "m.mlir"
    proc = run_cli("import-torch", f"{factory}:make", "--input-shape", "2x3", "-o", str(out))
    assert proc.returncode == 1 and not out.exists()
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("chiplex: error: torch.export could not capture Branchy: ")
    assert f"tracing stopped at {factory}:5 in forward: if x.sum() > 0:" in lines[0]
    assert "torch.where" in lines[0]
