"""Vision Transformer (Dosovitskiy et al. 2021): patch embedding by a strided convolution, a class
token, learned position embeddings, pre-LayerNorm blocks and a linear head on the class token."""

from __future__ import annotations

import torch
from torch import nn

from chiplex.models.common import seeded
from chiplex.models.transformer import PreNormBlock, transformer_matmul_flops


class ViT(nn.Module):
    def __init__(
        self,
        *,
        image: int = 224,
        patch: int = 16,
        num_layers: int = 12,
        hidden: int = 768,
        heads: int = 12,
        ffn: int = 3072,
        num_classes: int = 1000,
        channels: int = 3,
        batch: int = 1,
    ) -> None:
        super().__init__()
        if image % patch:
            raise ValueError(f"image size {image} is not a multiple of the patch size {patch}")
        self.image, self.patch, self.channels, self.batch = image, patch, channels, batch
        self.num_layers, self.hidden, self.ffn, self.num_classes = (
            num_layers,
            hidden,
            ffn,
            num_classes,
        )
        self.num_patches = (image // patch) ** 2
        self.patch_embed = nn.Conv2d(channels, hidden, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, hidden) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, self.num_patches + 1, hidden) * 0.02)
        self.blocks = nn.ModuleList(
            PreNormBlock(hidden, heads, ffn, eps=1e-6) for _ in range(num_layers)
        )
        self.ln = nn.LayerNorm(hidden, eps=1e-6)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images).flatten(2).transpose(1, 2)  # [B, patches, hidden]
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x)[:, 0])

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(0)
        shape = (self.batch, self.channels, self.image, self.image)
        return (torch.randn(*shape, generator=gen),)

    def analytic_matmul_flops(self) -> int:
        seq = self.num_patches + 1
        patch_macs = self.num_patches * self.channels * self.patch**2 * self.hidden
        blocks = transformer_matmul_flops(
            layers=self.num_layers,
            hidden=self.hidden,
            ffn=self.ffn,
            tokens=self.batch * seq,
            seq=seq,
            batch=self.batch,
        )
        return (
            self.batch * 2 * patch_macs + blocks + self.batch * 2 * self.hidden * self.num_classes
        )


def vit(
    image: int = 224,
    patch: int = 16,
    num_layers: int = 12,
    hidden: int = 768,
    heads: int = 12,
    ffn: int | None = None,
    num_classes: int = 1000,
    batch: int = 1,
    *,
    seed: int = 0,
) -> ViT:
    """A ViT with random weights; `ffn` defaults to 4 x hidden."""
    with seeded(seed):
        model = ViT(
            image=image,
            patch=patch,
            num_layers=num_layers,
            hidden=hidden,
            heads=heads,
            ffn=ffn if ffn is not None else 4 * hidden,
            num_classes=num_classes,
            batch=batch,
        )
    return model.eval()


def vit_b16(image: int = 224, num_classes: int = 1000, batch: int = 1) -> ViT:
    """ViT-B/16: 16x16 patches, 12 layers, hidden 768, 12 heads, MLP 3072 (86.6 M parameters)."""
    return vit(image, 16, 12, 768, 12, 3072, num_classes, batch)
