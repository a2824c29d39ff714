"""TextureArray: a stack of named image channels, and the function that builds one."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from clusterlens.image import ImageInput
from clusterlens.texture.presets import PRESETS, preset_channels
from clusterlens.texture.registry import compute_channels, resolve_channels


@dataclass
class TextureArray:
    """Channels ``data`` (C, H, W) float32 with one name per channel.

    Index by name, never by number: ``tex["saliency"]`` is an (H, W) plane;
    ``tex["position"]`` (a group name) is the (k, H, W) stack of that group's
    channels present in this texture; ``tex.select(["rgb", "position"])`` is a new
    TextureArray.

    Attributes:
        data: (C, H, W) float32 tensor.
        channels: the C channel names, in order.
        meta: where inputs came from (cluster labels, embedding basis, ...).
    """

    data: torch.Tensor
    channels: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)
        if self.data.ndim != 3 or self.data.shape[0] != len(self.channels):
            raise ValueError(
                f"texture data of shape {tuple(self.data.shape)} does not match "
                f"{len(self.channels)} channel names; expected (C, H, W) with C names"
            )
        if len(set(self.channels)) != len(self.channels):
            raise ValueError(f"channel names must be unique, got {self.channels}")

    @property
    def height(self) -> int:
        return int(self.data.shape[1])

    @property
    def width(self) -> int:
        return int(self.data.shape[2])

    def __contains__(self, name: object) -> bool:
        return name in self.channels

    def indices(self, names: Iterable[str]) -> list[int]:
        """Positions of the named channels or groups (groups keep present channels only)."""
        wanted = [c for c in resolve_channels(names) if c in self.channels]
        if not wanted:
            raise KeyError(f"none of {list(names)} is in this texture; it holds {self.channels}")
        return [self.channels.index(c) for c in wanted]

    def __getitem__(self, name: str) -> torch.Tensor:
        if name in self.channels:
            return self.data[self.channels.index(name)]
        return self.data[self.indices([name])]

    def select(self, names: Iterable[str]) -> TextureArray:
        """A new texture holding only the named channels (or groups), in that order."""
        index = self.indices(names)
        return TextureArray(self.data[index], tuple(self.channels[i] for i in index), self.meta)


def generate_texture(
    image: ImageInput,
    channels: str | Sequence[str] = "mvp13",
    **options: Any,
) -> TextureArray:
    """Compute a texture from an image.

    Args:
        image: anything :func:`clusterlens.image.load_image` accepts.
        channels: a preset name (``"mvp13"``, ``"full40"``) or a list of channel
            and group names, e.g. ``["rgb", "saliency"]``.
        **options: generator options: ``fixation=(u, v)`` for eccentricity,
            ``cluster_labels`` (H, W) ints, ``cluster_segments``, ``embedding``
            (D, h, w), ``entropy_bins``, ``entropy_window``.

    Example:
        >>> import numpy as np
        >>> tex = generate_texture(np.zeros((8, 8, 3), np.uint8), ["rgb", "saliency"])
        >>> tex.channels
        ('red', 'green', 'blue', 'saliency')
    """
    if isinstance(channels, str):
        if channels not in PRESETS:
            raise ValueError(
                f"unknown texture preset {channels!r}; use one of {sorted(PRESETS)} "
                "or a list of channel names"
            )
        names: Sequence[str] = preset_channels(channels)
    else:
        names = list(channels)
        if not names:
            raise ValueError("channels must name at least one channel, group or preset")
    data, resolved, meta = compute_channels(image, names, **options)
    return TextureArray(torch.from_numpy(data), tuple(resolved), meta)
