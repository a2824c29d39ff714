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


#: Colour of the gaze marker on the foveated strategy's overlay (cyan: apart from viridis).
GAZE_COLOUR = (0, 255, 255)
#: Space between the patches of the token-budget map, in pixels.
TOKEN_MAP_GAP = 2


def mark_gaze(picture: np.ndarray, gaze: tuple[float, float]) -> np.ndarray:
    """``picture`` (uint8, changed in place and returned) with a cross at ``gaze``
    (x, y in [0, 1])."""
    height, width = picture.shape[:2]
    centre = (round(gaze[0] * (width - 1)), round(gaze[1] * (height - 1)))
    size = max(6, round(max(height, width) / 40))
    cv2.drawMarker(picture, centre, (0, 0, 0), cv2.MARKER_CROSS, size + 4, 5)  # dark halo
    cv2.drawMarker(picture, centre, GAZE_COLOUR, cv2.MARKER_CROSS, size, 2)
    return picture


def token_map(image: np.ndarray, allocation: Allocation, side: int = 640) -> np.ndarray:
    """The token-budget map (seed 02's "homunculus"): every kept patch drawn as a square
    whose *area* is proportional to its tokens, laid out in reading order (top row of
    the image first), so what the model will spend its tokens on looks as big as the
    tokens it gets.

    Squares are packed in rows on a dark canvas ``side`` pixels wide; the unit is
    chosen so the squares cover about 60% of a ``side`` x ``side`` canvas whatever the
    budget. With one budget for all, this is a mosaic of the kept patches.

    Example:
        >>> import numpy as np
        >>> from clusterlens.allocate import allocate
        >>> allocation = allocate(np.ones((1, 8, 8), np.float32), "topk", 4, grid=2)
        >>> token_map(np.zeros((8, 8, 3), np.float32), allocation, side=64).shape[1]
        64
    """
    bright = to_uint8(image)
    if not len(allocation):
        return np.zeros((side // 4, side, 3), np.uint8)
    boxes = boxes_on(bright, allocation)
    tokens = np.maximum(allocation.budgets.astype(np.float64), 1e-9)
    sides = _square_sides(tokens, side)
    order = np.lexsort((boxes[:, 0], boxes[:, 1]))  # reading order: by row, then column
    places, height = _pack_rows(sides[order], side)
    canvas = np.full((height, side, 3), 24, np.uint8)
    for index, (x, y) in zip(order, places, strict=True):
        x0, y0, x1, y1 = boxes[index]
        size = int(sides[index])
        patch = cv2.resize(bright[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)
        canvas[y : y + size, x : x + size] = patch
    return canvas


def _square_sides(tokens: np.ndarray, side: int) -> np.ndarray:
    """Whole-pixel sides with side^2 proportional to tokens (at least 2 px), filling
    about 60% of a side x side canvas, and no square wider than the canvas."""
    unit = np.sqrt(0.6 * side * side / tokens.sum())  # side of a one-token square
    sides = np.sqrt(tokens) * unit
    sides = np.minimum(sides, side - 2 * TOKEN_MAP_GAP)
    return np.maximum(np.round(sides), 2).astype(np.int64)


def _pack_rows(sides: np.ndarray, width: int) -> tuple[list[tuple[int, int]], int]:
    """Top-left corners of squares placed left to right, a new row when one does not
    fit (rows as tall as their tallest square); and the height used."""
    places, x, y, row = [], TOKEN_MAP_GAP, TOKEN_MAP_GAP, 0
    for size in sides.tolist():
        if x + size + TOKEN_MAP_GAP > width and x > TOKEN_MAP_GAP:
            x, y, row = TOKEN_MAP_GAP, y + row + TOKEN_MAP_GAP, 0
        places.append((x, y))
        x, row = x + size + TOKEN_MAP_GAP, max(row, size)
    return places, y + row + TOKEN_MAP_GAP


def palette(count: int) -> np.ndarray:
    """(count, 3) uint8 class colours: tab10 up to 10 classes, tab20 beyond (as the
    ``segment`` command's picture)."""
    name = "tab10" if count <= 10 else "tab20"
    colours = matplotlib.colormaps[name](np.arange(count) % 20)[:, :3] * 255
    return np.round(colours).astype(np.uint8)


def label_picture(labels: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """(H, W) class indices as an (H, W, 3) uint8 picture in ``colours`` (one per class)."""
    if labels.ndim != 2:
        raise ValueError(f"label_picture expects an (H, W) label map, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(colours)):
        raise ValueError(
            f"labels range {labels.min()}..{labels.max()}, but {len(colours)} colours given"
        )
    return colours[labels]


def points_on(
    image: np.ndarray, points: np.ndarray, colours: np.ndarray, scale: float = 1.0
) -> np.ndarray:
    """The image with a dot (white rim) at each (x, y) of ``points`` (pixels of the
    original image, times ``scale`` for a resized copy), in that point's colour."""
    picture = to_uint8(image).copy()
    radius = max(3, round(max(picture.shape[:2]) / 120))
    for (x, y), colour in zip(np.asarray(points) * scale, colours, strict=True):
        centre = (round(float(x)), round(float(y)))
        cv2.circle(picture, centre, radius + 1, (255, 255, 255), -1)
        cv2.circle(picture, centre, radius, tuple(int(c) for c in colour), -1)
    return picture


def predictions_on(
    image: np.ndarray,
    boxes: np.ndarray,
    names: list[str],
    colours: np.ndarray,
    masks: list[np.ndarray | None] | None = None,
) -> np.ndarray:
    """The image with each prediction drawn: its mask tinted (when given, at the
    image's size), its box outlined and its label written above the box.

    ``boxes`` are (N, 4) pixel boxes (x1, y1, x2, y2) of ``image``.
    """
    picture = to_uint8(image).copy()
    for mask, colour in zip(masks or [None] * len(boxes), colours, strict=True):
        if mask is not None:
            tint = np.asarray(colour, np.float32)
            inside = mask.astype(bool)
            picture[inside] = (0.5 * picture[inside] + 0.5 * tint).astype(np.uint8)
    scale = max(picture.shape[:2]) / 500
    for (x1, y1, x2, y2), name, colour in zip(boxes, names, colours, strict=True):
        colour = tuple(int(c) for c in colour)
        top_left, bottom_right = (round(x1), round(y1)), (round(x2), round(y2))
        cv2.rectangle(picture, top_left, bottom_right, colour, max(1, round(2 * scale)))
        origin = (top_left[0], max(10, top_left[1] - 3))
        cv2.putText(picture, name, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.4 * max(scale, 0.8),
                    colour, 1, cv2.LINE_AA)  # fmt: skip
    return picture
