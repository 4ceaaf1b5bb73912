"""Capture: `torch.export` a module, functionalise it, and decompose ops the rules do not cover.

torch.export gives a graph of ATen ops that may still mutate tensors (`relu_` from
`nn.ReLU(inplace=True)`, `add_` from `x += identity`, `copy_` into a slice). `nn` is a value
dialect, so such a graph is first run through `run_decompositions({})`, which functionalises it
(in-place ops become their out-of-place forms, writes into views become `slice_scatter` /
`select_scatter`) without decomposing anything. Decompositions of single ops come from
`torch.export.default_decompositions()`, chosen by the importer for the ops it lacks a rule for.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import torch

from chiplex.errors import ChiplexError


def export_program(
    module: torch.nn.Module, inputs: tuple[Any, ...]
) -> torch.export.ExportedProgram:
    """The exported, functional program of `module` in eval mode (its training flag is restored)."""
    what = type(module).__name__
    was_training = module.training
    try:
        with torch.no_grad():
            program = torch.export.export(module.eval(), inputs)
    except Exception as e:  # noqa: BLE001 - export raises many types; the user needs the message
        first = str(e).strip().splitlines()
        detail = first[0] if first else type(e).__name__
        raise ChiplexError(
            f"torch.export could not capture {what}: {type(e).__name__}: {detail}"
        ) from None
    finally:
        module.train(was_training)
    if has_mutations(program):
        program = decompose(program, {})
    return program


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


def decompositions_for(targets: Iterable[Any]) -> dict[Any, Any]:
    """torch's default decompositions of the given ops (those it has one for)."""
    table = torch.export.default_decompositions()
    return {t: table[t] for t in targets if t in table}
