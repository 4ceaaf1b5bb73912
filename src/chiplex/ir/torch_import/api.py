"""The public entry points: import a module, count what an imported module holds."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.fx
from xdsl.dialects.builtin import (
    ModuleOp,
    TensorType,
)
from xdsl.utils.exceptions import VerifyException

from chiplex.errors import ChiplexError
from chiplex.ir import nn
from chiplex.ir.torch_import.builder import (
    Importer,
    ImportFailed,
    Report,
)
from chiplex.ir.torch_import.capture import decompose, decompositions_for, export_program
from chiplex.ir.types import parse_dtype


class ImportNote(UserWarning):
    """Something the import left out on purpose (an output that is not a tensor)."""


# Rounds of decomposing the ops without a rule before giving up.
DECOMPOSE_ROUNDS = 4


def symbol(name: str) -> str:
    sym = re.sub(r"\W", "_", name)
    return sym if sym and not sym[0].isdigit() else f"m_{sym}"


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def import_module(
    module: torch.nn.Module,
    example_inputs: Sequence[torch.Tensor] | torch.Tensor,
    *,
    weight_dtype: str | None = "i8",
    activation_dtype: str | None = "bf16",
    name: str | None = None,
) -> ModuleOp:
    """Capture `module` with `torch.export` and build the equivalent `func.func` of `nn` ops.

    `weight_dtype` is the element type of every floating-point parameter (`i8`, `bf16`, ...;
    None or "keep" keeps torch's); `activation_dtype` that of every floating-point activation and
    buffer. `name` is the function's symbol (default: the module's class name in snake case).
    Raises ChiplexError if export fails or if any op cannot be mapped (listing all of them).
    """
    return import_with_constants(
        module,
        example_inputs,
        weight_dtype=weight_dtype,
        activation_dtype=activation_dtype,
        name=name,
    )[0]


def import_with_constants(
    module: torch.nn.Module,
    example_inputs: Sequence[torch.Tensor] | torch.Tensor,
    *,
    weight_dtype: str | None = "i8",
    activation_dtype: str | None = "bf16",
    name: str | None = None,
) -> tuple[ModuleOp, dict[str, torch.Tensor]]:
    """`import_module`, plus the data of every `nn.param` that stands for a folded constant
    (a mask built from buffers) rather than a state-dict entry, by param name."""
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    inputs = tuple(example_inputs)
    weight_type = parse_dtype(weight_dtype)
    act_type = parse_dtype(activation_dtype)
    what = type(module).__name__
    func_name = symbol(name or _snake(type(module).__name__))
    captured = export_program(module, inputs)
    ep = captured.program
    # Some ops have no mapping but decompose into ops that do (hardswish, ...): decompose just
    # those, since decomposing everything would also break up ops that map well (attention with a
    # boolean mask), and repeat while that helps. The last report lists what really blocks.
    chosen: dict[Any, Any] = {}
    program = ep
    report = Report()
    for _ in range(DECOMPOSE_ROUNDS):
        importer = Importer(program, weight_type, act_type, func_name, captured.prefix)
        try:
            result = importer.run()
            break
        except ImportFailed as failed:
            report = failed.report
            new = {t: d for t, d in decompositions_for(importer.missing).items() if t not in chosen}
            if not new:
                raise ChiplexError(failed.report.message(what)) from None
            chosen |= new
            try:
                program = decompose(ep, chosen)
            except Exception:  # noqa: BLE001 - keep the report if decomposition itself fails
                raise ChiplexError(failed.report.message(what)) from None
    else:
        raise ChiplexError(report.message(what))
    try:
        result.verify()
    except VerifyException as e:
        raise ChiplexError(
            f"imported IR of {what} does not verify (an importer bug): {e}"
        ) from None
    for note in captured.notes + importer.notes:
        warnings.warn(f"{what}: {note}", ImportNote, stacklevel=3)
    return result, importer.const_values


@dataclass(frozen=True)
class ImportStats:
    ops: int
    """Compute ops (everything but nn.param, nn.constant and func.return)."""
    params: int
    """Distinct nn.param ops."""
    param_elements: int
    param_bytes: int
    flops: int
    matrix_flops: int


def module_stats(module: ModuleOp) -> ImportStats:
    """Op count, parameter elements and bytes, flops of an imported module."""
    from chiplex.ir.types import numel, tensor_bytes

    ops = params = elements = nbytes = flops = matrix = 0
    for op in module.walk():
        if isinstance(op, nn.ParamOp):
            t = cast(TensorType, op.result.type)
            params += 1
            elements += numel(t)
            nbytes += tensor_bytes(t)
        elif isinstance(op, nn.NNOp) and not isinstance(op, nn.ConstantOp):
            ops += 1
            f = op.flops()
            flops += f
            if isinstance(op, nn.MatmulOp | nn.BatchMatmulOp | nn.Conv2dOp):
                matrix += f
    return ImportStats(ops, params, elements, nbytes, flops, matrix)
