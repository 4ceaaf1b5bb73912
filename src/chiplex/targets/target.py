"""The multi-chip module: chips, links, topology and the pipeline order, loaded from TOML.

Chips are numbered 0..K-1 *in pipeline order*: data may only flow from a lower to a higher number.
For a ring or a chain that is the physical order; for a mesh or torus it is the snake order
(row 0 left to right, row 1 right to left, ...), so consecutive chips are always physical neighbours.
Physical positions are kept per chip for routing (dimension-order XY on meshes).
"""

from __future__ import annotations

import dataclasses
import difflib
import heapq
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from chiplex.errors import ChiplexError
from chiplex.ir.types import canonical_dtype_name
from chiplex.targets.schema import TARGET_SCHEMA, parse_size, validate_target

TOPOLOGIES = ("ring", "chain", "mesh", "torus", "links")


@dataclass(frozen=True)
class ChipSpec:
    """One chiplet (all chips of a module are identical)."""

    matrix_ops: dict[str, float]
    """Peak ops/s of the matrix unit (matmul, conv) per element type name ("i8", "bf16", "f32")."""
    vector_ops: dict[str, float]
    """Peak ops/s of the vector unit (everything else) per element type name."""
    sram_bytes: int
    sram_bandwidth: float
    """On-chip memory bandwidth in bytes/s (the roofline's memory roof)."""
    dram_bytes: int = 0
    """Optional off-chip memory per chip; weights that do not fit SRAM stream from it."""
    dram_bandwidth: float = 0.0
    buffers_per_edge: int = 2
    """Receive buffers a chip reserves per value arriving from another chip. Two (double buffering,
    as real accelerators do) let the sender of micro-batch i + 1 proceed while the consumer still
    reads micro-batch i; one serialises each transfer with its consumer. The memory rule reserves
    this many copies of every received value, and the simulator gives each message this many buffers."""

    @property
    def capacity_bytes(self) -> int:
        return self.sram_bytes + self.dram_bytes

    def peak(self, unit: str, dtype: str) -> float:
        table = self.matrix_ops if unit == "matrix" else self.vector_ops
        if dtype in table:
            return table[dtype]
        # A dtype the chip does not list runs at the speed of the widest one it does list.
        return min(table.values())


@dataclass(frozen=True)
class Link:
    """A directed link between two physically adjacent chips."""

    id: int
    src: int
    dst: int
    bandwidth: float
    """bytes/s"""
    latency: float
    """seconds per hop"""


@dataclass(frozen=True)
class TargetRules:
    """Optional per-target placement rules (see docs/placement.md)."""

    max_hop_span: int | None = None
    """Largest pipeline distance chip(v) - chip(u) an edge u -> v may take."""
    pinned: tuple[tuple[str, int], ...] = ()
    """(op name glob, chip): matching ops must sit on that chip."""
    colocated: tuple[tuple[str, ...], ...] = ()
    """Groups of op name globs whose matching ops must all share one chip."""


