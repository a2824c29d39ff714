"""Pictures of a video allocation: an animated GIF of the kept cells, and a frame x cell
"budget over time" strip.

    >>> from clusterlens.viz.video import save_video_gif, save_budget_strip  # doctest: +SKIP
    >>> save_video_gif(open_video("drive.mp4"), allocation, "kept.gif")  # doctest: +SKIP
    >>> save_budget_strip(allocation, "budget.png")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

#: GIF frames are drawn at most this long on a side (a GIF holds every frame).
GIF_SIDE = 320
#: Brightness of the cells that were not kept.
DIM = 0.3
KEPT_COLOUR = (255, 200, 0)


def kept_cells_frame(rgb: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: ``rgb`` with the cells not in ``kept`` (rows, cols bool) dimmed
    and the kept area outlined."""
    height, width = rgb.shape[:2]
    mask = cv2.resize(kept.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    picture = (np.clip(rgb, 0, 1) * 255).astype(np.float32)
    picture[mask == 0] *= DIM
    picture = picture.astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(picture, contours, -1, KEPT_COLOUR, 1)
    return picture


def save_video_gif(
    frames: Iterable[tuple[int, np.ndarray]],
    allocation,
    path: str | Path,
    fps: float = 5.0,
    side: int = GIF_SIDE,
) -> Path:
    """Write an animated GIF: each frame with its kept cells, and its token count.

    Args:
        frames: ``(index, rgb)`` pairs, as iterating a
            :class:`~clusterlens.video.frames.VideoFrames` gives them.
        allocation: a :class:`~clusterlens.video.allocation.VideoAllocation` of them.
        fps: frames per second of the animation.
        side: longer side of the GIF's frames.
    """
    kept, counts = allocation.kept(), allocation.tokens_per_frame()
    pictures = []
    for index, rgb in frames:
        scale = min(1.0, side / max(rgb.shape[:2]))
        if scale < 1:
            size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        picture = kept_cells_frame(rgb, kept[index])
        label = f"{index + 1}/{allocation.frame_count}  {counts[index]} tokens"
        cv2.putText(picture, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        pictures.append(Image.fromarray(picture))
    if not pictures:
        raise ValueError("no frames to draw")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pictures[0].save(
        path,
        save_all=True,
        append_images=pictures[1:],
        duration=round(1000 / fps),
        loop=0,
    )
    return path


def budget_strip(allocation, bar_height: int = 80, column: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8: one column per frame, one row per cell (row-major), kept cells
    bright; above it, a bar per frame of the tokens it kept (scaled to the most any
    frame kept)."""
    kept = allocation.kept().reshape(allocation.frame_count, -1).T  # (cells, frames)
    column = column or max(2, min(24, 960 // max(allocation.frame_count, 1)))
    cells = np.where(kept, 235, 35).astype(np.uint8)
    cells = np.repeat(cells, column, axis=1)
    counts = allocation.tokens_per_frame()
    bars = np.full((bar_height, cells.shape[1]), 255, np.uint8)
    top = max(int(counts.max()), 1)
    for frame, count in enumerate(counts):
        height = round(bar_height * count / top)
        bars[bar_height - height :, frame * column : (frame + 1) * column - 1] = 90
    gap = np.full((4, cells.shape[1]), 255, np.uint8)
    return np.dstack([np.vstack([bars, gap, cells])] * 3)


def save_budget_strip(allocation, path: str | Path) -> Path:
    """Write :func:`budget_strip` as a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(budget_strip(allocation)).save(path)
    return path
