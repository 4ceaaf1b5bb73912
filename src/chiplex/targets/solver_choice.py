"""Which back end solves the MiniZinc models: the names, the default, and how a choice is resolved.

The rules live in `chiplex/targets/models/*.mzn` whichever back end runs; a back end only decides how the
flattened model is solved (see docs/placement.md, "Back ends", for the measurements behind the default).

- `auto` (the default): per model, the back end that measured best in benchmarks/solver_decide.py
  (docs/placement.md, "Back ends", has the table): `order-mip` for repair (it proves most repairs
  optimal: on the benchmark's 102 instances, the repairs Gecode left unproved after 5 s, 12 of 17 were
  proved by it), `cp-sat` for feasibility (with two workers in `explain`) and optimize.
- `cp-sat`: Gecode's FlatZinc (reified comparisons, clauses, max, abs) translated one to one into OR-Tools
  CP-SAT (PyPI `ortools`), a lazy-clause CP/SAT solver with a linear relaxation.
- `highs`: MiniZinc's linear library (`-G linear`) + HiGHS, a MIP solver (PyPI `highspy`).
- `gecode`: Gecode's library + `fzn-gecode`, MiniZinc's bundled CP solver.
- `order-mip`: legality.mzn's rules restated in the order encoding y[v, k] = [chip[v] <= k] and solved
  by HiGHS (`chiplex.targets.order_mip`), for repair.mzn and satisfy.mzn; the other models go to `highs`.
  It is a second formulation of the .mzn rules, held to them by tests/test_order_mip.py, and every
  placement it returns passes the Python checker before it is used.
- `order-mip-race`: for repair.mzn, `order-mip` twice at once with two HiGHS settings (presolve on and
  off, `order_mip.RACE`), one process and thread each: the better incumbent and the larger lower bound
  of the two are combined, and both stop when together they prove the optimum. Other models as
  `order-mip`.

Resolution order: an explicit choice (`--solver`, a pass option, a keyword argument), then the target's
`[solver] backend`, then DEFAULT_SOLVER.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chiplex.errors import ChiplexError

if TYPE_CHECKING:
    from chiplex.targets.target import Target

SOLVERS = ("auto", "cp-sat", "highs", "gecode", "order-mip", "order-mip-race")
DEFAULT_SOLVER = "auto"
AUTO_CHOICE = {"repair.mzn": "order-mip"}
"""The back end `auto` uses per model; every other model gets AUTO_DEFAULT."""
AUTO_DEFAULT = "cp-sat"
ORDER_MIP_MODELS = ("repair.mzn", "satisfy.mzn")
"""The models `order-mip` formulates itself (chiplex.targets.order_mip.MODELS)."""


def backend_for(solver: str, model: str) -> str:
    """The back end that runs `model` when `solver` was chosen (resolves `auto`)."""
    if solver == "auto":
        solver = AUTO_CHOICE.get(model, AUTO_DEFAULT)
    if solver == "order-mip-race" and model != "repair.mzn":
        solver = "order-mip"  # the race is for proofs of an objective; feasibility has none
    if solver == "order-mip" and model not in ORDER_MIP_MODELS:
        return "highs"  # the order encoding formulates repair and feasibility; the rest: FlatZinc + HiGHS
    return solver


def bound_solver() -> str:
    """The back end for chip_weight.mzn (a proof step, not a user choice): CP-SAT."""
    return "cp-sat"


def check_solver_name(name: str, where: str = "solver") -> str:
    if name not in SOLVERS:
        raise ChiplexError(
            f"{where}: unknown solver {name!r}; expected one of {', '.join(SOLVERS)}"
        )
    return name


def with_solver(target: Target, solver: str | None, where: str = "solver") -> Target:
    """`target` with its back end set to `solver` (unchanged when `solver` is None or empty)."""
    if not solver:
        return target
    import dataclasses

    return dataclasses.replace(target, solver=check_solver_name(solver, where))


def solver_for(target: Target | None, solver: str | None = None) -> str:
    """The explicit `solver` if given, else the target's `[solver] backend`, else DEFAULT_SOLVER."""
    if solver:
        return check_solver_name(solver)
    chosen = getattr(target, "solver", None) if target is not None else None
    return check_solver_name(chosen) if chosen else DEFAULT_SOLVER
