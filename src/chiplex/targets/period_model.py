"""The period model cp optimises (`optimize.mzn`): dp's stage model, for any placement.

The simulator's period is its slowest resource. The decomposable part of that, which a linear model can
carry and which dp's DP optimises on contiguous splits (`chiplex.passes.strategies`):

- a chip's stage time: the roofline time of its ops (`op_times`, weights in SRAM);
- a pipeline boundary c | c+1: every result produced on chips 0..c and read on a chip after c crosses
  it once (dp's `cut_bytes`); on a chain all of it uses the link c -> c+1, so the boundary takes the
  bytes over the slowest link, and its receive buffers' round trip, (that + the link latency) / buffers
  per edge, bounds the period too (the estimate's buffer term, `chiplex.targets.cost.estimate`).

What it leaves out (the estimate and the simulator have it): DRAM streaming, routes of a mesh or torus
that share links differently from the chain order, and back-pressure cycles. The search harness
simulates cp's answer like any other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chiplex.ir.graph import Graph
from chiplex.targets.cost import op_times
from chiplex.targets.target import Target


@dataclass(frozen=True)
class PeriodModel:
    op_time: np.ndarray
    """float[n]: seconds of each op (roofline, weights in SRAM)."""
    link_time: np.ndarray
    """float[n]: seconds each op's result takes on the slowest link (0 without links)."""
    latency: float
    """seconds: the slowest link's latency."""
    buffers: int
    """receive buffers per edge"""
    num_chips: int
    src: np.ndarray
    dst: np.ndarray

    def boundary_times(self, placement: np.ndarray) -> np.ndarray:
        """float[K-1]: seconds of link time each pipeline boundary carries under the placement."""
        placement = np.asarray(placement, dtype=np.int64)
        k = self.num_chips
        n = len(placement)
        last = placement.copy()  # the latest chip that reads each op's result (itself when none)
        np.maximum.at(last, self.src, placement[self.dst])
        serial = np.zeros(k + 1)
        # A result crosses the boundaries chip(u) .. last(u) - 1: a difference array over boundaries.
        np.add.at(serial, placement, self.link_time[:n])
        np.add.at(serial, last, -self.link_time[:n])
        return np.cumsum(serial)[: max(k - 1, 0)]

    def period(self, placement: np.ndarray) -> float:
        """Seconds per micro-batch under the model: the slowest stage or boundary."""
        placement = np.asarray(placement, dtype=np.int64)
        stages = np.bincount(placement, weights=self.op_time, minlength=self.num_chips)
        cuts = self.boundary_times(placement)
        round_trip = np.where(cuts > 0, (cuts + self.latency) / self.buffers, 0.0)
        return float(
            max(stages.max(initial=0.0), cuts.max(initial=0.0), round_trip.max(initial=0.0))
        )


def period_model(graph: Graph, target: Target) -> PeriodModel:
    times = op_times(graph, target)
    if target.links:
        slowest = min(target.links, key=lambda link: (link.bandwidth, -link.latency))
        link_time = graph.output_bytes.astype(np.float64) / slowest.bandwidth
        latency = slowest.latency
    else:
        link_time, latency = np.zeros(graph.num_nodes), 0.0
    has_consumer = np.zeros(graph.num_nodes, dtype=bool)
    has_consumer[graph.src] = True
    return PeriodModel(
        op_time=times,
        link_time=np.where(has_consumer, link_time, 0.0),
        latency=float(latency),
        buffers=target.chip.buffers_per_edge,
        num_chips=target.num_chips,
        src=graph.src.astype(np.int64),
        dst=graph.dst.astype(np.int64),
    )
