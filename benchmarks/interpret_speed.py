"""Reference interpreter speed: wall time to run zoo models on seeded random inputs and weights.

    .venv/bin/python benchmarks/interpret_speed.py [MODEL ...] [--repeat 3] [--split TARGET]

Each model is the zoo example at its default size (examples/models/*.mlir, i8 weights, bf16
activations: the interpreter computes in float32 whatever the IR declares). `run s` is the fastest
of `--repeat` runs of the function (wall clock), `cpu s` the least CPU time of a run (all threads:
on a loaded machine it says what a run needs, while the wall clock also counts the waiting). With
`--split TARGET` the model is also compiled for the target (dp placement, transfers, split into
chiplets) and the program run and checked bit-identical. The goal is BERT-base (batch 1, sequence
128) in under 10 s on the 2-core development machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from chiplex.compile import run_pipeline
from chiplex.ir import interpret
from chiplex.ir.graph import graph_from_module
from chiplex.ir.parse import load_module
from chiplex.passes import default_pipeline

EXAMPLES = Path(__file__).parents[1] / "examples" / "models"
GOAL_BERT_BASE_S = 10.0
DEFAULT = ["mlp", "bert_layer", "bert_base", "gpt2_small", "resnet18", "resnet50", "vit_b16"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", nargs="*", default=DEFAULT, help="example models")
    parser.add_argument("--repeat", type=int, default=3, help="runs per model; the fastest counts")
    parser.add_argument(
        "--split", metavar="TARGET", help="also run the model placed and split for TARGET"
    )
    args = parser.parse_args(argv)
    known = sorted(p.stem for p in EXAMPLES.glob("*.mlir"))
    unknown = [m for m in args.models if m not in known]
    if unknown:
        parser.error(f"unknown example models {', '.join(unknown)}; known: {', '.join(known)}")

    header = f"{'model':<12} {'ops':>5} {'GFLOP':>7} {'run s':>7} {'cpu s':>7} {'GFLOP/s':>8}"
    if args.split:
        header += f" {'chips':>6} {'split s':>8} {'identical':>10}"
    print(header)
    ok = True
    for name in args.models:
        module = load_module(EXAMPLES / f"{name}.mlir")
        params = interpret.random_parameters(module, seed=0)
        inputs = interpret.random_inputs(module, seed=0)
        graph = graph_from_module(module)
        best = best_cpu = float("inf")
        results: tuple[np.ndarray, ...] = ()
        for _ in range(max(1, args.repeat)):
            t0, c0 = time.perf_counter(), time.process_time()
            results = interpret.run(module, inputs, params)
            best = min(best, time.perf_counter() - t0)
            best_cpu = min(best_cpu, time.process_time() - c0)
        gflop = float(graph.flops.sum()) / 1e9
        line = (
            f"{name:<12} {graph.num_nodes:>5} {gflop:>7.2f} {best:>7.2f} {best_cpu:>7.2f} "
            f"{gflop / best:>8.1f}"
        )
        if args.split:
            placed = module.clone()
            run_pipeline(placed, default_pipeline(args.split))
            t0 = time.perf_counter()
            split = interpret.run(placed, inputs, params)
            split_s = time.perf_counter() - t0
            identical = all(a.tobytes() == b.tobytes() for a, b in zip(results, split, strict=True))
            chips = sum(
                1
                for op in placed.walk()
                if op.name == "mcm.chiplet" and len(op.regions[0].block.ops) > 1
            )
            line += f" {chips:>6} {split_s:>8.2f} {'yes' if identical else 'NO':>10}"
            ok &= identical
        print(line, flush=True)
        if name == "bert_base":
            verdict = "ok" if best < GOAL_BERT_BASE_S else "TOO SLOW"
            print(
                f"  BERT-base interpreted in {best:.2f} s (goal < {GOAL_BERT_BASE_S:g} s): {verdict}"
            )
            ok &= best < GOAL_BERT_BASE_S
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
