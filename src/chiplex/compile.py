"""The compile driver shared by `chiplex compile`, benchmarks and tests: IR in, schedule out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import PassPipeline
from xdsl.printer import Printer
from xdsl.utils.exceptions import ArgSpecParseError, ParseError

from chiplex.errors import ChiplexError
from chiplex.ir.graph import Graph, graph_from_module
from chiplex.ir.mcm import get_chip
from chiplex.ir.parse import load_module, make_context
from chiplex.passes import PASSES, default_pipeline
from chiplex.targets.emit import emit_schedule
from chiplex.targets.schedule import Schedule
from chiplex.targets.target import Target, load_target

LOWERING_PASSES = ("insert-transfers", "split-chiplets")
"""The placed IR is the module just before the first of these (still one function, chips attached)."""


@dataclass
class CompileResult:
    target: Target
    graph: Graph
    """The graph of the placed function (after shard-params, before transfers)."""
    placement: np.ndarray
    placed_ir: str
    """The placed function (before insert-transfers and split-chiplets), as MLIR text."""
    module: ModuleOp
    """The final module (an mcm.program when the pipeline splits)."""
    schedule: Schedule | None


def module_text(module: ModuleOp) -> str:
    import io

    stream = io.StringIO()
    Printer(stream=stream).print_op(module)
    return stream.getvalue() + "\n"


def parse_pipeline(spec: str) -> PassPipeline:
    try:
        return PassPipeline.parse_spec(PASSES, spec)
    except (ArgSpecParseError, ParseError, ValueError, TypeError, KeyError) as err:
        raise ChiplexError(f"bad pipeline {spec!r}: {err}. Passes: {', '.join(PASSES)}") from None


def run_pipeline(
    module: ModuleOp, spec: str, on_placed: Callable[[ModuleOp], None] | None = None
) -> tuple[ModuleOp, str]:
    """Run the passes; return the final module and the placed IR (the text before lowering to chips).

    `on_placed` sees the module at that point too (after shard-params, place, ...).
    """
    ctx = make_context()
    pipeline = parse_pipeline(spec)
    placed_text = ""
    for p in pipeline.passes:
        if p.name in LOWERING_PASSES and not placed_text:
            placed_text = module_text(module)
            if on_placed is not None:
                on_placed(module)
        p.apply(ctx, module)
    if not placed_text:
        placed_text = module_text(module)
        if on_placed is not None:
            on_placed(module)
    try:
        module.verify()
    except Exception as err:  # noqa: BLE001 - a pass produced invalid IR: a compiler bug, say so clearly
        raise ChiplexError(f"internal error: the pipeline produced invalid IR: {err}") from None
    return module, placed_text


def compile_module(
    module: ModuleOp, target: str | Target, *, pipeline: str | None = None, strategy: str = "dp"
) -> CompileResult:
    target_obj = load_target(target) if isinstance(target, str) else target
    target_spec = target if isinstance(target, str) else target.name
    spec = pipeline or default_pipeline(target_spec, strategy)
    graphs: list[Graph] = []
    # The graph of the placed function: passes before placement (shard-params) may change its ops.
    module, placed_text = run_pipeline(
        module, spec, on_placed=lambda placed: graphs.append(graph_from_module(placed))
    )
    graph = graphs[0]
    placement = np.array(
        [get_chip(op) if get_chip(op) is not None else -1 for op in graph.ops], dtype=np.int64
    )
    from chiplex.ir.mcm import ProgramOp

    has_program = any(isinstance(op, ProgramOp) for op in module.ops)
    schedule = emit_schedule(module, target_obj) if has_program else None
    return CompileResult(target_obj, graph, placement, placed_text, module, schedule)


def compile_to_schedule(source: str | Path | ModuleOp, target: str) -> Schedule:
    module = source if isinstance(source, ModuleOp) else load_module(str(source))
    result = compile_module(module, target)
    assert result.schedule is not None
    return result.schedule
