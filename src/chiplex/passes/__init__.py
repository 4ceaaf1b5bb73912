"""chiplex's module passes, registered by name (a new pass: one file plus one line here)."""

from __future__ import annotations

import ast
import difflib
import json
import re
from collections.abc import Callable, Iterable

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


def _host_embeddings() -> type[ModulePass]:
    from chiplex.passes.host_embeddings import HostEmbeddings

    return HostEmbeddings


def _rematerialize() -> type[ModulePass]:
    from chiplex.passes.rematerialize import Rematerialize

    return Rematerialize


def _split_rows() -> type[ModulePass]:
    from chiplex.passes.split_rows import SplitRows

    return SplitRows


def _tensor_parallel() -> type[ModulePass]:
    from chiplex.passes.tensor_parallel import TensorParallel

    return TensorParallel


PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    "host-embeddings": _host_embeddings,
    "shard-params": _shard_params,
    "split-rows": _split_rows,
    "tensor-parallel": _tensor_parallel,
    "rematerialize": _rematerialize,
    "annotate-costs": _annotate_costs,
    "place": _place,
    "legalize-placement": _legalize_placement,
    "insert-transfers": _insert_transfers,
    "split-chiplets": _split_chiplets,
}


BUILTIN_PASSES = frozenset(PASSES)
"""chiplex's own pass names, which a user pass may not take."""


def unknown_pass_hint(error: str, names: Iterable[str]) -> str:
    """ " (did you mean 'annotate-costs'?)" for xDSL's "Unrecognized passes: ['anotate-costs']", or ""."""
    found = re.search(r"Unrecognized passes: (\[.*\])", error)
    if found is None:
        return ""
    known = list(names)
    guesses = [
        f"'{close[0]}' for '{name}'"
        for name in ast.literal_eval(found[1])
        if (close := difflib.get_close_matches(str(name), known, n=1, cutoff=0.75))
    ]
    return f" (did you mean {', '.join(guesses)}?)" if guesses else ""


def pipeline_value(value: str) -> str:
    """`value` as a pass option in a pipeline string: bare when it is a plain name, else quoted
    (a TOML path such as `my_mcm.toml` or `/tmp/a b.toml` is not a pipeline token)."""
    import re

    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", value):
        return value
    return json.dumps(value, ensure_ascii=False)


def default_pipeline(
    target: str,
    strategy: str = "dp",
    *,
    split_rows: int | None = None,
    tensor_parallel: int | None = None,
    checkpoint: str | None = None,
) -> str:
    # host-embeddings and shard-params change nothing unless a parameter is too large for one chip,
    # rematerialize nothing unless a value derived from parameters alone has several readers;
    # split-rows{max_bytes=N} (then also tensor-parallel{max_bytes=M}) are what `compile_module`
    # adds when the placement fails without them.
    return (
        f"host-embeddings{{target={pipeline_value(target)}}},"
        f"shard-params{{target={pipeline_value(target)}}},"
        "rematerialize,"
        + (f"tensor-parallel{{chunks=2 max_bytes={tensor_parallel}}}," if tensor_parallel else "")
        + (f"split-rows{{chunks=2 max_bytes={split_rows}}}," if split_rows else "")
        + f"annotate-costs{{target={pipeline_value(target)}}},"
        f"place{{strategy={pipeline_value(strategy)}"
        + (f" checkpoint={pipeline_value(checkpoint)}" if checkpoint else "")
        + "},legalize-placement,"
        "insert-transfers,split-chiplets"
    )


def _pass_class_problem(pass_class: type[ModulePass]) -> str | None:
    """Why `pass_class` cannot be registered (no name or one a pipeline cannot spell, options but
    no @dataclass or of a type no pipeline string gives, a chiplex pass's name, a wrong `apply`),
    or None."""
    import inspect

    name = getattr(pass_class, "name", None)
    if not isinstance(name, str) or not name:
        kebab = re.sub(r"(?<!^)(?=[A-Z])", "-", pass_class.__name__).lower()
        return f'pass class {pass_class.__name__} has no name: add name = "{kebab}"'
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        return f"pass name '{name}' cannot be written in a pipeline: use letters, digits, - and _"
    # Fields a class declares become options only when @dataclass processes that class itself.
    declared = [o for o in vars(pass_class).get("__annotations__", {}) if o != "name"]
    if declared and "__dataclass_fields__" not in vars(pass_class):
        return (
            f"pass class {pass_class.__name__} declares options ({', '.join(declared)}) but is not "
            "a dataclass: decorate it with @dataclass(frozen=True)"
        )
    if name in BUILTIN_PASSES and PASSES[name]() is not pass_class:
        return (
            f"pass '{name}' ({pass_class.__name__}) has the name of a chiplex pass: choose another"
        )
    from chiplex.passes.options import option_type_problem

    problem = option_type_problem(pass_class)
    if problem:
        return f"pass class {pass_class.__name__}: {problem}"
    try:
        inspect.signature(pass_class.apply).bind(None, None, None)
    except TypeError:
        shown = inspect.signature(pass_class.apply)
        return f"pass class {pass_class.__name__}: apply must take (self, ctx, op), not {shown}"
    return None


