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

from chiplex.models.common import seeded
from chiplex.models.transformer import PreNormBlock, transformer_matmul_flops


class GPT2(nn.Module):
    causal_mask: torch.Tensor

    def __init__(
        self,
        *,
        num_layers: int = 12,
        hidden: int = 768,
        heads: int = 12,
        ffn: int = 3072,
        seq: int = 128,
        batch: int = 1,
        with_embeddings: bool = False,
        vocab_size: int = 50257,
        max_positions: int = 1024,
    ) -> None:
        super().__init__()
        if seq > max_positions:
            raise ValueError(f"seq {seq} exceeds max_positions {max_positions}")
        self.num_layers, self.hidden, self.heads, self.ffn = num_layers, hidden, heads, ffn
        self.seq, self.batch = seq, batch
        self.with_embeddings = with_embeddings
        self.vocab_size = vocab_size
        if with_embeddings:
            self.wte = nn.Embedding(vocab_size, hidden)
            self.wpe = nn.Embedding(max_positions, hidden)
        self.blocks = nn.ModuleList(
            PreNormBlock(hidden, heads, ffn, fused_qkv=True) for _ in range(num_layers)
        )
        self.ln_f = nn.LayerNorm(hidden)
        # Sized for the configured sequence: a [max_positions]^2 mask would be 2 MiB in bf16.
        mask = torch.full((seq, seq), float("-inf")).triu(1)
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

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(0)
        if self.with_embeddings:
            return (torch.randint(0, self.vocab_size, (self.batch, self.seq), generator=gen),)
        return (torch.randn(self.batch, self.seq, self.hidden, generator=gen),)

    def analytic_matmul_flops(self) -> int:
        tokens = self.batch * self.seq
        flops = transformer_matmul_flops(
            layers=self.num_layers,
            hidden=self.hidden,
            ffn=self.ffn,
            tokens=tokens,
            seq=self.seq,
            batch=self.batch,
        )
        if self.with_embeddings:
            flops += 2 * tokens * self.hidden * self.vocab_size
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
    with seeded(seed):
        model = GPT2(
            num_layers=num_layers,
            hidden=hidden,
            heads=heads,
            ffn=ffn if ffn is not None else 4 * hidden,
            seq=seq,
            batch=batch,
            with_embeddings=with_embeddings,
            vocab_size=vocab_size,
        )
    return model.eval()


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
