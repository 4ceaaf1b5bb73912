"""The placement policy: graph message passing, segment-recurrent attention in topological order, and a
chip-count-free action head.

Shapes (n ops, e edges, d = PolicyConfig.hidden, S = PolicyConfig.segment, B = ceil(n / S)):

    node features [n, F] ++ anchor features [n, 4] ++ problem features [G] (broadcast)
                                                              -> Linear -> h [n, d]
    GNN layer x L:  forward  m_in  = scatter_mean(MLP([h[src], edge]), dst) [n, d]
                    backward m_out = scatter_mean(MLP([h[dst], edge]), src) [n, d]
                    h = LayerNorm(h + MLP([h, m_in, m_out]))
    attention x A:  h padded to [B, S, d]; segment b attends to [segment b-1 ; segment b] ([B, 2S, d]
                    keys, the first segment has no memory), pre-norm Transformer block with residuals:
                    memory and time are linear in n (B x S x 2S scores), never n x n
    action head:    mean [n] = Linear(h) (zero-initialised),
                    log_std [n] = log(init_std) + Linear(h) (zero-initialised)
                                  + Linear(anchor features) (log(hot_std_factor) on the hot column)
    value head:     MLP([mean_pool(h), max_pool(h), problem]) -> scalar

The action is one real number per op, z_i ~ Normal(mean_i, std_i): a log re-weighting that moves the
stage boundaries of an anchor placement (`chiplex.learned.anchor`: the zero action is the anchor
itself). Nothing in the network depends on K, so the same weights place on any chip count; with
zero-initialised means the first samples are the anchor's neighbours. `placements_from_actions` is the
anchor-free form (contiguous stages of equal re-weighted work in index order over K chips).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch_scatter import scatter

from chiplex.learned.anchor import ANCHOR_FEATURES, HOT_COLUMN
from chiplex.learned.features import (
    EDGE_FEATURES,
    GLOBAL_FEATURES,
    NODE_FEATURES,
    GraphFeatures,
)


@dataclass(frozen=True)
class PolicyConfig:
    """The network's sizes (saved in checkpoints: a checkpoint loads only into the same sizes)."""

    hidden: int = 64
    gnn_layers: int = 3
    attention_layers: int = 1
    heads: int = 4
    segment: int = 128
    """Ops per attention segment; each attends to itself and the previous segment."""
    init_std: float = 0.2
    """Initial standard deviation of the per-op log re-weighting (on the ops a sample explores, see
    `PPOConfig.stages_per_sample`: their stage's boundaries move by an op or two)."""
    hot_std_factor: float = 1.0
    """Initial factor on the standard deviation of the ops on the anchor's hot chip."""


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.GELU(), nn.Linear(hidden, outputs))


