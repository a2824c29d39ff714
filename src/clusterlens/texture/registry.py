"""The registry of named texture channel generators.

A *channel group* is one generator that computes several related channels at once
(``lab`` gives ``lab_l``, ``lab_a``, ``lab_b``), because they share work. Channels are
always addressed by name; a preset is just an ordered list of channel names, and
:func:`generate_texture` runs only the groups those names need.

Example:
    >>> from clusterlens.texture.registry import list_channels
    >>> "saliency" in list_channels()
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clusterlens.image import ImageInput, load_image


@dataclass
class ChannelContext:
    """What a generator sees: the image, the caller's options and a shared cache.

    Attributes:
        rgb: ``(H, W, 3)`` float32 RGB in ``[0, 1]``.
        options: keyword options given to :func:`generate_texture` (fixation point,
            cluster labels, embedding, ...). Generators read the ones they know.
        cache: intermediate results shared between generators (e.g. luminance).
        meta: facts a generator wants to report with the texture (e.g. where the
            cluster labels or the embedding came from).
    """

    rgb: np.ndarray
    options: dict[str, Any] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return self.rgb.shape[0]

    @property
    def width(self) -> int:
        return self.rgb.shape[1]

    def shared(self, key: str, compute: Callable[[], Any]) -> Any:
        """Return ``cache[key]``, computing it once on first use."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]


# A generator returns its channels as a (k, H, W) array or a sequence of k (H, W)
# planes; planes avoid one stacking copy per group on large images.
GeneratorFn = Callable[[ChannelContext], "np.ndarray | Sequence[np.ndarray]"]


@dataclass(frozen=True)
class ChannelGroup:
    """One generator and the channels it produces, in order.

    Attributes:
        name: group name, usable wherever a channel name is (selects all its channels).
        channels: names of the channels ``fn`` returns, in order.
        fn: returns ``len(channels)`` float32 planes (H, W), stacked or as a list.
        description: one line for ``list_channels`` and the docs.
        categorical: channels holding ids, which must never be averaged or
            interpolated (pyramids use mode pooling, sampling uses nearest).
    """

    name: str
    channels: tuple[str, ...]
    fn: GeneratorFn
    description: str
    categorical: frozenset[str] = frozenset()


_GROUPS: dict[str, ChannelGroup] = {}
_CHANNEL_TO_GROUP: dict[str, str] = {}


def register_group(
    name: str,
    channels: Sequence[str],
    description: str,
    categorical: Iterable[str] = (),
) -> Callable[[GeneratorFn], GeneratorFn]:
    """Decorator registering ``fn`` as the generator of a channel group."""

    def decorate(fn: GeneratorFn) -> GeneratorFn:
        clash = [c for c in (name, *channels) if c in _CHANNEL_TO_GROUP or c in _GROUPS]
        if clash:
            raise ValueError(f"channel or group name(s) already registered: {clash}")
        _GROUPS[name] = ChannelGroup(name, tuple(channels), fn, description, frozenset(categorical))
        for channel in channels:
            _CHANNEL_TO_GROUP[channel] = name
        return fn

    return decorate


def list_channels() -> dict[str, str]:
    """Every registered channel name mapped to its group's description."""
    return {c: _GROUPS[g].description for c, g in _CHANNEL_TO_GROUP.items()}


def list_groups() -> dict[str, tuple[str, ...]]:
    """Every group name mapped to the channels it produces."""
    return {name: group.channels for name, group in _GROUPS.items()}


def categorical_channels() -> frozenset[str]:
    """Names of all channels that hold ids rather than measurements."""
    return frozenset().union(*(g.categorical for g in _GROUPS.values()))


def resolve_channels(names: Iterable[str]) -> list[str]:
    """Expand group names into their channels, keeping order and dropping repeats.

    Raises:
        ValueError: a name is neither a channel nor a group, listing the known ones.
    """
    resolved: list[str] = []
    for name in names:
        if name in _GROUPS:
            expanded = _GROUPS[name].channels
        elif name in _CHANNEL_TO_GROUP:
            expanded = (name,)
        else:
            raise ValueError(
                f"unknown texture channel {name!r}; known groups: {sorted(_GROUPS)}; "
                f"known channels: {sorted(_CHANNEL_TO_GROUP)}"
            )
        resolved.extend(c for c in expanded if c not in resolved)
    return resolved


def compute_channels(
    image: ImageInput, channels: Sequence[str], **options: Any
) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """Run the generators ``channels`` need; return ``(data (C,H,W), names, meta)``.

    ``data`` is written in place into one preallocated array, so a large image costs
    one copy of its texture, not one per group.
    """
    names = resolve_channels(channels)
    ctx = ChannelContext(rgb=load_image(image), options=options)
    data = np.empty((len(names), ctx.height, ctx.width), dtype=np.float32)
    position = {name: index for index, name in enumerate(names)}
    for group_name in dict.fromkeys(_CHANNEL_TO_GROUP[n] for n in names):
        group = _GROUPS[group_name]
        produced = group.fn(ctx)
        shapes = [np.shape(plane) for plane in produced]
        if shapes != [(ctx.height, ctx.width)] * len(group.channels):
            raise RuntimeError(
                f"generator {group_name!r} returned planes of shapes {shapes}, expected "
                f"{len(group.channels)} of {(ctx.height, ctx.width)}"
            )
        for channel, plane in zip(group.channels, produced, strict=True):
            if channel in position:
                data[position[channel]] = plane
    return data, names, ctx.meta
