"""Solve MiniZinc's linearised FlatZinc (`minizinc -c -G linear`) with HiGHS, a MIP solver.

The placement rules stay in `chiplex/targets/models/*.mzn`: MiniZinc flattens them with its own linear
library, which turns every rule into linear (in)equalities over integer variables, and this module hands
exactly those to HiGHS (PyPI `highspy`). Debian's MiniZinc 2.6.4 has no HiGHS interface of its own, and
no FlatZinc front end ships in a wheel, so this small translator is the bridge.

Only the linear FlatZinc subset is accepted (int_lin_le/eq, int_le/eq/lt, bool2int, bool_clause and the
like); anything else raises `ChiplexError` naming the constraint, so a model change that the linear
library cannot express is reported instead of being solved wrongly.

The answer is the same `_Outcome` shape the Gecode route returns: a status (OPTIMAL_SOLUTION,
SATISFIED, UNSATISFIABLE or UNKNOWN) and the values of the FlatZinc output variables.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

import numpy as np

from chiplex.errors import ChiplexError

_INF = math.inf


@dataclass
class LinearModel:
    """A FlatZinc model as columns (integer variables) and linear rows."""

    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    is_bool: list[bool] = field(default_factory=list)
    columns: dict[str, int] = field(default_factory=dict)
    """Variable name -> column."""
    constants: dict[str, int] = field(default_factory=dict)
    """Variables fixed by their declaration (`var 0..3: x = 2;`) and par ints."""
    arrays: dict[str, list[object]] = field(default_factory=dict)
    """Array name -> elements (ints, bools or variable names)."""
    row_lower: list[float] = field(default_factory=list)
    row_upper: list[float] = field(default_factory=list)
    row_columns: list[list[int]] = field(default_factory=list)
    row_values: list[list[float]] = field(default_factory=list)
    outputs: dict[str, str | list[object]] = field(default_factory=dict)
    """Output name -> a variable name (output_var) or the array's elements (output_array)."""
    objective: str | None = None
    sense: str = "satisfy"
    constraints: list[tuple[str, list[object]]] = field(default_factory=list)
    """Every constraint item as (name, arguments), arrays resolved to their elements."""

    def column(self, name: str) -> int:
        if name not in self.columns:
            raise ChiplexError(f"linear FlatZinc: unknown variable {name!r}")
        return self.columns[name]

    def new_column(self, name: str, lo: float, hi: float, is_bool: bool) -> int:
        self.columns[name] = len(self.lower)
        self.lower.append(lo)
        self.upper.append(hi)
        self.is_bool.append(is_bool)
        return self.columns[name]

    def add_row(self, terms: list[tuple[float, object]], lo: float, hi: float) -> None:
        """lo <= sum(coef * term) <= hi, terms being variable names or constants."""
        merged: dict[int, float] = {}
        for coef, term in terms:
            if isinstance(term, str) and term not in self.constants:
                col = self.column(term)
                merged[col] = merged.get(col, 0.0) + coef
            else:
                value = self.constants[term] if isinstance(term, str) else _as_int(term)
                lo -= coef * value
                hi -= coef * value
        cols = [c for c, v in merged.items() if v != 0]
        if not cols:
            if lo > 1e-9 or hi < -1e-9:  # a constant row that fails: the model is infeasible
                self.row_lower.append(1.0)
                self.row_upper.append(_INF)
                self.row_columns.append([])
                self.row_values.append([])
            return
        self.row_lower.append(lo)
        self.row_upper.append(hi)
        self.row_columns.append(cols)
        self.row_values.append([merged[c] for c in cols])


def _as_int(value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    raise ChiplexError(f"linear FlatZinc: expected an integer, got {value!r}")


# -- parsing ---------------------------------------------------------------------------------------
_DECL = re.compile(
    r"^var\s+(?P<dom>[^:]+?)\s*:\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>.*)$", re.S
)
_ARRAY = re.compile(
    r"^array\s*\[[^\]]*\]\s*of\s+(?P<var>var\s+)?(?P<dom>[^:]+?)\s*:\s*"
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>.*)$",
    re.S,
)
_RANGE = re.compile(r"^(-?\d+)\s*\.\.\s*(-?\d+)$")


