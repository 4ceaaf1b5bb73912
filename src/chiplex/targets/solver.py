"""Check, repair and optimise placements: numpy heuristics first, the MiniZinc model of record second.

The models live in `chiplex/targets/models/*.mzn` (one named constraint item per legality rule, the
same names as the checker in `chiplex.targets.legality`) and receive all data as arrays in a JSON data
file. MiniZinc 2.6 flattens them; a back end solves the FlatZinc (`solver_choice`: Gecode 6.2, OR-Tools
CP-SAT or HiGHS; `auto` picks per model), see docs/placement.md for the measured speed.

- `repair(graph, target, candidate)`: a legal placement changing as few ops as possible (ties: the total
  chip distance). A legal candidate returns unchanged without any solver; otherwise the heuristic answers
  unless it fails or `exact=True`, when MiniZinc searches from the heuristic's answer for a strictly
  better one and proves optimality when it can.
- `optimize(graph, target)`: the smallest period under dp's stage model (`chiplex.targets.period_model`):
  each chip's `op_times` (the roofline with weights in SRAM), each pipeline boundary's link time over
  the slowest link and its receive buffers' round trip. DRAM streaming and mesh routes are not in it:
  the search harness measures them with the simulator.
- `explain(graph, target)`: why no legal placement exists, from cheap necessary checks first, the
  per-chip weight bound (`chip_weight_bound`, chip_weight.mzn) second and a minimal conflicting set of
  rules found with the solver third; empty when a placement exists.
- `check_with_minizinc(graph, target, placement)`: the rules the MiniZinc model says are violated (the
  property tests check that the model and the Python checker agree).

Gecode's integers are 32-bit: memory sizes are divided by their greatest common divisor (exact), and
coarsened (rounded conservatively: sizes up, capacity down) only when they still overflow; op times are
scaled to a unit of total time / 2^30.

Determinism: every back end runs single-threaded with a fixed seed, so a call that finishes within its time limit
returns the same answer every time; a call cut off by its time limit returns the best answer found in
that time, which can depend on machine load. The one exception is `explain`'s yes/no feasibility question,
which runs two CP-SAT workers (SATISFY_WORKERS): a yes or no does not depend on which worker finds it,
but its witness, which later repairs of the same graph start from when their heuristic fails
(`_KNOWN_PLACEMENT`), can.
The opt-in `order-mip-race` back end is another: its proved objective is the same every run, but which of
two equally good placements it returns can depend on which of its two processes found it first.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import tempfile
import time
import warnings
import weakref
from dataclasses import dataclass
from functools import reduce
from importlib import resources
from pathlib import Path

import numpy as np

from chiplex.errors import ChiplexError, ChiplexWarning
from chiplex.ir.graph import Graph
from chiplex.targets import flatzinc, heuristics, order_mip
from chiplex.targets.legality import (
    RULES,
    Placement,
    PlacementRules,
    bytes_apart,
    check_placement,
    format_bytes,
    placement_array,
    resolve_rules,
)
from chiplex.targets.period_model import period_model
from chiplex.targets.solver_choice import (
    DEFAULT_SOLVER,
    backend_for,
    bound_solver,
    check_solver_name,
    solver_for,
)
from chiplex.targets.target import Target

INT_LIMIT = 2**31 - 1
TIME_UNITS = 2**30
"""Total op time maps to this many integer units (leaves headroom below Gecode's 2^31)."""
MIP_TIME_UNITS = 2**23
"""The same for HiGHS (the `highs` back end, also order-mip's for optimize.mzn). At 2^30 the linear rows
hold coefficients and a period domain near 5e8 beside 0/1 columns, and HiGHS 1.15 proved false bounds
(always the period's upper bound, at any feasibility tolerance from 1e-9 to its default 1e-6, so not a
tolerance alone); the same model with the times divided by 16 or more solved exactly. 2^23 keeps each
op's rounding within 1/2^22 of the total time."""
OPTIONAL_RULES = ("memory", "hop-span", "pinned", "colocated")
"""Rules explain may relax; chip-range, acyclic-dataflow and no-skipping-chips alone always hold
(every op on chip 0)."""


class InfeasibleError(ChiplexError):
    """No legal placement exists; `messages` says why in user terms (from `explain`)."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = list(messages)
        if len(self.messages) == 1:
            super().__init__(f"no legal placement exists: {self.messages[0]}")
        else:  # one reason a line, as `chiplex check` prints them
            reasons = "".join("\n  " + m.replace("\n", "\n  ") for m in self.messages)
            super().__init__(f"no legal placement exists:{reasons}")


class SolverTimeoutError(ChiplexError):
    """Neither the heuristic nor the solver (within its time limit) found a legal placement, and the
    solver did not prove that none exists."""


class SolverWarning(ChiplexWarning):
    """A solver call hit its time limit and the answer falls back to a heuristic or an unproved one."""


@dataclass(frozen=True)
class RepairResult:
    placement: np.ndarray
    changed: int
    """Ops whose chip differs from the candidate's."""
    distance: int
    """Sum over ops of |chip - candidate chip|."""
    method: str
    """`unchanged` (the candidate was legal), `heuristic` or `minizinc`: who found the placement."""
    proved_optimal: bool
    """The (changed, distance) pair is proved minimal (by MiniZinc, or trivially for `unchanged`)."""

    @property
    def claim(self) -> str:
        """What is known about this answer, for messages: proved optimal or feasible only."""
        if self.method == "unchanged":
            return "the candidate was legal"
        return (
            f"{self.changed} ops moved, proved the fewest"
            if self.proved_optimal
            else f"{self.changed} ops moved, feasible only (not proved the fewest)"
        )


@dataclass(frozen=True)
class OptimizeResult:
    placement: np.ndarray
    period_s: float
    """The placement's period under `chiplex.targets.period_model` (seconds): its slowest chip
    (`op_times`) or pipeline boundary (link time, buffer round trip)."""
    bound_s: float
    """No legal placement has a smaller bottleneck (equals period_s, up to rounding, when proved)."""
    proved_optimal: bool
    method: str
    """`heuristic` or `minizinc`: who found the placement."""

    @property
    def claim(self) -> str:
        """What is known about this answer, for messages: proved optimal or feasible only."""
        if self.proved_optimal:
            return "proved optimal"
        return f"feasible only, not proved optimal (lower bound {self.bound_s * 1e6:.2f} us)"


# -- running MiniZinc ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Outcome:
    status: str
    """OPTIMAL_SOLUTION, SATISFIED, ALL_SOLUTIONS, UNSATISFIABLE, UNKNOWN or ERROR."""
    values: dict[str, object] | None
    """The last solution's output (`name = value;` lines, parsed)."""
    text: str
    bound: float | None = None
    """The objective's proved bound (HiGHS's dual bound: no solution is better); None if unknown."""


def _model_path(name: str) -> Path:
    return Path(str(resources.files("chiplex.targets") / "models" / name))


def minizinc_available() -> bool:
    return shutil.which("minizinc") is not None


def _run_minizinc(
    model: str,
    data: dict[str, object],
    *,
    time_limit: float,
    seed: int,
    optimise: bool = False,
    solver: str = DEFAULT_SOLVER,
    workers: int = 1,
) -> _Outcome:
    """Flatten `model` with `data` (MiniZinc), then solve the FlatZinc with the chosen back end, within
    `time_limit` seconds in total.

    Two steps instead of `minizinc --time-limit`: MiniZinc only checks its limit after flattening, which
    takes seconds at 1000 ops x 36 chips, so a 1 s limit could take 3 s; here a flattening that outlives
    the limit is stopped and the call reports UNKNOWN on time. `gecode` flattens with Gecode's library
    and runs `fzn-gecode`; `highs` flattens with MiniZinc's linear library (`-G linear`) and hands the
    linear FlatZinc to HiGHS (`chiplex.targets.flatzinc`)."""
    solver = backend_for(check_solver_name(solver), model)
    minizinc, gecode = shutil.which("minizinc"), shutil.which("fzn-gecode")
    if minizinc is None or (solver == "gecode" and gecode is None):
        raise ChiplexError(
            "MiniZinc with Gecode is not installed (Debian: apt-get install minizinc)"
        )
    deadline = time.monotonic() + time_limit
    with tempfile.TemporaryDirectory(prefix="chiplex-mzn-") as tmp:
        data_path, fzn = Path(tmp) / "data.json", Path(tmp) / "model.fzn"
        data_path.write_text(json.dumps(data))
        if solver in ("order-mip", "order-mip-race"):
            # The same data, the order-encoded formulation of the same rules (chiplex.targets.order_mip).
            start = data["guide"] if data.get("improve_only") else None
            run = (
                order_mip.solve_raced
                if solver == "order-mip-race"
                else order_mip.solve_in_subprocess
            )
            mip = run(
                model, str(data_path), time_limit=_remaining(deadline), seed=seed, start=start
            )
            return _Outcome(mip.status, mip.values, "", mip.bound)
        # HiGHS reads MiniZinc's linearisation (integer variables and linear rows only); CP-SAT reads
        # the FlatZinc of Gecode's library (reified comparisons and clauses), which it supports natively
        # and which flattens 3x faster than the linear library.
        library = ["-G", "linear"] if solver == "highs" else ["--solver", "gecode"]
        compile_cmd = [minizinc, *library, "-c", str(_model_path(model)), str(data_path)]
        compile_cmd += ["--fzn", str(fzn), "--no-output-ozn"]
        try:
            flat = subprocess.run(
                compile_cmd,
                capture_output=True,
                text=True,
                timeout=_remaining(deadline),
                check=False,
            )
        except subprocess.TimeoutExpired:
            return _Outcome("UNKNOWN", None, "flattening hit the time limit")
        if flat.returncode != 0 or not fzn.exists():
            detail = "\n".join(
                line for line in flat.stderr.splitlines() if "count.mzn" not in line
            ).strip()
            raise ChiplexError(f"MiniZinc could not flatten {model}: {detail[-2000:]}")
        millis = int(_remaining(deadline) * 1000)
        if millis <= 0:
            return _Outcome("UNKNOWN", None, "flattening used up the time limit")
        if solver == "cp-sat":
            answer = flatzinc.solve_with_cp_sat(
                fzn.read_text(), time_limit=millis / 1000, seed=seed, workers=workers
            )
            return _Outcome(answer.status, answer.values, "", answer.bound)
        if solver == "highs":
            answer = flatzinc.solve_in_subprocess(
                "highs", str(fzn), time_limit=millis / 1000, seed=seed
            )
            return _Outcome(answer.status, answer.values, "", answer.bound)
        assert gecode is not None
        solve_cmd = [gecode, "-time", str(millis), "-r", str(seed), str(fzn)]
        if optimise:
            # -a: print every improving solution, so the best one survives a time-out.
            solve_cmd.insert(1, "-a")
        try:
            # Gecode honours -time itself; the margin only guards against a hung process.
            run = subprocess.run(
                solve_cmd, capture_output=True, text=True, timeout=millis / 1000 + 10, check=False
            )
        except subprocess.TimeoutExpired:
            return _Outcome("UNKNOWN", None, "fzn-gecode did not stop at its time limit")
    if run.returncode != 0 and "=====" not in run.stdout and "----------" not in run.stdout:
        raise ChiplexError(f"fzn-gecode failed on {model}: {run.stderr.strip()[-2000:]}")
    return _parse_flatzinc_output(run.stdout)


def _remaining(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.0)


def _parse_flatzinc_output(text: str) -> _Outcome:
    """FlatZinc solution stream: `name = value;` lines, `----------` after each solution, then
    `==========` (search complete), `=====UNSATISFIABLE=====` or `=====UNKNOWN=====`."""
    values: dict[str, object] | None = None
    current: dict[str, object] = {}
    status = "UNKNOWN"
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("%"):
            continue
        if line == "----------":
            values, current = current, {}
            status = "SATISFIED"
        elif line == "==========":
            status = "OPTIMAL_SOLUTION" if values is not None else "UNSATISFIABLE"
        elif line == "=====UNSATISFIABLE=====":
            status = "UNSATISFIABLE"
        elif line.startswith("=====") and line.endswith("====="):
            status = line.strip("=") if values is None else status
        elif " = " in line and line.endswith(";"):
            name, _, raw = line[:-1].partition(" = ")
            current[name.strip()] = _flatzinc_value(raw.strip())
    return _Outcome(status, values, text)


def _flatzinc_value(raw: str) -> object:
    """An int, a bool or `array1d(1..n, [...])` of them."""
    if raw.startswith("array1d("):
        raw = raw[raw.index("[") : raw.rindex("]") + 1]
    return json.loads(raw)


# -- model data ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _MemoryScale:
    unit: int
    exact: bool
    weight: np.ndarray
    output: np.ndarray
    working_set: np.ndarray
    capacity: int
    shared: np.ndarray


def _memory_scale(problem: heuristics.Problem) -> _MemoryScale:
    arrays = (problem.weight, problem.output, problem.working_set, problem.shared_bytes)
    sizes = np.concatenate(arrays)
    nonzero = sizes[sizes > 0]
    unit = int(reduce(math.gcd, nonzero.tolist(), 0)) or 1
    scaled = [a // unit for a in arrays]
    capacity = problem.capacity // unit

    def worst(arrays: list[np.ndarray], cap: int) -> int:
        return int(
            arrays[0].sum()
            + arrays[1].sum()
            + arrays[2].max(initial=0)
            + arrays[3].sum()
            + max(cap, 0)
        )

    exact = True
    while worst(scaled, capacity) > INT_LIMIT:
        # Still too large for Gecode: coarsen conservatively, so the model never accepts an illegal
        # placement (it may reject a few borderline legal ones).
        exact = False
        unit *= 2
        scaled = [-(-a // unit) for a in arrays]
        capacity = problem.capacity // unit
    return _MemoryScale(unit, exact, scaled[0], scaled[1], scaled[2], int(capacity), scaled[3])


def _base_data(
    problem: heuristics.Problem,
    *,
    active: frozenset[str],
    check_mode: bool = False,
    placement: np.ndarray | None = None,
    bounds: bool = True,
) -> tuple[dict[str, object], _MemoryScale]:
    """The data of legality.mzn (1-based op indices, as MiniZinc arrays are here)."""
    n, k = problem.n, problem.k
    rules = problem.rules
    scale = _memory_scale(problem)
    producers = [(u, s) for u, s in enumerate(problem.succs) if len(s) and scale.output[u] > 0]
    if check_mode:
        assert placement is not None
        lo = int(min(placement.min(initial=0), 0))
        hi = int(max(placement.max(initial=0), k - 1))
        lower = np.full(n, lo, dtype=np.int64)
        upper = np.full(n, hi, dtype=np.int64)
    elif bounds:
        lo, hi = 0, k - 1
        lower, upper = implied_bounds(problem, active)
    else:
        lo, hi = 0, k - 1
        lower, upper = np.zeros(n, dtype=np.int64), np.full(n, k - 1, dtype=np.int64)
    data: dict[str, object] = {
        "n": n,
        "K": k,
        "m": int(len(problem.src)),
        "src": (problem.src + 1).tolist(),
        "dst": (problem.dst + 1).tolist(),
        "num_producers": len(producers),
        "producer": [u + 1 for u, _ in producers],
        "consumers": [{"set": (s + 1).tolist()} for _, s in producers],
        "weight": scale.weight.tolist(),
        "output_bytes": scale.output.tolist(),
        "working_set": scale.working_set.tolist(),
        "num_shared": len(problem.shared_readers),
        "shared_bytes": scale.shared.tolist(),
        "shared_readers": [{"set": (r + 1).tolist()} for r in problem.shared_readers],
        "capacity": scale.capacity,
        "max_chip_weight": _scaled_chip_weight(problem, scale, active, check_mode or not bounds),
        "max_hop_span": -1 if rules.max_hop_span is None else int(rules.max_hop_span),
        "pinned": rules.pinned.astype(np.int64).tolist(),
        "num_groups": len(rules.colocated),
        "colocated_group": [{"set": (np.asarray(g) + 1).tolist()} for g in rules.colocated],
        "active": [name in active for name in RULES],
        "check_mode": check_mode,
        "chip_lo": lo,
        "chip_hi": hi,
        "implied_lower": lower.tolist(),
        "implied_upper": upper.tolist(),
    }
    return data, scale


def implied_bounds(
    problem: heuristics.Problem, active: frozenset[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Chip bounds every placement satisfying the `active` rules obeys (see legality.mzn)."""
    n, k = problem.n, problem.k
    lower = np.zeros(n, dtype=np.int64)
    upper = np.full(n, k - 1, dtype=np.int64)
    if n == 0:
        return lower, upper
    held = _known_chip_weight(problem) if "memory" in active else 0
    if "memory" in active and held > 0 and n <= 6000:
        # Each chip holds at most `held` bytes of weights (chip_weight.mzn; <= capacity).
        anc = _closure(problem, reverse=False)
        desc = _closure(problem, reverse=True)
        # The ops up to v sit on chips 0..chip(v) and store their params there, a shared one at least
        # once: chip(v) + 1 >= those bytes / held (and likewise after v).
        w = problem.weight
        anc_w = anc.astype(np.float64) @ w + _shared_weight_of_sets(problem, anc)
        desc_w = desc.astype(np.float64) @ w + _shared_weight_of_sets(problem, desc)
        lower = np.maximum(lower, np.ceil(anc_w / held).astype(np.int64) - 1)
        upper = np.minimum(upper, k - np.ceil(desc_w / held).astype(np.int64))
    if "pinned" in active and (problem.rules.pinned >= 0).any():
        pins = problem.rules.pinned
        # Ancestors of a pinned op sit at or below its chip, descendants at or above.
        hi_pin = np.where(pins >= 0, pins, k - 1).astype(np.int64)
        lo_pin = np.where(pins >= 0, pins, 0).astype(np.int64)
        for v in range(n - 1, -1, -1):  # descendants first: min over successors
            s = problem.succs[v]
            if len(s):
                hi_pin[v] = min(hi_pin[v], int(hi_pin[s].min()))
        for v in range(n):
            p = problem.preds[v]
            if len(p):
                lo_pin[v] = max(lo_pin[v], int(lo_pin[p].max()))
        lower = np.maximum(lower, lo_pin)
        upper = np.minimum(upper, hi_pin)
    return lower, upper


def total_weight(problem: heuristics.Problem) -> int:
    """Param bytes any placement stores at least once: every op's own params, each shared one once."""
    return int(problem.weight.sum()) + int(problem.shared_bytes.sum())


def _shared_weight_of_sets(problem: heuristics.Problem, sets: np.ndarray) -> np.ndarray:
    """int64[rows]: bytes of the shared params some op of each row's set (a bool[rows, n]) reads."""
    if not problem.shared_readers:
        return np.zeros(len(sets), dtype=np.int64)
    reads = np.zeros((problem.n, len(problem.shared_readers)), dtype=np.int64)
    for s, readers in enumerate(problem.shared_readers):
        reads[readers, s] = 1
    touched = (sets.astype(np.int64) @ reads) > 0
    return touched.astype(np.int64) @ problem.shared_bytes.astype(np.int64)


@dataclass(frozen=True)
class ChipWeightBound:
    """The most weight bytes one chip can hold under the memory rule (chip_weight.mzn): its ops' own
    params and each shared param any of them reads, once (as the memory rule stores them)."""

    held: int
    """No chip of any legal placement holds more weight bytes (a valid bound even when not proved)."""
    proved: bool
    """`held` is attained: `witness` is a set of ops that fits one chip and holds exactly that."""
    witness: np.ndarray | None
    """bool[n]: the ops of a chip holding the most weight found (None when none was found)."""


_CHIP_WEIGHT_CACHE: weakref.WeakKeyDictionary[heuristics.Problem, ChipWeightBound] = (
    weakref.WeakKeyDictionary()
)
CHIP_WEIGHT_TIME_LIMIT = 5.0
"""Seconds for chip_weight.mzn; on a time-out the MIP's dual bound is still a valid (looser) bound."""


def chip_weight_bound(
    problem: heuristics.Problem, time_limit: float = CHIP_WEIGHT_TIME_LIMIT
) -> ChipWeightBound:
    """The most weight one chip can hold: chip_weight.mzn, solved by CP-SAT whatever the chosen back end
    (it proves this knapsack in seconds where Gecode and HiGHS take minutes; its objective bound stays
    valid when the time limit cuts the search short). Cached per problem."""
    cached = _CHIP_WEIGHT_CACHE.get(problem)
    if cached is not None:
        return cached
    cap = problem.capacity
    total = total_weight(problem)
    trivial = ChipWeightBound(max(min(cap, total), 0), False, None)
    if problem.n == 0 or cap <= 0 or total <= 0 or not minizinc_available():
        return trivial
    data, scale = _base_data(problem, active=frozenset(), bounds=False)
    keys = ("n", "m", "src", "dst", "num_producers", "producer", "consumers", "weight")
    keys += ("output_bytes", "working_set", "capacity", "num_shared", "shared_bytes")
    keys += ("shared_readers",)
    answer = _run_minizinc(
        "chip_weight.mzn",
        {key: data[key] for key in keys},
        time_limit=time_limit,
        seed=0,
        solver=bound_solver(),
    )
    witness = None
    best_units = 0
    if answer.values is not None:
        witness = np.array(answer.values["on"], dtype=np.int64) == 1
        best_units = int(scale.weight[witness].sum()) + sum(
            int(nbytes)
            for nbytes, readers in zip(scale.shared, problem.shared_readers, strict=True)
            if witness[readers].any()
        )
    if answer.status == "UNSATISFIABLE":
        bound = ChipWeightBound(0, True, None)  # no op fits alone: _cheap_checks says why
    elif answer.bound is None:
        bound = trivial
    else:
        # Scaled units back to bytes; exact when the scale is exact, else rounded up (still valid).
        held_units = max(int(math.floor(answer.bound + 1e-6)), best_units)
        proved = answer.status == "OPTIMAL_SOLUTION" and scale.exact
        held = min(held_units * scale.unit, trivial.held) if scale.exact else trivial.held
        if witness is not None and scale.exact:
            held = max(held, heuristics.weights_of(problem, witness))
        bound = ChipWeightBound(int(held), proved, witness)
    _CHIP_WEIGHT_CACHE[problem] = bound
    return bound


def _scaled_chip_weight(
    problem: heuristics.Problem, scale: _MemoryScale, active: frozenset[str], check_mode: bool
) -> int:
    """max_chip_weight in the model's memory unit (no constraint unless memory is posted)."""
    total = int(scale.weight.sum())
    if check_mode or "memory" not in active or not scale.exact:
        return total
    return min(total, _known_chip_weight(problem) // scale.unit)


def _known_chip_weight(problem: heuristics.Problem) -> int:
    """The per-chip weight bound if `chip_weight_bound` already ran for this problem (explain runs it
    when the heuristic finds no placement), else the capacity: repair and optimize do not pay the
    1-3 s it costs, since their proofs start from the heuristic's answer."""
    cached = _CHIP_WEIGHT_CACHE.get(problem)
    return cached.held if cached is not None else max(problem.capacity, 0)


def _closure(problem: heuristics.Problem, *, reverse: bool) -> np.ndarray:
    """bool[n, n]: row v marks v and its ancestors (or descendants when `reverse`)."""
    n = problem.n
    reach = np.eye(n, dtype=bool)
    if reverse:
        for v in range(n - 1, -1, -1):
            s = problem.succs[v]
            if len(s):
                reach[v] |= reach[s].any(axis=0)
    else:
        for v in range(n):
            p = problem.preds[v]
            if len(p):
                reach[v] |= reach[p].any(axis=0)
    return reach


ALL_ACTIVE = frozenset(RULES)


# -- repair --------------------------------------------------------------------------------------------
def _distance(placement: np.ndarray, candidate: np.ndarray) -> tuple[int, int]:
    return int((placement != candidate).sum()), int(np.abs(placement - candidate).sum())


def repair(
    graph: Graph,
    target: Target,
    candidate: Placement,
    *,
    exact: bool = False,
    time_limit: float = 10.0,
    rules: PlacementRules | None = None,
    seed: int = 0,
    solver: str | None = None,
) -> RepairResult:
    """The legal placement nearest to `candidate` (fewest changed ops, then least total chip distance).

    Raises InfeasibleError when no legal placement exists and SolverTimeoutError when none was found
    within `time_limit` seconds without proof that none exists."""
    deadline = time.monotonic() + time_limit
    rules = rules or resolve_rules(graph, target)
    candidate = placement_array(graph, candidate).reshape(-1)
    if candidate.shape != (graph.num_nodes,):
        raise ChiplexError(f"candidate has {candidate.shape[0]} entries for {graph.num_nodes} ops")
    if not check_placement(graph, target, candidate, rules, limit_per_rule=1):
        return RepairResult(candidate.copy(), 0, 0, "unchanged", True)
    problem = heuristics.problem_for(graph, rules)
    _raise_if_quickly_infeasible(problem, target)
    found = heuristics.heuristic_repair(problem, candidate, known=_KNOWN_PLACEMENT.get(problem))
    if found is None:
        # Any legal placement bounds the solver's search, even one far from the candidate: without a
        # bound a solver can fail to find anything within the limit on instances that are feasible.
        # The other heuristic first, then the feasibility model (satisfy.mzn) with 40% of the time;
        # its witness is remembered for the problem (`_KNOWN_PLACEMENT`), and the cut of the
        # witness's order nearest the candidate is the start.
        found = heuristics.heuristic_optimize(problem, np.ones(problem.n))
        if found is None:
            witness = _any_placement(
                problem, 0.4 * _remaining(deadline), solver_for(target, solver)
            )
            nearer = (
                None
                if witness is None
                else heuristics.heuristic_repair(problem, candidate, witness)
            )
            # The answer must not depend on whether this process remembered the witness already
            # (a search's candidates are repaired in one process or spread over several): a nearer
            # cut of the witness's order is exactly what the first heuristic_repair returns once
            # the witness is remembered, so it is the heuristic answer here too.
            if nearer is not None and not exact:
                return RepairResult(nearer, *_distance(nearer, candidate), "heuristic", False)
            found = witness if nearer is None else nearer
        exact = True
    if found is not None and not exact:
        return RepairResult(found, *_distance(found, candidate), "heuristic", False)
    return _repair_minizinc(
        problem,
        target,
        candidate,
        found,
        time_limit=time_limit,
        deadline=deadline,
        seed=seed,
        solver=solver_for(target, solver),
    )


def _repair_minizinc(
    problem: heuristics.Problem,
    target: Target,
    candidate: np.ndarray,
    found: np.ndarray | None,
    *,
    time_limit: float,
    deadline: float,
    seed: int,
    solver: str,
) -> RepairResult:
    weight = heuristics.change_weight(problem, candidate)
    lexicographic = weight * (problem.n + 1) <= INT_LIMIT
    if not lexicographic:
        # (changed, distance) no longer fits one 32-bit objective: minimise changed ops only.
        weight = 1
    data, scale = _base_data(problem, active=ALL_ACTIVE)

    def objective(placement: np.ndarray) -> int:
        changed, distance = _distance(placement, candidate)
        return weight * changed + (distance if lexicographic else 0)

    guide = found if found is not None else np.clip(candidate, 0, problem.k - 1)
    data.update(
        candidate=candidate.tolist(),
        guide=guide.tolist(),
        change_weight=weight,
        distance_weight=int(lexicographic),
        objective_limit=INT_LIMIT if found is None else objective(found),
        improve_only=found is not None,
    )
    outcome = _run_minizinc(
        "repair.mzn", data, time_limit=_remaining(deadline), seed=seed, optimise=True, solver=solver
    )
    proved = outcome.status == "OPTIMAL_SOLUTION" and scale.exact and lexicographic
    if outcome.values is not None:
        placement = np.array(outcome.values["chip"], dtype=np.int64)
        _verify(problem, placement, "repair.mzn")
        proved = proved and _bound_agrees(outcome, objective(placement), "repair")
        if found is not None and objective(placement) >= objective(found):
            placement = found
        if outcome.status != "OPTIMAL_SOLUTION":
            _warn_time_limit("repair", time_limit, "returning the best placement found so far", 2)
        method = "heuristic" if placement is found else "minizinc"
        return RepairResult(placement, *_distance(placement, candidate), method, proved)
    if outcome.status == "UNSATISFIABLE":
        if found is not None:
            # Nothing strictly better than the heuristic's answer exists: it is optimal.
            return RepairResult(
                found, *_distance(found, candidate), "heuristic", scale.exact and lexicographic
            )
        raise InfeasibleError(
            explain(problem.graph, target, rules=problem.rules)
            or ["the MiniZinc model is unsatisfiable"]
        )
    if found is not None:
        _warn_time_limit(
            "repair", time_limit, "returning the heuristic's placement, not proved optimal", 2
        )
        return RepairResult(found, *_distance(found, candidate), "heuristic", False)
    _warn_time_limit("repair", time_limit, "no legal placement found", 2)
    raise SolverTimeoutError(
        f"no legal placement found within {time_limit:g} s (neither found nor proved impossible)"
        f"{packing_hint(problem.graph, target, problem.rules)}; raise the time limit or run `chiplex check`"
    )


def _verify(problem: heuristics.Problem, placement: np.ndarray, model: str) -> None:
    if not heuristics.is_legal(problem, placement):
        violations = check_placement(problem.graph, None, placement, problem.rules)  # type: ignore[arg-type]
        raise ChiplexError(
            f"internal error: {model} returned a placement the checker rejects: "
            + "; ".join(str(v) for v in violations[:3])
        )


def _bound_agrees(outcome: _Outcome, objective: int, what: str) -> bool:
    """Whether a solver's claimed optimum stands against `objective`, the model's objective of the
    placement it returned, recomputed exactly here: its proved bound must meet it (within 0.5, the
    objectives being integers). A MIP (HiGHS) works with tolerances: its incumbent's objective can
    understate the placement's, and numerical trouble can give a bound above a legal placement's
    objective, which disproves the bound itself (warned). Gecode reports no bound: exact arithmetic."""
    if outcome.bound is None:
        return True
    if outcome.bound > objective + 0.5:
        warnings.warn(
            f"{what}: the solver's lower bound {outcome.bound:.0f} exceeds the objective "
            f"{objective} of the legal placement it returned; its optimality proof is not trusted",
            SolverWarning,
            stacklevel=3,
        )
        return False
    return outcome.bound >= objective - 0.5


def _warn_time_limit(what: str, time_limit: float, consequence: str, depth: int = 1) -> None:
    # Point the warning at the caller of repair()/optimize(): `depth` frames between it and here.
    message = f"{what}: MiniZinc hit its {time_limit:g} s time limit; {consequence}"
    warnings.warn(message, SolverWarning, stacklevel=2 + depth)


# -- optimize ------------------------------------------------------------------------------------------
def optimize(
    graph: Graph,
    target: Target,
    *,
    time_limit: float = 30.0,
    seed: int = 0,
    rules: PlacementRules | None = None,
    solver: str | None = None,
    start: np.ndarray | None = None,
) -> OptimizeResult:
    """The legal placement with the smallest period under dp's stage model
    (`chiplex.targets.period_model`: compute per chip, link time and buffer round trip per pipeline
    boundary). `start`, a legal placement (cp passes dp's), is the answer to improve on when it beats
    the heuristic's."""
    deadline = time.monotonic() + time_limit
    rules = rules or resolve_rules(graph, target)
    problem = heuristics.problem_for(graph, rules)
    _raise_if_quickly_infeasible(problem, target)
    model = period_model(graph, target)
    times = model.op_time
    k = problem.k
    total = float(times.sum())
    backend = backend_for(check_solver_name(solver_for(target, solver)), "optimize.mzn")
    # One integer unit for compute and link times; buffers x period must stay within 32 bits, and for
    # HiGHS (a MIP, in floating point) much lower: see MIP_TIME_UNITS.
    units = MIP_TIME_UNITS if backend == "highs" else TIME_UNITS
    span = max(total, float(model.link_time.sum()), model.latency)
    unit = span / (units // (model.buffers + 1)) if span > 0 else 1.0
    itimes = np.rint(times / unit).astype(np.int64)
    link_units = np.rint(model.link_time / unit).astype(np.int64)
    latency_units = int(np.rint(model.latency / unit))
    # optimize.mzn's objective in its own integer units: period_model's formula on the same data.
    units_model = dataclasses.replace(
        model, op_time=itimes, link_time=link_units, latency=float(latency_units)
    )

    def period_units(placement: np.ndarray) -> int:
        return int(math.ceil(units_model.period(placement) - 1e-6))

    lower_s = max(total / k if k else 0.0, float(times.max(initial=0.0)))
    lower_units = max(-(-int(itimes.sum()) // k) if k else 0, int(itimes.max(initial=0)))
    found = heuristics.heuristic_optimize(problem, times)
    start_is_better = start is not None and (
        found is None or model.period(start) < model.period(found)
    )
    if start_is_better and not check_placement(graph, target, start, rules, limit_per_rule=1):
        found = np.asarray(start, dtype=np.int64)

    def result(placement: np.ndarray, proved: bool, method: str) -> OptimizeResult:
        period = model.period(placement)
        return OptimizeResult(placement, period, period if proved else lower_s, proved, method)

    if found is not None:
        found_units = period_units(found)
        if found_units <= lower_units:
            return result(found, True, "heuristic")  # meets the lower bound: optimal
    data, scale = _base_data(problem, active=ALL_ACTIVE)
    limit = INT_LIMIT // (model.buffers + 1) if found is None else found_units
    producers = np.array(data["producer"], dtype=np.int64) - 1
    data.update(
        op_time=itimes.tolist(),
        period_lower=int(lower_units),
        period_limit=int(limit),
        improve_only=found is not None,
        link_time=link_units[producers].tolist(),
        link_latency=latency_units,
        buffers=int(model.buffers),
    )
    outcome = _run_minizinc(
        "optimize.mzn",
        data,
        time_limit=_remaining(deadline),
        seed=seed,
        optimise=True,
        solver=backend,
    )
    proved = outcome.status == "OPTIMAL_SOLUTION" and scale.exact
    if outcome.values is not None:
        placement = np.array(outcome.values["chip"], dtype=np.int64)
        _verify(problem, placement, "optimize.mzn")
        proved = proved and _bound_agrees(outcome, period_units(placement), "optimize")
        better = result(placement, proved, "minizinc")
        if found is not None and result(found, False, "").period_s <= better.period_s:
            # Better in the model's integer time units but not in seconds (rounding): keep ours.
            return result(found, proved, "heuristic")
        return better
    if outcome.status == "UNSATISFIABLE":
        if found is not None:
            return result(found, scale.exact, "heuristic")
        raise InfeasibleError(
            explain(graph, target, rules=rules) or ["the MiniZinc model is unsatisfiable"]
        )
    if found is not None:
        return result(found, False, "heuristic")
    _warn_time_limit("optimize", time_limit, "no legal placement found")
    raise SolverTimeoutError(
        f"no legal placement found within {time_limit:g} s (neither found nor proved impossible)"
        f"{packing_hint(graph, target, rules)}"
    )


_QUICK: weakref.WeakKeyDictionary[heuristics.Problem, list[str]] = weakref.WeakKeyDictionary()


def quick_infeasibility(
    graph: Graph, target: Target, rules: PlacementRules | None = None
) -> list[str]:
    """The cheap necessary conditions of `explain` (one op larger than a chip, total weights over
    total memory, pins against the pipeline order): linear in the graph, so every search and every
    solver call runs them first, whatever the graph's size. Empty when none fails (which does not
    prove a placement exists)."""
    problem = heuristics.problem_for(graph, rules or resolve_rules(graph, target))
    return _quick_messages(problem, target)


def _quick_messages(problem: heuristics.Problem, target: Target) -> list[str]:
    if problem not in _QUICK:  # constant per problem: the RL loop repairs many candidates of one
        _QUICK[problem] = _cheap_checks(problem, _memory_word(target))
    return _QUICK[problem]


def _raise_if_quickly_infeasible(problem: heuristics.Problem, target: Target) -> None:
    messages = _quick_messages(problem, target)
    if messages:
        raise InfeasibleError(messages)


def packing_hint(graph: Graph, target: Target, rules: PlacementRules | None = None) -> str:
    """A clause on how many chips first-fit packing needs, for messages about no placement found."""
    problem = heuristics.problem_for(graph, rules or resolve_rules(graph, target))
    packing = heuristics.first_fit_packing(problem)
    needed = int(packing.max()) + 1 if packing is not None and len(packing) else 0
    if needed <= target.num_chips:
        return ""
    return (
        f"; packing the ops in topological order needs {needed} chips of "
        f"{problem.capacity / 2**20:.2f} MiB (weights {graph.total_weight_bytes / 2**20:.2f} MiB plus "
        f"activation buffers), the target has {target.num_chips}"
    )


# -- explain -------------------------------------------------------------------------------------------
def explain(
    graph: Graph,
    target: Target,
    *,
    time_limit: float = 10.0,
    rules: PlacementRules | None = None,
    solver: str | None = None,
) -> list[str]:
    """Why no legal placement exists, in user terms; empty when one exists.

    Cheap necessary conditions come first (one op's weights against a chip, total weights against all
    chips, pins against the pipeline order); when they all pass and the heuristic finds no placement,
    MiniZinc decides, and a conflict is narrowed to a minimal set of rules by relaxing them one at a time.
    If the solver cannot decide within `time_limit`, the single message says so."""
    deadline = time.monotonic() + time_limit
    rules = rules or resolve_rules(graph, target)
    problem = heuristics.problem_for(graph, rules)
    memory_word = _memory_word(target)
    messages = _quick_messages(problem, target)
    if messages:
        return messages
    if heuristics.heuristic_optimize(problem, np.ones(problem.n)) is not None:
        return []
    solver = solver_for(target, solver)
    chip_weight_bound(problem, min(CHIP_WEIGHT_TIME_LIMIT, 0.5 * _remaining(deadline)))
    messages = _weight_bound_checks(problem, memory_word)
    if messages:
        return messages
    present = [r for r in OPTIONAL_RULES if _rule_present(problem, r)]
    status = _satisfiable(problem, frozenset(RULES), _remaining(deadline), solver)
    if status is True:
        return []
    if status is None:
        return [
            f"undecided: no legal placement found and none ruled out within {time_limit:g} s"
            f"{packing_hint(graph, target, rules)}"
        ]
    # Deletion filter: drop every rule whose removal keeps the model unsatisfiable.
    needed = list(present)
    for rule in present:
        trial = [r for r in needed if r != rule]
        active = frozenset(RULES) - frozenset(r for r in OPTIONAL_RULES if r not in trial)
        if _satisfiable(problem, active, _remaining(deadline), solver) is False:
            needed = trial
    return [_conflict_message(problem, needed, target)]


def _weight_bound_checks(problem: heuristics.Problem, memory_word: str) -> list[str]:
    """Infeasibility proofs from the per-chip weight bound (chip_weight.mzn): all weights against K
    chips, and the ops before and after one op against the chips they need."""
    bound = chip_weight_bound(problem)
    held, k, cap = bound.held, problem.k, problem.capacity
    total = total_weight(problem)
    if held <= 0 or held >= cap and total <= k * cap:
        return []
    out: list[str] = []
    why = ""
    if bound.witness is not None and bound.proved:
        why = f" ({_describe_chip(problem, bound.witness, cap)})"
    if total > k * held:
        at_most, of_total = bytes_apart(k * held, total)
        out.append(
            f"no chip of {format_bytes(cap)} {memory_word} can hold more than {format_bytes(held)} of weights{why}, "
            f"so {k} chips hold at most {at_most} of the {of_total} of weights"
        )
        return out
    lower, upper = implied_bounds(problem, frozenset(RULES))
    for op in np.flatnonzero(lower > upper)[:1].tolist():
        anc = _closure(problem, reverse=False)[op]
        desc = _closure(problem, reverse=True)[op]
        before, after = heuristics.weights_of(problem, anc), heuristics.weights_of(problem, desc)
        out.append(
            f"op `{problem.graph.op_names[op]}` and the ops it depends on hold {format_bytes(before)} of "
            f"weights, so it sits on chip {int(lower[op])} or later, and it and the ops that depend on "
            f"it hold {format_bytes(after)}, so it sits on chip {int(upper[op])} or earlier; no chip of "
            f"{format_bytes(cap)} {memory_word} holds more than {format_bytes(held)} of weights{why}"
        )
    return out


def _describe_chip(problem: heuristics.Problem, ops: np.ndarray, cap: int) -> str:
    """What fills the heaviest chip: its weights, receive buffers and largest working set."""
    members = np.flatnonzero(ops)
    weights = heuristics.weights_of(problem, np.asarray(ops, dtype=bool))
    received = 0
    for u in range(problem.n):
        if not ops[u] and len(problem.succs[u]) and ops[problem.succs[u]].any():
            received += int(problem.output[u])
    biggest = int(members[np.argmax(problem.working_set[members])]) if len(members) else -1
    working = int(problem.working_set[biggest]) if biggest >= 0 else 0
    heavy = members[np.argsort(-problem.weight[members], kind="stable")][:1].tolist()
    extra = (
        f"; one more {format_bytes(problem.weight[heavy[0]])} op like `{problem.graph.op_names[heavy[0]]}` "
        "does not fit"
        if heavy and weights + received + working + int(problem.weight[heavy[0]]) > cap
        else ""
    )
    return (
        f"the heaviest fitting set, {len(members)} consecutive ops, holds {format_bytes(weights)} of weights "
        f"+ {format_bytes(received)} of receive buffers + the {format_bytes(working)} working set of "
        f"`{problem.graph.op_names[biggest]}`{extra}"
    )


def _rule_present(problem: heuristics.Problem, rule: str) -> bool:
    rules = problem.rules
    return {
        "memory": True,
        "hop-span": rules.max_hop_span is not None,
        "pinned": bool((rules.pinned >= 0).any()),
        "colocated": bool(rules.colocated),
    }[rule]


_KNOWN_PLACEMENT: weakref.WeakKeyDictionary[heuristics.Problem, np.ndarray] = (
    weakref.WeakKeyDictionary()
)
"""A legal placement a solver found for the problem (satisfy.mzn's witness, from `explain` or from a
repair whose heuristic failed): later repairs of the same problem (the RL loop repairs many candidates
of one graph) start from the cut of its order nearest their candidate instead of paying the
feasibility solve again (`heuristics.heuristic_repair`'s `known`)."""


def _remember(problem: heuristics.Problem, placement: np.ndarray) -> None:
    _KNOWN_PLACEMENT.setdefault(problem, placement.copy())


def forget_witness(graph: Graph, rules: PlacementRules) -> None:
    """Drop the placement `explain` remembered for (graph, rules). Its witness comes from a two-worker
    solve (SATISFY_WORKERS), which may return a different legal placement run to run; a search
    forgets it so that its repairs start from `_any_placement`'s one-worker witness, the same in
    every run and in every pool worker."""
    _KNOWN_PLACEMENT.pop(heuristics.problem_for(graph, rules), None)


def _any_placement(
    problem: heuristics.Problem, time_limit: float, solver: str
) -> np.ndarray | None:
    """A legal placement from satisfy.mzn within `time_limit`, or None (none found or none exists)."""
    known = _KNOWN_PLACEMENT.get(problem)
    if known is not None:
        return known.copy()
    data, _ = _base_data(problem, active=ALL_ACTIVE)
    outcome = _run_minizinc("satisfy.mzn", data, time_limit=time_limit, seed=0, solver=solver)
    if outcome.values is None:
        return None
    placement = np.array(outcome.values["chip"], dtype=np.int64)
    _verify(problem, placement, "satisfy.mzn")
    _remember(problem, placement)
    return placement


SATISFY_WORKERS = 2
"""CP-SAT workers for the yes/no feasibility question of `explain`: its two-worker portfolio found the
placements of the tight instances of benchmarks/solver_decide.py (nn17: 3.1 s) that one worker did not
find in 8 s. A yes/no answer does not depend on which worker finds it; `_any_placement`, whose placement
feeds the repair, keeps one worker (deterministic)."""


def _satisfiable(
    problem: heuristics.Problem, active: frozenset[str], time_limit: float, solver: str
) -> bool | None:
    data, _ = _base_data(problem, active=active)
    outcome = _run_minizinc(
        "satisfy.mzn", data, time_limit=time_limit, seed=0, solver=solver, workers=SATISFY_WORKERS
    )
    if outcome.values is not None:
        if active == ALL_ACTIVE:
            placement = np.array(outcome.values["chip"], dtype=np.int64)
            _verify(problem, placement, "satisfy.mzn")
            _remember(problem, placement)
        return True
    if outcome.status == "UNSATISFIABLE":
        return False
    return None


def _memory_word(target: Target) -> str:
    return "SRAM" if not target.chip.dram_bytes else "memory (SRAM + DRAM)"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _listed(items: list[str], shown: int = 3) -> str:
    return ", ".join(items[:shown]) + (
        f" and {len(items) - shown} more" if len(items) > shown else ""
    )


def _conflict_message(problem: heuristics.Problem, needed: list[str], target: Target) -> str:
    """Why no placement exists when the rules in `needed` together, and no fewer, rule it out;
    pins and groups as the target file writes them, so the user knows which lines to relax."""
    memory_word = _memory_word(target)
    pins = [f"{pattern!r} to chip {chip}" for pattern, chip in target.rules.pinned]
    groups = [str(list(group)) for group in target.rules.colocated]
    rules = problem.rules
    k, cap = problem.k, problem.capacity
    details = {
        "memory": f"memory ({k} chips of {format_bytes(cap)} {memory_word})",
        "hop-span": f"hop-span (max_hop_span {rules.max_hop_span})",
        "pinned": f"pinned ({_listed(pins)}: {_count(int((rules.pinned >= 0).sum()), 'op')})",
        "colocated": f"colocated ({_listed(groups)})",
    }
    if not needed:  # acyclic-dataflow and no-skipping-chips alone always hold (all ops on chip 0)
        return "no placement exists, yet no rule is to blame (internal error: please report)"
    if needed == ["memory"]:
        bound = _CHIP_WEIGHT_CACHE.get(problem)
        per_chip = (
            f" (no chip holds more than {format_bytes(bound.held)} of weights, {k} chips up to "
            f"{format_bytes(k * bound.held)})"
            if bound is not None and 0 < bound.held < cap
            else ""
        )
        ops_weight = total_weight(problem)
        return (
            f"the ops do not fit {k} chips of {format_bytes(cap)} {memory_word}: each of the {problem.n} ops "
            f"fits alone and the total weights ({format_bytes(problem.graph.total_weight_bytes)}) fit"
            f"{per_chip}, but no split of the ops into {k} forward-only, contiguous chips leaves room on "
            f"every chip for its weights ({format_bytes(ops_weight)} in all), the receive buffers of its "
            f"cross-chip inputs and its largest working set (up to "
            f"{format_bytes(problem.working_set.max(initial=0))}); proved by the solver"
        )
    return (
        "no placement satisfies "
        + " and ".join(details[r] for r in needed)
        + " together (each alone, with the structural rules, can be met; drop or relax one of them)"
    )


def _describe_op(problem: heuristics.Problem, op: int) -> str:
    graph = problem.graph
    params = graph.param_names[op]
    return f"`{params[0]}`" if len(params) == 1 else f"`{graph.op_names[op]}`"


def _cheap_checks(problem: heuristics.Problem, memory_word: str) -> list[str]:
    """Necessary conditions in user terms: each failed one alone rules out every placement."""
    graph, rules = problem.graph, problem.rules
    n, k, cap = problem.n, problem.k, problem.capacity
    names = graph.op_names
    one_chip = f"one chip's {memory_word} ({format_bytes(cap)})"
    out: list[str] = []
    if k < 1:
        return ["the target has no chips"]
    for op in np.flatnonzero((rules.pinned >= k) | (rules.pinned < -1)).tolist()[:5]:
        out.append(
            f"op `{names[op]}` is pinned to chip {rules.pinned[op]}, but the target has chips "
            f"0..{k - 1}"
        )
    for a, b in problem.pinned_apart[:5]:
        out.append(
            f"ops `{names[a]}` and `{names[b]}` must share a chip (colocated, or on a dataflow path "
            f"between colocated ops) but are pinned to chips {rules.pinned[a]} and {rules.pinned[b]}"
        )
    # One op against one chip: its weights, then its weights plus its working set.
    op_weight = graph.weight_bytes  # every param an op reads sits on its chip
    heavy = np.flatnonzero(op_weight > cap)
    for op in heavy[np.argsort(-op_weight[heavy], kind="stable")][:5].tolist():
        out.append(
            f"the weights of {_describe_op(problem, op)} ({format_bytes(op_weight[op])}) exceed {one_chip}"
        )
    wide = np.flatnonzero((op_weight <= cap) & (op_weight + problem.working_set > cap))
    for op in wide[:5].tolist():
        out.append(
            f"op `{names[op]}` needs {format_bytes(op_weight[op] + problem.working_set[op])} on its chip "
            f"(weights {format_bytes(op_weight[op])} + working set {format_bytes(problem.working_set[op])}), "
            f"more than {one_chip}"
        )
    more = len(heavy) + len(wide) - min(len(heavy), 5) - min(len(wide), 5)
    if more > 0:
        out.append(f"... and {more} more ops that do not fit one chip")
    for members in problem.units:
        if len(members) < 2:
            continue
        on = np.zeros(n, dtype=bool)
        on[members] = True
        need = heuristics.weights_of(problem, on) + int(problem.working_set[members].max())
        if need > cap and (op_weight[members] + problem.working_set[members]).max() <= cap:
            shown = ", ".join(f"`{names[m]}`" for m in members[:4].tolist())
            shown += " ..." if len(members) > 4 else ""
            out.append(
                f"ops {shown} must share one chip (colocated, or between colocated ops) but together "
                f"need {format_bytes(need)}, more than {one_chip}"
            )
    total = graph.total_weight_bytes  # each param once: a lower bound whatever the placement
    if total > k * cap:
        out.append(
            f"total weights {format_bytes(total)} > {k} chips x {format_bytes(cap)} {memory_word}"
        )
    elif n and total + int(problem.working_set.max()) > k * cap:
        out.append(
            f"total weights {format_bytes(total)} plus the largest working set "
            f"{format_bytes(problem.working_set.max())} > {k} chips x {format_bytes(cap)} {memory_word}"
        )
    if out:
        return out
    return _pin_checks(problem, memory_word)


def _reach(adjacency: list[np.ndarray], op: int) -> dict[int, int]:
    """Breadth-first distances in edges from `op` along `adjacency` (op itself at 0)."""
    dist = {op: 0}
    frontier = [op]
    while frontier:
        nxt = []
        for x in frontier:
            for y in adjacency[x].tolist():
                if y not in dist:
                    dist[y] = dist[x] + 1
                    nxt.append(y)
        frontier = nxt
    return dist


def _pin_checks(problem: heuristics.Problem, memory_word: str) -> list[str]:
    """Pins against the pipeline order, hop spans, contiguity and the memory before/after them."""
    graph, rules = problem.graph, problem.rules
    names = graph.op_names
    n, k, cap = problem.n, problem.k, problem.capacity
    span = rules.max_hop_span
    out: list[str] = []
    for op in np.flatnonzero(rules.pinned >= 0)[:50].tolist():
        chip = int(rules.pinned[op])
        after = _reach(problem.succs, op)
        before = _reach(problem.preds, op)
        for other, hops in after.items():
            pin = int(rules.pinned[other])
            if other == op or pin < 0:
                continue
            if pin < chip:
                out.append(
                    f"op `{names[op]}` is pinned to chip {chip} but `{names[other]}`, which depends "
                    f"on it ({hops} edges on), is pinned to chip {pin}: data only flows forward"
                )
            elif span is not None and pin - chip > span * hops:
                out.append(
                    f"ops `{names[op]}` (pinned to chip {chip}) and `{names[other]}` (pinned to chip "
                    f"{pin}) are {hops} edges apart, but with max_hop_span {span} data moves at most "
                    f"{span * hops} chips in {hops} edges"
                )
        weight_before = _weights_of_ops(problem, list(before))
        if weight_before > (chip + 1) * cap:
            out.append(
                f"op `{names[op]}` is pinned to chip {chip}, but it and the ops it depends on hold "
                f"{format_bytes(weight_before)} of weights, more than chips 0..{chip} can hold "
                f"({chip + 1} x {format_bytes(cap)} {memory_word})"
            )
        weight_after = _weights_of_ops(problem, list(after))
        if weight_after > (k - chip) * cap:
            out.append(
                f"op `{names[op]}` is pinned to chip {chip}, but it and the ops that depend on it "
                f"hold {format_bytes(weight_after)} of weights, more than chips {chip}..{k - 1} can hold "
                f"({k - chip} x {format_bytes(cap)} {memory_word})"
            )
        # No chip below `chip` may stay empty: enough ops must be able to run before it.
        free = n - len(after)
        if free < chip:
            out.append(
                f"op `{names[op]}` is pinned to chip {chip}, but only {free} ops do not depend on "
                f"it, too few to fill chips 0..{chip - 1} (no-skipping-chips)"
            )
        if len(out) >= 5:
            break
    return list(dict.fromkeys(out))[:5]


def _weights_of_ops(problem: heuristics.Problem, ops: list[int]) -> int:
    on = np.zeros(problem.n, dtype=bool)
    on[ops] = True
    return heuristics.weights_of(problem, on)


# -- check ---------------------------------------------------------------------------------------------
def check_with_minizinc(
    graph: Graph,
    target: Target,
    placement: Placement,
    *,
    rules: PlacementRules | None = None,
    time_limit: float = 30.0,
) -> list[str]:
    """Names of the rules the MiniZinc model (check.mzn) says `placement` violates, in checker order."""
    rules = rules or resolve_rules(graph, target)
    placement = placement_array(graph, placement).reshape(-1)
    if placement.shape != (graph.num_nodes,):
        return ["chip-range"]
    problem = heuristics.problem_for(graph, rules)
    data, scale = _base_data(problem, active=ALL_ACTIVE, check_mode=True, placement=placement)
    if not scale.exact:
        warnings.warn(
            "memory sizes exceed 32 bits even after dividing by their common factor: the model's memory "
            "rule is conservative here",
            SolverWarning,
            stacklevel=2,
        )
    data["placement"] = placement.tolist()
    # The placement is data: flattening evaluates every rule and no search happens, so the back end
    # does not matter; Gecode's flattening keeps `holds` as output (the linear one folds it away).
    outcome = _run_minizinc("check.mzn", data, time_limit=time_limit, seed=0, solver="gecode")
    if outcome.values is None:
        raise ChiplexError(f"check.mzn gave no answer (status {outcome.status})")
    holds = outcome.values["holds"]
    assert isinstance(holds, list) and len(holds) == len(RULES)
    violated = [rule for rule, ok in zip(RULES, holds, strict=True) if not ok]
    # Like the checker (and check.mzn's output item): chips out of range make the rest meaningless.
    return ["chip-range"] if "chip-range" in violated else violated
