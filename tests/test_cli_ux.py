"""The command line's contract: distinct documented exit codes, helpful --help, readable tables."""

from __future__ import annotations

import argparse
import contextlib
import re
import time
from pathlib import Path

import pytest

from chiplex import cli
from chiplex.cli import main
from chiplex.commands import _limits as limits
from chiplex.commands._limits import time_limit
from chiplex.errors import (
    EXIT_CODES_HELP,
    EXIT_ERROR,
    EXIT_INTERNAL,
    EXIT_UNDECIDED,
    EXIT_USAGE,
    ChiplexTimeout,
)

ROOT = Path(__file__).parents[1]
MLP = ROOT / "examples" / "models" / "mlp.mlir"


def test_exit_codes_are_distinct_and_documented() -> None:
    codes = [EXIT_ERROR, EXIT_USAGE, EXIT_UNDECIDED, EXIT_INTERNAL]
    assert len(set(codes)) == len(codes) and 0 not in codes
    for code in codes:
        assert f"{code} " in EXIT_CODES_HELP
    readme = (ROOT / "README.md").read_text()
    assert EXIT_CODES_HELP.removeprefix("exit codes: ") in readme


def _commands() -> list[str]:
    (subparsers,) = [
        action
        for action in cli.build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    return sorted(subparsers.choices)


@pytest.mark.parametrize("command", _commands())
def test_every_command_help_prints_the_exit_codes(command: str, capsys) -> None:  # type: ignore[no-untyped-def]
    """The README promises the exit codes in every --help."""
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert EXIT_CODES_HELP in " ".join(capsys.readouterr().out.split())


def test_usage_errors_exit_2(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as info:
        main(["compile", str(MLP), "--microbatches", "zero"])
    assert info.value.code == EXIT_USAGE
    assert "expected a whole number" in capsys.readouterr().err


def test_time_limit_exits_3(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(["compile", str(MLP), "-o", str(tmp_path / "o"), "--time-limit", "0.001"])
    assert code == EXIT_UNDECIDED
    assert "did not finish within --time-limit 0.001 s" in capsys.readouterr().err
    assert not (tmp_path / "o" / "schedule.json").exists()


def test_a_time_limit_lost_in_a_finalizer_comes_again() -> None:
    # Python prints and drops an exception raised inside __del__; the limit must not be lost with it.
    started = time.perf_counter()
    with pytest.raises(ChiplexTimeout), time_limit(0.01, "work"):
        with contextlib.suppress(ChiplexTimeout):  # lost, as in a finalizer
            time.sleep(5)
        time.sleep(5)
    assert time.perf_counter() - started < 4


def test_a_compile_whose_interruptions_are_all_lost_writes_nothing(
    tmp_path: Path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    # No alarm ever arrives: the deadline's check before writing still stops a late compile.
    monkeypatch.setattr(limits.signal, "setitimer", lambda *args: None)
    code = main(["compile", str(MLP), "-o", str(tmp_path / "o"), "--time-limit", "0.001"])
    assert code == EXIT_UNDECIDED
    assert "did not finish within --time-limit 0.001 s" in capsys.readouterr().err
    assert not (tmp_path / "o" / "schedule.json").exists()


def test_a_bug_is_reported_in_one_line_with_exit_4(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    parser = cli.build_parser()

    def broken(args: argparse.Namespace) -> int:
        raise ZeroDivisionError("oops")

    real_parse = parser.parse_args
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(
        parser,
        "parse_args",
        lambda argv: argparse.Namespace(**{**vars(real_parse(argv)), "handler": broken}),
    )
    assert main(["check", str(MLP)]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError: oops" in err and "Traceback" not in err
    monkeypatch.setenv("CHIPLEX_TRACEBACK", "1")
    assert main(["check", str(MLP)]) == EXIT_INTERNAL
    assert "Traceback" in capsys.readouterr().err


def test_compile_help_has_a_description_defaults_examples_and_a_time_limit(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit):
        main(["compile", "--help"])
    text = capsys.readouterr().out
    for expected in (
        "placed.mlir",
        "schedule.json",
        "(default: 64)",
        "(default: dp)",
        "--time-limit S",
        "examples:",
        "chiplex compile examples/models/bert_base.mlir",
        "exit codes:",
    ):
        assert expected in text, expected


def test_many_chips_get_a_summary_table_with_sram_and_dram(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["compile", str(MLP), "--target", "simba-6x6", "-o", str(tmp_path / "a")]) == 0
    summary = capsys.readouterr().out
    assert "SRAM MiB" in summary and "DRAM MiB" in summary and "fullest chips" in summary
    rows = [line for line in summary.splitlines() if re.match(r"^\s+\d+\s+\d+\s", line)]
    assert 0 < len(rows) <= 8
    args = [
        "compile",
        str(MLP),
        "--target",
        "simba-6x6",
        "-o",
        str(tmp_path / "b"),
        "--table",
        "full",
    ]
    assert main(args) == 0
    full = capsys.readouterr().out
    rows = [line for line in full.splitlines() if re.match(r"^\s+\d+\s+\d+\s", line)]
    assert len(rows) == 36


def test_chiplex_alone_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    # Not argparse's "the following arguments are required: COMMAND", which names none of them.
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "required" not in err
    assert all(f"    {command} " in err for command in ("check", "compile", "search", "simulate"))
