"""The model zoo: real workloads defined from standard `torch.nn` layers, with random weights.

Every benchmark and the learned placer's training corpus use these models. Each factory takes the
sizes as arguments (smaller and larger variants) and returns an eval-mode module whose
`example_inputs()` gives inputs of the configured batch and sequence length or image size, and whose
`analytic_matmul_flops()` gives the closed-form matrix-unit flops the importer's IR must match.
`ZOO` names the default size of each model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from chiplex.models.bert import BertEncoder, bert, bert_base, bert_large, bert_layer
from chiplex.models.common import parameter_count, seeded
from chiplex.models.gpt2 import GPT2, gpt2, gpt2_medium, gpt2_small
from chiplex.models.mlp import MLP, mlp
from chiplex.models.resnet import ResNet, resnet, resnet18, resnet50
from chiplex.models.vit import ViT, vit, vit_b16


@dataclass(frozen=True)
class ZooEntry:
    name: str
    factory: Callable[[], torch.nn.Module]
    """Builds the default size (every factory argument has a default)."""
    description: str

    def build(self) -> torch.nn.Module:
        return self.factory()

    @staticmethod
    def example_inputs(module: torch.nn.Module) -> tuple[torch.Tensor, ...]:
        return example_inputs(module)


def example_inputs(module: torch.nn.Module) -> tuple[torch.Tensor, ...]:
    """The example inputs a zoo module was configured with (its `example_inputs()` method)."""
    make = getattr(module, "example_inputs", None)
    if not callable(make):
        raise TypeError(f"{type(module).__name__} does not define example_inputs()")
    inputs = make()
    return tuple(inputs)


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry(
            "bert_layer",
            bert_layer,
            "One BERT-base encoder layer (768, 12 heads, FFN 3072), seq 128",
        ),
        ZooEntry(
            "bert_base", bert_base, "BERT-base encoder: 12 x (768, 12 heads, FFN 3072), seq 128"
        ),
        ZooEntry(
            "bert_large", bert_large, "BERT-large encoder: 24 x (1024, 16 heads, FFN 4096), seq 128"
        ),
        ZooEntry(
            "gpt2_small", gpt2_small, "GPT-2 small decoder: 12 x (768, 12 heads), causal, seq 128"
        ),
        ZooEntry(
            "gpt2_medium",
            gpt2_medium,
            "GPT-2 medium decoder: 24 x (1024, 16 heads), causal, seq 128",
        ),
        ZooEntry("resnet18", resnet18, "ResNet-18: basic blocks (2, 2, 2, 2), 224x224 images"),
        ZooEntry("resnet50", resnet50, "ResNet-50: bottleneck blocks (3, 4, 6, 3), 224x224 images"),
        ZooEntry("vit_b16", vit_b16, "ViT-B/16: 12 x (768, 12 heads), 224x224 images"),
        ZooEntry("mlp", mlp, "MLP: 1024 -> 4 x 2048 (ReLU) -> 1000, batch 32"),
    )
}

__all__ = [
    "GPT2",
    "MLP",
    "ZOO",
    "BertEncoder",
    "ResNet",
    "ViT",
    "ZooEntry",
    "bert",
    "bert_base",
    "bert_large",
    "bert_layer",
    "example_inputs",
    "gpt2",
    "gpt2_medium",
    "gpt2_small",
    "mlp",
    "parameter_count",
    "resnet",
    "resnet18",
    "resnet50",
    "seeded",
    "vit",
    "vit_b16",
]
