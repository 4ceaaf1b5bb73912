"""The fuzzing engine: generate bad inputs (mutated real files, broken CLI arguments, failing factories),
run chiplex on each, and classify what happened.

A case is a command line plus the files it needs. Running it must end in one of the documented exit
codes (0, 1, 2, 3) with no traceback and no "internal error" (exit 4); must finish within the hang
limit; must leave no file half-written (no `*.tmp` leftovers, every schedule.json it wrote loads, every
.mlir it wrote parses) and must not change a file that was there before unless `--force` was given.

`run_case` runs one case in this process; `Campaign` runs many in a forked worker process that is
killed and replaced when a case exceeds the hang limit (a regex that backtracks forever cannot be
interrupted from Python). `scripts/fuzz.py` and `tests/fuzz/test_fuzz.py` drive it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import json
import math
import multiprocessing
import os
import random
import re
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples" / "models"
PRESETS = ROOT / "src" / "chiplex" / "targets" / "presets"
HANG_SECONDS = 10.0
OK_CODES = (0, 1, 2, 3)

SMALL_IR = """\
func.func @f(%x: tensor<4x8xbf16>) -> tensor<4x8xbf16> {
  %w = nn.param "w" : tensor<8x8xi8>
  %y = nn.matmul %x, %w : tensor<4x8xbf16>, tensor<8x8xi8> -> tensor<4x8xbf16>
  %s = nn.softmax %y axis = -1 : tensor<4x8xbf16>
  %z = nn.add %s, %x : tensor<4x8xbf16>, tensor<4x8xbf16> -> tensor<4x8xbf16>
  func.return %z : tensor<4x8xbf16>
}
"""


@dataclasses.dataclass
class Case:
    family: str
    argv: list[str]
    """Arguments; `{dir}` is replaced by the case's scratch directory."""
    files: dict[str, bytes]
    """Files (relative to the scratch directory) written before the run."""
    program: str = "chiplex"
    """`chiplex` or `chiplex-opt`."""
    fault: str = ""
    """`enospc`: every fsync fails with 'No space left on device' (a full disk)."""

    def describe(self) -> str:
        sizes = ", ".join(f"{name} ({len(data)} B)" for name, data in self.files.items())
        return f"[{self.family}] {self.program} {' '.join(self.argv)}  files: {sizes or '-'}"


@dataclasses.dataclass
class Outcome:
    case: Case
    code: int | None
    seconds: float
    stderr: str
    problems: list[str]

    @property
    def kind(self) -> str:
        if self.code is None:
            return "hang"
        if any(p.startswith("traceback") for p in self.problems):
            return "traceback"
        if any(p.startswith("clobbered") for p in self.problems):
            return "clobbered"
        if self.problems:
            return "bad-exit"
        return "ok"


# -- mutators --------------------------------------------------------------------------------------------
INTERESTING_BYTES = [
    b'"',
    b"\\",
    b"\x00",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"}",
    b"{",
    b"<",
    b">",
    b"%",
    b"^bb1:",
    b"#mcm.chip<99999999999999999999>",
    b"tensor<?x4xf32>",
    b"99999999999999999999",
    b"-1",
    b"nan",
    b"inf",
    b"\n",
    b"//",
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    b"\xe2\x80\xae",
]


def mutate_bytes(data: bytes, rng: random.Random, rounds: int | None = None) -> bytes:
    """Byte-level mutations of a real file: flips, deletions, duplications, splices of tokens."""
    buf = bytearray(data)
    for _ in range(rounds or rng.randint(1, 4)):
        if not buf:
            buf.extend(rng.choice(INTERESTING_BYTES))
            continue
        i = rng.randrange(len(buf))
        choice = rng.randrange(7)
        if choice == 0:
            buf[i] = rng.randrange(256)
        elif choice == 1:
            del buf[i : i + rng.randint(1, 64)]
        elif choice == 2:
            j = rng.randrange(len(buf))
            buf[i:i] = buf[j : j + rng.randint(1, 128)]
        elif choice == 3:
            buf[i:i] = rng.choice(INTERESTING_BYTES)
        elif choice == 4:
            del buf[rng.randrange(len(buf)) :]  # truncation
        elif choice == 5:
            digits = [m.start() for m in re.finditer(rb"\d+", bytes(buf))]
            if digits:
                k = rng.choice(digits)
                end = k + len(re.match(rb"\d+", bytes(buf[k:])).group())  # type: ignore[union-attr]
                buf[k:end] = str(rng.choice([0, 1, 7, 2**31, 2**63, 10**30])).encode()
        else:
            quote = bytes(buf).find(b'"', i)
            if quote >= 0:
                del buf[quote]  # an unterminated string literal
    return bytes(buf)


