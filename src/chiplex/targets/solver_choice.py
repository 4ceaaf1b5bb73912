"""Which back end solves the MiniZinc models: the names, the default, and how a choice is resolved.

The rules live in `chiplex/targets/models/*.mzn` whichever back end runs; a back end only decides how the
flattened model is solved (see docs/placement.md, "Back ends", for the measurements behind the default).

- `auto` (the default): per model, the back end that measured best in benchmarks/solver_decide.py:
  `gecode` for repair (proved 28 of 36 candidates within 5 s, median 0.87 s, against CP-SAT's 25 and
  1.48 s), `cp-sat` for feasibility and optimize (it decides infeasible instances that Gecode leaves
  undecided after 20 s, and proves more optima).
- `cp-sat`: Gecode's FlatZinc (reified comparisons, clauses, max, abs) translated one to one into OR-Tools
  CP-SAT (PyPI `ortools`), a lazy-clause CP/SAT solver with a linear relaxation.
- `highs`: MiniZinc's linear library (`-G linear`) + HiGHS, a MIP solver (PyPI `highspy`).
- `gecode`: Gecode's library + `fzn-gecode`, MiniZinc's bundled CP solver.

Resolution order: an explicit choice (`--solver`, a pass option, a keyword argument), then the target's
`[solver] backend`, then DEFAULT_SOLVER.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chiplex.errors import ChiplexError

if TYPE_CHECKING:
    from chiplex.targets.target import Target

SOLVERS = ("auto", "cp-sat", "highs", "gecode", "order-mip")
DEFAULT_SOLVER = "auto"
AUTO_CHOICE = {"repair.mzn": "gecode"}
"""The back end `auto` uses per model; every other model gets AUTO_DEFAULT."""
AUTO_DEFAULT = "cp-sat"
ORDER_MIP_MODELS = ("repair.mzn", "satisfy.mzn")
"""The models `order-mip` formulates itself (chiplex.targets.order_mip.MODELS)."""


def backend_for(solver: str, model: str) -> str:
    """The back end that runs `model` when `solver` was chosen (resolves `auto`)."""
    if solver == "auto":
        solver = AUTO_CHOICE.get(model, AUTO_DEFAULT)
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
