"""Every documented example runs as written: each fenced `sh` and `python` block of README.md and
docs/*.md.

A fence may carry tags after the language: ```` ```sh norun ```` (never run: a synopsis, or minutes of
work such as `make test` or a benchmark) and ```` ```python slow ```` (run with `pytest -m slow` only).
Shell blocks run with bash (`set -e`) in a scratch directory holding only `examples/` and the files
the README's ```` ```sh setup ```` block makes (`model.mlir`, `my_mcm.toml`, `my_pass.py`,
`mypkg/models.py`: a reader's own files), with `chiplex` and `chiplex-opt` on the PATH; the
`. .venv/bin/activate` line is skipped (the test already runs inside the environment). A
```` ```console ```` block is a transcript: each `$ command` runs there too, and the lines the doc shows
after it must appear in its output (stdout and stderr), in order; `...` in a shown line stands for any
text, and wall-clock seconds (`0.1 s`) match any number. An ```` ```mlir ```` block must parse and
verify. A `requires:MODULE` tag skips a block when an optional extra's module is not installed.
The python blocks of one file run in order in one namespace that provides the names the docs use
for a user's objects (`graph`, `target`, `candidate`, `placement`, `schedule`, `my_placer`,
`torch_module`, `example_input`); every `test_*` function a block defines is called.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(sh|python|console|mlir)([^\n]*)\n(.*?)^```$", re.M | re.S)


def blocks(language: str) -> list[tuple[Path, int, set[str], str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for match in FENCE.finditer(text):
            if match.group(1) == language:
                line = text.count("\n", 0, match.start()) + 1
                found.append((doc, line, set(match.group(2).split()), match.group(3)))
    return found


def _params(language: str) -> list:  # type: ignore[type-arg]
    params = []
    for doc, line, tags, code in blocks(language):
        marks = []
        if "norun" in tags:
            marks.append(pytest.mark.skip(reason="marked norun in the docs"))
        if "slow" in tags:
            marks.append(pytest.mark.slow)
        for module in (
            tag.removeprefix("requires:") for tag in tags if tag.startswith("requires:")
        ):
            missing = importlib.util.find_spec(module) is None
            marks.append(pytest.mark.skipif(missing, reason=f"needs {module} (an optional extra)"))
        params.append(pytest.param(doc, line, code, marks=marks, id=f"{doc.name}:{line}"))
    return params


def _shell_env(work: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{work / '.bin'}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(work)]),
    }


def _run_shell(
    code: str, work: Path, *, merge_stderr: bool = False
) -> subprocess.CompletedProcess[str]:
    script = "\n".join(
        text for text in code.splitlines() if not text.strip().startswith(". .venv/bin/activate")
    )
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=work,
        env=_shell_env(work),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a reader of the docs has: the repository's `examples/`, `chiplex` on the PATH, and the
    files the README's `setup` block tells them to make (nothing else, so no doc can assume a file
    the reader was never told to write)."""
    work = tmp_path_factory.mktemp("user")
    (work / "examples").symlink_to(ROOT / "examples")
    bin_dir = work / ".bin"
    bin_dir.mkdir()
    for name, module in (("chiplex", "chiplex.cli"), ("chiplex-opt", "chiplex.opt")):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m {module} "$@"\n')
        script.chmod(0o755)
    setup = [(doc, line, code) for doc, line, tags, code in blocks("sh") if "setup" in tags]
    assert setup, "the README's setup block (```sh setup) makes the files the examples use"
    for doc, line, code in setup:
        proc = _run_shell(code, work)
        assert proc.returncode == 0, f"{doc.name}:{line}: setup failed\n{proc.stderr[-3000:]}"
    return work


