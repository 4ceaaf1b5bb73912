"""`place{strategy=dp seed=0}`: attach `#mcm.chip<N>` to every op, chosen by a placement strategy.

`place{strategy=learned}` places zero-shot with the shipped pre-trained policy (the best of 16 samples,
each repaired and simulated); `place{strategy=learned checkpoint="policy.pt" budget=200 seed=0}`
fine-tunes the given policy (default: the shipped one) for `budget` evaluations first.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from chiplex.errors import ChiplexError
from chiplex.ir.graph import STATIONARY_OPS, graph_from_module, single_function
from chiplex.ir.mcm import get_chip, set_chip
from chiplex.passes.common import resolve_target
from chiplex.passes.strategies import get_strategy


def place_stationary_ops(module: ModuleOp) -> None:
    """Params and constants go with their first user (split-chiplets copies them to every user's chip)."""
    for op in single_function(module).body.block.ops:
        if op.name in STATIONARY_OPS:
            chips = [get_chip(use.operation) for use in op.results[0].uses]
            chips = [c for c in chips if c is not None]
            if chips:
                set_chip(op, min(chips))


@dataclass(frozen=True)
class Place(ModulePass):
    name = "place"
    strategy: str = "dp"
    target: str | None = None
    seed: int = 0
    solver: str | None = None
    """Constraint solver back end for strategy=cp (auto, cp-sat, highs, gecode, order-mip, order-mip-race; default: the target's)."""
    checkpoint: str | None = None
    """learned only: the policy checkpoint to start from (default: the shipped pre-trained one)."""
    budget: int | None = None
    """learned only: evaluations to fine-tune for (default: none, zero-shot best of 16 samples)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        from chiplex.targets.solver_choice import with_solver

        if self.strategy != "learned" and (self.checkpoint is not None or self.budget is not None):
            raise ChiplexError(f"{self.name}: checkpoint and budget need strategy=learned")
        target = with_solver(resolve_target(op, self.target, self.name), self.solver, self.name)
        graph = graph_from_module(op)
        if self.strategy == "learned":
            from chiplex.passes.learned import place_learned

            placement = place_learned(graph, target, self.seed, self.checkpoint, self.budget)
        else:
            placement = get_strategy(self.strategy)(graph, target, self.seed)
        for node, chip in zip(graph.ops, placement.tolist(), strict=True):
            set_chip(node, chip)
        place_stationary_ops(op)