_TOKEN = re.compile(r"\[[^\]]*\]|[^,\s]+")


def _split_top(text: str) -> list[str]:
    """The comma-separated arguments of a FlatZinc call: array literals (never nested) and atoms."""
    return _TOKEN.findall(text)


def _atom(text: str) -> object:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [_atom(t) for t in inner.split(",")] if inner else []
    if text == "true":
        return True
    if text == "false":
        return False
    if text.lstrip("-").isdigit():
        return int(text)
    return text  # a name


def _strip_annotations(rest: str) -> tuple[str, str]:
    """(annotations, assigned value) of the text after a declared name (annotations hold no `=`)."""
    annotations, _, value = rest.partition("=")
    return annotations, value.strip()


def _domain(dom: str) -> tuple[float, float, bool]:
    dom = dom.strip()
    if dom == "bool":
        return 0.0, 1.0, True
    if dom == "int":
        return -_INF, _INF, False
    match = _RANGE.match(dom)
    if match:
        return float(match.group(1)), float(match.group(2)), False
    if dom.startswith("{") and dom.endswith("}"):
        values = sorted(int(v) for v in dom[1:-1].split(","))
        if values == list(range(values[0], values[-1] + 1)):
            return float(values[0]), float(values[-1]), False
    raise ChiplexError(f"linear FlatZinc: unsupported variable domain {dom!r}")


def parse(text: str) -> LinearModel:
    model = LinearModel()
    for raw in text.split(";"):
        item = raw.strip()
        if not item or item.startswith("predicate"):
            continue
        if item.startswith("constraint"):
            model.constraints.append(_read_constraint(model, item[len("constraint") :].strip()))
        elif item.startswith("solve"):
            _solve(model, item)
        elif item.startswith("array"):
            _array(model, item)
        elif item.startswith("var"):
            _variable(model, item)
        elif re.match(r"^(int|bool)\s*:", item):
            name, _, value = item.partition(":")[2].partition("=")
            model.constants[name.strip()] = _as_int(_atom(value))
        else:
            raise ChiplexError(f"linear FlatZinc: unsupported item {item[:80]!r}")
    return model


def _variable(model: LinearModel, item: str) -> None:
    match = _DECL.match(item)
    if not match:
        raise ChiplexError(f"linear FlatZinc: cannot read {item[:80]!r}")
    name = match.group("name")
    annotations, value = _strip_annotations(match.group("rest"))
    lo, hi, is_bool = _domain(match.group("dom"))
    if value:
        assigned = _atom(value)
        if isinstance(assigned, str):
            if assigned in model.constants:
                model.constants[name] = model.constants[assigned]
            else:
                model.columns[name] = model.column(assigned)  # an alias of another variable
                col = model.columns[name]
                model.lower[col] = max(model.lower[col], lo)
                model.upper[col] = min(model.upper[col], hi)
        else:
            model.constants[name] = _as_int(assigned)
    else:
        model.new_column(name, lo, hi, is_bool)
    if "output_var" in annotations:
        model.outputs[name] = name


def _array(model: LinearModel, item: str) -> None:
    match = _ARRAY.match(item)
    if not match:
        raise ChiplexError(f"linear FlatZinc: cannot read {item[:80]!r}")
    annotations, value = _strip_annotations(match.group("rest"))
    elements = _atom(value) if value else []
    if not isinstance(elements, list):
        raise ChiplexError(f"linear FlatZinc: array {match.group('name')} has no elements")
    model.arrays[match.group("name")] = elements
    if "output_array" in annotations:
        model.outputs[match.group("name")] = elements


def _solve(model: LinearModel, item: str) -> None:
    match = re.search(r"(minimize|maximize)\s+([A-Za-z_][A-Za-z0-9_]*)\s*$", item)
    if match:
        model.sense, model.objective = match.group(1), match.group(2)
    elif not item.rstrip().endswith("satisfy"):
        raise ChiplexError(f"linear FlatZinc: unsupported solve item {item[:80]!r}")


def _resolve(model: LinearModel, arg: object) -> list[object]:
    if isinstance(arg, list):
        return arg
    if isinstance(arg, str) and arg in model.arrays:
        return model.arrays[arg]
    raise ChiplexError(f"linear FlatZinc: expected an array, got {arg!r}")


