"""Model specs (`pkg.module:factory`, `file.py:factory`, zoo names) and example inputs."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.fx
from xdsl.dialects.builtin import (
    ModuleOp,
)

from chiplex.errors import ChiplexError
from chiplex.ir.torch_import.api import import_module, symbol
from chiplex.ir.torch_import.values import (
    TORCH_DTYPES,
)
from chiplex.ir.types import parse_dtype

# -- specs: `pkg.module:factory`, zoo names, input shapes ----------------------------------------


def parse_input_spec(
    shapes: Sequence[str] | str, dtypes: Sequence[str] | str | None = None
) -> tuple[torch.Tensor, ...]:
    """Example inputs from `1x128`-style shapes and dtype names, one per input.

    Each entry may hold several comma-separated values; a single dtype applies to every input.
    Floating-point inputs are random normal, integer inputs zeros (valid ids for any table).
    """
    shape_list = [s for entry in _as_list(shapes) for s in entry.split(",") if s.strip()]
    dtype_list = [d for entry in _as_list(dtypes or []) for d in entry.split(",") if d.strip()]
    if not shape_list:
        raise ChiplexError("no input shape given (e.g. --input-shape 1x128)")
    if len(dtype_list) == 1:
        dtype_list *= len(shape_list)
    elif dtype_list and len(dtype_list) != len(shape_list):
        raise ChiplexError(
            f"{len(shape_list)} input shapes but {len(dtype_list)} dtypes: give one dtype per input or one for all"
        )
    inputs: list[torch.Tensor] = []
    gen = torch.Generator().manual_seed(0)
    for i, text in enumerate(shape_list):
        text = text.strip()
        try:
            dims = [int(d) for d in text.lower().split("x")] if text not in ("", "scalar") else []
        except ValueError:
            raise ChiplexError(
                f"bad input shape '{text}': expected sizes joined by 'x', like 1x128"
            ) from None
        if any(d < 0 for d in dims):
            raise ChiplexError(f"bad input shape '{text}': sizes must be >= 0")
        name = dtype_list[i].strip().lower() if dtype_list else "float32"
        if name not in TORCH_DTYPES:
            raise ChiplexError(
                f"unknown input dtype '{name}': expected one of float32, bf16, float16, int64, int32, bool, ..."
            )
        dtype = TORCH_DTYPES[name]
        try:
            if dtype.is_floating_point:
                inputs.append(torch.randn(dims, generator=gen).to(dtype))
            else:
                inputs.append(torch.zeros(dims, dtype=dtype))
        except (RuntimeError, MemoryError) as err:  # a shape too large to allocate
            shape = "x".join(map(str, dims))
            raise ChiplexError(f"input {i} of shape {shape}: cannot be allocated ({err})") from None
    return tuple(inputs)


def _as_list(x: Sequence[str] | str) -> list[str]:
    return [x] if isinstance(x, str) else list(x)


_SPEC = re.compile(r"^(?P<module>[^:()]+?)(?::(?P<attr>[\w.]+))?(?:\((?P<args>.*)\))?$", re.DOTALL)


def _parse_call_args(text: str, spec: str) -> tuple[list[Any], dict[str, Any]]:
    """Literal arguments of `factory(12, hidden=64)` in a spec."""
    try:
        call = ast.parse(f"f({text})", mode="eval").body
        assert isinstance(call, ast.Call)
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg is not None}
    except (SyntaxError, ValueError, AssertionError):
        raise ChiplexError(
            f"bad model spec '{spec}': factory arguments must be Python literals, like bert(2, hidden=64)"
        ) from None
    return args, kwargs


def _resolve_factory(spec: str) -> tuple[Callable[..., Any], list[Any], dict[str, Any], str]:
    spec = spec.strip()
    m = _SPEC.match(spec)
    if m is None:
        raise ChiplexError(f"bad model spec '{spec}': expected pkg.module:factory or a zoo name")
    mod_name, attr, arg_text = m.group("module"), m.group("attr"), m.group("args")
    args, kwargs = _parse_call_args(arg_text, spec) if arg_text is not None else ([], {})
    if attr is None and mod_name.endswith(".py"):
        if not Path(mod_name).is_file():
            raise ChiplexError(f"{mod_name}: no such file")
        raise ChiplexError(
            f"{mod_name} is a Python file: name the function in it that builds the model, "
            f"'{mod_name}:FACTORY' (with --input-shape and --dtype for its input)"
        )
    if attr is None:
        # A bare name is a zoo model: `bert_base` or `bert(2, hidden=64)`.
        from chiplex import models

        if mod_name in models.ZOO and arg_text is None:
            return models.ZOO[mod_name].factory, [], {}, mod_name
        factory = getattr(models, mod_name, None)
        if not callable(factory) or mod_name.startswith("_"):
            raise ChiplexError(
                f"unknown model '{mod_name}': expected pkg.module:factory or one of the zoo "
                f"models {', '.join(models.ZOO)}"
            )
        return factory, args, kwargs, mod_name
    if mod_name.endswith(".py"):
        path = Path(mod_name)
        if not path.is_file():
            raise ChiplexError(f"bad model spec '{spec}': no such file {path}")
        loader_spec = importlib.util.spec_from_file_location(path.stem, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ChiplexError(f"bad model spec '{spec}': cannot load {path}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules.setdefault(path.stem, module)
        try:
            loader_spec.loader.exec_module(module)
        except Exception as e:  # noqa: BLE001 - user code: report, do not crash
            raise ChiplexError(f"error while loading {path}: {type(e).__name__}: {e}") from None
    else:
        # As `python -m` does: a module beside the user (`mymodel:make` run where mymodel.py is)
        # imports, though the `chiplex` console script does not put the working directory on the path.
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            raise ChiplexError(f"bad model spec '{spec}': cannot import {mod_name}: {e}") from None
        except Exception as e:  # noqa: BLE001
            raise ChiplexError(
                f"error while importing {mod_name}: {type(e).__name__}: {e}"
            ) from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ChiplexError(f"bad model spec '{spec}': {mod_name} has no attribute '{attr}'")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ChiplexError(f"bad model spec '{spec}': {attr} is not callable")
    return obj, args, kwargs, attr.split(".")[-1]


def build_model(spec: str) -> tuple[torch.nn.Module, str]:
    """The module a spec's factory returns, and the function name it gets (the factory's)."""
    factory, args, kwargs, name = _resolve_factory(spec)
    try:
        module = factory(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - user code
        raise ChiplexError(f"model factory '{spec}' failed: {type(e).__name__}: {e}") from None
    if not isinstance(module, torch.nn.Module):
        raise ChiplexError(
            f"model factory '{spec}' returned {type(module).__name__}, not a torch.nn.Module"
        )
    return module, symbol(name)


def load_factory(spec: str) -> torch.nn.Module:
    """Call the factory a spec names and return its module.

    Specs: `pkg.module:factory`, `path/to/file.py:factory`, a zoo name (`bert_base`), and any of
    these with literal arguments: `chiplex.models:bert(2, hidden=64)`.
    """
    return build_model(spec)[0]


def spec_inputs(
    spec: str,
    module: torch.nn.Module,
    input_shapes: Sequence[str] | None,
    dtypes: Sequence[str] | None,
) -> tuple[torch.Tensor, ...]:
    """The inputs to import `module` with: from `--input-shape`/`--dtype`, else its `example_inputs()`."""
    what = type(module).__name__
    required, accepted = _forward_arity(module)
    if accepted == len(required):
        count = _count(len(required), "input")
    elif accepted is None:
        count = f"at least {_count(len(required), 'input')}"
    else:
        count = f"{len(required)} to {accepted} inputs"
    takes = f"{what}.forward takes {count}" + (f" ({', '.join(required)})" if required else "")
    if input_shapes:
        inputs = parse_input_spec(input_shapes, dtypes)
        if len(inputs) < len(required) or (accepted is not None and len(inputs) > accepted):
            raise ChiplexError(
                f"{spec}: {takes}, but --input-shape gave {len(inputs)}: give one --input-shape "
                "(and --dtype) per input, in order"
            )
        return inputs
    if dtypes:
        raise ChiplexError("--dtype needs --input-shape (one dtype per input shape)")
    make = getattr(module, "example_inputs", None)
    if not callable(make):
        raise ChiplexError(
            f"{spec}: {what} has no example_inputs(); give the input shapes, one --input-shape "
            f"(and --dtype) per input{f' ({takes})' if required else ''}, like --input-shape "
            "1x128 --dtype int64"
        )
    return tuple(make())


def _forward_arity(module: torch.nn.Module) -> tuple[list[str], int | None]:
    """The names of `module.forward`'s required positional inputs, and how many positional inputs
    it accepts (None: any number, `*args`)."""
    try:
        parameters = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):  # a builtin or C-implemented forward: nothing to check
        return [], None
    positional = [
        p
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    required = [p.name for p in positional if p.default is inspect.Parameter.empty]
    varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters)
    return required, None if varargs else len(positional)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def load_model_spec(
    spec: str,
    input_shapes: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    weight_dtype: str | None = "i8",
    activation_dtype: str | None = "bf16",
    name: str | None = None,
) -> ModuleOp:
    """Build the module a spec names and import it (`chiplex import-torch` and `compile SPEC`).

    Without `input_shapes` the module must define `example_inputs()` (every zoo model does).
    The function is named `name`, by default after the factory (`bert_base`).
    """
    parse_dtype(weight_dtype)
    parse_dtype(activation_dtype)
    module, default_name = build_model(spec)
    inputs = spec_inputs(spec, module, input_shapes, dtypes)
    return import_module(
        module,
        inputs,
        weight_dtype=weight_dtype,
        activation_dtype=activation_dtype,
        name=name or default_name,
    )
