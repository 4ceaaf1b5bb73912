"""GPT-2 decoders (Radford et al. 2019): pre-LayerNorm blocks with causal self-attention.

By default the model is the stack of decoder blocks plus the final LayerNorm, taking hidden states
`[batch, seq, hidden]`; `with_embeddings=True` adds the token and position embeddings and the
language-model head, whose weight is tied to the token embedding as in the released checkpoints.
Causality is an additive mask (0 on and below the diagonal, -inf above) kept as a buffer: the
importer stores it next to the weights, in the activation dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from chiplex.models.transformer import PreNormBlock, StackConfig, TransformerStack, build_stack


class GPT2(TransformerStack):
    causal_mask: torch.Tensor

    def __init__(self, config: StackConfig) -> None:
        super().__init__(config)
        hidden = config.hidden
        if config.with_embeddings:
            self.wte = nn.Embedding(config.vocab_size, hidden)
            self.wpe = nn.Embedding(config.max_positions, hidden)
        self.blocks = nn.ModuleList(
            PreNormBlock(hidden, config.heads, config.ffn, fused_qkv=True)
            for _ in range(config.num_layers)
        )
        self.ln_f = nn.LayerNorm(hidden)
        # Sized for the configured sequence: a [max_positions]^2 mask would be 2 MiB in bf16.
        mask = torch.full((config.seq, config.seq), float("-inf")).triu(1)
        self.register_buffer("causal_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.shape[1]
        if self.with_embeddings:
            x = self.wte(x) + self.wpe.weight[:seq]
        mask = self.causal_mask[:seq, :seq]
        for block in self.blocks:
            x = block(x, mask)
        x = self.ln_f(x)
        if self.with_embeddings:
            x = F.linear(x, self.wte.weight)
        return x

    def analytic_matmul_flops(self) -> int:
        flops = super().analytic_matmul_flops()
        if self.with_embeddings:
            flops += 2 * self.batch * self.seq * self.hidden * self.vocab_size
        return flops


def gpt2(
    num_layers: int = 12,
    hidden: int = 768,
    heads: int = 12,
    ffn: int | None = None,
    seq: int = 128,
    batch: int = 1,
    *,
    with_embeddings: bool = False,
    vocab_size: int = 50257,
    seed: int = 0,
) -> GPT2:
    """A GPT-2 decoder with random weights; `ffn` defaults to 4 x hidden."""
    config = StackConfig(
        num_layers, hidden, heads, ffn or 4 * hidden, seq, batch, with_embeddings, vocab_size, 1024
    )
    return build_stack(GPT2, config, seed)


def gpt2_small(
    num_layers: int = 12, seq: int = 128, batch: int = 1, *, with_embeddings: bool = False
) -> GPT2:
    """GPT-2 small: 12 layers, hidden 768, 12 heads (85.1 M block parameters)."""
    return gpt2(num_layers, 768, 12, 3072, seq, batch, with_embeddings=with_embeddings)


def gpt2_medium(
    num_layers: int = 24, seq: int = 128, batch: int = 1, *, with_embeddings: bool = False
) -> GPT2:
    """GPT-2 medium: 24 layers, hidden 1024, 16 heads (302 M block parameters)."""
    return gpt2(num_layers, 1024, 16, 4096, seq, batch, with_embeddings=with_embeddings)