@dataclass(frozen=True)
class Target:
    name: str
    topology: str
    num_chips: int
    chip: ChipSpec
    links: tuple[Link, ...]
    positions: tuple[tuple[int, int], ...]
    """Physical (row, col) of each chip, indexed by pipeline number."""
    shape: tuple[int, int]
    """(rows, cols) of the physical layout: (1, K) for rings and chains."""
    rules: TargetRules = field(default_factory=TargetRules)
    description: str = ""
    solver: str | None = None
    """The constraint solver back end from the TOML's `[solver] backend` (None: chiplex's default)."""

    def __post_init__(self) -> None:
        by_pair = {(link.src, link.dst): link.id for link in self.links}
        object.__setattr__(self, "_link_by_pair", by_pair)
        object.__setattr__(self, "_routes", {})

    # -- routing -------------------------------------------------------------------------------
    def link_between(self, a: int, b: int) -> Link:
        link_id = self._link_by_pair.get((a, b))  # type: ignore[attr-defined]
        if link_id is None:
            raise ChiplexError(f"target {self.name}: no link from chip {a} to chip {b}")
        return self.links[link_id]

    def route(self, src: int, dst: int) -> tuple[int, ...]:
        """The chips a message from src to dst visits, both ends included (deterministic)."""
        routes: dict[tuple[int, int], tuple[int, ...]] = self._routes  # type: ignore[attr-defined]
        key = (src, dst)
        if key not in routes:
            routes[key] = self._compute_route(src, dst)
        return routes[key]

    def route_links(self, src: int, dst: int) -> tuple[int, ...]:
        """Link ids along route(src, dst)."""
        chips = self.route(src, dst)
        return tuple(self._link_by_pair[(a, b)] for a, b in zip(chips, chips[1:], strict=False))  # type: ignore[attr-defined]

    def hops(self, src: int, dst: int) -> int:
        return len(self.route(src, dst)) - 1

    def _compute_route(self, src: int, dst: int) -> tuple[int, ...]:
        if src == dst:
            return (src,)
        if self.topology == "ring":
            k = self.num_chips
            forward = (dst - src) % k
            # Shortest direction; ties go forward so routes are deterministic.
            step = 1 if forward <= k - forward else -1
            path = [src]
            while path[-1] != dst:
                path.append((path[-1] + step) % k)
            return tuple(path)
        if self.topology == "chain":
            step = 1 if dst > src else -1
            return tuple(range(src, dst + step, step))
        if self.topology in ("mesh", "torus"):
            return self._xy_route(src, dst)
        return self._shortest_path(src, dst)

    def _xy_route(self, src: int, dst: int) -> tuple[int, ...]:
        rows, cols = self.shape
        chip_at = {pos: i for i, pos in enumerate(self.positions)}
        (r, c), (r_dst, c_dst) = self.positions[src], self.positions[dst]
        path = [src]

        def step_towards(cur: int, goal: int, size: int) -> int:
            if self.topology == "torus":
                forward = (goal - cur) % size
                return (cur + (1 if forward <= size - forward else -1)) % size
            return cur + (1 if goal > cur else -1)

        # Dimension order: X (columns) first, then Y (rows).
        while c != c_dst:
            c = step_towards(c, c_dst, cols)
            path.append(chip_at[(r, c)])
        while r != r_dst:
            r = step_towards(r, r_dst, rows)
            path.append(chip_at[(r, c)])
        return tuple(path)

    def _shortest_path(self, src: int, dst: int) -> tuple[int, ...]:
        # Dijkstra on latency + a tiny per-hop term; ties broken by chip number.
        adjacency: dict[int, list[Link]] = {}
        for link in self.links:
            adjacency.setdefault(link.src, []).append(link)
        best: dict[int, float] = {src: 0.0}
        previous: dict[int, int] = {}
        queue: list[tuple[float, int]] = [(0.0, src)]
        while queue:
            dist, chip = heapq.heappop(queue)
            if chip == dst:
                break
            if dist > best.get(chip, float("inf")):
                continue
            for link in sorted(adjacency.get(chip, []), key=lambda item: item.dst):
                cand = dist + link.latency + 1e-12
                if cand < best.get(link.dst, float("inf")):
                    best[link.dst] = cand
                    previous[link.dst] = chip
                    heapq.heappush(queue, (cand, link.dst))
        if dst not in best:
            raise ChiplexError(f"target {self.name}: no route from chip {src} to chip {dst}")
        path = [dst]
        while path[-1] != src:
            path.append(previous[path[-1]])
        return tuple(reversed(path))


# -- building targets --------------------------------------------------------------------------
def snake_positions(rows: int, cols: int) -> list[tuple[int, int]]:
    positions = []
    for r in range(rows):
        order = range(cols) if r % 2 == 0 else range(cols - 1, -1, -1)
        positions.extend((r, c) for c in order)
    return positions


def _physical_edges(topology: str, rows: int, cols: int) -> list[tuple[tuple[int, int], ...]]:
    edges = []
    for r in range(rows):
        for c in range(cols):
            if c + 1 < cols or (topology == "torus" and cols > 2):
                edges.append(((r, c), (r, (c + 1) % cols)))
            if r + 1 < rows or (topology == "torus" and rows > 2):
                edges.append(((r, c), ((r + 1) % rows, c)))
    return edges


