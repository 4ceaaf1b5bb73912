"""Compile time and memory on large models: CPU seconds per phase and peak memory, per model and target.

    nice -n 10 python benchmarks/compile_scale.py                       # the zoo's largest + 2 big imports
    python benchmarks/compile_scale.py --models gpt2_medium --targets simba-6x6 --strategy greedy

Every case runs in a fresh process (so its peak resident memory is its own) and does what
`chiplex compile IN --target T -o DIR --simulate` and then `chiplex check DIR/placed.mlir` do: parse the
IR, run the default pipeline (per pass), print the placed and the final IR, emit and serialise the
schedule, the per-chip summary (its 64-micro-batch simulation included), the `--simulate` report, and
the check of the placed IR. Times are CPU seconds of the process (`time.process_time`), so they hold on a
loaded machine; the load average is printed before and after.

Models: `gpt2_medium` and `bert_large` (the zoo's largest, `examples/models/`), and `gpt2_48L` and
`llama_32L`, built from Hugging Face `transformers` configurations (random weights, no download; the
`bench` extra) and imported with `chiplex import-torch` once into `--cache` (about 25 s of CPU each).
Targets: presets by name, or TOML files (`benchmarks/targets/mesh8x8.toml`: 64 chips).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "models"
MESH64 = str(ROOT / "benchmarks" / "targets" / "mesh8x8.toml")

BIG_MODELS = {
    # name: (factory, input shape), imported by `chiplex import-torch`: a function of this file, or a
    # zoo factory with its sizes (its own example inputs).
    "gpt2_48L": ("gpt2_48", "1x128"),
    "llama_32L": ("llama_32", "1x128"),
    "bert_192L": ("chiplex.models:bert(192, hidden=256, heads=4)", None),
}
DEFAULT_MODELS = ["gpt2_medium", "bert_large", "gpt2_48L", "llama_32L", "bert_192L"]
DEFAULT_TARGETS = ["tpu-ring8", "simba-6x6", MESH64]
PHASES = ["parse", "passes", "place", "print", "emit", "summary", "simulate", "check", "other"]


def gpt2_48(num_layers: int = 48, hidden: int = 768, heads: int = 12):  # type: ignore[no-untyped-def]
    """A 48-layer GPT-2 (GPT-2 XL's depth at GPT-2 small's width), last hidden state out."""
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=num_layers, n_embd=hidden, n_head=heads)
    return _LastHidden(transformers.GPT2Model(config))


def llama_32(num_layers: int = 32, hidden: int = 1024, heads: int = 16):  # type: ignore[no-untyped-def]
    """A 32-layer LLaMA-style decoder (RMSNorm, rotary positions, SwiGLU, grouped-query attention)."""
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        num_hidden_layers=num_layers,
        hidden_size=hidden,
        num_attention_heads=heads,
        num_key_value_heads=heads // 4,
        intermediate_size=hidden * 8 // 3 // 64 * 64,
        vocab_size=32000,
    )
    return _LastHidden(transformers.LlamaModel(config))


def _LastHidden(model):  # type: ignore[no-untyped-def] # noqa: N802 - a class factory
    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.model(ids).last_hidden_state

    return LastHidden()


def model_file(name: str, cache: Path) -> Path:
    if name not in BIG_MODELS:
        return EXAMPLES / f"{name}.mlir"
    path = cache / f"{name}.mlir"
    if not path.exists():
        factory, shape = BIG_MODELS[name]
        cache.mkdir(parents=True, exist_ok=True)
        source = factory if ":" in factory else f"{__file__}:{factory}"
        inputs = [] if shape is None else ["--input-shape", shape, "--dtype", "int64"]
        subprocess.run(
            [sys.executable, "-m", "chiplex.cli", "import-torch", source, *inputs, "-o", str(path)],
            check=True,
        )
    return path


def measure(path: str, target_name: str, strategy: str) -> dict:
    """One case in this process, through the CLI itself (`chiplex compile ... --simulate`, then
    `chiplex check`): CPU seconds per phase, each counted once (a phase inside another is taken out
    of the outer one), hashes of the files written (to compare runs by), peak resident memory."""
    import contextlib
    import hashlib
    import io
    import resource
    import tempfile

    import chiplex.commands.compile as compile_command
    import chiplex.compile as driver
    import chiplex.ir.parse as parse_module
    import chiplex.runtime_sim as runtime_sim
    from chiplex.cli import main as cli
    from chiplex.targets.target import load_target

    cpu: dict[str, float] = defaultdict(float)
    stack = ["other"]
    last = [time.process_time()]

    def switch(phase: str | None) -> None:
        now = time.process_time()
        cpu[stack[-1]] += now - last[0]
        last[0] = now
        if phase is None:
            stack.pop()
        else:
            stack.append(phase)

    def timing(phase, fn):  # type: ignore[no-untyped-def]
        def wrapped(*args, **kwargs):  # type: ignore[no-untyped-def]
            switch(phase)
            try:
                return fn(*args, **kwargs)
            finally:
                switch(None)

        return wrapped

    apply = driver._apply

    def timed_apply(pass_, ctx, module):  # type: ignore[no-untyped-def]
        phase = "place" if pass_.name in ("place", "legalize-placement") else "passes"
        return timing(phase, apply)(pass_, ctx, module)

    driver._apply = timed_apply
    driver.module_text = timing("print", driver.module_text)
    compile_command.module_text = driver.module_text
    driver.emit_schedule = timing("emit", driver.emit_schedule)
    load_module = parse_module.load_module
    parse_module.load_module = timing("parse", load_module)
    compile_command.summary_table = timing("summary", compile_command.summary_table)
    runtime_sim.simulate = timing("simulate", runtime_sim.simulate)
    out = Path(tempfile.mkdtemp(prefix="compile_scale_"))
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()) as err:
        code = cli(
            ["compile", path, "--target", target_name, "--strategy", strategy, "-o", str(out),
             "--force", "--simulate"]
        )  # fmt: skip
        parse_module.load_module = load_module  # check's parse is part of check
        switch("check")
        checked = code or cli(["check", str(out / "placed.mlir"), "--target", target_name])
        switch(None)
    switch("other")
    if code:
        lines = [line.strip() for line in err.getvalue().splitlines() if line.strip()]
        return {
            "error": " ".join(lines[:2])[:90],
            "cpu": dict(cpu),
            "total_cpu": time.process_time(),
        }
    text = stdout.getvalue()
    first = text.splitlines()[0]  # "NAME on TARGET: N ops, ..."
    return {
        "ops": int(first.split(": ")[1].split(" ops")[0]),
        "target": first.split(" on ")[1].split(":")[0],
        "chips": load_target(target_name).num_chips,
        "cpu": dict(cpu),
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "check_exit": checked,
        "files": {
            f.name: hashlib.sha256(f.read_bytes()).hexdigest()[:16] for f in sorted(out.iterdir())
        },
        "throughput": [line for line in text.splitlines() if "throughput" in line],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--targets", nargs="+", default=DEFAULT_TARGETS)
    parser.add_argument("--strategy", default="dp", help="compile's --strategy (default dp)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/chiplex_compile_scale"))
    parser.add_argument("--json", type=Path, help="also write every case (placements included)")
    parser.add_argument(
        "--one", nargs=3, metavar=("PATH", "TARGET", "STRATEGY"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one)))
        return
    with open("/proc/loadavg") as f:
        print(f"load before: {f.read().split()[:3]}; strategy {args.strategy}\n")
    header = [
        "model",
        "ops",
        "target",
        "chips",
        *(f"{p} s" for p in PHASES),
        "total CPU s",
        "peak MiB",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    cases = {}
    for model in args.models:
        path = model_file(model, args.cache)
        for target in args.targets:
            run = subprocess.run(
                [sys.executable, __file__, "--one", str(path), target, args.strategy],
                capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"},
            )  # fmt: skip
            if run.returncode:
                error = (run.stderr.strip().splitlines() or ["?"])[-1][:80]
                print(f"| {model} | | {Path(target).stem} | | failed: {error} |")
                continue
            case = json.loads(run.stdout)
            if "error" in case:
                print(
                    f"| {model} | | {Path(target).stem} | | no placement after "
                    f"{case['total_cpu']:.1f} CPU s: {case['error']} |"
                )
                continue
            cases[f"{model}@{case['target']}"] = case
            phases = [case["cpu"].get(p, 0.0) for p in PHASES]
            print(
                f"| {model} | {case['ops']:,} | {case['target']} | {case['chips']} | "
                + " | ".join(f"{s:.2f}" for s in phases)
                + f" | {sum(phases):.2f} | {case['peak_mib']:.0f} |",
                flush=True,
            )
    with open("/proc/loadavg") as f:
        print(f"\nload after: {f.read().split()[:3]}")
    if args.json:
        args.json.write_text(json.dumps(cases, indent=1))


if __name__ == "__main__":
    main()
