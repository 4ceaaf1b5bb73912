"""`annotate-costs{target=NAME}`: attach the target's roofline cost to every op and record the target."""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import (
    DictionaryAttr,
    FloatAttr,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    f64,
    i64,
)
from xdsl.passes import ModulePass

from chiplex.ir.graph import graph_from_module
from chiplex.ir.mcm import COST_ATTR_NAME as COST_ATTR
from chiplex.passes.common import TARGET_ATTR, resolve_target
from chiplex.targets.cost import compute_times, op_times


@dataclass(frozen=True)
class AnnotateCosts(ModulePass):
    """Per op: flops, bytes touched, weight bytes, working set, compute and roofline seconds."""

    name = "annotate-costs"
    target: str | None = None

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        target = resolve_target(op, self.target, self.name)
        graph = graph_from_module(op)
        compute = compute_times(graph, target)
        roofline = op_times(graph, target)
        touched = graph.activation_in_bytes + graph.weight_bytes + graph.output_bytes
        for i, node in enumerate(graph.ops):
            node.attributes[COST_ATTR] = DictionaryAttr(
                {
                    "node": IntegerAttr(i, i64),
                    "flops": IntegerAttr(int(graph.flops[i]), i64),
                    "bytes": IntegerAttr(int(touched[i]), i64),
                    "weight_bytes": IntegerAttr(int(graph.weight_bytes[i]), i64),
                    "working_set": IntegerAttr(int(graph.working_set_bytes[i]), i64),
                    "compute_s": FloatAttr(float(compute[i]), f64),
                    "time_s": FloatAttr(float(roofline[i]), f64),
                }
            )
        op.attributes[TARGET_ATTR] = StringAttr(self.target or target.name)