INTERESTING_VALUES: list[object] = [
    0,
    -1,
    1,
    2**63,
    10**30,
    1e308,
    float("nan"),
    float("inf"),
    -float("inf"),
    0.5,
    "8",
    "",
    "ring",
    True,
    [],
    [6],
    [0, 0],
    [[0, 1]],
    {},
    {"ops": 5},
    None,
]


def _leaves(node: object, path: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        out = [path] if path else []
        for key, value in node.items():
            out += _leaves(value, (*path, key))
        return out
    if isinstance(node, list):
        out = [path] if path else []
        for i, value in enumerate(node):
            out += _leaves(value, (*path, i))
        return out
    return [path]


def mutate_tree(data: object, rng: random.Random, rounds: int | None = None) -> object:
    """Structural mutations of parsed TOML/JSON: replace, delete or retype values."""
    data = json.loads(json.dumps(data))
    for _ in range(rounds or rng.randint(1, 3)):
        paths = _leaves(data)
        if not paths:
            break
        path = rng.choice(paths)
        parent = data
        for key in path[:-1]:
            parent = parent[key]  # type: ignore[index]
        key = path[-1]
        action = rng.randrange(4)
        if action == 0 and isinstance(parent, dict):
            del parent[key]
        elif action == 1:
            value = parent[key]  # type: ignore[index]
            if isinstance(value, int | float) and not isinstance(value, bool):
                parent[key] = rng.choice([value * 1e12, -value, value + 0.5, 0])  # type: ignore[index]
            else:
                parent[key] = rng.choice(INTERESTING_VALUES)  # type: ignore[index]
        elif action == 2 and isinstance(parent, dict):
            parent[key + "x" if isinstance(key, str) else key] = rng.choice(INTERESTING_VALUES)
        else:
            parent[key] = rng.choice(INTERESTING_VALUES)  # type: ignore[index]
    return data


def to_toml(data: object) -> str:
    """A minimal TOML writer for mutated targets (NaN/inf included, as TOML allows)."""

    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            if math.isnan(v):
                return "nan"
            if math.isinf(v):
                return "inf" if v > 0 else "-inf"
            return repr(v)
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + " }"
        return '"None"'

    if not isinstance(data, dict):
        return f"value = {value(data)}\n"
    lines = [f"{json.dumps(k)} = {value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for key, table in data.items():
        if isinstance(table, dict):
            lines.append(f"[{json.dumps(key)}]")
            lines += [f"{json.dumps(k)} = {value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


# -- case generators ---------------------------------------------------------------------------------------
def _seed_irs() -> list[bytes]:
    return [SMALL_IR.encode(), (EXAMPLES / "mlp.mlir").read_bytes()]


def ir_case(rng: random.Random) -> Case:
    text = mutate_bytes(rng.choice(_seed_irs()), rng)
    program, argv = rng.choice(
        [
            ("chiplex", ["check", "{dir}/in.mlir", "--target", "tpu-ring8", "--time-limit", "5"]),
            ("chiplex", ["compile", "{dir}/in.mlir", "-o", "{dir}/out", "--time-limit", "8"]),
            (
                "chiplex-opt",
                [
                    "{dir}/in.mlir",
                    "-p",
                    "annotate-costs{target=tpu-ring8}",
                    "-o",
                    "{dir}/keep.mlir",
                    "--force",
                ],
            ),
        ]
    )
    files = {"in.mlir": text, "keep.mlir": b"precious\n"}
    return Case("ir", argv, files, program)


def toml_case(rng: random.Random) -> Case:
    import tomllib

    preset = rng.choice(sorted(PRESETS.glob("*.toml")))
    if rng.random() < 0.5:
        text = to_toml(mutate_tree(tomllib.loads(preset.read_text()), rng)).encode()
    else:
        text = mutate_bytes(preset.read_bytes(), rng)
    argv = rng.choice(
        [
            [
                "compile",
                "{dir}/in.mlir",
                "--target",
                "{dir}/my target.toml",
                "-o",
                "{dir}/out",
                "--time-limit",
                "8",
            ],
            ["check", "{dir}/in.mlir", "--target", "{dir}/my target.toml", "--time-limit", "5"],
        ]
    )
    return Case("toml", argv, {"in.mlir": SMALL_IR.encode(), "my target.toml": text})


_SCHEDULE_CACHE: dict[str, bytes] = {}


def base_schedule() -> bytes:
    if "mlp" not in _SCHEDULE_CACHE:
        from chiplex.compile import compile_module
        from chiplex.ir.parse import load_module

        result = compile_module(load_module(EXAMPLES / "mlp.mlir"), "tpu-ring8")
        assert result.schedule is not None
        _SCHEDULE_CACHE["mlp"] = json.dumps(result.schedule.to_json(), indent=1).encode()
    return _SCHEDULE_CACHE["mlp"]


def schedule_case(rng: random.Random) -> Case:
    base = base_schedule()
    if rng.random() < 0.6:
        text = json.dumps(mutate_tree(json.loads(base), rng)).encode()
    else:
        text = mutate_bytes(base, rng)
    argv = ["simulate", "{dir}/schedule.json"]
    if rng.random() < 0.5:  # else the target the schedule carries (target_spec), mutated too
        argv += ["--target", "tpu-ring8"]
    if rng.random() < 0.3:
        argv += ["--microbatches", str(rng.choice([1, 2, 64, 10**6, 10**12]))]
    if rng.random() < 0.3:
        argv += [
            "--trace",
            rng.choice(["{dir}/keep.json", "{dir}/t.json", "{dir}", "{dir}/keep.json/x"]),
        ]
    return Case("schedule", argv, {"schedule.json": text, "keep.json": b"precious\n"})


BAD_PATHS = [
    "{dir}/missing.mlir",
    "{dir}",
    "{dir}/keep.mlir/below",
    "{dir}/with space/ü.mlir",
    "",
    "-",
    "{dir}/" + "x" * 300 + ".mlir",
    "/proc/self/nonexistent/x",
    "/dev/null",
]
OPTION_VALUES = [
    "0",
    "-1",
    "1",
    "1e9",
    "nan",
    "abc",
    "",
    "99999999999999999999",
    "0.0001",
    "tpu-ring8",
]


def cli_case(rng: random.Random) -> Case:
    command = rng.choice(["compile", "check", "simulate", "search", "import-torch", "frobnicate"])
    argv = [command, rng.choice([*BAD_PATHS, "{dir}/in.mlir", "{dir}/in.mlir"])]
    options = {
        "compile": [
            "--target",
            "-o",
            "--pipeline",
            "--strategy",
            "--microbatches",
            "--time-limit",
            "--table",
            "--plugin",
            "--force",
            "--simulate",
        ],
        "check": [
            "--target",
            "--time-limit",
            "--minizinc",
            "--ignore-placement",
            "--placement-from-ir",
        ],
        "simulate": [
            "--target",
            "--microbatches",
            "--packet-bytes",
            "--buffers",
            "--trace",
            "--force",
        ],
        "search": ["--target", "--budget", "--strategy", "--seed", "-o", "--force"],
        "import-torch": ["--input-shape", "--dtype", "--weight-dtype", "-o"],
        "frobnicate": ["--x"],
    }[command]
    for _ in range(rng.randint(0, 4)):
        option = rng.choice(options)
        argv.append(option)
        if option not in (
            "--force",
            "--simulate",
            "--minizinc",
            "--ignore-placement",
            "--placement-from-ir",
        ):
            argv.append(
                rng.choice(
                    [
                        *OPTION_VALUES,
                        *BAD_PATHS,
                        "{dir}/keep.mlir",
                        "annotate-costs{target=x.toml}",
                        "place{strategy=nope}",
                    ]
                )
            )
    if command == "search" and "--budget" not in argv:
        argv += ["--budget", "20"]
    if command in ("compile", "check"):
        argv += ["--time-limit", "8"]
    files = {"in.mlir": SMALL_IR.encode(), "keep.mlir": b"precious\n"}
    return Case("cli", argv, files)


FACTORIES = [
    "def make():\n    raise RuntimeError('model zoo offline')\n",
    "def make():\n    return 42\n",
    "def make(hidden):\n    import torch\n    return torch.nn.Linear(hidden, hidden)\n",
    "import torch\ndef make():\n    return torch.nn.Linear(8, 8)\n",
    "import torch\nclass M(torch.nn.Module):\n    def forward(self, x):\n        return x.nonzero()\ndef make():\n    return M()\n",
    "import torch\nclass M(torch.nn.Module):\n    def forward(self, x):\n        if x.sum() > 0:\n            return x\n        return -x\ndef make():\n    return M()\n",
    "syntax error here(\n",
    "import no_such_module_anywhere\ndef make():\n    pass\n",
    "make = None\n",
    "import torch\ndef make():\n    return torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU())\n",
    "import sys\ndef make():\n    sys.exit(3)\n",
]


def importer_case(rng: random.Random) -> Case:
    source = rng.choice(FACTORIES)
    spec = rng.choice(
        [
            "{dir}/factory.py:make",
            "{dir}/factory.py:missing",
            "{dir}/factory.py",
            "{dir}/factory.py:make(8",
            "{dir}/factory.py:make(hidden=8)",
            "nosuchpkg.mod:make",
            "bert_base(layers=-1)",
            "mlp(1, 2, 3, 4, 5)",
        ]
    )
    argv = [
        "import-torch",
        spec,
        "-o",
        rng.choice(["{dir}/out.mlir", "{dir}/keep.mlir", "{dir}/keep.mlir/x.mlir"]),
    ]
    if rng.random() < 0.7:
        argv += ["--input-shape", rng.choice(["2x8", "8", "0x8", "2xfoo", "", "99999999x99999999"])]
    if rng.random() < 0.3:
        argv += ["--dtype", rng.choice(["float32", "int64", "complex128", "nonsense"])]
    return Case("importer", argv, {"factory.py": source.encode(), "keep.mlir": b"precious\n"})


def placement_case(rng: random.Random) -> Case:
    """Hand-edited placements: chips of a placed file changed at random."""
    from chiplex.compile import compile_module
    from chiplex.ir.parse import parse_module

    key = "placed"
    if key not in _SCHEDULE_CACHE:
        _SCHEDULE_CACHE[key] = compile_module(
            parse_module(SMALL_IR), "tpu-ring8"
        ).placed_ir.encode()
    text = _SCHEDULE_CACHE[key].decode()
    text = re.sub(
        r"#mcm\.chip<\d+>",
        lambda m: (
            f"#mcm.chip<{rng.choice([0, 1, 3, 7, 8, 1000, 2**31 - 1])}>"
            if rng.random() < 0.5
            else m.group()
        ),
        text,
    )
    argv = rng.choice(
        [
            ["check", "{dir}/placed.mlir", "--time-limit", "5"],
            [
                "compile",
                "{dir}/placed.mlir",
                "--pipeline",
                "insert-transfers,split-chiplets",
                "-o",
                "{dir}/out",
            ],
            [
                "compile",
                "{dir}/placed.mlir",
                "--pipeline",
                "legalize-placement{repair=true},insert-transfers,split-chiplets",
                "-o",
                "{dir}/out",
                "--time-limit",
                "8",
            ],
        ]
    )
    return Case("placement", argv, {"placed.mlir": text.encode()})


def fault_case(rng: random.Random) -> Case:
    """A full disk while writing outputs over an earlier run's."""
    argv = ["compile", "{dir}/in.mlir", "-o", "{dir}/out", "--force"]
    case = Case("faults", argv, {"in.mlir": SMALL_IR.encode()}, fault="enospc")
    return case


FAMILIES: dict[str, Callable[[random.Random], Case]] = {
    "ir": ir_case,
    "toml": toml_case,
    "schedule": schedule_case,
    "cli": cli_case,
    "importer": importer_case,
    "placement": placement_case,
    "faults": fault_case,
}


# -- running and classifying -------------------------------------------------------------------------------
def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.stat().st_size < 50_000_000
    }


def _call(case: Case) -> tuple[int, str, str]:
    from chiplex.cli import main as chiplex_main
    from chiplex.opt import main as opt_main

    entry = opt_main if case.program == "chiplex-opt" else chiplex_main
    out, err = io.StringIO(), io.StringIO()
    # Libraries that log to the process's stderr directly (torch's logging handlers hold the original
    # stream) are caught at the file-descriptor level.
    with tempfile.TemporaryFile() as raw:
        saved = os.dup(2)
        os.dup2(raw.fileno(), 2)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = entry(case.argv)
                except SystemExit as stop:  # argparse usage errors and --help
                    code = stop.code if isinstance(stop.code, int) else 2
                except BaseException:  # noqa: BLE001 - exactly what the fuzzer looks for
                    err.write("Traceback (escaped main):\n" + traceback.format_exc())
                    code = 4
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        raw.seek(0)
        direct = raw.read().decode("utf-8", "replace")
    return code, out.getvalue(), err.getvalue() + direct


def _half_written(folder: Path, before: dict[str, bytes]) -> list[str]:
    from chiplex.errors import ChiplexError
    from chiplex.ir.parse import parse_module
    from chiplex.targets.schedule import load_schedule

    problems = []
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.name.endswith(".tmp"):
            problems.append(f"clobbered: temporary file left behind: {rel}")
        if not path.is_file() or before.get(rel) == path.read_bytes():
            continue
        try:
            if path.name == "schedule.json":
                load_schedule(path)
            elif path.suffix == ".mlir" and rel.startswith(("out/", "out.mlir")):
                parse_module(path.read_text(), rel)
        except (ChiplexError, UnicodeDecodeError) as err:
            problems.append(f"clobbered: {rel} was written but does not load: {str(err)[:200]}")
    return problems


def run_case(case: Case, folder: Path | None = None) -> Outcome:
    """Run `case` in this process (in a scratch directory) and classify the outcome."""
    with tempfile.TemporaryDirectory(prefix="chiplex-fuzz-") as scratch:
        work = Path(folder or scratch)
        case = dataclasses.replace(case, argv=[a.replace("{dir}", str(work)) for a in case.argv])
        for name, data in case.files.items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_bytes(data)
        if case.fault:
            # An earlier, complete run whose files must survive the failing one.
            with contextlib.chdir(work):
                code, _, err = _call(dataclasses.replace(case, fault=""))
            assert code == 0, err
        before = _snapshot(work)
        started = time.perf_counter()
        # Relative paths among the generated arguments (`-o 0.0001`) must land in the scratch directory,
        # never in the directory the fuzzer was started from.
        with _inject(case.fault), contextlib.chdir(work):
            code, out, err = _call(case)
        seconds = time.perf_counter() - started
        problems = []
        if "Traceback" in err or "internal error" in err:
            lines = err.strip().splitlines()
            first = next((line for line in lines if "internal error" in line), lines[-1])
            problems.append("traceback: " + first[:400])
        if code not in OK_CODES:
            problems.append(f"exit code {code}")
        forced = "--force" in case.argv
        after = _snapshot(work)
        for name, data in before.items():
            if name not in after and not forced:
                problems.append(f"clobbered: {name} was deleted")
            elif name in after and after[name] != data and (not forced or case.fault):
                problems.append(f"clobbered: {name} was changed")
        problems += _half_written(work, before)
        claimed = re.search(r"^wrote (\S+)/ \(([^)]*)\)", out, re.M)
        if claimed:
            for name in claimed.group(2).split(", "):
                if not (
                    work / claimed.group(1) / name
                ).is_file():  # relative to the case's directory
                    problems.append(f"clobbered: claims to have written {name}, which is missing")
        return Outcome(case, code, seconds, err, problems)


@contextlib.contextmanager
def _inject(fault: str):  # type: ignore[no-untyped-def]
    if fault != "enospc":
        yield
        return
    real = os.fsync

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    os.fsync = full  # type: ignore[assignment]
    try:
        yield
    finally:
        os.fsync = real  # type: ignore[assignment]


def generate(count: int, seed: int, families: list[str] | None = None) -> list[Case]:
    rng = random.Random(seed)
    names = families or list(FAMILIES)
    return [FAMILIES[names[i % len(names)]](rng) for i in range(count)]


# -- many cases, with hang detection ---------------------------------------------------------------------
def _worker(conn) -> None:  # type: ignore[no-untyped-def]
    while True:
        case = conn.recv()
        if case is None:
            return
        outcome = run_case(case)
        outcome.case = case
        conn.send(outcome)


_WARM = False


class Campaign:
    """Run cases in a forked worker; a case running past `hang_seconds` is a hang (worker replaced)."""

    def __init__(self, hang_seconds: float = HANG_SECONDS) -> None:
        self.hang_seconds = hang_seconds
        self.context = multiprocessing.get_context("fork")
        self.process = None
        self.conn = None

    def _start(self) -> None:
        # torch's C extension cannot be initialised twice in one process: import it once here, so a
        # time limit firing inside a worker's first `import torch` cannot leave it half-imported; and
        # one tiny export warms torch.export's caches, which every forked worker inherits (the first
        # export in a process takes seconds that are not chiplex's).
        global _WARM
        if not _WARM:
            import torch

            from chiplex.ir.torch_import import import_module

            import_module(torch.nn.Linear(4, 4), (torch.randn(1, 4),))
            _WARM = True

        parent, child = self.context.Pipe()
        # Not a daemon: a case may start worker processes of its own (search --workers).
        self.process = self.context.Process(target=_worker, args=(child,))
        self.process.start()
        self.conn = parent

    def run(self, case: Case) -> Outcome:
        if self.process is None or not self.process.is_alive():
            self._start()
        assert self.conn is not None and self.process is not None
        started = time.perf_counter()
        self.conn.send(case)
        if self.conn.poll(self.hang_seconds):
            try:
                return self.conn.recv()
            except EOFError:  # the worker died (os._exit, a crash in C code)
                self.process = None
                return Outcome(
                    case, 4, time.perf_counter() - started, "", ["traceback: worker died"]
                )
        self.process.kill()
        self.process.join()
        self.process = None
        return Outcome(
            case, None, time.perf_counter() - started, "", [f"hang: over {self.hang_seconds:g} s"]
        )

    def close(self) -> None:
        if self.process is not None and self.process.is_alive():
            assert self.conn is not None
            self.conn.send(None)
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()


def summarize(outcomes: list[Outcome]) -> str:
    kinds = Counter(o.kind for o in outcomes)
    by_family: dict[str, Counter] = {}
    for o in outcomes:
        by_family.setdefault(o.case.family, Counter())[o.kind] += 1
    codes = Counter(o.code for o in outcomes)
    slowest = max(outcomes, key=lambda o: o.seconds, default=None)
    lines = [
        f"{len(outcomes)} cases: {kinds['ok']} ok, {kinds['traceback']} tracebacks, {kinds['hang']} hangs "
        f"(> {HANG_SECONDS:g} s), {kinds['clobbered']} clobbered or half-written files, "
        f"{kinds['bad-exit']} other bad exits",
        "exit codes: " + ", ".join(f"{c}: {n}" for c, n in sorted(codes.items(), key=str)),
        "by family: "
        + "; ".join(
            f"{f} {sum(c.values())} ({', '.join(f'{k} {n}' for k, n in sorted(c.items()))})"
            for f, c in sorted(by_family.items())
        ),
    ]
    if slowest is not None:
        lines.append(f"slowest case: {slowest.seconds:.1f} s: {slowest.case.describe()[:200]}")
    return "\n".join(lines)
