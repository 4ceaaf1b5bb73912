"""The schemas of the two file formats users write or edit by hand: target TOML and schedule JSON.

One table per format (`TARGET_SCHEMA`, `SCHEDULE_SCHEMA`), checked by one small walker (`validate`)
before any value is used, so a bad file fails with `FILE: key.path: what was expected, got what` instead
of a crash deep inside, and no NaN, infinity, zero bandwidth or absurd size reaches the cost model or the
simulator. A new field is one line in the table: `"buffers_per_edge": Int(min=1, max=64, required=False)`.

Keys the schema does not know are ignored (so files written for a newer chiplex still load), except
when they look like a typo of a known key (`sram_byte`), which is an error naming the key it resembles.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from chiplex.errors import ChiplexError
from chiplex.ir.types import DTYPE_NAMES, canonical_dtype_name

MAX_CHIPS = 4096
"""The most chips a target or schedule may have (larger ones are certainly a typo)."""
MAX_BYTES = 2**50
"""1 PiB: the largest memory or message size accepted."""
MAX_SECONDS = 1e9
"""The longest op duration accepted in a schedule (about 30 years)."""
_MAX_REPORTED = 10


@dataclass(frozen=True)
class Spec:
    """One value's expected shape; `required` only matters inside a Table."""

    required: bool = True

    def check(self, value: Any, path: str, errors: list[str]) -> None:  # pragma: no cover
        raise NotImplementedError


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Number(Spec):
    """A finite real number with optional bounds (`above` is exclusive, `min`/`max` inclusive)."""

    min: float | None = None
    above: float | None = None
    max: float | None = None
    unit: str = ""

    def _what(self) -> str:
        parts = []
        if self.above is not None:
            parts.append(f"> {self.above:g}")
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        bounds = f" {' and '.join(parts)}" if parts else ""
        unit = f" ({self.unit})" if self.unit else ""
        return f"a finite number{bounds}{unit}"

    def _type_ok(self, value: Any) -> bool:
        return _is_number(value)

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        if not self._type_ok(value) or not math.isfinite(value):
            errors.append(f"{path}: expected {self._what()}, got {_show(value)}")
            return
        if (
            (self.above is not None and not value > self.above)
            or (self.min is not None and value < self.min)
            or (self.max is not None and value > self.max)
        ):
            shown = value if isinstance(value, int) else f"{value:g}"
            errors.append(f"{path}: expected {self._what()}, got {shown}")


@dataclass(frozen=True)
class Int(Number):
    """A whole number (an integral float such as TOML's `13e6` is accepted)."""

    def _what(self) -> str:
        return super()._what().replace("a finite number", "a whole number")

    def _type_ok(self, value: Any) -> bool:
        return _is_number(value) and (
            isinstance(value, int) or (math.isfinite(value) and float(value).is_integer())
        )


_SIZE_UNITS = {
    "B": 1,
    "kB": 10**3,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}
_SIZE_TEXT = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]+)\s*")


def parse_size(value: Any) -> int | None:
    """Bytes from a whole number or a size such as "13 MiB", "1.5 GiB" or "512 KB"; None if neither.

    KiB, MiB, GiB and TiB are powers of 1024 and kB (or KB), MB, GB and TB powers of 1000 (IEC 80000-13);
    a size that is not a whole number of bytes ("0.3 B") is None.
    """
    if _is_number(value):
        return int(value) if isinstance(value, int) or float(value).is_integer() else None
    if not isinstance(value, str) or not (match := _SIZE_TEXT.fullmatch(value)):
        return None
    unit = _SIZE_UNITS.get(match[2])  # case matters: "Mb" would be megabits
    if unit is None:
        return None
    # Exact: "1.1 MB" is 1,100,000 bytes, not float's 1,100,000.0000000002.
    number = Decimal(match[1]) * unit
    return int(number) if number == number.to_integral_value() else None