def build_target(
    name: str,
    topology: str,
    chip: ChipSpec,
    *,
    num_chips: int | None = None,
    shape: tuple[int, int] | None = None,
    link_bandwidth: float,
    link_latency: float,
    explicit_links: list[tuple[int, int]] | None = None,
    rules: TargetRules | None = None,
    description: str = "",
) -> Target:
    """Build a target; every physical connection becomes two directed links of equal speed."""
    if topology not in TOPOLOGIES:
        raise ChiplexError(
            f"target {name}: unknown topology {topology!r}; expected one of {TOPOLOGIES}"
        )
    pairs: list[tuple[int, int]] = []
    if topology in ("ring", "chain"):
        if not num_chips or num_chips < 1:
            raise ChiplexError(f"target {name}: topology {topology} needs num_chips >= 1")
        positions = [(0, i) for i in range(num_chips)]
        grid_shape = (1, num_chips)
        pairs = [(i, i + 1) for i in range(num_chips - 1)]
        if topology == "ring" and num_chips > 2:
            pairs.append((num_chips - 1, 0))
    elif topology in ("mesh", "torus"):
        if shape is None or shape[0] < 1 or shape[1] < 1:
            raise ChiplexError(f"target {name}: topology {topology} needs shape = [rows, cols]")
        rows, cols = shape
        positions = snake_positions(rows, cols)
        index = {pos: i for i, pos in enumerate(positions)}
        pairs = [(index[a], index[b]) for a, b in _physical_edges(topology, rows, cols)]
        num_chips = rows * cols
        grid_shape = (rows, cols)
    else:
        if not num_chips or explicit_links is None:
            raise ChiplexError(f"target {name}: topology 'links' needs num_chips and links")
        positions = [(0, i) for i in range(num_chips)]
        grid_shape = (1, num_chips)
        for a, b in explicit_links:
            if not (0 <= a < num_chips and 0 <= b < num_chips) or a == b:
                raise ChiplexError(f"target {name}: bad link [{a}, {b}] for {num_chips} chips")
        pairs = list(explicit_links)
    directed = sorted({p for a, b in pairs for p in ((a, b), (b, a))})
    links = tuple(
        Link(id=i, src=a, dst=b, bandwidth=link_bandwidth, latency=link_latency)
        for i, (a, b) in enumerate(directed)
    )
    target = Target(
        name=name,
        topology=topology,
        num_chips=num_chips,
        chip=chip,
        links=links,
        positions=tuple(positions),
        shape=grid_shape,
        rules=rules or TargetRules(),
        description=description,
    )
    for i in range(num_chips - 1):
        if (i, i + 1) not in target._link_by_pair:  # type: ignore[attr-defined]
            # Pipeline neighbours must be physical neighbours, or every stage boundary pays extra hops.
            if topology == "links":
                continue
            raise ChiplexError(f"target {name}: pipeline chips {i} and {i + 1} are not adjacent")
    return target


# -- TOML --------------------------------------------------------------------------------------
def _number(
    table: dict, key: str, where: str, *, required: bool = True, default: float = 0.0
) -> float:
    if key not in table:
        if required:
            raise ChiplexError(f"{where}: missing key '{key}'")
        return default
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ChiplexError(f"{where}: '{key}' must be a non-negative number, got {value!r}")
    return float(value)


def _size(table: dict, key: str) -> int:
    """A size the schema has checked (a whole number or "13 MiB"); 0 when the key is absent."""
    size = parse_size(table.get(key, 0))
    assert size is not None, f"{key} passed the schema check"
    return size


