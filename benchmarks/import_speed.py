"""Importer speed: wall time to build, export and import every zoo model at its default size.

    .venv/bin/python benchmarks/import_speed.py [MODEL ...] [--repeat 1]

Build is the factory (random weights); import is `torch.export` plus building the `nn` IR in memory
and verifying it. The goal is BERT-base imported in under 20 s on the 2-core development machine.
"""

from __future__ import annotations

import argparse
import sys
import time

from chiplex.ir.torch_import import import_module, module_stats
from chiplex.models import ZOO, example_inputs

GOAL_BERT_BASE_S = 20.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", nargs="*", default=list(ZOO), help="zoo models (default: all)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="imports per model; the fastest counts"
    )
    args = parser.parse_args(argv)
    unknown = [m for m in args.models if m not in ZOO]
    if unknown:
        parser.error(f"unknown zoo models {', '.join(unknown)}; known: {', '.join(ZOO)}")

    print(
        f"{'model':<12} {'build s':>8} {'import s':>9} {'ops':>5} {'params':>7} {'MiB':>7} {'GFLOP':>7}"
    )
    ok = True
    for name in args.models:
        started = time.perf_counter()
        model = ZOO[name].build()
        built = time.perf_counter() - started
        best = float("inf")
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            module = import_module(model, example_inputs(model), name=name)
            best = min(best, time.perf_counter() - t0)
        s = module_stats(module)
        print(
            f"{name:<12} {built:>8.2f} {best:>9.2f} {s.ops:>5} {s.params:>7} "
            f"{s.param_bytes / 2**20:>7.1f} {s.flops / 1e9:>7.2f}",
            flush=True,
        )
        if name == "bert_base":
            verdict = "ok" if best < GOAL_BERT_BASE_S else "TOO SLOW"
            print(f"  BERT-base import {best:.2f} s (goal < {GOAL_BERT_BASE_S:g} s): {verdict}")
            ok &= best < GOAL_BERT_BASE_S
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
