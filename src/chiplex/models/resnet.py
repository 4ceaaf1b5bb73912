"""ResNets (He et al. 2016) in the layout of torchvision's, so state-dict names match
(`layer2.0.downsample.1.weight`): a 7x7 stem, four stages of basic or bottleneck blocks, global
average pooling and a linear classifier. Batch norms are in inference mode."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from chiplex.models.common import seeded


def _conv_out(size: int, conv: nn.Conv2d) -> int:
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding
    pad = p[0] if isinstance(p, tuple) else 0
    return (size + 2 * pad - k) // s + 1


def _conv_flops(conv: nn.Conv2d, size_in: int, batch: int) -> tuple[int, int]:
    """(flops, output size) of a square convolution: 2 x outputs x (C_in / groups) x k x k."""
    out = _conv_out(size_in, conv)
    kh, kw = conv.kernel_size
    macs = batch * conv.out_channels * out * out * (conv.in_channels // conv.groups) * kh * kw
    return 2 * macs, out


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _downsample(inplanes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)

    def convs(self) -> list[nn.Conv2d]:
        return [self.conv1, self.conv2]


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = _downsample(inplanes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)

    def convs(self) -> list[nn.Conv2d]:
        return [self.conv1, self.conv2, self.conv3]


def _downsample(inplanes: int, outplanes: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and inplanes == outplanes:
        return None
    return nn.Sequential(
        nn.Conv2d(inplanes, outplanes, 1, stride, bias=False), nn.BatchNorm2d(outplanes)
    )


class ResNet(nn.Module):
    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: Sequence[int],
        *,
        num_classes: int = 1000,
        width: int = 64,
        image: int = 224,
        batch: int = 1,
    ) -> None:
        super().__init__()
        self.image, self.batch = image, batch
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = width
        stages: list[nn.Sequential] = []
        for i, count in enumerate(layers):
            planes = width * 2**i
            blocks: list[nn.Module] = []
            for j in range(count):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(block(inplanes, planes, stride))
                inplanes = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        # torchvision's names: layer1 .. layer4.
        self.layer1, self.layer2, self.layer3, self.layer4 = (stages + [nn.Sequential()] * 4)[:4]
        self.stages = len(layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(inplanes, num_classes)

    def _stage_list(self) -> list[nn.Sequential]:
        return [self.layer1, self.layer2, self.layer3, self.layer4][: self.stages]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in self._stage_list():
            x = stage(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(0)
        return (torch.randn(self.batch, 3, self.image, self.image, generator=gen),)

    def analytic_matmul_flops(self) -> int:
        """Convolution and classifier flops, following the spatial size through the stages."""
        flops, size = _conv_flops(self.conv1, self.image, self.batch)
        size = (size + 2 - 3) // 2 + 1  # max pool 3x3, stride 2, padding 1
        for stage in self._stage_list():
            for blk in stage:
                assert isinstance(blk, BasicBlock | Bottleneck)
                block_in = size
                for conv in blk.convs():
                    f, size = _conv_flops(conv, size, self.batch)
                    flops += f
                if blk.downsample is not None:
                    ds = blk.downsample[0]
                    assert isinstance(ds, nn.Conv2d)
                    flops += _conv_flops(ds, block_in, self.batch)[0]
        return flops + 2 * self.batch * self.fc.in_features * self.fc.out_features


def resnet(
    layers: Sequence[int] = (2, 2, 2, 2),
    *,
    bottleneck: bool = False,
    width: int = 64,
    num_classes: int = 1000,
    image: int = 224,
    batch: int = 1,
    seed: int = 0,
) -> ResNet:
    """A ResNet with random weights: `layers` blocks per stage (1 to 4 stages)."""
    if not 1 <= len(layers) <= 4:
        raise ValueError(f"a ResNet has 1 to 4 stages, got {len(layers)}")
    with seeded(seed):
        model = ResNet(
            Bottleneck if bottleneck else BasicBlock,
            layers,
            num_classes=num_classes,
            width=width,
            image=image,
            batch=batch,
        )
        # Random running statistics, so inference batch norm is not an identity.
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def resnet18(num_classes: int = 1000, image: int = 224, batch: int = 1) -> ResNet:
    """ResNet-18: basic blocks (2, 2, 2, 2), 11.7 M parameters."""
    return resnet((2, 2, 2, 2), num_classes=num_classes, image=image, batch=batch)


def resnet50(num_classes: int = 1000, image: int = 224, batch: int = 1) -> ResNet:
    """ResNet-50: bottleneck blocks (3, 4, 6, 3), 25.6 M parameters."""
    return resnet((3, 4, 6, 3), bottleneck=True, num_classes=num_classes, image=image, batch=batch)