@pytest.mark.parametrize(("doc", "line", "code"), _params("sh"))
def test_shell_example_runs(
    doc: Path, line: int, code: str, user_dir: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    subprocess.run(["cp", "-a", f"{user_dir}/.", str(work)], check=True)
    proc = _run_shell(code, work)
    assert proc.returncode == 0, (
        f"{doc.name}:{line}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    assert "Traceback" not in proc.stderr


def transcript(code: str) -> list[tuple[str, list[str]]]:
    """The `$ command` lines of a console block (a line ending in `\\` continues on the next), each
    with the output lines the doc shows after it."""
    steps: list[tuple[str, list[str]]] = []
    for text in code.splitlines():
        if text.startswith("$ "):
            steps.append((text[2:], []))
        elif steps and steps[-1][0].endswith("\\") and not steps[-1][1]:
            steps[-1] = (f"{steps[-1][0]}\n{text}", [])
        elif steps and text.strip():
            steps[-1][1].append(text)
    return steps


SECONDS = re.compile(r"\b\d[\d,]*(?:\.\d+)? s\b")  # wall times differ from run to run


def _line_pattern(shown: str) -> re.Pattern[str]:
    """A shown output line as a pattern: `...` stands for any text, wall times for any time."""
    parts = [re.escape(SECONDS.sub("<t> s", part)) for part in shown.rstrip().split("...")]
    return re.compile(".*".join(parts))


def unmatched_output(shown: list[str], output: str) -> str | None:
    """The first shown line that the real output lacks (in order), or None when all are there."""
    actual = [SECONDS.sub("<t> s", line.rstrip()) for line in output.splitlines()]
    position = 0
    for line in shown:
        pattern = _line_pattern(line)
        while position < len(actual) and not pattern.fullmatch(actual[position]):
            position += 1
        if position == len(actual):
            return line
        position += 1
    return None


def test_transcripts_compare_line_by_line() -> None:
    shown = ["a 1.5 s", "  b ... c", "d"]
    assert unmatched_output(shown, "x\na 0.25 s\n  b anything c\ny\nd\n") is None
    assert unmatched_output(shown, "a 1.5 s\nd\n  b x c\n") == "d"  # order matters
    assert unmatched_output(["2,284.2 samples/s"], "2,284.3 samples/s") == "2,284.2 samples/s"


@pytest.mark.parametrize(("doc", "line", "code"), _params("console"))
def test_console_transcript_matches(
    doc: Path, line: int, code: str, user_dir: Path, tmp_path: Path
) -> None:
    """A ```console block shows commands (`$ ...`) and what they print: each command runs in the
    reader's directory and must print the lines shown, in order (`...` elides text)."""
    work = tmp_path / "work"
    subprocess.run(["cp", "-a", f"{user_dir}/.", str(work)], check=True)
    steps = transcript(code)
    assert steps, f"{doc.name}:{line}: a console block without a `$ command`"
    for command, shown in steps:
        proc = _run_shell(f"{command}\n", work, merge_stderr=True)
        assert "Traceback" not in proc.stdout, f"{doc.name}:{line}: $ {command}\n{proc.stdout}"
        missing = unmatched_output(shown, proc.stdout)
        assert missing is None, (
            f"{doc.name}:{line}: $ {command}\nthe doc shows\n{missing}\n"
            f"but it printed (exit {proc.returncode}):\n{proc.stdout[-4000:]}"
        )


def _user_objects() -> dict[str, object]:
    import numpy as np
    import torch

    from chiplex.targets.schedule import build_schedule
    from chiplex.targets.solver import optimize
    from chiplex.testing import noisy_placement, target_for, transformer_graph

    graph = transformer_graph(28)
    target = target_for(graph, 4)
    legal = optimize(graph, target, time_limit=5).placement
    return {
        "np": np,
        "graph": graph,
        "target": target,
        "candidate": noisy_placement(legal, target.num_chips, seed=1),
        "placement": legal,
        "schedule": build_schedule(graph, target, legal),
        "my_placer": lambda g, t: optimize(g, t, time_limit=2).placement,
        "torch_module": torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU()),
        "example_input": torch.randn(2, 8),
    }


def _python_params() -> list:  # type: ignore[type-arg]
    """One case per doc: its python blocks in order (a `norun` block is left out, `slow` marks all)."""
    by_doc: dict[Path, list[tuple[int, set[str], str]]] = {}
    for doc, line, tags, code in blocks("python"):
        by_doc.setdefault(doc, []).append((line, tags, code))
    params = []
    for doc, items in by_doc.items():
        runnable = [(line, code) for line, tags, code in items if "norun" not in tags]
        marks = [pytest.mark.slow] if any("slow" in tags for _, tags, _ in items) else []
        if runnable:
            params.append(pytest.param(doc, runnable, marks=marks, id=doc.name))
    return params


@pytest.mark.parametrize(("doc", "runnable"), _python_params())
def test_python_examples_run(
    doc: Path, runnable: list[tuple[int, str]], tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from chiplex.passes import PASSES
    from chiplex.passes.strategies import STRATEGIES

    (tmp_path / "examples").symlink_to(ROOT / "examples")  # the docs' relative paths
    monkeypatch.chdir(tmp_path)
    # The examples register passes and strategies: leave the registries as they were.
    saved = [(registry, dict(registry)) for registry in (PASSES, STRATEGIES)]
    try:
        _run_blocks(doc, runnable)
    finally:
        for registry, before in saved:
            registry.clear()
            registry.update(before)


def _run_blocks(doc: Path, runnable: list[tuple[int, str]]) -> None:
    namespace = {"__name__": f"doc_{doc.stem}", **_user_objects()}
    for line, code in runnable:
        exec(compile(code, f"{doc}:{line}", "exec"), namespace)  # noqa: S102 - the docs are ours
        for name, value in list(namespace.items()):
            if name.startswith("test_") and callable(value):
                value()
                del namespace[name]


def test_every_block_is_runnable_or_says_why_not() -> None:
    every = blocks("sh") + blocks("python") + blocks("console")
    tagged = [b for b in every if {"norun", "slow"} & b[2]]
    total = len(every)
    assert len(tagged) <= total // 2, "most documented examples must run in the default test run"


def test_documented_solver_signatures_are_the_real_ones() -> None:
    """docs/placement.md lists the solver API as signatures (a `norun` block): each parameter, its
    default and the keyword-only marker must be those of `chiplex.targets.solver`."""
    import inspect

    from chiplex.targets import solver

    text = (ROOT / "docs" / "placement.md").read_text()
    signature_line = re.compile(r"^(\w+)\((.*)\) -> \w+", re.M)
    documented = {m[1]: m[2] for m in signature_line.finditer(text) if hasattr(solver, m[1])}
    assert {"repair", "optimize", "explain", "check_with_minizinc"} <= set(documented)
    for name, params in documented.items():
        real = []
        for parameter in inspect.signature(getattr(solver, name)).parameters.values():
            if parameter.kind is parameter.KEYWORD_ONLY and "*" not in real:
                real.append("*")
            shown = "" if parameter.default is parameter.empty else f"={parameter.default!r}"
            real.append(parameter.name + shown)
        assert params.split(", ") == real, f"docs/placement.md: {name}({params}) is {real}"


@pytest.mark.parametrize(("doc", "line", "code"), _params("mlir"))
def test_mlir_example_parses_and_verifies(doc: Path, line: int, code: str) -> None:
    from chiplex.ir.parse import parse_module

    parse_module(code, f"{doc.name}:{line}")
