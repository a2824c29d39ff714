"""Position channels: normalised pixel centres and eccentricity from a fixation point.

``pos_x`` and ``pos_y`` hold the *centre* of each pixel, ``(j + 0.5) / W`` and
``(i + 0.5) / H``. Because they are linear in the pixel index, 2x2 average pooling
turns them into the centre of the pooled region at every mip level, so a coarse
level tells where its cells sit in the image for free.

``eccentricity`` is the distance from the fixation point (normalised coordinates,
default the image centre) in pixels, divided by the distance from the fixation
point to the farthest image corner, so it lies in [0, 1] for any aspect ratio.
"""

from __future__ import annotations

import numpy as np

from clusterlens.texture.registry import ChannelContext, register_group


def fixation_point(ctx: ChannelContext) -> tuple[float, float]:
    """The ``fixation=(u, v)`` option, validated; default the image centre."""
    fixation = ctx.options.get("fixation") or (0.5, 0.5)
    try:
        u, v = (float(value) for value in fixation)
    except (TypeError, ValueError) as err:
        raise ValueError(f"fixation must be a pair (u, v) of numbers, got {fixation!r}") from err
    if not (0.0 <= u <= 1.0 and 0.0 <= v <= 1.0):
        raise ValueError(
            f"fixation must lie inside the image, in normalised coordinates [0, 1], got {(u, v)}"
        )
    return u, v


@register_group(
    "position",
    ["pos_x", "pos_y", "eccentricity"],
    "pixel centre (x, y) in [0, 1]; distance from the fixation point in [0, 1]",
)
def position_channels(ctx: ChannelContext) -> np.ndarray:
    height, width = ctx.height, ctx.width
    xs = (np.arange(width, dtype=np.float32) + 0.5) / width
    ys = (np.arange(height, dtype=np.float32) + 0.5) / height
    out = np.empty((3, height, width), dtype=np.float32)
    out[0] = xs[None, :]
    out[1] = ys[:, None]
    u, v = fixation_point(ctx)
    dx = (xs - u) * width
    dy = (ys - v) * height
    farthest = np.hypot(max(u, 1 - u) * width, max(v, 1 - v) * height)
    np.add.outer(dy * dy, dx * dx, out=out[2])
    np.sqrt(out[2], out=out[2])
    out[2] *= 1.0 / max(farthest, 1e-12)
    return out
