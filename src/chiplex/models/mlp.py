"""A multi-layer perceptron: Linear + ReLU layers of one width, then a linear classifier."""

from __future__ import annotations

import torch
from torch import nn

from chiplex.models.common import seeded


class MLP(nn.Module):
    def __init__(
        self,
        *,
        in_features: int = 1024,
        hidden: int = 2048,
        depth: int = 4,
        out_features: int = 1000,
        batch: int = 32,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.in_features, self.hidden, self.depth = in_features, hidden, depth
        self.out_features, self.batch = out_features, batch
        widths = [in_features] + [hidden] * depth
        self.layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(widths, widths[1:], strict=False)
        )
        self.act = nn.ReLU()
        self.head = nn.Linear(hidden, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = self.act(layer(x))
        return self.head(x)

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(0)
        return (torch.randn(self.batch, self.in_features, generator=gen),)

    def analytic_matmul_flops(self) -> int:
        weights = self.in_features * self.hidden + (self.depth - 1) * self.hidden**2
        weights += self.hidden * self.out_features
        return 2 * self.batch * weights


def mlp(
    in_features: int = 1024,
    hidden: int = 2048,
    depth: int = 4,
    out_features: int = 1000,
    batch: int = 32,
    *,
    seed: int = 0,
) -> MLP:
    """An MLP with `depth` hidden layers of width `hidden` (default 16.7 M parameters)."""
    with seeded(seed):
        model = MLP(
            in_features=in_features,
            hidden=hidden,
            depth=depth,
            out_features=out_features,
            batch=batch,
        )
    return model.eval()
