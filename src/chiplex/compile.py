"""The compile driver shared by `chiplex compile`, benchmarks and tests: IR in, schedule out."""

from __future__ import annotations

import contextlib
import re
import textwrap
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xdsl
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import Operation
from xdsl.passes import ModulePass, PassPipeline
from xdsl.printer import Printer
from xdsl.utils.exceptions import ArgSpecParseError, ParseError

import chiplex
from chiplex.errors import ChiplexError, user_frames
from chiplex.ir.graph import Graph, graph_from_module, single_function
from chiplex.ir.locations import locate
from chiplex.ir.mcm import COST_ATTR_NAME, get_chip
from chiplex.ir.parse import load_module, make_context
from chiplex.passes import PASSES, default_pipeline, pipeline_value
from chiplex.passes.common import TARGET_ATTR
from chiplex.passes.options import PassOptionError, parse_pass_pipeline, pipeline_hint
from chiplex.targets.emit import emit_schedule
from chiplex.targets.legality import check_placement
from chiplex.targets.schedule import Schedule
from chiplex.targets.target import Target, load_target

DEFAULT_TARGET = "tpu-ring8"
LOWERING_PASSES = ("insert-transfers", "split-chiplets")
"""The placed IR is the module just before the first of these (still one function, chips attached)."""
TENSOR_PARALLEL_SHARE = 32
"""`compile_module`'s last retry cuts feed-forward weight matrices into shards of at most 1/32 of a
chip (`tensor-parallel{max_bytes}`): pieces that fine lose at most ~3% of a chip to the packing.
dp's smallest chip for ViT-base is 12.75 MiB with 2, 4, 6 or 8 chunks but 13.125 with 3, and for
wav2vec2-base 13.5 with 2 chunks, 13.0 with 4, 12.875 with 3, 6 or 8 (docs/sharding.md): coarse
chunk counts depend on luck, fine ones do not. On tpu-ring8 a 2.25 MiB matrix becomes 6 shards."""


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
        return parse_pass_pipeline(PASSES, spec)
    except PassOptionError as err:
        raise ChiplexError(f"bad pipeline {spec!r}: {err}") from None
    except (ArgSpecParseError, ParseError, ValueError, TypeError, KeyError) as err:
        hint = pipeline_hint(str(err), spec, PASSES)
        raise ChiplexError(
            f"bad pipeline {spec!r}: {err}{hint}. Passes: {', '.join(PASSES)}"
        ) from None


def _source_file(cls: type) -> str | None:
    import inspect

    try:
        return inspect.getsourcefile(cls)
    except (OSError, TypeError):
        return None


def verify_module(module: ModuleOp, who: str) -> None:
    """`module.verify()`, failing with a ChiplexError that says `who` made the IR invalid and at
    which op (xDSL's message names neither)."""
    try:
        module.verify()
    except Exception as err:  # noqa: BLE001 - VerifyException, or ValueError for an erased value
        culprit = ""
        for op in module.walk():
            try:
                op.verify(verify_nested_ops=False)
            except Exception:  # noqa: BLE001 - the first op that fails is the one to show
                hint = op.results[0].name_hint if op.results else None
                where = locate(op)
                built = op.parent_op() is not None and where == locate(op.parent_op())
                culprit = (
                    ("" if built else where)
                    + op.name
                    + (f" %{hint}" if hint else "")
                    + (" (built by a pass)" if built else "")
                    + ": "
                )
                break
        raise ChiplexError(f"{who} produced invalid IR: {culprit}{err}") from None


def _check_new_ops_annotated(pass_name: str, module: ModuleOp) -> None:
    """After a user pass that ran once annotate-costs had: every nn compute op still has its cost
    (and, before split-chiplets, its chip if the others have theirs). An op the pass built has
    neither, and the error would otherwise surface passes later ("emit: op ... has no cost",
    "run place first")."""
    from chiplex.ir.graph import STATIONARY_OPS

    computing = [
        op for op in module.walk() if op.name.startswith("nn.") and op.name not in STATIONARY_OPS
    ]
    unplaced: list[Operation] = []
    try:
        ops = graph_from_module(module).ops
        if any(get_chip(op) is not None for op in ops):
            unplaced = [op for op in ops if get_chip(op) is None]
    except ChiplexError:  # no longer one function of nn ops (split-chiplets ran)
        pass
    for attribute, missing, before in (
        (
            "a cost",
            [op for op in computing if COST_ATTR_NAME not in op.attributes],
            "annotate-costs",
        ),
        ("a chip", unplaced, "place"),
    ):
        if missing:
            hint = missing[0].results[0].name_hint if missing[0].results else None
            first = missing[0].name + (f" %{hint}" if hint else "")
            raise ChiplexError(
                f"pass '{pass_name}' ran after {before} and left {len(missing)} op"
                f"{'s' if len(missing) > 1 else ''} without {attribute} (first: {first}): put it "
                f"before {before} in the pipeline (a lowering pass goes before annotate-costs)"
            )


