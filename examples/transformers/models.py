"""Factories of Hugging Face `transformers` models built from their configurations (random
weights, no download), for `chiplex import-torch` and `chiplex compile` (needs the `bench` extra):

    chiplex import-torch examples/transformers/models.py:bert_base --input-shape 1x128 --dtype int64 -o bert.mlir
    chiplex compile examples/transformers/models.py:resnet50 --input-shape 1x3x224x224 --target simba-6x6
"""

from __future__ import annotations

import torch
import transformers


def bert_base(with_pooler: bool = True) -> torch.nn.Module:
    """BERT-base as `BertModel` builds it: token, position and type embeddings, 12 layers, pooler."""
    torch.manual_seed(0)
    return transformers.BertModel(transformers.BertConfig(), add_pooling_layer=with_pooler)


def bert(num_layers: int = 2, hidden: int = 128, heads: int = 4) -> torch.nn.Module:
    """A smaller BERT with the full 30522-token vocabulary."""
    torch.manual_seed(0)
    config = transformers.BertConfig(
        num_hidden_layers=num_layers,
        hidden_size=hidden,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
    )
    return transformers.BertModel(config, add_pooling_layer=False)


def resnet50() -> torch.nn.Module:
    torch.manual_seed(0)
    return transformers.ResNetModel(transformers.ResNetConfig())


def whisper_encoder() -> torch.nn.Module:
    """Whisper-base's encoder (input: 80 x 3000 log-mel features)."""
    torch.manual_seed(0)
    config = transformers.WhisperConfig(
        d_model=512, encoder_layers=6, encoder_attention_heads=8, encoder_ffn_dim=2048
    )
    return transformers.WhisperModel(config).get_encoder()
