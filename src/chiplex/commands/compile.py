"""`chiplex compile IN --target T -o OUT/`: run the pipeline, write the IR and schedule, print a summary."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from chiplex.commands._args import add_input_arguments, load_input, positive_int
from chiplex.errors import ChiplexError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compile", help="compile an IR file (or a torch module:factory) to chiplet schedules"
    )
    add_input_arguments(p)
    p.add_argument(
        "--target", default="tpu-ring8", help="preset name or TOML file (default: tpu-ring8)"
    )
    p.add_argument("-o", "--output", type=Path, help="output directory (default: out/<input name>)")
    p.add_argument("--pipeline", help="override the pass pipeline (MLIR syntax: 'a{opt=1},b')")
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        help="a Python file whose ModulePasses join the pipeline",
    )
    p.add_argument(
        "--strategy",
        default="dp",
        help="placement strategy for the default pipeline (dp, greedy, cp)",
    )
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--simulate", action="store_true", help="simulate the schedule after compiling")
    p.add_argument(
        "--microbatches", type=positive_int, default=64, help="micro-batches to simulate"
    )
    p.add_argument(
        "--check-semantics",
        action="store_true",
        help="interpret the program before and after the pipeline on seeded random weights and "
        "inputs (float32) and fail if the results differ by more than --semantics-rtol",
    )
    p.add_argument(
        "--semantics-rtol",
        type=float,
        default=1e-5,
        metavar="TOL",
        help="largest relative error --check-semantics accepts (default 1e-5)",
    )
    p.set_defaults(handler=run)


def check_semantics(before: ModuleOp, after: ModuleOp, rtol: float) -> str:
    """Interpret both modules on the same seeded random data; raise if they differ beyond rtol."""
    from chiplex.ir import interpret

    params = interpret.random_parameters(before, seed=0)
    inputs = interpret.random_inputs(before, seed=0)
    expected = interpret.run(before, inputs, params)
    got = interpret.run(after, inputs, params)
    c = interpret.compare_outputs(got, expected)
    identical = all(g.tobytes() == e.tobytes() for g, e in zip(got, expected, strict=True))
    verdict = "bit-identical" if identical else f"max rel error {c.max_rel:.3g} (rtol {rtol:g})"
    if not c.within(rtol):
        raise ChiplexError(
            f"--check-semantics: the pipeline changed what the program computes: output "
            f"{c.worst_output} differs by {c.max_rel:.3g} relative (max abs {c.max_abs:.3g}), "
            f"above --semantics-rtol {rtol:g}"
        )
    return f"semantics kept: {verdict}"


def _mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:7.2f}"


def summary_table(result) -> str:  # type: ignore[no-untyped-def]
    from chiplex.targets.cost import estimate
    from chiplex.targets.legality import chip_memory

    graph, target, placement = result.graph, result.target, result.placement
    memory = chip_memory(graph, placement, target.num_chips)
    est = estimate(graph, target, placement)
    capacity = target.chip.capacity_bytes
    lines = [
        f"{graph.name} on {target.name}: {graph.num_nodes} ops, {graph.flops.sum() / 1e9:.2f} GFLOP, "
        f"{graph.weight_bytes.sum() / 2**20:.2f} MiB weights",
        f"{'chip':>4} {'ops':>5} {'weights MiB':>11} {'memory MiB':>10} {'capacity MiB':>12} {'use':>5} {'busy us':>9}",
    ]
    counts = np.bincount(placement, minlength=target.num_chips)
    for c in range(target.num_chips):
        lines.append(
            f"{c:>4} {counts[c]:>5} {_mib(memory.weights[c]):>11} {_mib(memory.total[c]):>10} "
            f"{_mib(capacity):>12} {memory.total[c] / capacity:>5.0%} {est.chip_busy_s[c] * 1e6:>9.1f}"
        )
    lines.append(
        f"estimated throughput {est.throughput:,.1f} samples/s (period {est.period_s * 1e6:.1f} us, "
        f"critical: {est.critical})"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from chiplex.compile import compile_module, module_text
    from chiplex.passes import load_plugin

    started = time.perf_counter()
    for plugin in args.plugin:
        load_plugin(plugin)
    module, stem = load_input(args)
    out = args.output or Path("out") / stem
    files = {
        "placed": out / "placed.mlir",
        "chiplets": out / "chiplets.mlir",
        "schedule": out / "schedule.json",
    }
    existing = [str(f) for f in files.values() if f.exists()]
    if existing and not args.force:
        raise ChiplexError(
            f"refusing to overwrite {', '.join(existing)}: pass --force or choose another -o"
        )
    if args.semantics_rtol < 0:
        raise ChiplexError(f"--semantics-rtol must be >= 0, got {args.semantics_rtol}")
    original = module.clone() if args.check_semantics else None
    result = compile_module(module, args.target, pipeline=args.pipeline, strategy=args.strategy)
    if original is not None:
        # Before writing: a pipeline that changes the meaning leaves no output behind.
        print(check_semantics(original, result.module, args.semantics_rtol))
    out.mkdir(parents=True, exist_ok=True)
    files["placed"].write_text(result.placed_ir)
    files["chiplets"].write_text(module_text(result.module))
    if result.schedule is not None:
        result.schedule.write(files["schedule"])
    if (result.placement >= 0).all():
        print(summary_table(result))
    print(
        f"wrote {out}/ ({', '.join(f.name for f in files.values() if f.exists())}) "
        f"in {time.perf_counter() - started:.1f} s"
    )
    if args.simulate:
        if result.schedule is None:
            raise ChiplexError("--simulate needs a pipeline that ends in split-chiplets")
        from chiplex.runtime_sim import format_report, simulate

        report = simulate(result.schedule, result.target, microbatches=args.microbatches)
        print(format_report(report))
    sys.stdout.flush()
    return 0
