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
    # name: (factory, input shape); the factories are below, imported by `chiplex import-torch`.
    "gpt2_48L": ("gpt2_48", "1x128"),
    "llama_32L": ("llama_32", "1x128"),
}
DEFAULT_MODELS = ["gpt2_medium", "bert_large", "gpt2_48L", "llama_32L"]
DEFAULT_TARGETS = ["tpu-ring8", "simba-6x6", MESH64]
PHASES = ["parse", "passes", "place", "print", "emit", "summary", "simulate", "check"]


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
        subprocess.run(
            [sys.executable, "-m", "chiplex.cli", "import-torch", f"{__file__}:{factory}",
             "--input-shape", shape, "--dtype", "int64", "-o", str(path)],
            check=True,
        )  # fmt: skip
    return path


def measure(path: str, target_name: str, strategy: str) -> dict:
    """One case in this process: CPU seconds per phase, the numbers to compare runs by, peak RSS."""
    import resource

    import chiplex.compile as driver
    from chiplex.commands.compile import SUMMARY_MICROBATCHES, summary_table
    from chiplex.compile import compile_module, module_text
    from chiplex.errors import ChiplexError
    from chiplex.ir.graph import graph_from_module
    from chiplex.ir.mcm import get_chip
    from chiplex.ir.parse import load_module, parse_module
    from chiplex.runtime_sim import simulate
    from chiplex.targets.legality import check_placement

    cpu: dict[str, float] = defaultdict(float)

    def timed(phase: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            cpu[phase] += time.process_time() - start

    apply, text_of, emit = driver._apply, driver.module_text, driver.emit_schedule

    def timed_apply(pass_, ctx, module):  # type: ignore[no-untyped-def]
        phase = "place" if pass_.name in ("place", "legalize-placement") else "passes"
        return timed(phase, apply, pass_, ctx, module)

    driver._apply = timed_apply
    driver.module_text = lambda module: timed("print", text_of, module)
    driver.emit_schedule = lambda module, target: timed("emit", emit, module, target)
    module = timed("parse", load_module, path)
    try:
        result = compile_module(module, target_name, strategy=strategy)
    except ChiplexError as err:  # no placement: how long it took to say so
        first = str(err).splitlines()[0]
        return {"error": first[:70], "cpu": dict(cpu), "total_cpu": time.process_time()}
    final_text = timed("print", module_text, result.module)
    assert result.schedule is not None
    schedule_text = timed("emit", result.schedule.to_text)
    summary = timed("summary", summary_table, result)
    report = timed(
        "simulate", simulate, result.schedule, result.target, microbatches=SUMMARY_MICROBATCHES
    )

    def check() -> int:
        graph = graph_from_module(parse_module(result.placed_ir, "placed.mlir"))
        chips = [get_chip(op) for op in graph.ops]
        import numpy as np

        return len(check_placement(graph, result.target, np.array(chips, dtype=np.int64)))

    violations = timed("check", check)
    del final_text, schedule_text
    return {
        "ops": result.graph.num_nodes,
        "chips": result.target.num_chips,
        "target": result.target.name,
        "cpu": dict(cpu),
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "throughput": report.throughput,
        "placement": result.placement.tolist(),
        "summary_last": summary.splitlines()[-1],
        "violations": violations,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--targets", nargs="+", default=DEFAULT_TARGETS)
    parser.add_argument("--strategy", default="dp", help="compile's --strategy (default dp)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/chiplex_compile_scale"))
    parser.add_argument("--json", type=Path, help="also write every case (placements included)")
    parser.add_argument("--one", nargs=3, metavar=("PATH", "TARGET", "STRATEGY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one)))
        return
    with open("/proc/loadavg") as f:
        print(f"load before: {f.read().split()[:3]}; strategy {args.strategy}\n")
    header = ["model", "ops", "target", "chips", *(f"{p} s" for p in PHASES), "total CPU s", "peak MiB"]
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