@dataclass(frozen=True)
class Size(Int):
    """A memory size in bytes: a whole number, or a string with a unit ("13 MiB", "512 KB")."""

    def _what(self) -> str:
        units = ", ".join(_SIZE_UNITS)
        return super()._what() + f" or a size like '13 MiB' (units: {units})"

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        size = parse_size(value)
        if size is None:
            errors.append(f"{path}: expected {self._what()}, got {_show(value)}")
            return
        found: list[str] = []
        super().check(size, path, found)
        if found and isinstance(value, str):
            found = [f"{path}: expected {self._what()}, got {value!r} ({size:,} bytes)"]
        errors.extend(found)


@dataclass(frozen=True)
class Str(Spec):
    choices: tuple[str, ...] = ()
    nonempty: bool = False

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {_show(value)}")
        elif self.choices and value not in self.choices:
            errors.append(f"{path}: expected one of {', '.join(self.choices)}, got {value!r}")
        elif self.nonempty and not value:
            errors.append(f"{path}: must not be empty")


@dataclass(frozen=True)
class DtypeName(Spec):
    """An element type's name or alias (`i8`, `int8`, `bfloat16`), as the cost model looks it up."""

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        if canonical_dtype_name(str(value)) is None:
            errors.append(
                f"{path}: unknown element type {_show(value)}: expected one of "
                f"{', '.join(DTYPE_NAMES)} (or an alias such as int8, bfloat16, float32)"
            )


@dataclass(frozen=True)
class Bool(Spec):
    def check(self, value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, bool):
            errors.append(f"{path}: expected true or false, got {_show(value)}")


@dataclass(frozen=True)
class List(Spec):
    item: Spec = field(default_factory=Spec)
    min_len: int = 0
    max_len: int | None = None
    example: str = ""

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        example = f" like {self.example}" if self.example else ""
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list{example}, got {_show(value)}")
            return
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            if self.max_len == self.min_len:
                size = f"exactly {self.min_len}"
            elif self.max_len is None:
                size = f"at least {self.min_len}"
            else:
                size = f"{self.min_len} to {self.max_len}"
            bound = self.max_len if self.max_len is not None else self.min_len
            items = "item" if bound == 1 and self.min_len in (0, 1) else "items"
            errors.append(f"{path}: expected {size} {items}{example}, got {len(value)}")
            return
        for i, item in enumerate(value):
            self.item.check(item, f"{path}[{i}]", errors)
            if len(errors) >= _MAX_REPORTED:
                return


@dataclass(frozen=True)
class Table(Spec):
    """A TOML table / JSON object with known keys; `values` checks every key of a free-form table."""

    keys: dict[str, Spec] = field(default_factory=dict)
    values: Spec | None = None
    names: Spec | None = None
    """Checks every key of a free-form table (`values` checks what the key holds)."""
    nonempty: bool = False
    example: str = ""

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        example = f" like {self.example}" if self.example else ""
        prefix = f"{path}." if path else ""
        if not isinstance(value, dict):
            errors.append(f"{path or 'top level'}: expected a table{example}, got {_show(value)}")
            return
        if self.nonempty and not value:
            errors.append(f"{path}: must not be empty{example}")
        for key, spec in self.keys.items():
            if key in value:
                spec.check(value[key], f"{prefix}{key}", errors)
            elif spec.required:
                errors.append(f"{prefix}{key}: missing (required)")
        for key in value:
            if self.names is not None:
                self.names.check(key, f"{prefix}{key}", errors)
            if self.values is not None:
                self.values.check(value[key], f"{prefix}{key}", errors)
            elif key not in self.keys:
                close = difflib.get_close_matches(str(key), list(self.keys), n=1, cutoff=0.8)
                if close:
                    errors.append(f"{prefix}{key}: unknown key (did you mean '{close[0]}'?)")


@dataclass(frozen=True)
class Tagged(Spec):
    """An object whose `tag` key selects its schema (schedule steps: compute, send, recv)."""

    tag: str = "type"
    variants: dict[str, Table] = field(default_factory=dict)

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object, got {_show(value)}")
            return
        kind = value.get(self.tag)
        if not isinstance(kind, str) or kind not in self.variants:
            errors.append(
                f"{path}.{self.tag}: expected one of {', '.join(self.variants)}, got {_show(kind)}"
            )
            return
        self.variants[kind].check(value, path, errors)