def _apply(pass_: ModulePass, ctx: Context, module: ModuleOp) -> None:
    """Run one pass; a user pass that raises anything but ChiplexError is reported, located, and
    one that leaves the IR invalid is named (chiplex's own passes are checked at the end)."""
    user_pass = not type(pass_).__module__.startswith("chiplex.")
    costed = user_pass and TARGET_ATTR in module.attributes  # annotate-costs ran before it
    try:
        pass_.apply(ctx, module)
    except ChiplexError:
        raise
    except Exception as err:
        if not user_pass:
            raise  # a bug in chiplex itself: the CLI reports it as an internal error
        frames = traceback.extract_tb(err.__traceback__)
        # The pass's own file first (not numpy's line), else any file but chiplex's and xDSL's.
        own = [f for f in frames if f.filename == _source_file(type(pass_))]
        user = user_frames(err, chiplex, xdsl)
        frame = (own or user or frames)[-1]
        raise ChiplexError(
            f"{frame.filename}:{frame.lineno}: error: pass '{pass_.name}' failed: "
            f"{type(err).__name__}: {err}\n(raise chiplex.errors.ChiplexError in a pass for a "
            "message without this location)"
        ) from None
    if user_pass:
        verify_module(module, f"pass '{pass_.name}'")
        if costed:
            _check_new_ops_annotated(pass_.name, module)


@dataclass
class PipelineRun:
    module: ModuleOp
    placed_text: str
    """The module just before the first lowering pass (or at the end), as MLIR text."""
    placed_graph: Graph | None
    """The graph of that module, when it is still one function of nn ops."""


def run_pipeline(module: ModuleOp, spec: str) -> tuple[ModuleOp, str]:
    """Run the passes; return the final module and the placed IR (the text before lowering to chips)."""
    run = run_pipeline_full(module, spec)
    return run.module, run.placed_text


Phase = Callable[[str], None]
"""Told the name of each phase as it starts (a pass's name, `placed IR`, `verify`, `emit`): what a
long compile's progress display shows."""


def run_pipeline_full(module: ModuleOp, spec: str, phase: Phase | None = None) -> PipelineRun:
    ctx = make_context()
    pipeline = parse_pipeline(spec)
    placed_text = ""
    placed_graph = None

    def snapshot() -> None:
        nonlocal placed_text, placed_graph
        if phase:
            phase("placed IR")
        placed_text = module_text(module)
        try:
            placed_graph = graph_from_module(module)
        except ChiplexError:
            placed_graph = None

    for p in pipeline.passes:
        if p.name in LOWERING_PASSES and not placed_text:
            snapshot()
        if phase:
            phase(p.name)
        _apply(p, ctx, module)
    if not placed_text:
        snapshot()
    if phase:
        phase("verify")
    verify_module(module, "the pipeline")
    return PipelineRun(module, placed_text, placed_graph)


def _pipeline_targets(spec: str) -> list[str]:
    """The `target=` options the pipeline's passes name."""
    return [
        p.target
        for p in parse_pipeline(spec).passes
        if isinstance(getattr(p, "target", None), str) and p.target
    ]


# Proofs that weights alone do not fit, which no split of the ops changes: "total weights 145.53 MiB > 8
# chips x 13.00 MiB SRAM" (not "... plus the largest working set"), and a pinned op whose ancestors'
# (or descendants') weights overflow the chips before (after) its pin (`solver._pin_checks`).
_TOTAL_WEIGHTS = re.compile(r"total weights [\d.]+ \w?i?B > ")
_WEIGHTS_PROOF = re.compile(
    _TOTAL_WEIGHTS.pattern
    + r"|is pinned to chip \d+, but it and the ops (?:it depends on|that depend on it) hold "
)


