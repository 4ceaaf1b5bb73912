"""BERT encoders (Devlin et al. 2019): post-LayerNorm transformer layers with GELU FFNs.

By default the model is the encoder stack only and takes hidden states `[batch, seq, hidden]`:
the 30522 x 768 word-embedding table alone (22 MiB in int8) is larger than a tpu-ring8 chip's
SRAM, so the embeddings are an option (`with_embeddings=True`, input token ids `[batch, seq]`).
"""

from __future__ import annotations

import torch
from torch import nn

from chiplex.models.transformer import PostNormBlock, StackConfig, TransformerStack, build_stack


class BertEmbeddings(nn.Module):
    """Word + position + token-type embeddings, then LayerNorm (token type 0 for every token)."""

    def __init__(
        self, vocab_size: int, hidden: int, max_positions: int, type_vocab: int, eps: float
    ) -> None:
        super().__init__()
        self.word = nn.Embedding(vocab_size, hidden)
        self.position = nn.Embedding(max_positions, hidden)
        self.token_type = nn.Embedding(type_vocab, hidden)
        self.ln = nn.LayerNorm(hidden, eps=eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        seq = ids.shape[1]
        # Slicing the tables instead of looking up position / type id tensors keeps the graph free
        # of integer buffers that would have to be stored on a chip.
        x = self.word(ids) + self.position.weight[:seq] + self.token_type.weight[0]
        return self.ln(x)


class BertEncoder(TransformerStack):
    def __init__(self, config: StackConfig, *, type_vocab: int = 2, eps: float = 1e-12) -> None:
        super().__init__(config)
        self.embeddings = (
            BertEmbeddings(config.vocab_size, config.hidden, config.max_positions, type_vocab, eps)
            if config.with_embeddings
            else None
        )
        self.layers = nn.ModuleList(
            PostNormBlock(config.hidden, config.heads, config.ffn, eps=eps)
            for _ in range(config.num_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.embeddings is not None:
            x = self.embeddings(x)
        for layer in self.layers:
            x = layer(x)
        return x


def bert(
    num_layers: int = 12,
    hidden: int = 768,
    heads: int = 12,
    ffn: int | None = None,
    seq: int = 128,
    batch: int = 1,
    *,
    with_embeddings: bool = False,
    vocab_size: int = 30522,
    seed: int = 0,
) -> BertEncoder:
    """A BERT encoder with random weights; `ffn` defaults to 4 x hidden."""
    config = StackConfig(
        num_layers, hidden, heads, ffn or 4 * hidden, seq, batch, with_embeddings, vocab_size, 512
    )
    return build_stack(BertEncoder, config, seed)


def bert_base(
    num_layers: int = 12, seq: int = 128, batch: int = 1, *, with_embeddings: bool = False
) -> BertEncoder:
    """BERT-base: 12 layers, hidden 768, 12 heads, FFN 3072 (85.1 M encoder parameters)."""
    return bert(num_layers, 768, 12, 3072, seq, batch, with_embeddings=with_embeddings)


def bert_large(
    num_layers: int = 24, seq: int = 128, batch: int = 1, *, with_embeddings: bool = False
) -> BertEncoder:
    """BERT-large: 24 layers, hidden 1024, 16 heads, FFN 4096 (302 M encoder parameters)."""
    return bert(num_layers, 1024, 16, 4096, seq, batch, with_embeddings=with_embeddings)


def bert_layer(seq: int = 128, batch: int = 1) -> BertEncoder:
    """One BERT-base encoder layer (7.1 M parameters): the smallest realistic example."""
    return bert_base(1, seq, batch)
