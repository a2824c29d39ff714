"""Contact sheets of a texture: every channel, and the pyramid as a mip chain."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from clusterlens.texture.pyramid import MipPyramid  # noqa: E402
from clusterlens.texture.registry import categorical_channels  # noqa: E402
from clusterlens.viz._layout import DPI, panel_height  # noqa: E402

TILE_SIDE = 256  # channels are drawn from the first level no larger than this
COLUMNS = 8
TILE_MAX_INCHES = 4.0  # tallest channel tile: 40 channels of a tall strip stay < 25 inches


def mip_chain_image(pyramid: MipPyramid, channels: tuple[str, ...] | None = None) -> np.ndarray:
    """The classic mip-chain layout: level 0 on the left, smaller levels stacked right.

    Returns an (H, W + ceil(W/2), 3) float array in [0, 1]. Shows RGB when the
    pyramid has it, else the first channel (min-max scaled) in grey.
    """
    names = channels or (
        ("red", "green", "blue") if "red" in pyramid.channels else pyramid.channels[:1]
    )
    levels = [
        _display_rgb(pyramid.level(k).select(names).data.numpy()) for k in range(pyramid.num_levels)
    ]
    height, width = levels[0].shape[:2]
    right = levels[1].shape[1] if len(levels) > 1 else 0
    canvas = np.ones((height, width + right, 3), dtype=np.float32)
    canvas[:, :width] = levels[0]
    top = 0
    for level in levels[1:]:
        rows, cols = level.shape[:2]
        canvas[top : top + rows, width : width + cols] = level
        top += rows
    return canvas


def _display_rgb(planes: np.ndarray) -> np.ndarray:
    if planes.shape[0] == 3:
        return np.clip(planes.transpose(1, 2, 0), 0, 1)
    plane = planes[0]
    low, high = float(plane.min()), float(plane.max())
    scaled = (plane - low) / (high - low) if high > low else np.zeros_like(plane)
    return np.repeat(scaled[:, :, None], 3, axis=2)


def save_texture_sheet(pyramid: MipPyramid, path: str | Path, title: str = "") -> Path:
    """Write one PNG: every channel (small multiples) above the pyramid's mip chain."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    display_level = _display_level(pyramid)
    level = pyramid.level(display_level)
    rows = math.ceil(len(pyramid.channels) / COLUMNS)
    # A 2-inch tile per channel; its height follows the image within bounds (a 1x10000
    # strip would otherwise ask for a 20000-inch figure), imshow keeps the true aspect.
    tile = min(panel_height(2.0, level.height / level.width), TILE_MAX_INCHES)
    figure = plt.figure(figsize=(COLUMNS * 2.0, rows * tile + 1.0 + 5.0), dpi=DPI)
    grid = figure.add_gridspec(rows + 1, COLUMNS, height_ratios=[tile] * rows + [5.0])
    categorical = categorical_channels()
    for index, name in enumerate(pyramid.channels):
        axis = figure.add_subplot(grid[index // COLUMNS, index % COLUMNS])
        _draw_channel(axis, name, level[name].numpy(), name in categorical)
    chain_axis = figure.add_subplot(grid[rows, :])
    chain_axis.imshow(mip_chain_image(pyramid), interpolation="nearest")
    sizes = ", ".join(f"{lvl.shape[2]}x{lvl.shape[1]}" for lvl in pyramid.levels)
    chain_axis.set_title(f"mip pyramid ({pyramid.num_levels} levels: {sizes})", fontsize=9)
    chain_axis.axis("off")
    shown = f"level {display_level}" if display_level else "full resolution"
    figure.suptitle(
        f"{title}  —  {len(pyramid.channels)} channels ({shown})".strip(" —"), fontsize=11
    )
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    figure.savefig(path)
    plt.close(figure)
    return path


def _display_level(pyramid: MipPyramid) -> int:
    for k, level in enumerate(pyramid.levels):
        if max(level.shape[1:]) <= TILE_SIDE:
            return k
    return pyramid.num_levels - 1


def _draw_channel(axis: plt.Axes, name: str, plane: np.ndarray, categorical: bool) -> None:
    low, high = float(plane.min()), float(plane.max())
    if categorical:
        axis.imshow(plane, cmap="tab20", interpolation="nearest")
    elif low < 0:
        bound = max(abs(low), abs(high), 1e-6)
        axis.imshow(plane, cmap="coolwarm", vmin=-bound, vmax=bound)
    else:
        axis.imshow(plane, cmap="gray", vmin=low, vmax=max(high, low + 1e-6))
    axis.set_title(f"{name}\n[{low:.2f}, {high:.2f}]", fontsize=7)
    axis.axis("off")
