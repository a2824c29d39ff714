"""The compact U-Net behind ``offline:camvid``.

Plain 3x3 convolutions with BatchNorm and ReLU, max-pool downsampling, bilinear
upsampling and skip concatenation. Small enough (about 1-2 M parameters) to train on
two CPU cores in well under an hour and to ship as an fp16 state dict of a few MB.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        _conv_bn_relu(in_channels, out_channels), _conv_bn_relu(out_channels, out_channels)
    )


class UNet(nn.Module):
    """U-Net returning class logits at the input resolution.

    Args:
        num_classes: Number of output classes.
        widths: Channels per level, finest first; ``len(widths) - 1`` poolings, so
            inputs should have sides divisible by ``2 ** (len(widths) - 1)``.

    Example:
        >>> net = UNet(num_classes=11, widths=(8, 16, 32))
        >>> net(torch.zeros(1, 3, 32, 48)).shape
        torch.Size([1, 11, 32, 48])
    """

    def __init__(self, num_classes: int = 11, widths: Sequence[int] = (24, 48, 96, 192)) -> None:
        super().__init__()
        if num_classes < 1 or len(widths) < 2 or min(widths) < 1:
            raise ValueError(
                f"need num_classes >= 1 and at least two positive widths, got "
                f"num_classes={num_classes}, widths={tuple(widths)}"
            )
        self.num_classes = num_classes
        self.widths = tuple(int(width) for width in widths)
        self.encoders = nn.ModuleList()
        in_channels = 3
        for width in self.widths:
            self.encoders.append(_double_conv(in_channels, width))
            in_channels = width
        self.decoders = nn.ModuleList(
            _double_conv(coarse + fine, fine)
            for coarse, fine in zip(self.widths[:0:-1], self.widths[-2::-1], strict=True)
        )
        self.head = nn.Conv2d(self.widths[0], num_classes, 1)

    @property
    def stride(self) -> int:
        """Input sides must be multiples of this."""
        return 2 ** (len(self.widths) - 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map ``(N, 3, H, W)`` normalized images to ``(N, K, H, W)`` logits."""
        skips = []
        features = images
        for level, encoder in enumerate(self.encoders):
            if level > 0:
                features = F.max_pool2d(features, 2)
            features = encoder(features)
            skips.append(features)
        features = skips.pop()
        for decoder in self.decoders:
            skip = skips.pop()
            features = F.interpolate(
                features, size=skip.shape[-2:], mode="bilinear", align_corners=False
            )
            features = decoder(torch.cat([features, skip], dim=1))
        return self.head(features)
