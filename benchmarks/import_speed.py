"""Importer speed: wall time to build, export and import every zoo model at its default size.

    .venv/bin/python benchmarks/import_speed.py [MODEL ...] [--repeat 1]

Build is the factory (random weights); import is `torch.export` plus building the `nn` IR in memory
and verifying it. Goals on the 2-core development machine: a 12-layer encoder (BERT-base) imported
in under 10 s, and `bert_stack384` (the BERT encoder with 384 layers, about 11k ops) built and
imported in under 60 s.

Wall times depend on the machine's load (printed before and after, from /proc/loadavg); CPU times
(this process's) much less. The import is split into `torch.export` (tracing the module into ATen
ops: torch's own work) and chiplex's part (rules, builder, verification).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chiplex.ir.torch_import import api, import_module, module_stats
from chiplex.models import ZOO, bert, example_inputs

GOAL_BERT_BASE_S = 10.0
"""Import of a 12-layer encoder."""
GOAL_STACK_S = 60.0
"""Build plus import of the 384-layer stack."""
EXTRA = {"bert_stack384": lambda: bert(384)}
"""Not zoo models: sizes the speed goals name."""


def _load() -> str:
    path = Path("/proc/loadavg")
    return " ".join(path.read_text().split()[:3]) if path.exists() else "n/a"


EXPORT_CPU: list[float] = []
"""CPU seconds inside `torch.export` (with its functionalisation), per import."""


def _timed(export: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return export(*args, **kwargs)
        finally:
            EXPORT_CPU.append(time.process_time() - started)

    return wrapper


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "models", nargs="*", default=[*ZOO, *EXTRA], help="zoo models (default: all, and the stack)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="imports per model; the fastest counts"
    )
    args = parser.parse_args(argv)
    unknown = [m for m in args.models if m not in ZOO and m not in EXTRA]
    if unknown:
        parser.error(f"unknown zoo models {', '.join(unknown)}; known: {', '.join(ZOO)}")

    api.export_program = _timed(api.export_program)  # type: ignore[attr-defined]
    print(f"load average (1, 5, 15 min) before: {_load()}")
    print(
        f"{'model':<13} {'build s':>8} {'build CPU s':>11} {'import s':>9} {'import CPU s':>12} {'export CPU s':>12} "
        f"{'chiplex CPU s':>13} {'ops':>5} {'params':>7} {'MiB':>7} {'GFLOP':>7}"
    )
    ok = True
    for name in args.models:
        started, build_cpu_started = time.perf_counter(), time.process_time()
        model = EXTRA[name]() if name in EXTRA else ZOO[name].build()
        built = time.perf_counter() - started
        build_cpu = time.process_time() - build_cpu_started
        best, cpu, export_cpu = float("inf"), 0.0, 0.0
        for _ in range(max(1, args.repeat)):
            t0, c0 = time.perf_counter(), time.process_time()
            EXPORT_CPU.clear()
            module = import_module(model, example_inputs(model), name=name)
            wall = time.perf_counter() - t0
            if wall < best:
                best, cpu, export_cpu = wall, time.process_time() - c0, sum(EXPORT_CPU)
        s = module_stats(module)
        print(
            f"{name:<13} {built:>8.2f} {build_cpu:>11.2f} {best:>9.2f} {cpu:>12.2f} {export_cpu:>12.2f} "
            f"{cpu - export_cpu:>13.2f} {s.ops:>5} {s.params:>7} "
            f"{s.param_bytes / 2**20:>7.1f} {s.flops / 1e9:>7.2f}",
            flush=True,
        )
        if name == "bert_base":
            verdict = "ok" if best < GOAL_BERT_BASE_S else "TOO SLOW"
            print(f"  BERT-base import {best:.2f} s (goal < {GOAL_BERT_BASE_S:g} s): {verdict}")
            ok &= best < GOAL_BERT_BASE_S
        if name == "bert_stack384":
            total = built + best
            verdict = "ok" if total < GOAL_STACK_S else "TOO SLOW"
            print(
                f"  384-layer stack build+import {total:.2f} s (goal < {GOAL_STACK_S:g} s): {verdict}; "
                f"CPU {build_cpu + cpu:.2f} s"
            )
            ok &= total < GOAL_STACK_S
    print(f"load average (1, 5, 15 min) after: {_load()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
