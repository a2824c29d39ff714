"""Velocity networks ``v(x, t)``: an MLP for vectors and a small U-Net for images."""

from __future__ import annotations

import math

import torch
from torch import nn


def time_features(t: torch.Tensor, n_frequencies: int) -> torch.Tensor:
    """(B,) times -> (B, 1 + 2F) features: t itself plus sin/cos at F octave frequencies.

    Raw ``t`` alone makes a small MLP slow to learn sharp changes in time; a few Fourier
    features fix that at negligible cost.
    """
    t = t.reshape(-1, 1)
    if n_frequencies == 0:
        return t
    frequencies = math.pi * 2.0 ** torch.arange(n_frequencies, dtype=t.dtype, device=t.device)
    angles = t * frequencies
    return torch.cat([t, torch.sin(angles), torch.cos(angles)], dim=1)


class VelocityMLP(nn.Module):
    """Multi-layer perceptron on ``[x, features(t)]`` for vector data (toys, digits).

    Args:
        dim: Data dimension.
        width: Hidden width.
        depth: Number of hidden layers.
        n_frequencies: Fourier time features (0 = raw t only).
    """

    def __init__(self, dim: int, width: int = 128, depth: int = 3, n_frequencies: int = 4) -> None:
        super().__init__()
        if dim < 1 or width < 1 or depth < 1:
            raise ValueError(f"dim, width, depth must be >= 1, got {dim}, {width}, {depth}")
        self.n_frequencies = n_frequencies
        layers: list[nn.Module] = []
        size = dim + 1 + 2 * n_frequencies
        for _ in range(depth):
            layers += [nn.Linear(size, width), nn.SiLU()]
            size = width
        layers.append(nn.Linear(size, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Velocity at points ``x`` (B, dim) and times ``t`` (B,)."""
        return self.net(torch.cat([x, time_features(t, self.n_frequencies)], dim=1))


class _ResBlock(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, time_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(min(8, channels_in), channels_in)
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, padding=1)
        self.time = nn.Linear(time_dim, channels_out)
        self.norm2 = nn.GroupNorm(min(8, channels_out), channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1)
        self.skip = (
            nn.Conv2d(channels_in, channels_out, 1)
            if channels_in != channels_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        h = h + self.time(embedding)[:, :, None, None]
        h = self.conv2(nn.functional.silu(self.norm2(h)))
        return h + self.skip(x)


class SmallUNet(nn.Module):
    """Two-level U-Net with time-conditioned residual blocks, for (C, H, W) images.

    Args:
        channels: Image channels.
        base: Channels at full resolution (doubled at each level).
        n_frequencies: Fourier time features fed to the time embedding.

    Height and width must be divisible by 4.
    """

    def __init__(self, channels: int = 3, base: int = 32, n_frequencies: int = 8) -> None:
        super().__init__()
        self.n_frequencies = n_frequencies
        time_dim = 4 * base
        self.time_mlp = nn.Sequential(
            nn.Linear(1 + 2 * n_frequencies, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim)
        )
        self.stem = nn.Conv2d(channels, base, 3, padding=1)
        self.down1 = _ResBlock(base, base, time_dim)
        self.down2 = _ResBlock(base, 2 * base, time_dim)
        self.middle = _ResBlock(2 * base, 2 * base, time_dim)
        self.up2 = _ResBlock(4 * base, base, time_dim)
        self.up1 = _ResBlock(2 * base, base, time_dim)
        self.head = nn.Sequential(
            nn.GroupNorm(min(8, base), base), nn.SiLU(), nn.Conv2d(base, channels, 3, padding=1)
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Velocity at images ``x`` (B, C, H, W) and times ``t`` (B,)."""
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"SmallUNet needs H and W divisible by 4, got {tuple(x.shape[-2:])}")
        embedding = self.time_mlp(time_features(t, self.n_frequencies))
        h1 = self.down1(self.stem(x), embedding)
        h2 = self.down2(nn.functional.avg_pool2d(h1, 2), embedding)
        h = self.middle(nn.functional.avg_pool2d(h2, 2), embedding)
        h = nn.functional.interpolate(h, scale_factor=2.0, mode="nearest")
        h = self.up2(torch.cat([h, h2], dim=1), embedding)
        h = nn.functional.interpolate(h, scale_factor=2.0, mode="nearest")
        h = self.up1(torch.cat([h, h1], dim=1), embedding)
        return self.head(h)


def build_network(sample_shape: tuple[int, ...], *, width: int = 128, depth: int = 3) -> nn.Module:
    """The MLP for vector samples (D,), the U-Net (``base = width // 4``) for (C, H, W)."""
    if len(sample_shape) == 1:
        return VelocityMLP(sample_shape[0], width=width, depth=depth)
    if len(sample_shape) == 3:
        return SmallUNet(sample_shape[0], base=max(8, width // 4))
    raise ValueError(f"samples must be vectors (D,) or images (C, H, W), got {sample_shape}")