def _read_constraint(model: LinearModel, item: str) -> tuple[str, list[object]]:
    name, _, rest = item.partition("(")
    # Arguments hold no parentheses (arrays, names, literals); annotations may follow the first ")".
    body = rest[: rest.index(")")]
    args = [_atom(a) for a in _split_top(body)]
    args = [model.arrays[a] if isinstance(a, str) and a in model.arrays else a for a in args]
    return name.strip(), args


def linear_rows(model: LinearModel) -> None:
    """Turn the constraints into linear rows (HiGHS); only the linear subset is accepted."""
    for name, args in model.constraints:
        _linear_constraint(model, name, args)


def _linear_constraint(model: LinearModel, name: str, args: list[object]) -> None:
    if name in ("int_lin_le", "int_lin_eq", "int_lin_lt", "bool_lin_le", "bool_lin_eq"):
        coefs, xs, rhs = _resolve(model, args[0]), _resolve(model, args[1]), args[2]
        rhs_value = model.constants[rhs] if isinstance(rhs, str) else _as_int(rhs)
        terms = [(float(_as_int(c)), x) for c, x in zip(coefs, xs, strict=True)]
        if name.endswith("_eq"):
            model.add_row(terms, rhs_value, rhs_value)
        elif name.endswith("_lt"):
            model.add_row(terms, -_INF, rhs_value - 1)
        else:
            model.add_row(terms, -_INF, rhs_value)
    elif name in ("int_le", "bool_le"):
        model.add_row([(1.0, args[0]), (-1.0, args[1])], -_INF, 0)
    elif name in ("int_lt", "bool_lt"):
        model.add_row([(1.0, args[0]), (-1.0, args[1])], -_INF, -1)
    elif name in ("int_eq", "bool_eq", "bool2int"):
        model.add_row([(1.0, args[0]), (-1.0, args[1])], 0, 0)
    elif name == "bool_not":
        model.add_row([(1.0, args[0]), (1.0, args[1])], 1, 1)
    elif name == "bool_clause":
        pos, neg = _resolve(model, args[0]), _resolve(model, args[1])
        # sum(pos) + sum(1 - neg) >= 1
        model.add_row([(1.0, p) for p in pos] + [(-1.0, q) for q in neg], 1 - len(neg), _INF)
    elif name == "array_bool_or" and args[1] is True:
        model.add_row([(1.0, x) for x in _resolve(model, args[0])], 1, _INF)
    elif name == "array_bool_and" and args[1] is True:
        for x in _resolve(model, args[0]):
            model.add_row([(1.0, x)], 1, 1)
    else:
        raise ChiplexError(
            f"linear FlatZinc: constraint {name} is not linear; the HiGHS back end cannot solve it"
        )


# -- solving ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LinearResult:
    status: str
    """OPTIMAL_SOLUTION, SATISFIED, UNSATISFIABLE or UNKNOWN (the Gecode route's names)."""
    values: dict[str, object] | None
    bound: float | None = None
    """The proved bound on the objective in the model's own sense (no solution is better): HiGHS's
    dual bound, valid also when the time limit stopped the search. None for satisfaction problems."""


def exact_highs(time_left: float, seed: int):  # type: ignore[no-untyped-def]
    """A HiGHS instance set for proofs: quiet, one thread, seeded, and optimal meaning optimal (no
    relative gap, and the objectives are integers, so a gap below 1 closes it).

    The feasibility tolerances stay HiGHS's defaults (1e-6 integrality, 1e-7 rows): 1e-9, HiGHS's own
    zero, invites false infeasibility proofs (the HiGHS maintainers' advice, ERGO-Code/HiGHS issues 2033
    and 3258), and on optimize.mzn it gave false optima (tests/test_solver_decide.py, the 5-matmul
    case; the other half of that fix is `solver.MIP_TIME_UNITS`). A solution within the tolerance is
    rounded and checked by the caller, and the callers hold every claimed optimum against the exact
    objective of the placement returned."""
    import highspy

    highs = highspy.Highs()
    for option, value in (
        ("output_flag", False),
        ("time_limit", max(float(time_left), 0.01)),
        ("random_seed", int(seed)),
        ("threads", 1),
        ("mip_rel_gap", 0.0),
        ("mip_abs_gap", 0.5),
    ):
        highs.setOptionValue(option, value)
    return highs