class MessagePassing(nn.Module):
    """One bidirectional layer: messages along edges (producer -> consumer) and against them."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.forward_message = mlp(hidden + EDGE_FEATURES, hidden, hidden)
        self.backward_message = mlp(hidden + EDGE_FEATURES, hidden, hidden)
        self.update = mlp(3 * hidden, hidden, hidden)
        self.norm = nn.LayerNorm(hidden)

    def forward(
        self, h: torch.Tensor, edge_index: torch.Tensor, edge: torch.Tensor
    ) -> torch.Tensor:
        src, dst = edge_index[0], edge_index[1]
        n = h.shape[0]
        incoming = scatter(
            self.forward_message(torch.cat([h[src], edge], dim=1)),
            dst,
            0,
            dim_size=n,
            reduce="mean",
        )
        outgoing = scatter(
            self.backward_message(torch.cat([h[dst], edge], dim=1)),
            src,
            0,
            dim_size=n,
            reduce="mean",
        )
        return self.norm(h + self.update(torch.cat([h, incoming, outgoing], dim=1)))


class GraphEncoder(nn.Module):
    """Input projection + message passing: equivariant to renumbering the ops (no order used)."""

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.embed = nn.Linear(NODE_FEATURES + ANCHOR_FEATURES + GLOBAL_FEATURES, config.hidden)
        self.layers = nn.ModuleList(MessagePassing(config.hidden) for _ in range(config.gnn_layers))

    def forward(
        self,
        node: torch.Tensor,
        problem: torch.Tensor,
        edge_index: torch.Tensor,
        edge: torch.Tensor,
    ) -> torch.Tensor:
        h = self.embed(torch.cat([node, problem.expand(node.shape[0], -1)], dim=1))
        for layer in self.layers:
            h = layer(h, edge_index, edge)
        return h


class SegmentAttention(nn.Module):
    """A pre-norm Transformer block over the ops in topological order, segment by segment.

    Like Transformer-XL's segment recurrence, segment b's queries attend to the keys of segment b and of
    segment b-1 (the previous segment's layer input is the memory). All segments run as one batch, so
    the cost is B x S x 2S, linear in the op count."""

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.segment = config.segment
        self.norm_q = nn.LayerNorm(config.hidden)
        self.norm_kv = nn.LayerNorm(config.hidden)
        self.attention = nn.MultiheadAttention(config.hidden, config.heads, batch_first=True)
        self.norm_ff = nn.LayerNorm(config.hidden)
        self.feed_forward = mlp(config.hidden, 2 * config.hidden, config.hidden)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        n, d = h.shape
        s = self.segment
        blocks = -(-n // s)
        padded = torch.cat([h, h.new_zeros(blocks * s - n, d)]) if blocks * s > n else h
        segments = padded.view(blocks, s, d)
        memory = torch.cat([segments.new_zeros(1, s, d), segments[:-1]])
        keys = self.norm_kv(torch.cat([memory, segments], dim=1))  # [B, 2S, d]
        valid = torch.arange(blocks * s, device=h.device) < n
        valid_segments = valid.view(blocks, s)
        valid_memory = torch.cat([valid_segments.new_zeros(1, s), valid_segments[:-1]])
        ignore = ~torch.cat([valid_memory, valid_segments], dim=1)  # True: not a key
        attended, _ = self.attention(
            self.norm_q(segments), keys, keys, key_padding_mask=ignore, need_weights=False
        )
        out = segments + attended
        out = out + self.feed_forward(self.norm_ff(out))
        return out.reshape(blocks * s, d)[:n]


@dataclass(frozen=True)
class PolicyOutput:
    mean: torch.Tensor
    """float32[n]: mean of each op's log re-weighting."""
    log_std: torch.Tensor
    """float32[n]: each op's log standard deviation."""
    value: torch.Tensor
    """float32[]: the expected reward of a sample (the baseline)."""

    def distribution(self) -> torch.distributions.Normal:
        return torch.distributions.Normal(self.mean, self.log_std.exp())


class PlacementPolicy(nn.Module):
    def __init__(self, config: PolicyConfig | None = None) -> None:
        super().__init__()
        self.config = config or PolicyConfig()
        c = self.config
        self.encoder = GraphEncoder(c)
        self.attention = nn.ModuleList(SegmentAttention(c) for _ in range(c.attention_layers))
        self.action_mean = nn.Linear(c.hidden, 1)
        # Zero means: the untrained policy samples the anchor's neighbours, not random placements.
        nn.init.zeros_(self.action_mean.weight)
        nn.init.zeros_(self.action_mean.bias)
        # A state-dependent spread: the policy learns where to explore (e.g. around the hot stage).
        self.action_log_std = nn.Linear(c.hidden, 1)
        nn.init.zeros_(self.action_log_std.weight)
        nn.init.constant_(self.action_log_std.bias, math.log(c.init_std))
        # ... with a learnable prior read straight from the anchor's columns: explore more on the
        # ops of the anchor's hot (bottleneck) chip, where a move can raise the throughput.
        self.anchor_log_std = nn.Linear(ANCHOR_FEATURES, 1, bias=False)
        nn.init.zeros_(self.anchor_log_std.weight)
        with torch.no_grad():
            self.anchor_log_std.weight[0, HOT_COLUMN] = math.log(c.hot_std_factor)
        self.value_head = mlp(2 * c.hidden + GLOBAL_FEATURES, c.hidden, 1)

    def embed(self, features: GraphFeatures, anchor: torch.Tensor) -> torch.Tensor:
        """Per-op embeddings [n, hidden]; `anchor` is the anchor's float32[n, ANCHOR_FEATURES]
        (`Anchor.features`)."""
        node = torch.cat([features.node, anchor], dim=1)
        h = self.encoder(node, features.problem, features.edge_index, features.edge)
        for block in self.attention:
            h = block(h)
        return h

    def forward(self, features: GraphFeatures, anchor: torch.Tensor | None = None) -> PolicyOutput:
        if anchor is None:
            anchor = features.node.new_zeros(features.num_nodes, ANCHOR_FEATURES)
        h = self.embed(features, anchor)
        pooled = torch.cat([h.mean(0), h.max(0).values, features.problem])
        return PolicyOutput(
            mean=self.action_mean(h).squeeze(1),
            log_std=(self.action_log_std(h) + self.anchor_log_std(anchor))
            .squeeze(1)
            .clamp(-6.0, 1.0),
            value=self.value_head(pooled).squeeze(0),
        )


def placements_from_actions(work: np.ndarray, actions: np.ndarray, num_chips: int) -> np.ndarray:
    """int64[b, n] chips from float[b, n] log re-weightings: contiguous stages of equal re-weighted work.

    Op i goes to stage floor(K x (cumulative re-weighted work up to its middle) / total); stages left
    empty by an op longer than a share are closed up, so chips 0..m-1 are used without gaps."""
    actions = np.atleast_2d(np.asarray(actions, dtype=np.float64))
    weighted = work[None, :] * np.exp(np.clip(actions, -20.0, 20.0))
    cumulative = np.cumsum(weighted, axis=1)
    share = (cumulative - weighted / 2) / cumulative[:, -1:]
    stage = np.minimum((share * num_chips).astype(np.int64), num_chips - 1)
    steps = (np.diff(stage, axis=1) > 0).astype(np.int64)
    return np.concatenate([np.zeros((len(stage), 1), dtype=np.int64), np.cumsum(steps, axis=1)], 1)


def new_policy(config: PolicyConfig | None = None, seed: int = 0) -> PlacementPolicy:
    """A freshly initialised policy whose weights depend only on `seed` (torch's global RNG is left
    as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return PlacementPolicy(config)
