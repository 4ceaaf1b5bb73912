"""The schedule: per-chip ordered steps (compute, send, recv), the only input of the simulator.

`docs/schedule-format.md` documents the JSON form. Two producers build the same `Schedule`: the MCM
emitter (`chiplex.targets.emit`, from split `mcm.program` IR) and `build_schedule` (straight from a graph
and a placement, for search loops that cannot afford IR rewriting per candidate); a test keeps them equal.
Step order on a chip: ops in topological order; a send right after its producer; a recv right before
the first op on that chip that reads it. For a legal placement this order cannot deadlock, because
every message flows to a higher chip number.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from chiplex.errors import ChiplexError
from chiplex.fileio import atomic_write_text
from chiplex.ir.graph import Graph
from chiplex.targets.cost import op_durations
from chiplex.targets.schema import validate_schedule_json
from chiplex.targets.target import Target, target_from_tables, target_tables

FORMAT = "chiplex.schedule"
VERSION = 1


@dataclass(frozen=True)
class ComputeStep:
    op: str
    """The op's name in the graph (`%h3`)."""
    kind: str
    node: int
    flops: float
    bytes: int
    """Bytes touched (activation inputs + weights + output)."""
    weight_bytes: int
    duration_s: float
    weights_from_dram: bool = False
    type: Literal["compute"] = "compute"


@dataclass(frozen=True)
class SendStep:
    msg: int
    to: int
    bytes: int
    route: tuple[int, ...]
    """Chips visited, both ends included."""
    tensor: str
    type: Literal["send"] = "send"


@dataclass(frozen=True)
class RecvStep:
    msg: int
    src: int
    bytes: int
    tensor: str
    type: Literal["recv"] = "recv"


Step = ComputeStep | SendStep | RecvStep


@dataclass(frozen=True)
class Message:
    msg: int
    src: int
    dst: int
    bytes: int
    route: tuple[int, ...]
    tensor: str


@dataclass(frozen=True)
class Schedule:
    graph: str
    target: str
    num_chips: int
    samples_per_microbatch: int
    chips: tuple[tuple[Step, ...], ...]
    messages: tuple[Message, ...] = field(default=())
    compiled_for: Target | None = None
    """The whole target it was compiled for (`target` is only its name), written as `target_spec`, so
    `chiplex simulate` runs a schedule compiled for a target file without being given that file."""

    # -- JSON ------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        def step_json(step: Step) -> dict[str, Any]:
            data = asdict(step)
            if isinstance(step, RecvStep):
                data["from"] = data.pop("src")
            if "route" in data:
                data["route"] = list(data["route"])
            return {"type": data.pop("type"), **data}

        return {
            "format": FORMAT,
            "version": VERSION,
            "graph": self.graph,
            "target": self.target,
            "num_chips": self.num_chips,
            "samples_per_microbatch": self.samples_per_microbatch,
            "chips": [
                {"chip": c, "steps": [step_json(s) for s in steps]}
                for c, steps in enumerate(self.chips)
            ],
            "messages": [{**asdict(m), "route": list(m.route)} for m in self.messages],
        } | ({"target_spec": target_tables(self.compiled_for)} if self.compiled_for else {})

    def to_text(self) -> str:
        # allow_nan=False: a NaN or infinity must fail here, never reach a file the simulator reads.
        return json.dumps(self.to_json(), indent=1, allow_nan=False) + "\n"

    def write(self, path: Path) -> None:
        atomic_write_text(path, self.to_text())

    @property
    def num_steps(self) -> int:
        return sum(len(steps) for steps in self.chips)