def solve_with_highs(text: str, *, time_limit: float, seed: int) -> LinearResult:
    """Solve linear FlatZinc `text` with HiGHS within `time_limit` seconds. Not in a process that has
    loaded ortools (see `solve_in_subprocess`)."""
    import highspy

    started = time.monotonic()  # the time limit covers reading and building the model too
    model = parse(text)
    linear_rows(model)
    # A dummy column keeps HiGHS from calling a model whose variables flattening fixed all "empty".
    model.new_column("chiplex_dummy_", 0.0, 0.0, False)
    n = len(model.lower)
    highs = exact_highs(time_limit - (time.monotonic() - started), seed)
    inf = highs.getInfinity()
    lower = np.clip(np.array(model.lower, dtype=np.float64), -inf, inf)
    upper = np.clip(np.array(model.upper, dtype=np.float64), -inf, inf)
    cost = np.zeros(n, dtype=np.float64)
    if model.objective is not None:
        if model.objective in model.constants:
            cost[:] = 0.0
        else:
            cost[model.column(model.objective)] = 1.0 if model.sense == "minimize" else -1.0
    highs.addCols(
        n, cost, lower, upper, 0, np.array([], np.int32), np.array([], np.int32), np.array([])
    )
    highs.changeColsIntegrality(
        n, np.arange(n, dtype=np.int32), np.full(n, highspy.HighsVarType.kInteger)
    )
    if model.row_lower:
        starts = np.cumsum([0] + [len(c) for c in model.row_columns[:-1]]).astype(np.int32)
        index = np.array([c for cols in model.row_columns for c in cols], dtype=np.int32)
        value = np.array([v for vals in model.row_values for v in vals], dtype=np.float64)
        highs.addRows(
            len(model.row_lower),
            np.clip(np.array(model.row_lower), -inf, inf),
            np.clip(np.array(model.row_upper), -inf, inf),
            len(index),
            starts,
            index,
            value,
        )
    highs.run()
    status = highs.getModelStatus()
    info = highs.getInfo()
    bound = None
    if model.objective in model.constants:
        bound = float(model.constants[model.objective])  # flattening fixed the objective
    elif model.objective is not None and status != highspy.HighsModelStatus.kInfeasible:
        dual = float(info.mip_dual_bound)
        if math.isfinite(dual):
            bound = -dual if model.sense == "maximize" else dual
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    if status == highspy.HighsModelStatus.kInfeasible:
        return LinearResult("UNSATISFIABLE", None)
    if not has_solution:
        return LinearResult("UNKNOWN", None, bound)
    solution = np.rint(np.array(highs.getSolution().col_value)).astype(np.int64)

    def read(term: object) -> object:
        if isinstance(term, str):
            if term in model.constants:
                value = model.constants[term]
            else:
                value = int(solution[model.column(term)])
            return (
                bool(value)
                if term in model.columns and model.is_bool[model.columns[term]]
                else value
            )
        return term

    values = {
        name: [read(t) for t in spec] if isinstance(spec, list) else read(spec)
        for name, spec in model.outputs.items()
    }
    optimal = status == highspy.HighsModelStatus.kOptimal
    if model.objective is None:
        return LinearResult("SATISFIED", values)
    return LinearResult("OPTIMAL_SOLUTION" if optimal else "SATISFIED", values, bound)


