"""Convolutional building blocks shared by the hourglass-family models (HIH, and later RDFN/DSAT-style nets).

All blocks are post-activation (conv -> BN -> ReLU) as in the stacked-hourglass code HIH builds on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CBR(nn.Sequential):
    """conv k x k (no bias, 'same' padding for odd k) -> BN -> ReLU; `relu=False` drops the ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, relu: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel, stride, padding=(kernel - 1) // 2, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Res(nn.Module):
    """Post-activation bottleneck: 1x1 (o/2) -> 3x3 (o/2) -> 1x1 (o, no ReLU), plus skip, then ReLU.

    The skip is a 1x1 conv + BN only when the width changes (the reference code builds it always and leaves it
    unused for equal widths; we do not create parameters that never run).
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        mid = out_ch // 2
        self.body = nn.Sequential(CBR(in_ch, mid, 1), CBR(mid, mid, 3), CBR(mid, out_ch, 1, relu=False))
        self.skip = CBR(in_ch, out_ch, 1, relu=False) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.skip(x))


class DownBlock(nn.Module):
    """Stride-2 basic residual block: CBR 3x3 s2 -> conv 3x3 + BN, shortcut conv 1x1 s2 + BN, add, ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(CBR(channels, channels, 3, stride=2), CBR(channels, channels, 3, relu=False))
        self.shortcut = CBR(channels, channels, 1, stride=2, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class Hourglass(nn.Module):
    """Recursive hourglass of `depth` levels, width `channels` everywhere.

    Each level: up = Res(x); low = Res(maxpool2(x)) -> inner hourglass (a centre Res at the deepest level) -> Res;
    output = up + bilinear x2 upsample(low) with align_corners=True, as in the HIH code. The input side must be
    divisible by 2**depth.
    """

    def __init__(self, depth: int, channels: int) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"hourglass depth must be >= 1, got {depth}")
        self.up = Res(channels, channels)
        self.down = Res(channels, channels)
        self.inner: nn.Module = Hourglass(depth - 1, channels) if depth > 1 else Res(channels, channels)
        self.after = Res(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.after(self.inner(self.down(F.max_pool2d(x, 2))))
        return self.up(x) + F.interpolate(low, scale_factor=2.0, mode="bilinear", align_corners=True)


def init_normal(module: nn.Module, std: float = 0.001) -> None:
    """The HIH init: conv/linear weights ~ N(0, std), BN gamma 1 and beta 0; biases keep PyTorch's default."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, std=std)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageNetNormalize(nn.Module):
    """RGB in [0, 1] -> ImageNet mean/std normalised, inside the model so that callers and the ONNX graph agree."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std


def hourglass_stem(channels: int) -> nn.Sequential:
    """The stacked-hourglass stem of HIH and RDFN: CBR 7x7/2, Res, maxpool 2, Res, Res; stride 4, `channels` out."""
    c = channels
    return nn.Sequential(
        CBR(3, c // 4, 7, stride=2), Res(c // 4, c // 2), nn.MaxPool2d(2), Res(c // 2, c // 2), Res(c // 2, c)
    )
