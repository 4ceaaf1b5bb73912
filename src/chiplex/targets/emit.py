"""The MCM target emitter: split `mcm.program` IR -> `Schedule` (see docs/schedule-format.md).

Op costs come from the `mcm.cost` attribute that `annotate-costs` attaches. On targets with DRAM the
emitter decides, per chiplet and in schedule order, which ops' weights stay in SRAM (the same rule as
`cost.op_durations`), so IR and graph produce the same schedule.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import DictionaryAttr, FloatAttr, IntegerAttr, ModuleOp

from chiplex.errors import ChiplexError
from chiplex.ir.graph import STATIONARY_OPS
from chiplex.ir.mcm import COST_ATTR_NAME as COST_ATTR
from chiplex.ir.mcm import InputOp, OutputOp, ProgramOp, RecvOp, SendOp
from chiplex.ir.types import tensor_bytes
from chiplex.targets.cost import streamed_ops
from chiplex.targets.schedule import ComputeStep, Message, RecvStep, Schedule, SendStep, Step
from chiplex.targets.target import Target


def _cost(op, key: str) -> float:  # type: ignore[no-untyped-def]
    attr = op.attributes.get(COST_ATTR)
    if not isinstance(attr, DictionaryAttr) or key not in attr.data:
        raise ChiplexError(f"emit: op {op.name} has no {COST_ATTR}; run annotate-costs first")
    value = attr.data[key]
    if isinstance(value, IntegerAttr):
        return float(value.value.data)
    assert isinstance(value, FloatAttr)
    return float(value.value.data)


def find_program(module: ModuleOp) -> ProgramOp:
    programs = [op for op in module.ops if isinstance(op, ProgramOp)]
    if len(programs) != 1:
        raise ChiplexError(
            f"emit: expected one mcm.program (run split-chiplets), found {len(programs)}"
        )
    return programs[0]


def emit_schedule(module: ModuleOp, target: Target) -> Schedule:
    program = find_program(module)
    chip = target.chip
    chips: list[tuple[Step, ...]] = []
    messages: list[Message] = []
    for chiplet in program.chiplets:
        computes = [
            op
            for op in chiplet.block.ops
            if op.attributes.get(COST_ATTR) is not None and not isinstance(op, SendOp | RecvOp)
        ]
        receive = chip.buffers_per_edge * sum(
            int(op.bytes.value.data) for op in chiplet.block.ops if isinstance(op, RecvOp)
        )
        working = max((_cost(op, "working_set") for op in computes), default=0.0)
        # split-chiplets puts one copy of each param on every chip that reads it: a shared param is
        # one op here, whatever the number of its readers.
        op_params = [
            [v.owner for v in op.operands if getattr(v.owner, "name", "") in STATIONARY_OPS]
            for op in computes
        ]
        param_bytes = {p: tensor_bytes(p.results[0].type) for ps in op_params for p in ps}
        streamed = (
            streamed_ops(op_params, param_bytes, chip.sram_bytes - receive - working)
            if chip.dram_bytes
            else (np.zeros(len(computes), dtype=bool))
        )
        stream_of = {op: bool(s) for op, s in zip(computes, streamed, strict=True)}
        steps: list[Step] = []
        for op in chiplet.block.ops:
            if isinstance(op, SendOp):
                value = op.value
                route = target.route(chiplet.chip_id, int(op.peer.value.data))
                message = Message(
                    int(op.msg.value.data),
                    chiplet.chip_id,
                    int(op.peer.value.data),
                    int(op.bytes.value.data),
                    route,
                    f"%{value.name_hint}" if value.name_hint else "",
                )
                messages.append(message)
                steps.append(
                    SendStep(message.msg, message.dst, message.bytes, route, message.tensor)
                )
            elif isinstance(op, RecvOp):
                hint = op.results[0].name_hint
                steps.append(
                    RecvStep(
                        int(op.msg.value.data),
                        int(op.peer.value.data),
                        int(op.bytes.value.data),
                        f"%{hint}" if hint else "",
                    )
                )
            elif op in stream_of:
                weight = _cost(op, "weight_bytes")
                touched = _cost(op, "bytes")
                duration = _cost(op, "time_s")
                if stream_of[op]:
                    memory_time = (
                        touched - weight
                    ) / chip.sram_bandwidth + weight / chip.dram_bandwidth
                    duration = max(_cost(op, "compute_s"), memory_time)
                hint = op.results[0].name_hint
                node = int(_cost(op, "node"))
                steps.append(
                    ComputeStep(
                        op=f"%{hint}" if hint else f"{op.name.removeprefix('nn.')}_{node}",
                        kind=op.name,
                        node=node,
                        flops=_cost(op, "flops"),
                        bytes=int(touched),
                        weight_bytes=int(weight),
                        duration_s=duration,
                        weights_from_dram=stream_of[op],
                    )
                )
            elif not isinstance(op, InputOp | OutputOp) and op.name not in (
                "nn.param",
                "nn.constant",
                "mcm.yield",
            ):
                raise ChiplexError(
                    f"emit: op {op.name} in chiplet {chiplet.chip_id} has no cost; run annotate-costs"
                )
        chips.append(tuple(steps))
    samples = program.attributes.get("samples_per_microbatch")
    return Schedule(
        graph=program.sym_name.data,
        target=target.name,
        num_chips=target.num_chips,
        samples_per_microbatch=int(samples.value.data) if isinstance(samples, IntegerAttr) else 1,
        chips=tuple(chips),
        messages=tuple(sorted(messages, key=lambda m: m.msg)),
        compiled_for=target,
    )