def solve_with_cp_sat(text: str, *, time_limit: float, seed: int, workers: int = 1) -> LinearResult:
    """Solve FlatZinc `text` with OR-Tools CP-SAT within `time_limit` seconds: the FlatZinc of
    Gecode's library (reified comparisons, clauses, max, abs) maps one to one onto CP-SAT constraints
    with exact integer arithmetic."""
    from ortools.sat.python import cp_model

    started = time.monotonic()  # the time limit covers reading and building the model too
    model = parse(text)
    cp = cp_model.CpModel()
    big = 2**62
    columns: list[object] = []
    for lo, hi, is_bool in zip(model.lower, model.upper, model.is_bool, strict=True):
        lo_i = -big if lo == -_INF else int(lo)
        hi_i = big if hi == _INF else int(hi)
        columns.append(cp.new_bool_var("") if is_bool else cp.new_int_var(lo_i, hi_i, ""))
    true = cp.new_bool_var("true")
    cp.add(true == 1)

    def var(term: object):  # noqa: ANN202 - a CP-SAT expression or literal
        if isinstance(term, str):
            if term in model.constants:
                return model.constants[term]
            return columns[model.column(term)]
        return _as_int(term)

    def lit(term: object):  # noqa: ANN202 - a CP-SAT literal
        if isinstance(term, str) and term not in model.constants:
            return columns[model.column(term)]
        return true if _as_int(var(term)) else ~true

    def linear(coefs: object, xs: object):  # noqa: ANN202
        return sum(_as_int(c) * var(x) for c, x in zip(coefs, xs, strict=True))  # type: ignore[arg-type]

    def reify(holds, fails, r: object) -> None:  # noqa: ANN001 - CP-SAT constraint builders
        literal = lit(r)
        holds().only_enforce_if(literal)
        fails().only_enforce_if(~literal)

    compare = {
        "eq": (lambda a, b: a == b, lambda a, b: a != b),
        "ne": (lambda a, b: a != b, lambda a, b: a == b),
        "le": (lambda a, b: a <= b, lambda a, b: a > b),
        "lt": (lambda a, b: a < b, lambda a, b: a >= b),
    }
    for name, args in model.constraints:
        parts = name.split("_")
        if name.startswith("int_lin_") and parts[2] in compare:
            yes, no = compare[parts[2]]
            expr, rhs = linear(args[0], args[1]), var(args[2])
            if name.endswith("_reif"):
                reify(
                    lambda e=expr, r=rhs, f=yes: cp.add(f(e, r)),
                    lambda e=expr, r=rhs, f=no: cp.add(f(e, r)),
                    args[3],
                )
            else:
                cp.add(yes(expr, rhs))
        elif parts[0] in ("int", "bool") and len(parts) >= 2 and parts[1] in compare:
            yes, no = compare[parts[1]]
            a, b2 = var(args[0]), var(args[1])
            if name.endswith("_reif"):
                reify(
                    lambda a=a, b=b2, f=yes: cp.add(f(a, b)),
                    lambda a=a, b=b2, f=no: cp.add(f(a, b)),
                    args[2],
                )
            else:
                cp.add(yes(a, b2))
        elif name == "bool2int":
            cp.add(var(args[1]) == var(args[0]))
        elif name == "bool_not":
            cp.add(var(args[0]) + var(args[1]) == 1)
        elif name == "bool_clause":
            cp.add_bool_or([lit(x) for x in args[0]] + [~lit(x) for x in args[1]])
        elif name in ("array_bool_and", "array_bool_or"):
            literals = [lit(x) for x in args[0]]
            if name == "array_bool_and":
                reify(
                    lambda ls=literals: cp.add_bool_and(ls),
                    lambda ls=literals: cp.add_bool_or([~x for x in ls]),
                    args[1],
                )
            else:
                reify(
                    lambda ls=literals: cp.add_bool_or(ls),
                    lambda ls=literals: cp.add_bool_and([~x for x in ls]),
                    args[1],
                )
        elif name in ("array_int_maximum", "array_int_minimum"):
            add = cp.add_max_equality if name.endswith("maximum") else cp.add_min_equality
            add(var(args[0]), [var(x) for x in args[1]])
        elif name in ("int_max", "int_min"):
            add = cp.add_max_equality if name == "int_max" else cp.add_min_equality
            add(var(args[2]), [var(args[0]), var(args[1])])
        elif name == "int_abs":
            cp.add_abs_equality(var(args[1]), var(args[0]))
        elif name == "int_times":
            cp.add_multiplication_equality(var(args[2]), [var(args[0]), var(args[1])])
        elif name == "bool_lin_le" or name == "bool_lin_eq":
            yes, _ = compare[parts[2]]
            cp.add(yes(linear(args[0], args[1]), var(args[2])))
        else:
            raise ChiplexError(f"FlatZinc: the CP-SAT back end does not translate {name}")
    if model.objective is not None and model.objective not in model.constants:
        target = columns[model.column(model.objective)]
        if model.sense == "minimize":
            cp.minimize(target)
        else:
            cp.maximize(target)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(
        float(time_limit) - (time.monotonic() - started), 0.01
    )
    solver.parameters.random_seed = int(seed)
    solver.parameters.num_workers = workers
    status = solver.solve(cp)
    has_objective = model.objective is not None and model.objective not in model.constants
    if status == cp_model.INFEASIBLE:
        return LinearResult("UNSATISFIABLE", None)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        bound = float(solver.best_objective_bound) if has_objective else None
        return LinearResult("UNKNOWN", None, bound)

    def read(term: object) -> object:
        if isinstance(term, str):
            if term in model.constants:
                return model.constants[term]
            col = model.column(term)
            value = int(solver.value(columns[col]))  # type: ignore[arg-type]
            return bool(value) if model.is_bool[col] else value
        return term

    values = {
        name: [read(t) for t in spec] if isinstance(spec, list) else read(spec)
        for name, spec in model.outputs.items()
    }
    if model.objective is None:
        return LinearResult("SATISFIED", values)
    bound = float(solver.best_objective_bound) if has_objective else None
    return LinearResult(
        "OPTIMAL_SOLUTION" if status == cp_model.OPTIMAL else "SATISFIED", values, bound
    )


