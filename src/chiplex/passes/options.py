"""Pass options as a user types them: checked per option, sizes with units, errors that name the
pass and the option.

A pass's options are its dataclass fields (xDSL's `ArgSpecConvertible`). xDSL converts the values
of `my-pass{factor=abc}` itself, but its errors name neither the pass nor the option ("Incompatible
types: given ('abc',), expected <class 'int'>"), a misspelt option gets no suggestion, a float
option refuses `fraction=1`, and an int option takes `true`. `pass_from_spec` checks each option
first and says `my-pass{factor}: expected a whole number, got 'abc'`; an option declared `ByteSize`
takes what a target TOML's sizes take (`max_bytes="13 MiB"`, `max_bytes=512KiB`, or bytes), and a
`Literal["fast", "exact"]` option lists its choices. `option_type_problem` refuses, when a plugin
is loaded, an option type no pipeline string can give (`list[int]`).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import warnings
from collections.abc import Callable, Iterable
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from xdsl.passes import ModulePass, PassPipeline
from xdsl.utils.arg_spec import ArgSpec, parse_pipeline
from xdsl.utils.exceptions import ArgSpecParseError

from chiplex.errors import ChiplexError, ChiplexWarning
from chiplex.targets.schema import MAX_BYTES, Size, parse_size


class _ByteSizeMarker:
    def __repr__(self) -> str:
        return "ByteSize"


BYTE_SIZE = _ByteSizeMarker()
ByteSize = Annotated[int, BYTE_SIZE]
"""A pass option in bytes that also takes a size with a unit, as target TOML sizes do:
`max_bytes: ByteSize | None = None` accepts `max_bytes=13631488`, `max_bytes=13MiB` and
`max_bytes="1.5 GiB"` (KiB, MiB, GiB, TiB are powers of 1024; kB, MB, GB, TB of 1000). The pass
sees an `int`."""

_EXPONENT = re.compile(r"[-+]?[0-9]+[eE][-+]?[0-9]+")
_SIZE = Size(min=0, max=MAX_BYTES, unit="bytes")
_EXPECTED = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}


class PassOptionError(ChiplexError):
    """A pass option the pipeline string gives is unknown or has a value of the wrong kind."""


def _alternatives(hint: Any) -> tuple[Any, ...]:
    """The types a `X | None` or `Union[...]` hint allows, None left out."""
    if get_origin(hint) in (Union, UnionType):
        return tuple(arg for arg in get_args(hint) if arg is not NoneType)
    return (hint,)


def _is_byte_size(hint: Any) -> bool:
    return any(
        get_origin(alt) is Annotated and BYTE_SIZE in alt.__metadata__
        for alt in _alternatives(hint)
    )


def _convert(pass_name: str, key: str, values: tuple[Any, ...], hint: Any) -> tuple[Any, ...]:
    """The option's values made what the field's type wants, or a PassOptionError saying what was
    expected. Types other than one plain int, float, bool, str, Literal or ByteSize (tuples,
    unions) are left to xDSL."""
    where = f"{pass_name}{{{key}}}"
    optional = get_origin(hint) in (Union, UnionType) and NoneType in get_args(hint)
    alternatives = _alternatives(hint)
    if not values:
        if optional:
            return values
        raise PassOptionError(f"{where}: expected a value ({pass_name}{{{key}=...}})")
    if _is_byte_size(hint):
        if len(values) == 1:
            errors: list[str] = []
            value = values[0]
            _SIZE.check(value, where, errors)
            if errors:
                raise PassOptionError(errors[0])
            size = parse_size(value)
            assert size is not None  # _SIZE.check accepted it
            return (size,)
        raise PassOptionError(f"{where}: expected one size, got {len(values)} values")
    if len(alternatives) == 1 and get_origin(alternatives[0]) is Literal:
        choices = get_args(alternatives[0])
        if len(values) == 1 and values[0] in choices:
            return values
        shown = ",".join(repr(v) if isinstance(v, str) else str(v).lower() for v in values)
        expected = ", ".join(repr(c) if isinstance(c, str) else str(c).lower() for c in choices)
        raise PassOptionError(f"{where}: expected one of {expected}, got {shown}")
    if len(alternatives) != 1 or alternatives[0] not in _EXPECTED:
        return values
    kind = alternatives[0]
    if len(values) != 1:
        shown = ",".join(str(v) for v in values)
        raise PassOptionError(
            f"{where}: expected {_EXPECTED[kind]}, got {len(values)} values ({shown})"
        )
    value = values[0]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return (float(value),)
    # xDSL's lexer reads `1e-3` (no decimal point) as a name, not a number.
    if kind is float and isinstance(value, str) and _EXPONENT.fullmatch(value):
        return (float(value),)
    if isinstance(value, kind) and not (kind is not bool and isinstance(value, bool)):
        return values
    hint_text = ""
    if kind is str:
        hint_text = f' (quote it: {key}="{value}")'
    elif kind is bool and value in (0, 1, "True", "False"):
        hint_text = " (write true or false)"
    shown = repr(value) if isinstance(value, str) else str(value).lower()
    raise PassOptionError(f"{where}: expected {_EXPECTED[kind]}, got {shown}{hint_text}")


def _option_type_ok(hint: Any) -> bool:
    if _is_byte_size(hint):
        return True
    for alt in _alternatives(hint):
        if get_origin(alt) is Literal:
            if not all(type(arg) in _EXPECTED for arg in get_args(alt)):
                return False
        elif get_origin(alt) is tuple:
            if not all(arg in _EXPECTED or arg is Ellipsis for arg in get_args(alt)):
                return False
        elif alt not in _EXPECTED:
            return False
    return True


def option_type_problem(pass_class: type[ModulePass]) -> str | None:
    """Why a pass's options cannot come from a pipeline string, or None: an annotation that does
    not resolve at run time, or a type other than int, float, bool, str, ByteSize, a Literal of
    values, a tuple of those, each optionally `| None`."""
    try:
        hints = get_type_hints(pass_class, include_extras=True)
    except Exception as err:  # noqa: BLE001 - user code: say what failed
        return (
            f"its option types do not resolve ({type(err).__name__}: {err}); import what they "
            "name at run time, not under TYPE_CHECKING"
        )
    for field in dataclasses.fields(pass_class):  # type: ignore[arg-type]
        if field.init and field.name in hints and not _option_type_ok(hints[field.name]):
            hint = hints[field.name]
            shown = hint.__name__ if isinstance(hint, type) else str(hint)
            return (
                f"option '{field.name}' has type {shown}, which no pipeline string gives (int, "
                "float, bool, str, ByteSize, Literal['a', 'b'], tuple[int, ...], each may be "
                "| None)"
            )
    return None


def pass_from_spec(pass_class: type[ModulePass], spec: ArgSpec) -> ModulePass:
    """`pass_class` with the options of `spec` (one pass of a pipeline string), each checked."""
    fields = {f.name: f for f in dataclasses.fields(pass_class) if f.init and f.name != "name"}
    problem = option_type_problem(pass_class)
    if problem:  # a plugin's is checked when it is loaded; this is for one registered otherwise
        raise PassOptionError(f"{spec.name}: {problem}")
    hints = get_type_hints(pass_class, include_extras=True)
    parameters: dict[str, tuple[Any, ...]] = {}
    for key, values in spec.normalize_parameter_names().parameters.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            guess = f" (did you mean '{close[0]}'?)" if close else ""
            known = ", ".join(fields) if fields else "none"
            raise PassOptionError(f"{spec.name} has no option '{key}'{guess}; its options: {known}")
        parameters[key] = _convert(spec.name, key, values, hints[key]) if key in hints else values
    missing = [
        key
        for key, f in fields.items()
        if key not in parameters
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and not (
            key in hints
            and get_origin(hints[key]) in (Union, UnionType)
            and NoneType in get_args(hints[key])
        )
    ]
    if missing:
        example = " ".join(f"{key}=..." for key in missing)
        raise PassOptionError(
            f"{spec.name} needs option{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}: {spec.name}{{{example}}}"
        )
    try:
        return pass_class.from_spec(ArgSpec(spec.name, parameters))
    except (ValueError, TypeError) as err:
        raise PassOptionError(f"{spec.name}: {err}") from None


def parse_pass_pipeline(
    available: dict[str, Callable[[], type[ModulePass]]], spec: str
) -> PassPipeline:
    """`PassPipeline.parse_spec` with each pass's options checked by `pass_from_spec`. Raises
    xDSL's errors for the syntax and for unknown passes, PassOptionError for options."""
    specs = list(parse_pipeline(spec))
    unknown = [s.name for s in specs if s.name not in available]
    if unknown:
        raise ValueError(f"Unrecognized passes: {unknown}")
    return PassPipeline(tuple(pass_from_spec(available[s.name](), s) for s in specs))


