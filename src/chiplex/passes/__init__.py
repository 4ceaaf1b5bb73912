"""chiplex's module passes, registered by name (a new pass: one file plus one line here)."""

from __future__ import annotations

import json
from collections.abc import Callable

from xdsl.passes import ModulePass


def _annotate_costs() -> type[ModulePass]:
    from chiplex.passes.annotate_costs import AnnotateCosts

    return AnnotateCosts


def _place() -> type[ModulePass]:
    from chiplex.passes.place import Place

    return Place


def _legalize_placement() -> type[ModulePass]:
    from chiplex.passes.legalize_placement import LegalizePlacement

    return LegalizePlacement


def _insert_transfers() -> type[ModulePass]:
    from chiplex.passes.insert_transfers import InsertTransfers

    return InsertTransfers


def _split_chiplets() -> type[ModulePass]:
    from chiplex.passes.split_chiplets import SplitChiplets

    return SplitChiplets


def _shard_params() -> type[ModulePass]:
    from chiplex.passes.shard_params import ShardParams

    return ShardParams


PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    "shard-params": _shard_params,
    "annotate-costs": _annotate_costs,
    "place": _place,
    "legalize-placement": _legalize_placement,
    "insert-transfers": _insert_transfers,
    "split-chiplets": _split_chiplets,
}


def default_pipeline(target: str, strategy: str = "dp") -> str:
    if not target.replace("-", "").replace("_", "").isalnum():
        target = json.dumps(target)  # a TOML path: quoted, as the pipeline syntax needs
    # shard-params changes nothing unless a parameter is too large for one chip.
    return (
        f"shard-params{{target={target}}},"
        f"annotate-costs{{target={target}}},place{{strategy={strategy}}},legalize-placement,"
        "insert-transfers,split-chiplets"
    )


def register_pass(pass_class: type[ModulePass]) -> type[ModulePass]:
    """Make a user pass available to pipelines by its `name` (usable as a class decorator)."""
    PASSES[pass_class.name] = lambda: pass_class
    return pass_class


def load_plugin(path: str) -> list[str]:
    """Import a Python file and register every ModulePass it defines; return their names."""
    import importlib.util
    import inspect
    from pathlib import Path

    from chiplex.errors import ChiplexError

    file = Path(path)
    if not file.is_file():
        raise ChiplexError(f"pass plugin not found: {file}")
    spec = importlib.util.spec_from_file_location(f"chiplex_plugin_{file.stem}", file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - user code: report it as a located user error
        raise ChiplexError(
            f"{file}: failed to load pass plugin: {type(err).__name__}: {err}"
        ) from None
    names = []
    for _, value in inspect.getmembers(module, inspect.isclass):
        if issubclass(value, ModulePass) and value.__module__ == module.__name__:
            register_pass(value)
            names.append(value.name)
    if not names:
        raise ChiplexError(f"{file}: defines no ModulePass subclass")
    return names
