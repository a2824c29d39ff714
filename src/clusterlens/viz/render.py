"""Pictures as in-memory RGB arrays, for interactive use (the browser app).

:mod:`clusterlens.viz.allocation` draws with matplotlib into files, which costs a few
hundred milliseconds per figure. An app re-renders on every slider move, so these draw
straight into uint8 arrays with OpenCV and a colormap look-up: the same kept-patch
overlay (dimmed outside, outlines coloured by token budget), relevance heat map and
cluster boundaries, in a few milliseconds.

Example:
    >>> import numpy as np
    >>> heat_map(np.zeros((4, 6), np.float32)).shape
    (4, 6, 3)
"""

from __future__ import annotations

import functools

import cv2
import matplotlib
import numpy as np
from skimage.segmentation import find_boundaries

from clusterlens.allocate import Allocation
from clusterlens.viz.allocation import DIM, boxes_on

#: Outline colour of cluster boundaries (yellow: visible on most photos).
BOUNDARY_COLOUR = (255, 220, 0)
#: Border of the kept area when every patch has the same budget (viridis' top colour).
KEPT_BORDER_COLOUR = (253, 231, 37)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1] (or uint8) as a contiguous uint8 array, rounded."""
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    # one OpenCV pass (scale, round, saturate): a tenth of NumPy's clip-multiply-cast
    return cv2.convertScaleAbs(np.ascontiguousarray(image, dtype=np.float32), alpha=255.0)


def allocation_overlay(image: np.ndarray, allocation: Allocation) -> np.ndarray:
    """The image dimmed to :data:`~clusterlens.viz.allocation.DIM` outside the kept
    patches (as :func:`~clusterlens.viz.allocation.kept_overlay`), as (H, W, 3) uint8.

    With token budgets that differ, each patch is outlined in a viridis colour by its
    budget (as in the file picture); with one budget for all, only the border of the
    kept area is drawn: outlining every patch alike says nothing more and, with small
    patches on a screen, hides the pixels under a lattice of lines.
    """
    bright = to_uint8(image)
    picture = cv2.convertScaleAbs(bright, alpha=DIM)
    boxes = boxes_on(image, allocation)
    keep = np.zeros(image.shape[:2], dtype=np.uint8)
    for x0, y0, x1, y1 in boxes:
        picture[y0:y1, x0:x1] = bright[y0:y1, x0:x1]
        keep[y0:y1, x0:x1] = 1
    if not len(boxes):
        return picture
    budgets = allocation.budgets.astype(np.float64)
    low, high = budgets.min(), budgets.max()
    if high == low:
        # the kept pixels whose 3x3 neighbourhood leaves the kept area (the image's
        # edge does not count: erode's default border is the maximum)
        border = keep > cv2.erode(keep, np.ones((3, 3), np.uint8))
        picture[border] = KEPT_BORDER_COLOUR
        return picture
    colours = matplotlib.colormaps["viridis"]((budgets - low) / (high - low))[:, :3] * 255
    # thin lines on small images, thicker ones where a 1-px line would vanish when shown
    thickness = max(1, round(max(image.shape[:2]) / 700))
    for (x0, y0, x1, y1), colour in zip(boxes, colours.astype(int), strict=True):
        cv2.rectangle(picture, (x0, y0), (x1 - 1, y1 - 1), tuple(map(int, colour)), thickness)
    return picture


def heat_map(values: np.ndarray, cmap: str = "magma") -> np.ndarray:
    """(H, W) values as an (H, W, 3) uint8 picture, 0 dark up to the map's maximum.

    Scaled by the maximum (as the file picture's colour bar is), so a weak map still
    shows where it peaks; an all-zero map is the colormap's bottom colour throughout.
    """
    if values.ndim != 2:
        raise ValueError(f"heat_map expects an (H, W) map, got shape {values.shape}")
    values = np.nan_to_num(np.asarray(values, dtype=np.float32))
    peak = max(float(values.max()) if values.size else 0.0, 1e-6)
    levels = cv2.convertScaleAbs(values, alpha=255.0 / peak)  # saturates below 0, above 255
    return cv2.applyColorMap(levels, _lut(cmap))[:, :, ::-1]  # OpenCV's BGR to RGB


@functools.lru_cache(maxsize=8)
def _lut(cmap: str) -> np.ndarray:
    """A matplotlib colormap as OpenCV's (256, 1, 3) BGR look-up table."""
    rgb = matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255
    return np.ascontiguousarray(np.round(rgb[:, ::-1]).astype(np.uint8)[:, None, :])


def boundary_overlay(
    image: np.ndarray, labels: np.ndarray, colour: tuple[int, int, int] = BOUNDARY_COLOUR
) -> np.ndarray:
    """The image with the boundaries between clusters of ``labels`` drawn in ``colour``."""
    if labels.shape != image.shape[:2]:
        raise ValueError(
            f"labels of shape {labels.shape} do not match the image's {image.shape[:2]}"
        )
    picture = to_uint8(image).copy()
    picture[find_boundaries(labels, mode="thick")] = colour
    return picture
