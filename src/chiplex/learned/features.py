"""What the policy reads: per-op, per-edge and per-problem features from the graph view and the target.

Everything is scale-free (logs, fractions, ratios), so one policy reads a 50-op MLP on 4 chips and a
10,000-op graph on 36 the same way. Bump FEATURE_VERSION whenever a feature changes meaning, order or
count: checkpoints record it and refuse to load into a different one.

Per op (NODE_FEATURES columns, in this order):
  kind one-hot over OP_KINDS (+ "other"), runs on the matrix unit,
  log flops, log output bytes, log weight bytes, log host-input bytes (scaled by 1/20: O(1) values),
  log(work / mean work), log(weights / mean weights) (work: `op_work`, roofline time + expected DRAM
  streaming), position in topological order, depth / max depth, log fan-in, log fan-out,
  cumulative share of the work and of the weights up to the op's middle (where a balanced pipeline cut
  of K stages would put it: at stage floor(K x share)), whether its weights alone exceed one chip's SRAM.
Per edge: log bytes (/20), log(transfer time over one link / mean op work).
Per problem (broadcast to every op): log chip count, log op count, log(K x SRAM / graph weights),
  log(1 + K x DRAM / graph weights), log(link time of all edges / total work), the expected share of
  weight bytes streamed from DRAM, whether the target limits the hop span, topology one-hot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from chiplex.ir.graph import Graph
from chiplex.targets.cost import op_times
from chiplex.targets.target import TOPOLOGIES, Target

FEATURE_VERSION = 2
"""2: the anchor columns (`chiplex.learned.anchor.ANCHOR_FEATURES`) joined the per-op input."""
OP_KINDS: tuple[str, ...] = (
    "nn.matmul", "nn.batch_matmul", "nn.conv2d", "nn.add", "nn.sub", "nn.mul", "nn.div", "nn.max",
    "nn.min", "nn.pow", "nn.relu", "nn.gelu", "nn.tanh", "nn.sigmoid", "nn.exp", "nn.log", "nn.sqrt",
    "nn.rsqrt", "nn.neg", "nn.erf", "nn.silu", "nn.cast", "nn.softmax", "nn.layer_norm",
    "nn.batch_norm", "nn.reduce_sum", "nn.reduce_mean", "nn.reduce_max", "nn.reshape",
    "nn.transpose", "nn.concat", "nn.slice", "nn.gather", "nn.embedding", "nn.max_pool2d",
    "nn.avg_pool2d", "nn.global_avg_pool2d",
)  # fmt: skip
"""Op kinds with their own one-hot column; any other kind (a user's op) shares the last column."""
NODE_SCALARS = (
    "is_matrix", "log_flops", "log_output_bytes", "log_weight_bytes", "log_input_bytes",
    "log_rel_work", "log_rel_weights", "topo_position", "depth", "log_fan_in", "log_fan_out",
    "work_share", "weight_share", "weights_exceed_sram",
)  # fmt: skip
GLOBAL_SCALARS = (
    "log_chips", "log_ops", "log_sram_vs_weights", "log_dram_vs_weights", "log_link_vs_work",
    "streamed_share", "hop_limited",
)  # fmt: skip
NODE_FEATURES = len(OP_KINDS) + 1 + len(NODE_SCALARS)
EDGE_FEATURES = 2
GLOBAL_FEATURES = len(GLOBAL_SCALARS) + len(TOPOLOGIES)
LOG_SCALE = 1.0 / 20.0
"""log(bytes) and log(flops) reach ~25 on big models: scaled to O(1) inputs."""


@dataclass(frozen=True, eq=False)
class GraphFeatures:
    """One (graph, target) problem as tensors, built once and reused by every forward pass."""

    node: torch.Tensor
    """float32[n, NODE_FEATURES]"""
    edge_index: torch.Tensor
    """int64[2, e]: row 0 producers, row 1 consumers (topological order: row 0 < row 1)."""
    edge: torch.Tensor
    """float32[e, EDGE_FEATURES]"""
    problem: torch.Tensor
    """float32[GLOBAL_FEATURES]"""
    work: np.ndarray
    """float64[n]: `op_work`, the policy's base cost per op (its action re-weights it)."""
    num_chips: int
    graph_name: str
    target_name: str

    @property
    def num_nodes(self) -> int:
        return int(self.node.shape[0])


def streamed_share(graph: Graph, target: Target) -> float:
    """The share of the graph's weight bytes that would stream from DRAM if every chip held an equal
    share of the weights and filled its SRAM first (0 without DRAM or when the weights fit SRAM)."""
    chip = target.chip
    total = float(graph.weight_bytes.sum())
    if not chip.dram_bytes or total <= 0:
        return 0.0
    return float(np.clip(1.0 - target.num_chips * chip.sram_bytes / total, 0.0, 1.0))


def op_work(graph: Graph, target: Target) -> np.ndarray:
    """Seconds per op: the roofline time plus the expected DRAM streaming time of its weights.

    The roofline (`op_times`) assumes every weight sits in SRAM; on a chip with DRAM the weights that do
    not fit stream at DRAM bandwidth on every micro-batch, which can dominate. Balancing stages by this
    estimate is the policy's starting point; what it learns is a per-op correction to it."""
    work = op_times(graph, target)
    share = streamed_share(graph, target)
    if share > 0:
        work = work + share * graph.weight_bytes / target.chip.dram_bandwidth
    # A zero-cost op still occupies a position in the pipeline; keep its share tiny but positive.
    floor = max(float(work.mean()) * 1e-6, 1e-18) if len(work) else 1e-18
    return np.maximum(work, floor)


def node_depths(graph: Graph) -> np.ndarray:
    """Longest-path depth from the graph's sources (edges go forward in node order)."""
    depth = np.zeros(graph.num_nodes, dtype=np.int64)
    order = np.argsort(graph.dst, kind="stable")
    for u, v in zip(graph.src[order].tolist(), graph.dst[order].tolist(), strict=True):
        # Edges sorted by consumer: every edge into u (consumer u < v) was processed already.
        if depth[u] + 1 > depth[v]:
            depth[v] = depth[u] + 1
    return depth


def _share(values: np.ndarray) -> np.ndarray:
    """Cumulative share up to each element's middle: (sum before + half its own) / total."""
    total = float(values.sum())
    if total <= 0:
        return np.linspace(0.0, 1.0, len(values)) if len(values) > 1 else np.zeros(len(values))
    return (np.cumsum(values) - values / 2) / total


def _log_ratio(values: np.ndarray, reference: float) -> np.ndarray:
    return np.log(np.maximum(values, 1e-30) / max(reference, 1e-30))


def graph_features(graph: Graph, target: Target) -> GraphFeatures:
    n, k = graph.num_nodes, target.num_chips
    chip = target.chip
    work = op_work(graph, target)
    weights = graph.weight_bytes.astype(np.float64)
    kind_index = {kind: i for i, kind in enumerate(OP_KINDS)}
    one_hot = np.zeros((n, len(OP_KINDS) + 1), dtype=np.float64)
    one_hot[np.arange(n), [kind_index.get(kind, len(OP_KINDS)) for kind in graph.kinds]] = 1.0
    fan_in = np.bincount(graph.dst, minlength=n)
    fan_out = np.bincount(graph.src, minlength=n)
    depth = node_depths(graph)
    mean_weights = float(weights[weights > 0].mean()) if (weights > 0).any() else 1.0
    scalars = np.stack(
        [
            graph.is_matrix.astype(np.float64),
            np.log1p(graph.flops) * LOG_SCALE,
            np.log1p(graph.output_bytes) * LOG_SCALE,
            np.log1p(weights) * LOG_SCALE,
            np.log1p(graph.input_bytes) * LOG_SCALE,
            np.clip(_log_ratio(work, float(work.mean())), -10, 10) / 5,
            np.where(weights > 0, np.clip(_log_ratio(weights, mean_weights), -10, 10) / 5, -2.0),
            np.arange(n) / max(n - 1, 1),
            depth / max(int(depth.max(initial=0)), 1),
            np.log1p(fan_in),
            np.log1p(fan_out),
            _share(work),
            _share(weights),
            (weights > chip.sram_bytes).astype(np.float64),
        ],
        axis=1,
    )
    node = np.concatenate([one_hot, scalars], axis=1)

    link_bandwidth = min((link.bandwidth for link in target.links), default=np.inf)
    edge_bytes = graph.edge_bytes.astype(np.float64)
    edge_time = edge_bytes / link_bandwidth
    edge = np.stack(
        [
            np.log1p(edge_bytes) * LOG_SCALE,
            np.clip(_log_ratio(edge_time, float(work.mean())), -10, 10) / 5
            if np.isfinite(link_bandwidth)
            else np.full(len(edge_bytes), -2.0),
        ],
        axis=1,
    ).reshape(-1, EDGE_FEATURES)

    total_weights = max(float(weights.sum()), 1.0)
    total_link_time = float(edge_time.sum()) if np.isfinite(link_bandwidth) else 0.0
    topology = np.zeros(len(TOPOLOGIES))
    if target.topology in TOPOLOGIES:
        topology[TOPOLOGIES.index(target.topology)] = 1.0
    problem = np.concatenate(
        [
            [
                np.log(k) / np.log(64),
                np.log(max(n, 1)) / np.log(10_000),
                np.clip(np.log(k * chip.sram_bytes / total_weights), -10, 10) / 5,
                np.log1p(k * chip.dram_bytes / total_weights) / 5,
                np.clip(np.log(max(total_link_time, 1e-30) / float(work.sum())), -10, 10) / 5,
                streamed_share(graph, target),
                float(target.rules.max_hop_span is not None),
            ],
            topology,
        ]
    )
    return GraphFeatures(
        node=torch.from_numpy(node.astype(np.float32)),
        edge_index=torch.from_numpy(np.stack([graph.src, graph.dst]).astype(np.int64)),
        edge=torch.from_numpy(edge.astype(np.float32)),
        problem=torch.from_numpy(problem.astype(np.float32)),
        work=work,
        num_chips=k,
        graph_name=graph.name,
        target_name=target.name,
    )
