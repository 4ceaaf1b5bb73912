"""Transformer building blocks shared by the BERT, GPT-2 and ViT models of the zoo.

Attention is written out (linear projections, `matmul`, `softmax`) rather than using
`nn.MultiheadAttention`, so the exported graph is plain ATen and the state-dict names are short and
readable (`layers.3.attn.q.weight`): the importer keeps them as parameter names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

from chiplex.models.common import seeded


class SelfAttention(nn.Module):
    """Multi-head self-attention.

    BERT and ViT use separate `q`, `k`, `v` projections; GPT-2 uses one fused `qkv` projection
    whose output is split in three (`fused_qkv=True`), which is what its checkpoints look like.
    """

    def __init__(self, hidden: int, heads: int, *, fused_qkv: bool = False) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden size {hidden} is not a multiple of {heads} heads")
        self.hidden = hidden
        self.heads = heads
        self.head_dim = hidden // heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.fused_qkv = fused_qkv
        if fused_qkv:
            self.qkv = nn.Linear(hidden, 3 * hidden)
        else:
            self.q = nn.Linear(hidden, hidden)
            self.k = nn.Linear(hidden, hidden)
            self.v = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, s, d = x.shape
        if self.fused_qkv:
            q, k, v = self.qkv(x).split(self.hidden, dim=-1)
        else:
            q, k, v = self.q(x), self.k(x), self.v(x)
        ctx = attend(self._split(q), self._split(k), self._split(v), self.scale, mask)
        return self.out(ctx.reshape(b, s, d))


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, mask: torch.Tensor | None
) -> torch.Tensor:
    """softmax(q k^T * scale + mask) v on [B, H, S, D]; returns [B, S, H, D] ready to merge heads."""
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale
    if mask is not None:
        # An additive mask (0 or -inf): the importer sees a plain add with a stored tensor.
        scores = scores + mask
    probs = torch.softmax(scores, dim=-1)
    return torch.matmul(probs, v).transpose(1, 2)


class FeedForward(nn.Module):
    """Linear -> GELU -> Linear."""

    def __init__(self, hidden: int, ffn: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(hidden, ffn)
        self.act = nn.GELU()
        self.w2 = nn.Linear(ffn, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(self.act(self.w1(x)))


class PostNormBlock(nn.Module):
    """ln1(x + attn(x)), then ln2(x + ffn(x)): the BERT encoder layer."""

    def __init__(self, hidden: int, heads: int, ffn: int, *, eps: float = 1e-12) -> None:
        super().__init__()
        self.attn = SelfAttention(hidden, heads)
        self.ln1 = nn.LayerNorm(hidden, eps=eps)
        self.ffn = FeedForward(hidden, ffn)
        self.ln2 = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.ln1(x + self.attn(x, mask))
        return self.ln2(x + self.ffn(x))


class PreNormBlock(nn.Module):
    """x + attn(ln1(x)), then x + mlp(ln2(x)): the GPT-2 and ViT block."""

    def __init__(
        self, hidden: int, heads: int, ffn: int, *, eps: float = 1e-5, fused_qkv: bool = False
    ) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(hidden, eps=eps)
        self.attn = SelfAttention(hidden, heads, fused_qkv=fused_qkv)
        self.ln2 = nn.LayerNorm(hidden, eps=eps)
        self.mlp = FeedForward(hidden, ffn)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), mask)
        return x + self.mlp(self.ln2(x))


def transformer_matmul_flops(
    *, layers: int, hidden: int, ffn: int, tokens: int, seq: int, batch: int
) -> int:
    """Analytic matrix-unit flops of `layers` attention+FFN blocks.

    2 flops per multiply-accumulate: the projections (4 h^2 + 2 h ffn weights) once per token,
    plus the two attention products (Q K^T and P V), each batch x seq^2 x hidden MACs.
    """
    weights = 4 * hidden * hidden + 2 * hidden * ffn
    return layers * (2 * weights * tokens + 2 * 2 * batch * seq * seq * hidden)


@dataclass(frozen=True)
class StackConfig:
    """The sizes of a BERT or GPT-2 stack (`ffn` is usually 4 x hidden)."""

    num_layers: int
    hidden: int
    heads: int
    ffn: int
    seq: int
    batch: int
    with_embeddings: bool
    vocab_size: int
    max_positions: int


class TransformerStack(nn.Module):
    """Configuration and example inputs shared by the BERT and GPT-2 stacks.

    With embeddings the input is token ids `[batch, seq]`, without it is hidden states
    `[batch, seq, hidden]`.
    """

    def __init__(self, config: StackConfig) -> None:
        super().__init__()
        if config.with_embeddings and config.seq > config.max_positions:
            raise ValueError(f"seq {config.seq} exceeds max_positions {config.max_positions}")
        self.config = config
        self.num_layers, self.hidden, self.heads = config.num_layers, config.hidden, config.heads
        self.ffn, self.seq, self.batch = config.ffn, config.seq, config.batch
        self.with_embeddings, self.vocab_size = config.with_embeddings, config.vocab_size

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        """Inputs of the configured batch and sequence length (token ids or hidden states)."""
        gen = torch.Generator().manual_seed(0)
        if self.with_embeddings:
            return (torch.randint(0, self.vocab_size, (self.batch, self.seq), generator=gen),)
        return (torch.randn(self.batch, self.seq, self.hidden, generator=gen),)

    def analytic_matmul_flops(self) -> int:
        return transformer_matmul_flops(
            layers=self.num_layers,
            hidden=self.hidden,
            ffn=self.ffn,
            tokens=self.batch * self.seq,
            seq=self.seq,
            batch=self.batch,
        )


StackT = TypeVar("StackT", bound=TransformerStack)


def build_stack(cls: type[StackT], config: StackConfig, seed: int) -> StackT:
    """`cls(config)` with seeded random weights, in eval mode."""
    with seeded(seed):
        model = cls(config)
    return model.eval()