def _run_default(
    module: ModuleOp,
    spec: str,
    target: str,
    strategy: str,
    progress: Callable[[str], None] | None = None,
    checkpoint: str | None = None,
    phase: Phase | None = None,
) -> PipelineRun:
    """The default pipeline; when it finds no placement and the function has row-wise blocks
    (feed-forward, attention), once more (on a copy of the input) with `split-rows`: their widened
    activations tiled by rows (`passes/split_rows.py`) need less memory per chip beside the
    weights. The module then carries `chiplex.split_rows`, and the compile summary says so. When
    that finds none either, a third time with `tensor-parallel` too: the feed-forward blocks' weight
    matrices cut by hidden features (`passes/tensor_parallel.py`, `chiplex.tensor_parallel`)."""
    from chiplex.passes.split_rows import row_blocks
    from chiplex.passes.tensor_parallel import feature_block
    from chiplex.targets.solver import InfeasibleError, SolverTimeoutError

    original = module.clone()
    try:
        # The first attempt's solver warnings matter only if no attempt succeeds.
        with warnings.catch_warnings(record=True) as first_warnings:
            warnings.simplefilter("always")
            run = run_pipeline_full(module, spec, phase)
        for w in first_warnings:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return run
    except (InfeasibleError, SolverTimeoutError) as unsplit:
        messages = unsplit.messages if isinstance(unsplit, InfeasibleError) else []
        if any(_WEIGHTS_PROOF.search(m) for m in messages):  # no split makes the weights smaller
            hint = []
            if any(_TOTAL_WEIGHTS.match(m) for m in messages):  # say what would fit
                # shard-params cannot split a parameter: its own error is apt
                with contextlib.suppress(ChiplexError):
                    hint = [_what_would_fit(original, target)]
            raise InfeasibleError([*messages, *hint]) from None
        if not row_blocks(single_function(original)):
            raise
        # Slices small enough that a block's working set takes at most 1/8 of a chip's memory
        # (the memory rule's capacity: SRAM plus DRAM where a chip has DRAM).
        budget = max(load_target(target).chip.capacity_bytes // 8, 1)
        retry = default_pipeline(target, strategy, split_rows=budget, checkpoint=checkpoint)
        if progress:
            progress(
                f"no placement with whole blocks ({_first(unsplit)}); retrying with the "
                f"feed-forward and attention blocks split by rows (split-rows{{max_bytes={budget}}})"
            )
        try:
            return run_pipeline_full(original.clone(), retry, phase)
        except ChiplexError as split:
            failures: list[ChiplexError] = [unsplit, split]
        if isinstance(failures[1], InfeasibleError | SolverTimeoutError) and any(
            feature_block(b) for b in row_blocks(single_function(original))
        ):
            # Last, the feed-forward blocks' weight matrices cut by hidden features too
            # (`passes/tensor_parallel.py`): smaller pieces for the placer to pack, and no
            # chip needs a whole matrix.
            shard_budget = max(load_target(target).chip.capacity_bytes // TENSOR_PARALLEL_SHARE, 1)
            retry = default_pipeline(
                target,
                strategy,
                split_rows=budget,
                tensor_parallel=shard_budget,
                checkpoint=checkpoint,
            )
            if progress:
                progress(
                    f"no placement with the rows split either ({_first(failures[1])}); retrying "
                    "with the feed-forward weight matrices also split by hidden features "
                    f"(tensor-parallel{{max_bytes={shard_budget}}})"
                )
            try:
                return run_pipeline_full(original, retry, phase)
            except ChiplexError as tensor_parallel:
                failures.append(tensor_parallel)
        if all(str(f) == str(unsplit) for f in failures):  # the same reason: say it once
            raise unsplit from None
        also = [f"with its feed-forward and attention blocks split by rows too: {failures[1]}"]
        if len(failures) > 2:
            also.append(
                "with its feed-forward weight matrices also split by hidden features "
                f"(tensor-parallel{{max_bytes={shard_budget}}}): {failures[2]}"
            )
        if isinstance(unsplit, InfeasibleError):
            raise InfeasibleError([*unsplit.messages, *also]) from None
        raise SolverTimeoutError("; ".join([str(unsplit), *also])) from None


def _first(error: ChiplexError, width: int = 160) -> str:
    """An error's text for a progress line: at most `width` characters, cut between words; the
    reasons of a multi-line error joined by `; `."""
    text = str(error).replace(":\n  ", ": ", 1).replace("\n  ", "; ")
    return textwrap.shorten(text, width, placeholder=" ...")


def fit_parameters(module: ModuleOp, target: str) -> None:
    """What the default pipeline does to parameters before it places, in place: `host-embeddings`
    leaves a token table too large for one chip to the host and `shard-params` splits another too
    large parameter across chips; neither changes anything when every parameter fits a chip."""
    named = pipeline_value(target)
    # The passes alone: `run_pipeline_full` would also print the module and verify it (10 of 13 s on
    # a 5,568-op BERT), for parameter sizes that only need a walk.
    ctx = make_context()
    for pass_ in parse_pipeline(
        f"host-embeddings{{target={named}}},shard-params{{target={named}}}"
    ).passes:
        _apply(pass_, ctx, module)


def _what_would_fit(original: ModuleOp, target: str) -> str:
    """For a model whose weights alone exceed the module (after `host-embeddings` took the token
    tables it could): how many chips, or how large, would hold them, and the largest parameters.
    Changes `original` (the caller's copy of the input, unused afterwards)."""
    import math

    from chiplex.ir import nn
    from chiplex.ir.types import tensor_bytes
    from chiplex.runtime_sim.report import format_bytes

    module = original  # the compile fails after this: the input copy is ours to change
    fit_parameters(module, target)
    # A parameter once per name (the memory rule's lower bound), each constant once.
    sizes: dict[str | int, int] = {}
    for op in module.walk():
        if isinstance(op, nn.ParamOp):
            sizes[op.param_name.data] = tensor_bytes(op.result.type)
        elif isinstance(op, nn.ConstantOp):
            sizes[id(op)] = tensor_bytes(op.results[0].type)
    total = sum(sizes.values())
    spec = load_target(target)
    cap, chips = spec.chip.capacity_bytes, spec.num_chips
    named_sizes = [(n, b) for n, b in sizes.items() if isinstance(n, str)]
    largest = sorted(named_sizes, key=lambda kv: -kv[1])[:3]
    return (
        f"what would fit: the weights alone ({format_bytes(total)} in {len(sizes)} parameters "
        "and constants, "
        f"none larger than one chip) need at least {math.ceil(total / cap)} chips of "
        f"{format_bytes(cap)}, or {chips} chips of at least {format_bytes(total / chips)}, before "
        "receive buffers and working sets (or a smaller weight dtype); splitting ops cannot help. "
        "Largest parameters: " + ", ".join(f"'{n}' ({format_bytes(b)})" for n, b in largest)
    )


def compile_module(
    module: ModuleOp,
    target: str | Target | None = None,
    *,
    pipeline: str | None = None,
    strategy: str = "dp",
    progress: Callable[[str], None] | None = None,
    checkpoint: str | None = None,
    phase: Phase | None = None,
) -> CompileResult:
    """Run the pipeline (default: `default_pipeline` on `target`: host-embeddings, shard-params,
    rematerialize, annotate-costs, place, legalize-placement, insert-transfers, split-chiplets) and
    emit the schedule.

    `target` may be omitted when `pipeline` names one. A `target` that disagrees with the pipeline's
    target is an error (costs and schedule would describe different machines), and so is a placement
    that breaks a rule: nothing is emitted that `chiplex check` would reject. `progress` is told
    (one line each) when the default pipeline is retried with a lowering, and why. `checkpoint`
    is the learned strategy's policy (default: the shipped one), e.g. from `chiplex finetune`.
    `phase` is told each phase's name as it starts (`Phase`).
    """
    requested = load_target(target) if isinstance(target, str) else target
    if pipeline is None:
        target_spec = (
            target if isinstance(target, str) else (target.name if target else DEFAULT_TARGET)
        )
        spec = default_pipeline(target_spec, strategy, checkpoint=checkpoint)
    else:
        spec = pipeline
        if requested is not None:
            for named in _pipeline_targets(spec):
                if load_target(named) != requested:
                    raise ChiplexError(
                        f"--target {requested.name} disagrees with the pipeline's target={named}: "
                        "name one target (drop --target, or make the pipeline's target= match it)"
                    )
    graph = graph_from_module(module)
    if pipeline is None:
        run = _run_default(module, spec, target_spec, strategy, progress, checkpoint, phase)
    else:
        run = run_pipeline_full(module, spec, phase)
    module = run.module
    recorded = module.attributes.get(TARGET_ATTR)
    if isinstance(recorded, StringAttr):
        used = load_target(recorded.data)
        if requested is not None and used != requested:
            raise ChiplexError(
                f"--target {requested.name} disagrees with the target the module was annotated for "
                f"({recorded.data}): run annotate-costs{{target={pipeline_value(requested.name)}}} "
                "or drop --target"
            )
        target_obj = used
    else:
        target_obj = requested or load_target(DEFAULT_TARGET)
    if run.placed_graph is not None:
        graph = run.placed_graph
    placement = np.array(
        [get_chip(op) if get_chip(op) is not None else -1 for op in graph.ops], dtype=np.int64
    )
    from chiplex.ir.mcm import ProgramOp

    has_program = any(isinstance(op, ProgramOp) for op in module.ops)
    schedule = None
    if has_program:
        # The emitter never emits what the checker rejects (a pipeline may skip legalize-placement).
        violations = check_placement(graph, target_obj, placement)
        if violations:
            lines = "\n".join(f"  {v}" for v in violations)
            raise ChiplexError(
                f"illegal placement on {target_obj.name} ({len(violations)} violations), "
                f"no schedule emitted:\n{lines}\nhint: put legalize-placement{{repair=true}} "
                "before insert-transfers in the pipeline"
            )
        if phase:
            phase("emit")
        schedule = emit_schedule(module, target_obj)
    return CompileResult(target_obj, graph, placement, run.placed_text, module, schedule)


def compile_to_schedule(source: str | Path | ModuleOp, target: str) -> Schedule:
    module = source if isinstance(source, ModuleOp) else load_module(str(source))
    result = compile_module(module, target)
    assert result.schedule is not None
    return result.schedule
