"""`legalize-placement{repair=false}`: check the placement; fail with every violation, or repair it."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from chiplex.errors import ChiplexError
from chiplex.ir.graph import graph_from_module
from chiplex.ir.mcm import set_chip
from chiplex.passes.common import placement_of, resolve_target
from chiplex.passes.place import place_stationary_ops
from chiplex.targets.legality import check_placement


@dataclass(frozen=True)
class LegalizePlacement(ModulePass):
    name = "legalize-placement"
    repair: bool = False
    target: str | None = None
    solver: str | None = None
    """Constraint solver back end of the repair (auto, cp-sat, highs, gecode, order-mip, order-mip-race; default: the target's)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        from chiplex.targets.solver_choice import with_solver

        target = with_solver(resolve_target(op, self.target, self.name), self.solver, self.name)
        graph = graph_from_module(op)
        placement = placement_of(graph, self.name)
        violations = check_placement(graph, target, placement)
        if not violations:
            return
        if not self.repair:
            lines = "\n".join(f"  {graph.locate_nodes(v.ops)}{v}" for v in violations)
            raise ChiplexError(
                f"illegal placement on {target.name} ({len(violations)} violations):\n{lines}\n"
                "hint: run legalize-placement{repair=true} to move the fewest ops to a legal placement"
            )
        from chiplex.targets.solver import repair

        result = repair(graph, target, placement)
        # The claim travels with the answer: proved the fewest moves, or feasible only.
        print(f"legalize-placement: repaired the placement: {result.claim}", file=sys.stderr)
        for node, chip in zip(graph.ops, result.placement.tolist(), strict=True):
            set_chip(node, chip)
        place_stationary_ops(op)
