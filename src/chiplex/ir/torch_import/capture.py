"""Capture: `torch.export` a module, functionalise it, and decompose ops the rules do not cover.

torch.export gives a graph of ATen ops that may still mutate tensors (`relu_` from
`nn.ReLU(inplace=True)`, `add_` from `x += identity`, `copy_` into a slice). `nn` is a value
dialect, so such a graph is first run through `run_decompositions({})`, which functionalises it
(in-place ops become their out-of-place forms, writes into views become `slice_scatter` /
`select_scatter`) without decomposing anything. Decompositions of single ops come from
`torch.export.default_decompositions()`, chosen by the importer for the ops it lacks a rule for.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.utils._pytree as pytree
from torch._decomp import decomposition_table

import chiplex
from chiplex.errors import ChiplexError, user_frames

WRAPPED = "wrapped"
"""The attribute under which `TensorOutputs` holds the user's module: a prefix the builder strips
from parameter names and module paths."""


class TensorOutputs(torch.nn.Module):
    """Runs the user's module and returns only the tensors among its (pytree-flattened) outputs.

    Used when export cannot capture the module as it is because an output is an object torch does
    not know how to flatten (a Hugging Face key/value cache): such outputs are dropped, and
    `report` is told which while export traces `forward`.
    """

    def __init__(self, module: torch.nn.Module, report: Callable[[str], None]) -> None:
        super().__init__()
        setattr(self, WRAPPED, module)
        # A function, not a list: export may copy the module, and copies share a function.
        self.report = report

    def forward(self, *inputs: Any) -> tuple[torch.Tensor, ...]:
        outputs = getattr(self, WRAPPED)(*inputs)
        leaves, _ = pytree.tree_flatten(outputs)
        kept = []
        for index, leaf in enumerate(leaves):
            if isinstance(leaf, torch.Tensor):
                kept.append(leaf)
            elif leaf is not None:
                self.report(f"output #{index} is not a tensor ({type(leaf).__name__}): dropped")
        return tuple(kept)


@dataclass
class Captured:
    program: torch.export.ExportedProgram
    prefix: str = ""
    """Prefix of parameter names and module paths to strip (`wrapped.` for `TensorOutputs`)."""
    notes: list[str] = field(default_factory=list)


def export_program(module: torch.nn.Module, inputs: tuple[Any, ...]) -> Captured:
    """The exported, functional program of `module` in eval mode (its training flag is restored).

    A module whose outputs export cannot flatten is exported again through `TensorOutputs`.
    """
    what = type(module).__name__
    was_training = module.training
    try:
        with torch.no_grad():
            module.eval()
            try:
                captured = Captured(_export(module, inputs))
            except Exception as first:  # noqa: BLE001 - export raises many types
                dropped: list[str] = []
                wrapper = TensorOutputs(module, lambda note: dropped.append(note))
                try:
                    program = _export(wrapper, inputs)
                except Exception:  # noqa: BLE001 - report the error of the module as given
                    raise first from None
                captured = Captured(program, f"{WRAPPED}.", list(dict.fromkeys(dropped)))
    except Exception as e:  # noqa: BLE001 - export raises many types; the user needs the message
        first_line = str(e).strip().splitlines()
        detail = first_line[0] if first_line else type(e).__name__
        raise ChiplexError(
            f"torch.export could not capture {what}: {type(e).__name__}: {detail}"
            + (_where_tracing_stopped(e) or _where_raised(e))
            + f"; example inputs: {describe_inputs(inputs)}"
        ) from None
    finally:
        module.train(was_training)
    if has_mutations(captured.program):
        captured.program = decompose(captured.program, {})
    return captured


def _export(module: torch.nn.Module, inputs: tuple[Any, ...]) -> torch.export.ExportedProgram:
    """`torch.export.export`, except that when it fails, the partial graph it prints to stderr
    is kept off the terminal (`_where_tracing_stopped` reads the line that matters from the error);
    anything else written to stderr meanwhile is passed on."""
    stray = io.StringIO()
    dump = ""
    try:
        with contextlib.redirect_stderr(stray), warnings.catch_warnings():
            # torch's own nn.LSTM/GRU re-assign their flat weight list while exported: a warning
            # about torch's code the user cannot act on (the weights are captured correctly).
            warnings.filterwarnings(
                "ignore",
                message=r"The tensor attributes .*_flat_weights.* were assigned during export",
            )
            return torch.export.export(module, inputs)
    except Exception as error:
        dump = str(getattr(error, "partial_fx_graph", None) or "")
        raise
    finally:
        text = stray.getvalue()
        sys.stderr.write(text.replace(dump + "\n", "") if dump else text)


def _where_tracing_stopped(error: BaseException) -> str:
    """Where tracing stopped (`; tracing stopped at FILE:LINE in forward: CODE`), read from the
    partial graph torch attaches to a data-dependent error, with what to do about it; "" if none."""
    graph = str(getattr(error, "partial_fx_graph", "") or "")
    lines = re.findall(r"# File: (.+?), code: (.*)", graph)
    if not lines:
        return ""
    where, code = lines[-1]
    hint = ""
    if "DataDependent" in type(error).__name__:
        hint = (
            " (a Python branch on a tensor's value: export captures one graph for every input, so "
            "compute both sides and select with torch.where, or use torch.cond)"
        )
    return f"; tracing stopped at {where}: {code.strip()}{hint}"


def _where_raised(error: BaseException) -> str:
    """The innermost frame of the user's code (not torch's, chiplex's or the standard library's)
    in `error`'s traceback, as `; raised at FILE:LINE in FUNCTION: CODE`; "" if there is none.

    torch's own messages ("Input type (long int) and bias type (float) should be the same") do
    not say which line of `forward` ran the op; a model from an installed package (transformers)
    counts as the user's code."""
    for frame in reversed(user_frames(error, torch, chiplex)):
        if frame.line:
            return (
                f"; raised at {frame.filename}:{frame.lineno} in {frame.name}: {frame.line.strip()}"
            )
    return ""