def validate(data: Any, schema: Spec, source: str) -> None:
    """Raise one ChiplexError listing (up to ten of) the places where `data` breaks `schema`."""
    errors: list[str] = []
    schema.check(data, "", errors)
    if errors:
        shown = errors[:_MAX_REPORTED]
        more = "\n  ... and more" if len(errors) > len(shown) else ""
        if len(shown) == 1:
            raise ChiplexError(f"{source}: {shown[0]}")
        raise ChiplexError(f"{source}: {len(shown)} problems:\n  " + "\n  ".join(shown) + more)


# -- target TOML ---------------------------------------------------------------------------------
_RATE = Number(above=0, unit="ops/s")
_CHIP_INDEX = Int(min=0, max=MAX_CHIPS - 1)

TARGET_SCHEMA = Table(
    keys={
        "name": Str(required=False, nonempty=True),
        "description": Str(required=False),
        "chip": Table(
            keys={
                "matrix_ops": Table(
                    names=DtypeName(), values=_RATE, nonempty=True, example="{ i8 = 8e12 }"
                ),
                "vector_ops": Table(
                    names=DtypeName(), values=_RATE, nonempty=True, example="{ bf16 = 1e12 }"
                ),
                "sram_bytes": Size(above=0, max=MAX_BYTES, unit="bytes"),
                "sram_bandwidth": Number(above=0, unit="bytes/s"),
                "dram_bytes": Size(min=0, max=MAX_BYTES, unit="bytes", required=False),
                "dram_bandwidth": Number(min=0, unit="bytes/s", required=False),
            }
        ),
        "link": Table(
            keys={
                "bandwidth": Number(above=0, unit="bytes/s"),
                "latency": Number(min=0, max=1.0, unit="seconds per hop"),
            }
        ),
        "topology": Table(
            keys={
                "kind": Str(choices=("ring", "chain", "mesh", "torus", "links")),
                "num_chips": Int(min=1, max=MAX_CHIPS, required=False),
                "shape": List(
                    item=Int(min=1, max=MAX_CHIPS),
                    min_len=2,
                    max_len=2,
                    example="[rows, cols]",
                    required=False,
                ),
                "links": List(
                    item=List(item=_CHIP_INDEX, min_len=2, max_len=2, example="[0, 1]"),
                    required=False,
                    example="[[0, 1], [1, 2]]",
                ),
            }
        ),
        "rules": Table(
            required=False,
            keys={
                "max_hop_span": Int(min=1, max=MAX_CHIPS, required=False),
                "pinned": List(
                    item=Table(
                        keys={"ops": Str(nonempty=True), "chip": _CHIP_INDEX},
                        example='{ ops = "embed*", chip = 0 }',
                    ),
                    required=False,
                ),
                "colocated": List(
                    item=List(item=Str(nonempty=True), min_len=1, example='["q*", "k*"]'),
                    required=False,
                ),
            },
        ),
    }
)


def validate_target(data: Any, source: str) -> None:
    validate(data, TARGET_SCHEMA, source)
    # Cross-field rules the table cannot express.
    chip, topology = data["chip"], data["topology"]
    if chip.get("dram_bytes", 0) and not chip.get("dram_bandwidth", 0):
        raise ChiplexError(
            f"{source}: chip.dram_bandwidth: must be > 0 when chip.dram_bytes is set"
        )
    kind = topology["kind"]
    if kind in ("mesh", "torus"):
        if "shape" not in topology:
            raise ChiplexError(
                f"{source}: topology.shape: required for kind = {kind!r}, like [rows, cols]"
            )
        rows, cols = topology["shape"]
        if rows * cols > MAX_CHIPS:
            raise ChiplexError(
                f"{source}: topology.shape: {rows} x {cols} chips is more than {MAX_CHIPS}"
            )
    elif "num_chips" not in topology:
        raise ChiplexError(f"{source}: topology.num_chips: required for kind = {kind!r}")
    if kind == "links" and "links" not in topology:
        raise ChiplexError(f"{source}: topology.links: required for kind = 'links'")
    if kind == "links":
        _check_links(topology["links"], topology["num_chips"], source)