def _whole_number(table: dict, key: str, where: str, *, default: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ChiplexError(f"{where}: '{key}' must be a whole number >= 1, got {value!r}")
    return value


def _ops_table(table: dict, key: str, where: str) -> dict[str, float]:
    raw = table.get(key)
    if not isinstance(raw, dict) or not raw:
        raise ChiplexError(
            f"{where}: '{key}' must be a table of ops/s per dtype, e.g. {{ i8 = 8e12 }}"
        )
    rates: dict[str, float] = {}
    written: dict[str, str] = {}
    for name in raw:
        # The cost model looks rates up by the IR's element type names (the schema has checked
        # that each key is one or an alias): int8 must become i8, or i8 ops would not find it.
        dtype = canonical_dtype_name(name)
        assert dtype is not None, f"{name} passed the schema check"
        if dtype in rates:
            raise ChiplexError(
                f"{where}: '{key}' gives {dtype} twice ({written[dtype]} and {name})"
            )
        written[dtype] = name
        rates[dtype] = _number(raw, name, f"{where}.{key}")
    return rates


def target_from_toml(text: str, source: str = "<target>") -> Target:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        # Python 3.11's tomllib puts the position in the message only: "... (at line 8, column 19)".
        message = str(err)
        if at := re.search(r" \(at line (\d+), column (\d+)\)$", message):
            message = f"{at[1]}:{at[2]}: invalid TOML: {message[: at.start()]}"
            raise ChiplexError(f"{source}:{message}") from None
        if message.endswith(" (at end of document)"):  # a file cut short: point at its end
            lines = text.split("\n")
            message = message.removesuffix(" (at end of document)")
            raise ChiplexError(
                f"{source}:{len(lines)}:{len(lines[-1]) + 1}: invalid TOML: {message}"
            ) from None
        raise ChiplexError(f"{source}: invalid TOML: {message}") from None
    except RecursionError:
        raise ChiplexError(f"{source}: invalid TOML: nested too deeply") from None
    return target_from_tables(data, source)


def target_from_tables(data: Any, source: str = "<target>") -> Target:
    """The target described by a target file's tables (as `tomllib` reads them, or as `schedule.json`
    embeds them under `target_spec`), validated as a target file is."""
    if not isinstance(data, dict):
        raise ChiplexError(
            f"{source}: expected the tables of a target file, got {type(data).__name__}"
        )
    sections = ("chip", "link", "topology")
    missing = [section for section in sections if not isinstance(data.get(section), dict)]
    if missing:
        found = [key for key in data if key not in TARGET_SCHEMA.keys]
        typos = [
            f"[{key}] (a typo of [{close[0]}]?)"
            for key in found
            if (close := difflib.get_close_matches(key, missing, n=1, cutoff=0.6))
        ]
        raise ChiplexError(
            f"{source}: missing section{'s' if len(missing) > 1 else ''} "
            + ", ".join(f"[{section}]" for section in missing)
            + (f"; found {', '.join(typos)}" if typos else "")
        )
    # Types, ranges and finiteness of every key (one table: chiplex.targets.schema.TARGET_SCHEMA).
    validate_target(data, source)
    chip_t, link_t, topo_t = data["chip"], data["link"], data["topology"]
    chip = ChipSpec(
        matrix_ops=_ops_table(chip_t, "matrix_ops", f"{source} [chip]"),
        vector_ops=_ops_table(chip_t, "vector_ops", f"{source} [chip]"),
        sram_bytes=_size(chip_t, "sram_bytes"),
        sram_bandwidth=_number(chip_t, "sram_bandwidth", f"{source} [chip]"),
        dram_bytes=_size(chip_t, "dram_bytes"),
        dram_bandwidth=_number(chip_t, "dram_bandwidth", f"{source} [chip]", required=False),
        buffers_per_edge=_whole_number(chip_t, "buffers_per_edge", f"{source} [chip]", default=2),
    )
    if chip.dram_bytes and not chip.dram_bandwidth:
        raise ChiplexError(f"{source} [chip]: dram_bytes needs dram_bandwidth")
    kind = topo_t.get("kind")
    if kind not in TOPOLOGIES:
        raise ChiplexError(f"{source} [topology]: 'kind' must be one of {TOPOLOGIES}, got {kind!r}")
    shape = topo_t.get("shape")
    rules_t = data.get("rules", {})
    pinned = tuple((str(p["ops"]), int(p["chip"])) for p in rules_t.get("pinned", []))
    num_chips = topo_t.get("num_chips")
    if topo_t["kind"] in ("mesh", "torus"):
        num_chips = int(shape[0]) * int(shape[1])
    for i, (_, pin_chip) in enumerate(pinned):
        if pin_chip >= num_chips:
            raise ChiplexError(
                f"{source}: rules.pinned[{i}].chip: chip {pin_chip} does not exist "
                f"(the target has chips 0..{num_chips - 1})"
            )
    colocated = tuple(tuple(str(g) for g in group) for group in rules_t.get("colocated", []))
    max_span = rules_t.get("max_hop_span")
    target = build_target(
        name=str(data.get("name", Path(source).stem)),
        topology=kind,
        chip=chip,
        num_chips=int(num_chips),
        shape=(int(shape[0]), int(shape[1])) if shape else None,
        link_bandwidth=_number(link_t, "bandwidth", f"{source} [link]"),
        link_latency=_number(link_t, "latency", f"{source} [link]"),
        explicit_links=[(int(a), int(b)) for a, b in topo_t["links"]]
        if "links" in topo_t
        else None,
        rules=TargetRules(
            max_hop_span=int(max_span) if max_span is not None else None,
            pinned=pinned,
            colocated=colocated,
        ),
        description=str(data.get("description", "")),
    )
    solver_t = data.get("solver", {})
    if not isinstance(solver_t, dict) or set(solver_t) - {"backend"}:
        raise ChiplexError(f"{source} [solver]: expected only the key 'backend' (a solver name)")
    if "backend" in solver_t:
        from chiplex.targets.solver_choice import check_solver_name

        backend = check_solver_name(str(solver_t["backend"]), f"{source} [solver] backend")
        target = dataclasses.replace(target, solver=backend)
    return target


def target_tables(target: Target) -> dict[str, Any]:
    """`target` as the tables of a target file that reads back to an equal target (`target_from_tables`):
    what `schedule.json` embeds as `target_spec`, and what `chiplex.testing.target_toml` prints."""
    chip, rules = target.chip, target.rules
    chip_table: dict[str, Any] = {
        "matrix_ops": dict(chip.matrix_ops),
        "vector_ops": dict(chip.vector_ops),
        "sram_bytes": chip.sram_bytes,
        "sram_bandwidth": chip.sram_bandwidth,
        "buffers_per_edge": chip.buffers_per_edge,
    }
    if chip.dram_bytes:
        chip_table |= {"dram_bytes": chip.dram_bytes, "dram_bandwidth": chip.dram_bandwidth}
    # Every link of a target has the same bandwidth and latency (build_target gives them one each).
    link = target.links[0] if target.links else None
    topology: dict[str, Any] = {"kind": target.topology}
    if target.topology in ("mesh", "torus"):
        topology["shape"] = list(target.shape)
    else:
        topology["num_chips"] = target.num_chips
    if target.topology == "links":
        pairs = sorted({(min(k.src, k.dst), max(k.src, k.dst)) for k in target.links})
        topology["links"] = [list(pair) for pair in pairs]
    tables: dict[str, Any] = {"name": target.name}
    if target.description:
        tables["description"] = target.description
    tables |= {
        "chip": chip_table,
        "link": {
            "bandwidth": float(link.bandwidth) if link else 1.0,
            "latency": float(link.latency) if link else 0.0,
        },
        "topology": topology,
    }
    if rules.max_hop_span is not None or rules.pinned or rules.colocated:
        rules_table: dict[str, Any] = {}
        if rules.max_hop_span is not None:
            rules_table["max_hop_span"] = rules.max_hop_span
        if rules.colocated:
            rules_table["colocated"] = [list(group) for group in rules.colocated]
        if rules.pinned:
            rules_table["pinned"] = [{"ops": ops, "chip": chip} for ops, chip in rules.pinned]
        tables["rules"] = rules_table
    if target.solver:
        tables["solver"] = {"backend": target.solver}
    return tables


def preset_names() -> list[str]:
    folder = resources.files("chiplex.targets") / "presets"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def load_target(name_or_path: str) -> Target:
    """A preset name (`tpu-ring8`) or a path to a TOML file."""
    if name_or_path in preset_names():
        text = (resources.files("chiplex.targets") / "presets" / f"{name_or_path}.toml").read_text()
        return target_from_toml(text, f"{name_or_path}.toml")
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ChiplexError(f"target file not found: {path}")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as err:
            raise ChiplexError(f"{path}: cannot read target file: {err}") from None
        return target_from_toml(text, str(path))
    raise ChiplexError(
        f"unknown target {name_or_path!r}: expected a preset ({', '.join(preset_names())}) "
        "or a path to a .toml file"
    )
