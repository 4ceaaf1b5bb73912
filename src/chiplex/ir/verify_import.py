"""Verified imports: run a torch module and its imported IR on the same random inputs, compare.

The IR runs on the reference interpreter (`chiplex.ir.interpret`) with the module's own weights,
supplied by state-dict name; the importer's folded constants (masks built from buffers, inference
batch norm folded into a per-channel scale and shift) overlay them. Both sides compute in float32:
the IR's declared dtypes (`i8` weights, `bf16` activations) describe costs, not numerics, and a
module with other floating-point weights is compared as its float32 copy.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils import _pytree
from xdsl.dialects.builtin import ModuleOp

from chiplex.errors import ChiplexError
from chiplex.ir.interpret import Comparison, compare_outputs, random_inputs, run

__all__ = ["Verification", "module_parameters", "verify_import"]


@dataclass(frozen=True)
class Verification:
    comparison: Comparison
    seed: int
    outputs: int

    def summary(self, rtol: float) -> str:
        c = self.comparison
        verdict = "ok" if c.within(rtol) else "FAILED"
        return (
            f"verify (seed {self.seed}, {self.outputs} output{'s' if self.outputs != 1 else ''}): "
            f"max abs error {c.max_abs:.3g}, max rel error {c.max_rel:.3g} "
            f"(tolerance {rtol:g}): {verdict}"
        )


def module_parameters(
    model: torch.nn.Module, constants: dict[str, torch.Tensor] | None = None
) -> dict[str, np.ndarray]:
    """Every parameter and buffer of `model` by state-dict name, overlaid by the importer's
    constants (`import_with_constants`' second result), as numpy arrays."""
    tensors: dict[str, torch.Tensor] = {}
    tensors |= dict(model.named_parameters(remove_duplicate=False))
    tensors |= dict(model.named_buffers(remove_duplicate=False))
    tensors |= constants or {}
    out: dict[str, np.ndarray] = {}
    for name, t in tensors.items():
        t = t.detach()
        out[name] = (t.float() if t.is_floating_point() else t).cpu().numpy()
    return out


def _torch_inputs(
    example: Sequence[torch.Tensor], ir: ModuleOp, seed: int
) -> tuple[torch.Tensor, ...]:
    """Random inputs shaped like the examples: normal floats, integers within the tables they
    index (read off the IR), seeded."""
    drawn = random_inputs(ir, seed)
    if len(drawn) != len(example):
        raise ChiplexError(
            f"the imported function takes {len(drawn)} inputs but {len(example)} were given"
        )
    out: list[torch.Tensor] = []
    for value, ex in zip(drawn, example, strict=True):
        t = torch.from_numpy(np.ascontiguousarray(value))
        out.append(t.float() if ex.is_floating_point() else t.to(ex.dtype))
    return tuple(out)


def verify_import(
    model: torch.nn.Module,
    example_inputs: Sequence[torch.Tensor],
    ir: ModuleOp,
    constants: dict[str, torch.Tensor] | None = None,
    *,
    seed: int = 0,
) -> Verification:
    """Compare `model`'s eager outputs with the interpreted IR's on seeded random inputs."""
    inputs = _torch_inputs(example_inputs, ir, seed)
    reference = model
    if any(p.is_floating_point() and p.dtype != torch.float32 for p in model.parameters()):
        reference = copy.deepcopy(model).float()
    was_training = reference.training
    try:
        with torch.no_grad():
            expected_tree = reference.eval()(*inputs)
    except Exception as e:  # noqa: BLE001 - user code: report, do not crash
        raise ChiplexError(
            f"verify: running {type(model).__name__} on random inputs failed: "
            f"{type(e).__name__}: {e}"
        ) from None
    finally:
        reference.train(was_training)
    expected = [
        t.float().numpy() for t in _pytree.tree_leaves(expected_tree) if isinstance(t, torch.Tensor)
    ]
    got = run(ir, [t.numpy() for t in inputs], module_parameters(model, constants))
    return Verification(compare_outputs(got, expected), seed, len(expected))


@dataclass(frozen=True)
class ImportedSpec:
    """What `import_spec` built: the IR, the module it came from and the data to run both."""

    ir: ModuleOp
    model: torch.nn.Module
    example_inputs: tuple[torch.Tensor, ...]
    constants: dict[str, torch.Tensor]


def import_spec(
    spec: str,
    input_shapes: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    weight_dtype: str | None = "i8",
    activation_dtype: str | None = "bf16",
    name: str | None = None,
) -> ImportedSpec:
    """`load_model_spec`, keeping the module, its example inputs and the importer's constants."""
    from chiplex.ir.torch_import import build_model, import_with_constants, parse_dtype
    from chiplex.ir.torch_import.specs import spec_inputs

    parse_dtype(weight_dtype)
    parse_dtype(activation_dtype)
    model, default_name = build_model(spec)
    inputs = spec_inputs(spec, model, input_shapes, dtypes)
    ir, constants = import_with_constants(
        model,
        inputs,
        weight_dtype=weight_dtype,
        activation_dtype=activation_dtype,
        name=name or default_name,
    )
    return ImportedSpec(ir, model, inputs, constants)