def _check_links(links: list[list[int]], num_chips: int, source: str) -> None:
    """Each link joins two chips of the target, and every chip reaches every other one (a
    message between any two chips needs a route)."""
    group = list(range(num_chips))  # union-find: group[c] leads to c's component's root

    def root(chip: int) -> int:
        while group[chip] != chip:
            group[chip] = group[group[chip]]
            chip = group[chip]
        return chip

    for i, (a, b) in enumerate(links):
        where = f"{source}: topology.links[{i}]"
        if a >= num_chips or b >= num_chips:
            raise ChiplexError(
                f"{where}: [{a}, {b}] names chip {max(a, b)}, but num_chips = {num_chips} "
                f"(chips 0..{num_chips - 1})"
            )
        if a == b:
            raise ChiplexError(f"{where}: [{a}, {b}] joins chip {a} to itself")
        group[root(a)] = root(b)
    parts: dict[int, list[int]] = {}
    for chip in range(num_chips):
        parts.setdefault(root(chip), []).append(chip)
    if len(parts) > 1:
        shown = "; ".join(", ".join(map(str, chips)) for chips in list(parts.values())[:4])
        raise ChiplexError(
            f"{source}: topology.links: the chips fall apart into {len(parts)} groups with no "
            f"link between them ({shown}): every chip must reach every other one"
        )


# -- schedule JSON -------------------------------------------------------------------------------
_COUNT = Int(min=0, max=2**62)
_SIZE = Int(min=0, max=MAX_BYTES, unit="bytes")
_ROUTE = List(item=_CHIP_INDEX, min_len=2, max_len=MAX_CHIPS + 1, example="[0, 1]")

SCHEDULE_SCHEMA = Table(
    keys={
        "format": Str(),
        "version": Int(),
        "graph": Str(required=False),
        "target": Str(required=False),
        "num_chips": Int(min=1, max=MAX_CHIPS),
        "samples_per_microbatch": Int(min=1, max=2**40, required=False),
        "chips": List(
            item=Table(
                keys={
                    "chip": Int(min=0, max=MAX_CHIPS - 1, required=False),
                    "steps": List(
                        item=Tagged(
                            variants={
                                "compute": Table(
                                    keys={
                                        "type": Str(),
                                        "op": Str(),
                                        "kind": Str(),
                                        "node": _COUNT,
                                        "flops": Number(min=0),
                                        "bytes": _SIZE,
                                        "weight_bytes": _SIZE,
                                        "duration_s": Number(min=0, max=MAX_SECONDS),
                                        "weights_from_dram": Bool(required=False),
                                    }
                                ),
                                "send": Table(
                                    keys={
                                        "type": Str(),
                                        "msg": _COUNT,
                                        "to": _CHIP_INDEX,
                                        "bytes": _SIZE,
                                        "route": _ROUTE,
                                        "tensor": Str(required=False),
                                    }
                                ),
                                "recv": Table(
                                    keys={
                                        "type": Str(),
                                        "msg": _COUNT,
                                        "from": _CHIP_INDEX,
                                        "bytes": _SIZE,
                                        "tensor": Str(required=False),
                                    }
                                ),
                            }
                        )
                    ),
                }
            ),
            min_len=1,
        ),
        # The target it was compiled for, as the tables of its TOML file (chiplex.targets.target_tables).
        "target_spec": replace(TARGET_SCHEMA, required=False),
        "messages": List(
            required=False,
            item=Table(
                keys={
                    "msg": _COUNT,
                    "src": _CHIP_INDEX,
                    "dst": _CHIP_INDEX,
                    "bytes": _SIZE,
                    "route": _ROUTE,
                    "tensor": Str(required=False),
                }
            ),
        ),
    }
)


def validate_schedule_json(data: Any, source: str) -> None:
    validate(data, SCHEDULE_SCHEMA, source)
    if len(data["chips"]) != data["num_chips"]:
        raise ChiplexError(
            f"{source}: chips: {len(data['chips'])} chip entries for num_chips = {data['num_chips']}"
        )