def _field(data: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ChiplexError(f"{where}: missing field '{key}'")
    value = data[key]
    if kind is int and isinstance(value, float) and value.is_integer():
        # The schema accepts a whole number written as a float (`65536.0`, what some JSON writers
        # emit for every number); the loader must too, not fail on the type the schema let through.
        return int(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ChiplexError(f"{where}: field '{key}' has the wrong type ({type(value).__name__})")
    return value


def _check_chip_indices(data: dict, num_chips: int, source: str) -> None:
    """Every chip number in the file names one of its `num_chips` chips, and `chips[i].chip == i`.

    The schema only bounds chip numbers by MAX_CHIPS; a number past `num_chips` (or a `chip` field
    that disagrees with the entry's position, as after reordering entries by hand) must fail here,
    at its JSON path, not later as a message the simulator cannot place.
    """
    errors: list[str] = []
    last = f"chips 0 to {num_chips - 1}" if num_chips > 1 else "chip 0"

    def check(value: int, path: str) -> None:
        if value >= num_chips:
            errors.append(f"{path}: chip {value} does not exist (num_chips = {num_chips}: {last})")

    for c, chip in enumerate(data["chips"]):
        if "chip" in chip and chip["chip"] != c:
            errors.append(
                f"chips[{c}].chip: is {chip['chip']}, but entry {c} of chips is chip {c} "
                "(list the chips in order 0, 1, ...)"
            )
        for i, step in enumerate(chip["steps"]):
            path = f"chips[{c}].steps[{i}]"
            if step["type"] == "send":
                check(step["to"], f"{path}.to")
                for j, hop in enumerate(step["route"]):
                    check(hop, f"{path}.route[{j}]")
            elif step["type"] == "recv":
                check(step["from"], f"{path}.from")
    for i, message in enumerate(data.get("messages", [])):
        check(message["src"], f"messages[{i}].src")
        check(message["dst"], f"messages[{i}].dst")
        for j, hop in enumerate(message["route"]):
            check(hop, f"messages[{i}].route[{j}]")
    if len(errors) == 1:
        raise ChiplexError(f"{source}: {errors[0]}")
    if errors:
        shown = errors[:10]
        more = f"\n  ... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        raise ChiplexError(f"{source}: {len(errors)} problems:\n  " + "\n  ".join(shown) + more)


def schedule_from_json(data: Any, source: str = "<schedule>") -> Schedule:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ChiplexError(f'{source}: not a chiplex schedule (missing "format": "{FORMAT}")')
    version = data.get("version")
    if version != VERSION or isinstance(version, bool):
        # `"1"` (a string) must not read as "version '1' is not supported (expected 1)".
        what = (
            f"schedule version {version!r} is not supported"
            if isinstance(version, int | float) and not isinstance(version, bool)
            else f"expected the number {VERSION}, got {version!r}"
        )
        raise ChiplexError(f"{source}: version: {what} (this chiplex reads version {VERSION})")
    # Types and ranges of every field (one table: chiplex.targets.schema.SCHEDULE_SCHEMA).
    validate_schedule_json(data, source)
    num_chips = _field(data, "num_chips", int, source)
    chips_json = _field(data, "chips", list, source)
    if len(chips_json) != num_chips:
        raise ChiplexError(f"{source}: {len(chips_json)} chip entries for num_chips = {num_chips}")
    _check_chip_indices(data, num_chips, source)
    chips: list[tuple[Step, ...]] = []
    number = (int, float)
    for c, chip in enumerate(chips_json):
        steps: list[Step] = []
        for i, step in enumerate(_field(chip, "steps", list, f"{source}: chips[{c}]")):
            where = f"{source}: chips[{c}].steps[{i}]"
            kind = step.get("type") if isinstance(step, dict) else None
            if kind == "compute":
                steps.append(
                    ComputeStep(
                        op=_field(step, "op", str, where),
                        kind=_field(step, "kind", str, where),
                        node=_field(step, "node", int, where),
                        flops=float(_field(step, "flops", number, where)),
                        bytes=_field(step, "bytes", int, where),
                        weight_bytes=_field(step, "weight_bytes", int, where),
                        duration_s=float(_field(step, "duration_s", number, where)),
                        weights_from_dram=bool(step.get("weights_from_dram", False)),
                    )
                )
            elif kind == "send":
                steps.append(
                    SendStep(
                        msg=_field(step, "msg", int, where),
                        to=_field(step, "to", int, where),
                        bytes=_field(step, "bytes", int, where),
                        route=tuple(int(hop) for hop in _field(step, "route", list, where)),
                        tensor=str(step.get("tensor", "")),
                    )
                )
            elif kind == "recv":
                steps.append(
                    RecvStep(
                        msg=_field(step, "msg", int, where),
                        src=_field(step, "from", int, where),
                        bytes=_field(step, "bytes", int, where),
                        tensor=str(step.get("tensor", "")),
                    )
                )
            else:
                raise ChiplexError(f"{where}: unknown step type {kind!r} (compute, send or recv)")
        chips.append(tuple(steps))
    messages = []
    for i, m in enumerate(data.get("messages", [])):
        where = f"{source}: messages[{i}]"
        if not isinstance(m, dict):
            raise ChiplexError(f"{where}: expected an object")
        messages.append(
            Message(
                msg=_field(m, "msg", int, where),
                src=_field(m, "src", int, where),
                dst=_field(m, "dst", int, where),
                bytes=_field(m, "bytes", int, where),
                route=tuple(int(hop) for hop in _field(m, "route", list, where)),
                tensor=str(m.get("tensor", "")),
            )
        )
    compiled_for = None
    if "target_spec" in data:
        compiled_for = target_from_tables(data["target_spec"], f"{source}: target_spec")
        if data.get("target", compiled_for.name) != compiled_for.name:
            raise ChiplexError(
                f"{source}: target is {data['target']!r} but target_spec describes "
                f"{compiled_for.name!r}: a schedule is compiled for one target"
            )
        if num_chips > compiled_for.num_chips:
            raise ChiplexError(
                f"{source}: num_chips = {num_chips} but target_spec {compiled_for.name!r} has "
                f"{compiled_for.num_chips} chips"
            )
    return Schedule(
        graph=str(data.get("graph", "")),
        target=str(data.get("target", "")),
        num_chips=num_chips,
        samples_per_microbatch=int(data.get("samples_per_microbatch", 1)),
        chips=tuple(chips),
        messages=tuple(messages),
        compiled_for=compiled_for,
    )


class _ObjectWithRepeats(dict):
    """A JSON object in which some key appeared more than once (json keeps the last silently)."""

    repeated: list[str]


def _keep_repeats(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked = _ObjectWithRepeats(obj)
    seen: set[str] = set()
    marked.repeated = [k for k, _ in pairs if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
    return marked


def _repeated_keys(value: Any, path: str = "") -> list[str]:
    """JSON paths of keys written twice in one object, in file order."""
    found: list[str] = []
    if isinstance(value, dict):
        prefix = f"{path}." if path else ""
        if isinstance(value, _ObjectWithRepeats):
            found += [f"{prefix}{key}" for key in dict.fromkeys(value.repeated)]
        for key, item in value.items():
            found += _repeated_keys(item, f"{prefix}{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _repeated_keys(item, f"{path}[{i}]")
    return found


def load_schedule(path: str | Path) -> Schedule:
    path = Path(path)
    if path.is_dir():
        # `chiplex compile -o DIR` writes DIR/schedule.json: the directory names it well enough.
        if not (path / "schedule.json").is_file():
            raise ChiplexError(f"{path} is a directory without a schedule.json")
        path = path / "schedule.json"
    if not path.is_file():
        raise ChiplexError(f"schedule file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"), object_pairs_hook=_keep_repeats)
    except json.JSONDecodeError as err:
        raise ChiplexError(f"{path}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}") from None
    except RecursionError:
        raise ChiplexError(f"{path}: invalid JSON: nested too deeply") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ChiplexError(f"{path}: cannot read schedule: {err}") from None
    # A key written twice (an edit that added `duration_s` above the old one) would silently keep
    # whichever comes last.
    repeated = _repeated_keys(data)
    if repeated:
        shown = ", ".join(repeated[:5]) + (
            f" and {len(repeated) - 5} more" if len(repeated) > 5 else ""
        )
        raise ChiplexError(
            f"{path}: {shown}: written more than once in one object (JSON would keep only the "
            "last value); keep one"
        )
    return schedule_from_json(data, str(path))


def build_schedule(graph: Graph, target: Target, placement: np.ndarray) -> Schedule:
    """The schedule of a placement, straight from the graph (no IR rewriting)."""
    placement = np.asarray(placement, dtype=np.int64)
    durations, streamed = op_durations(graph, target, placement)
    consumers = graph.successors()
    chips: list[list[Step]] = [[] for _ in range(target.num_chips)]
    messages: list[Message] = []
    pending: dict[
        tuple[int, int], Message
    ] = {}  # (producer, destination chip) -> message not yet received
    received: set[tuple[int, int]] = set()
    preds = graph.predecessors()
    for node in range(graph.num_nodes):
        chip = int(placement[node])
        for producer in sorted(set(preds[node].tolist())):
            key = (producer, chip)
            if int(placement[producer]) != chip and key not in received:
                message = pending.pop(key)
                chips[chip].append(
                    RecvStep(message.msg, message.src, message.bytes, message.tensor)
                )
                received.add(key)
        touched = int(
            graph.activation_in_bytes[node] + graph.weight_bytes[node] + graph.output_bytes[node]
        )
        chips[chip].append(
            ComputeStep(
                op=graph.op_names[node],
                kind=graph.kinds[node],
                node=node,
                flops=float(graph.flops[node]),
                bytes=touched,
                weight_bytes=int(graph.weight_bytes[node]),
                duration_s=float(durations[node]),
                weights_from_dram=bool(streamed[node]),
            )
        )
        destinations = sorted({int(placement[v]) for v in consumers[node].tolist()} - {chip})
        for dst in destinations:
            message = Message(
                msg=len(messages),
                src=chip,
                dst=dst,
                bytes=int(graph.output_bytes[node]),
                route=target.route(chip, dst),
                tensor=graph.op_names[node],
            )
            messages.append(message)
            pending[(node, dst)] = message
            chips[chip].append(
                SendStep(message.msg, dst, message.bytes, message.route, message.tensor)
            )
    return Schedule(
        graph=graph.name,
        target=target.name,
        num_chips=target.num_chips,
        samples_per_microbatch=graph.samples_per_microbatch,
        chips=tuple(tuple(steps) for steps in chips),
        messages=tuple(messages),
        compiled_for=target,
    )