def pipeline_hint(error: str, spec: str, names: Iterable[str]) -> str:
    """What to do about xDSL's error for a pipeline string: the pass name it resembles, or the
    quotes a file path or a size with a decimal point needs; "" when there is nothing to add."""
    from chiplex.passes import unknown_pass_hint

    if "Unknown token" in error:
        return ' (quote option values that are file paths: annotate-costs{target="my_mcm.toml"})'
    if "Malformed pass arguments" in error and (
        size := re.search(r"(\w+)=([0-9]+\.[0-9]*)\s*([A-Za-z]+)", spec)
    ):
        return f' (quote a size with a decimal point: {size[1]}="{size[2]} {size[3]}")'
    hint = unknown_pass_hint(error, names)
    if not hint and "Unrecognized passes" in error:
        hint = (
            " (a pass of your own: load its file with --plugin my_pass.py, or call "
            "chiplex.passes.register_pass(MyPass) in Python)"
        )
    return hint


def warn_unused_plugin_passes(
    plugins: dict[str, list[str]],
    spec: str | None,
    option: str,
    *,
    known: Iterable[str],
    rest: str = "",
    default: str = "",
) -> None:
    """A ChiplexWarning for each --plugin file none of whose passes is in the pipeline `spec`
    (empty: `default`, e.g. the default pipeline, which runs chiplex's passes only), since that
    plugin changes nothing (no warning when the pipeline names a pass not in `known`: its error
    comes next). The message suggests `option 'its-pass<rest>'`."""
    if not plugins:
        return
    try:
        used = {s.name for s in parse_pipeline(spec)} if spec else set()
    except (Exception, ArgSpecParseError):  # noqa: BLE001 - reported when parsed for real
        return
    if used - set(known):  # an unknown pass name: its error says more than this warning
        return
    where = (
        f"the pipeline ({option})" if spec else f"{default or 'an empty pipeline'} (no {option})"
    )
    for path, names in plugins.items():
        if names and not used.intersection(names):
            which = f"pass {names[0]} is" if len(names) == 1 else f"passes {', '.join(names)} are"
            warnings.warn(
                ChiplexWarning(
                    f"--plugin {path}: its {which} not in {where}, so it changes nothing; "
                    f"add it, e.g. {option} '{names[0]}{rest}'"
                ),
                stacklevel=2,
            )