def register_pass(pass_class: type[ModulePass]) -> type[ModulePass]:
    """Make a user pass available to pipelines by its `name` (usable as a class decorator).
    Raises ChiplexError for a class that cannot be one (`_pass_class_problem`: no name, options
    without @dataclass, a chiplex pass's name, ...)."""
    from chiplex.errors import ChiplexError

    problem = _pass_class_problem(pass_class)
    if problem:
        raise ChiplexError(problem)
    PASSES[pass_class.name] = lambda: pass_class
    return pass_class


def load_plugins(paths: Iterable[str]) -> dict[str, list[str]]:
    """`load_plugin` for each file (the CLI's `--plugin`s); the pass names each file defines. Two
    files may not define one pass name (one file given twice is loaded once)."""
    from pathlib import Path

    origins: dict[str, str] = {}
    unique: dict[str, str] = {}
    for path in paths:
        unique.setdefault(str(Path(path).resolve()), path)
    return {path: load_plugin(path, _origins=origins) for path in unique.values()}


def load_plugin(path: str, *, _origins: dict[str, str] | None = None) -> list[str]:
    """Import a Python file and register every ModulePass it defines; return their names. A file
    that defines none but adds a placement strategy to `STRATEGIES` is a plugin too."""
    import hashlib
    import importlib.util
    import inspect
    import sys
    import traceback
    from pathlib import Path

    from chiplex.errors import ChiplexError, ChiplexTimeout

    file = Path(path)
    if not file.is_file():
        raise ChiplexError(f"pass plugin not found: {file}")
    if file.suffix != ".py":
        raise ChiplexError(f"{file}: a pass plugin must be a Python file (.py)")
    # One module per file: two plugins both called passes.py must not share (and overwrite) one
    # entry of sys.modules, where their string annotations are resolved.
    digest = hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:8]
    module_name = f"chiplex_plugin_{''.join(c if c.isalnum() else '_' for c in file.stem)}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise ChiplexError(f"{file}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs: dataclasses (and anything else resolving string annotations, as
    # `from __future__ import annotations` makes them) look the module up in sys.modules.
    sys.modules[module_name] = module
    from chiplex.passes.strategies import STRATEGIES

    strategies_before = dict(STRATEGIES)
    # As when Python runs a script: modules beside it (`from my_helpers import ...`) import.
    # Appended, so that they never shadow an installed package.
    if str(file.resolve().parent) not in sys.path:
        sys.path.append(str(file.resolve().parent))
    try:
        spec.loader.exec_module(module)
    except BaseException as err:  # noqa: BLE001 - user code: report it as a located user error
        sys.modules.pop(module_name, None)
        if isinstance(err, KeyboardInterrupt | ChiplexTimeout):
            raise
        frames = [
            f
            for f in traceback.extract_tb(err.__traceback__)
            if Path(f.filename).resolve() == file.resolve()  # the frame's path is absolute
        ]
        where = f"{file}:{frames[-1].lineno}" if frames else str(file)
        if isinstance(err, SyntaxError) and err.lineno:
            where = f"{file}:{err.lineno}:{err.offset or 1}"
        raise ChiplexError(
            f"{where}: error: failed to load pass plugin: {type(err).__name__}: {err}"
        ) from None
    classes = [
        value
        for _, value in inspect.getmembers(module, inspect.isclass)
        if issubclass(value, ModulePass)
        and value.__module__ == module.__name__
        and not inspect.isabstract(value)  # a base class of the file's passes
    ]
    if not classes:
        if any(STRATEGIES[n] is not strategies_before.get(n) for n in STRATEGIES):
            return []  # a placement strategy's file: `--strategy NAME` uses it
        raise ChiplexError(
            f"{file}: defines no ModulePass subclass (nor adds a placement strategy to "
            "chiplex.passes.strategies.STRATEGIES)"
        )
    names: dict[str, type[ModulePass]] = {}
    for value in classes:
        try:
            where = f"{file}:{inspect.getsourcelines(value)[1]}"
        except (OSError, TypeError):
            where = str(file)
        problem = _pass_class_problem(value)
        if problem:
            raise ChiplexError(f"{where}: error: {problem}")
        origin = (_origins or {}).get(value.name)
        if value.name in names or origin is not None:
            other = names[value.name].__name__ if value.name in names else origin
            raise ChiplexError(
                f"{where}: error: pass '{value.name}' ({value.__name__}) is already defined "
                f"by {other}: choose another name"
            )
        names[value.name] = value
    for value in classes:
        register_pass(value)
        if _origins is not None:
            _origins[value.name] = str(file)
    return list(names)