SOLVE = {"highs": solve_with_highs, "cp-sat": solve_with_cp_sat}


def run_child(module: str, args: list[str], *, stdin: str, time_limit: float) -> dict | None:  # type: ignore[type-arg]
    """`python -m module args` in a fresh process that imports this same chiplex (however the parent
    found it: an installed package, a PYTHONPATH, a path a script added); its stdout read as JSON.
    None when it outlives `time_limit` by 30 s.

    highspy and ortools (which bundles its own HiGHS) cannot be loaded into one process (their HiGHS
    symbols clash), so HiGHS runs apart from the CP-SAT back end that chiplex loads by default."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    try:
        run = subprocess.run(
            [sys.executable, "-m", module, *args],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=time_limit + 30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    if run.returncode != 0:
        raise ChiplexError(f"{module} {' '.join(args)} failed: {run.stderr.strip()[-2000:]}")
    return json.loads(run.stdout)


def run_children(module: str, stdins: list[str], *, time_limit: float) -> list[dict | None]:  # type: ignore[type-arg]
    """`run_child` for each of `stdins` at once (`python -m module`, one process each): the replies in
    the same order, None for a child that outlived `time_limit` by 30 s (it is killed)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    children = []
    for stdin in stdins:
        child = subprocess.Popen(
            [sys.executable, "-m", module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert child.stdin is not None
        child.stdin.write(stdin)
        child.stdin.close()
        child.stdin = None  # sent: communicate() below only reads
        children.append(child)
    deadline = time.monotonic() + time_limit + 30
    replies: list[dict | None] = []  # type: ignore[type-arg]
    try:
        for child in children:
            try:
                out, err = child.communicate(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
                child.communicate()
                replies.append(None)
                continue
            if child.returncode != 0:
                raise ChiplexError(f"{module} failed: {err.strip()[-2000:]}")
            replies.append(json.loads(out))
    finally:
        for child in children:  # on an error or an interrupt, no child outlives the call
            if child.poll() is None:
                child.kill()
                child.communicate()
    return replies


def solve_in_subprocess(
    solver: str, fzn_path: str, *, time_limit: float, seed: int
) -> LinearResult:
    """Run `solver` on a linear FlatZinc file in a fresh Python process (see `run_child`)."""
    args = [solver, fzn_path, str(time_limit), str(seed)]
    answer = run_child("chiplex.targets.flatzinc", args, stdin="", time_limit=time_limit)
    if answer is None:
        return LinearResult("UNKNOWN", None)
    return LinearResult(answer["status"], answer["values"], answer["bound"])


def main(argv: list[str]) -> int:
    """`python -m chiplex.targets.flatzinc SOLVER FILE.fzn TIME_LIMIT SEED`: the answer as JSON."""
    import json

    solver, path, limit, seed = argv
    with open(path) as handle:
        answer = SOLVE[solver](handle.read(), time_limit=float(limit), seed=int(seed))
    print(json.dumps({"status": answer.status, "values": answer.values, "bound": answer.bound}))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
