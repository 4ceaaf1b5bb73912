"""Pass options as users type them in a pipeline string: sizes with units, and errors that name
the pass and the option (`chiplex.passes.options`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chiplex.compile import parse_pipeline
from chiplex.errors import ChiplexError
from chiplex.opt import main as opt_main
from chiplex.targets.schema import MAX_BYTES, Size

ROOT = Path(__file__).parents[1]
MLP = ROOT / "examples" / "models" / "mlp.mlir"
LAYER = ROOT / "examples" / "models" / "bert_layer.mlir"

PLUGIN = """\
from __future__ import annotations

from dataclasses import dataclass

from xdsl.passes import ModulePass

from typing import Literal

from chiplex.passes.options import ByteSize


@dataclass(frozen=True)
class Tune(ModulePass):
    name = "tune"
    factor: int = 2
    scale: float = 1.0
    verbose: bool = False
    note: str = "hot"
    limit: ByteSize | None = None
    mode: Literal["fast", "exact"] = "fast"

    def apply(self, ctx, op) -> None:
        print(f"factor={self.factor!r} scale={self.scale!r} verbose={self.verbose!r} "
              f"note={self.note!r} limit={self.limit!r} mode={self.mode!r}")
"""


def test_byte_size_options_take_the_units_target_files_take() -> None:
    passes = parse_pipeline(
        'split-rows{max_bytes="13 MiB" min_bytes=1KB},shard-params{max_bytes="1.5 GiB"},'
        "tensor-parallel{max_bytes=512KiB min_bytes=64},host-embeddings{max_bytes=13631488}"
    ).passes
    split_rows, shard_params, tensor_parallel, host_embeddings = passes
    assert (split_rows.max_bytes, split_rows.min_bytes) == (13 * 2**20, 1000)
    assert shard_params.max_bytes == 3 * 2**29
    assert (tensor_parallel.max_bytes, tensor_parallel.min_bytes) == (512 * 1024, 64)
    assert host_embeddings.max_bytes == 13631488
    assert parse_pipeline("split-rows{max_bytes}").passes[0].max_bytes is None


def test_a_size_option_lowers_as_its_byte_count(tmp_path: Path) -> None:
    with_unit, in_bytes = tmp_path / "unit.mlir", tmp_path / "bytes.mlir"
    assert (
        opt_main([str(LAYER), "-p", 'split-rows{max_bytes="256 KiB"}', "-o", str(with_unit)]) == 0
    )
    assert opt_main([str(LAYER), "-p", "split-rows{max_bytes=262144}", "-o", str(in_bytes)]) == 0
    assert with_unit.read_text() == in_bytes.read_text()
    assert with_unit.read_text() != LAYER.read_text()


@pytest.mark.parametrize("value", ["13Mb", '"13 mib"', "1e6", "-5", '"0.5 B"', "true"])
def test_a_bad_size_is_refused_in_the_target_files_words(value: str) -> None:
    with pytest.raises(ChiplexError) as info:
        parse_pipeline(f"split-rows{{max_bytes={value}}}")
    # The same wording as a bad size in a target TOML (`chip.sram_bytes: expected ..., got ...`).
    errors: list[str] = []
    Size(min=0, max=MAX_BYTES, unit="bytes").check("13 Mb", "chip.sram_bytes", errors)
    expected = errors[0].removeprefix("chip.sram_bytes: ").rsplit(", got ", 1)[0]
    assert f"split-rows{{max_bytes}}: {expected}, got " in str(info.value)
    assert "or a size like '13 MiB' (units: B, kB, KB, MB, GB, TB, KiB, MiB, GiB, TiB)" in expected


def test_a_size_with_a_decimal_point_unquoted_gets_a_hint(capsys) -> None:  # type: ignore[no-untyped-def]
    assert opt_main([str(MLP), "-p", "split-rows{max_bytes=1.5GiB}"]) == 1
    assert 'quote a size with a decimal point: max_bytes="1.5 GiB"' in capsys.readouterr().err
    # The hint names the option and the value the user wrote.
    assert opt_main([str(MLP), "-p", "split-rows{min_bytes=0.5MiB}"]) == 1
    assert 'quote a size with a decimal point: min_bytes="0.5 MiB"' in capsys.readouterr().err


def test_a_plugins_options_convert_and_its_size_option_takes_units(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    plugin = tmp_path / "tune.py"
    plugin.write_text(PLUGIN)
    spec = 'tune{factor=3 scale=2 verbose=true note="3" limit=2KiB mode=exact}'
    assert opt_main([str(MLP), "--plugin", str(plugin), "-p", "tune{scale=1e-3}"]) == 0
    assert "scale=0.001 " in capsys.readouterr().out  # xDSL's lexer reads 1e-3 as a name
    assert opt_main([str(MLP), "--plugin", str(plugin), "-p", spec, "-o", str(tmp_path / "o")]) == 0
    # An int for a float option is a float (xDSL refuses `scale=2`).
    assert (
        "factor=3 scale=2.0 verbose=True note='3' limit=2048 mode='exact'"
        in capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            "factr=3",
            "tune has no option 'factr' (did you mean 'factor'?); its options: factor, "
            "scale, verbose, note, limit, mode",
        ),
        ("factor=abc", "tune{factor}: expected a whole number, got 'abc'"),
        ("factor=1.5", "tune{factor}: expected a whole number, got 1.5"),
        ("factor=true", "tune{factor}: expected a whole number, got true"),
        ("factor", "tune{factor}: expected a value (tune{factor=...})"),
        ("factor=1,2", "tune{factor}: expected a whole number, got 2 values (1,2)"),
        ("scale=abc", "tune{scale}: expected a number, got 'abc'"),
        ("verbose=1", "tune{verbose}: expected true or false, got 1 (write true or false)"),
        ("note=3", 'tune{note}: expected a string, got 3 (quote it: note="3")'),
        ("limit=3Mb", "tune{limit}: expected a whole number >= 0"),
        ("mode=slow", "tune{mode}: expected one of 'fast', 'exact', got 'slow'"),
    ],
)
def test_a_bad_option_names_the_pass_and_the_option(
    tmp_path: Path, capsys, options: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    plugin = tmp_path / "tune.py"
    plugin.write_text(PLUGIN)
    assert opt_main([str(MLP), "--plugin", str(plugin), "-p", f"tune{{{options}}}"]) == 1
    err = capsys.readouterr().err
    assert f"chiplex-opt: error: bad pipeline 'tune{{{options}}}': {message}" in err
    assert "Traceback" not in err


def test_compile_reports_a_bad_option_of_a_chiplex_pass(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from chiplex.cli import main

    pipeline = "annotate-costs{target=tpu-ring8},place{strategy=dp sed=1},legalize-placement"
    assert main(["compile", str(MLP), "--pipeline", pipeline, "-o", str(tmp_path / "o")]) == 1
    assert "place has no option 'sed' (did you mean 'seed'?)" in capsys.readouterr().err


def test_list_passes_spells_defaults_as_a_pipeline_does(capsys) -> None:  # type: ignore[no-untyped-def]
    assert opt_main(["--list-passes"]) == 0
    assert "legalize-placement{repair=false " in capsys.readouterr().out
    assert opt_main([str(MLP), "-p", "legalize-placement{repair=False}"]) == 1
    assert "expected true or false, got 'False' (write true or false)" in capsys.readouterr().err


def test_a_required_option_left_out_is_named_once(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    plugin = tmp_path / "needs.py"
    plugin.write_text(
        "from dataclasses import dataclass\nfrom xdsl.passes import ModulePass\n\n"
        "@dataclass(frozen=True)\nclass ScaleBy(ModulePass):\n    name = 'scale-by'\n"
        "    factor: int\n\n    def apply(self, ctx, op) -> None:\n        pass\n"
    )
    assert opt_main([str(MLP), "--plugin", str(plugin), "-p", "scale-by"]) == 1
    assert "bad pipeline 'scale-by': scale-by needs option factor: scale-by{factor=...}" in (
        capsys.readouterr().err
    )
    assert opt_main([str(MLP), "--plugin", str(plugin), "-p", "scale-by{factor=1}"]) == 0