def describe_inputs(inputs: tuple[Any, ...]) -> str:
    """The example inputs' shapes and dtypes in `--input-shape`/`--dtype` terms: `2x16 int64`."""
    described = [
        f"{'x'.join(map(str, leaf.shape)) or 'scalar'} {str(leaf.dtype).removeprefix('torch.')}"
        for leaf in pytree.tree_leaves(inputs)
        if isinstance(leaf, torch.Tensor)
    ]
    return ", ".join(described) or "none"


def has_mutations(program: torch.export.ExportedProgram) -> bool:
    """Whether any node calls an op that writes one of its inputs (`relu_`, `add_`, `copy_`)."""
    for node in program.graph.nodes:
        schema = getattr(node.target, "_schema", None)
        if node.op == "call_function" and schema is not None and schema.is_mutable:
            return True
    return False


def decompose(
    program: torch.export.ExportedProgram, table: dict[Any, Any]
) -> torch.export.ExportedProgram:
    """`program` functionalised, with the ops in `table` replaced by their decompositions."""
    with warnings.catch_warnings():
        # torch 2.13 warns about its own pytree internals while decomposing.
        warnings.simplefilter("ignore")
        return program.run_decompositions(table)


# Ops export keeps whole (backends usually lower them natively) whose `torch._decomp`
# decomposition uses only ops with rules: bilinear upsampling becomes two `_unsafe_index`
# gathers per axis with constant indices and a lerp by constant weights, exact for any sizes and
# both `align_corners`. Not the whole table: most of it decomposes into `prims.*` ops, whose
# names would only make the unsupported-op report harder to read.
WIDER_DECOMPOSITIONS = (
    torch.ops.aten.upsample_bilinear2d.vec,
    torch.ops.aten.upsample_bilinear2d.default,
)


def decompositions_for(targets: Iterable[Any]) -> dict[Any, Any]:
    """torch's decompositions of the given ops (those it has one for): export's default table,
    and `torch._decomp`'s for the ops in `WIDER_DECOMPOSITIONS`."""
    table = torch.export.default_decompositions()
    found = {t: table[t] for t in targets if t in table}
    found |= {t: decomposition_table[t] for t in targets if t in WIDER_DECOMPOSITIONS}
    return found
