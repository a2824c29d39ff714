"""PatchGrid: the finest grid of patches an allocation chooses from, and its pyramid.

A grid is ``rows x cols`` cells over an ``height x width`` image. Cell edges are
rounded pixel positions, so a grid can be given by a cell count (``grid=32`` as in
the seeds' 32x32 = 1024 patches) or by a patch size in pixels (``patch_size=28``,
a VLM's merged patch): then the last row/column is clipped to the image, and an
image smaller than one patch is a single, clipped patch.

Level ``k`` of a grid groups ``2^k x 2^k`` finest cells (see ``scorer.CellScorer``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class PatchGrid:
    """A rows x cols grid of cells over a height x width image."""

    height: int
    width: int
    rows: int
    cols: int

    def __post_init__(self) -> None:
        if min(self.height, self.width) < 1:
            raise ValueError(f"image size must be positive, got {self.height}x{self.width}")
        if min(self.rows, self.cols) < 1:
            raise ValueError(f"a patch grid needs at least 1x1 cells, got {self.rows}x{self.cols}")

    @classmethod
    def from_count(cls, height: int, width: int, cells: int | tuple[int, int] = 32) -> PatchGrid:
        """``cells`` per side (or (rows, cols)), clamped so that every cell holds at least
        one pixel: a 1x1 image has one cell, a 360-pixel-high image at most 360 rows."""
        rows, cols = (cells, cells) if isinstance(cells, int) else cells
        if min(rows, cols) < 1:
            raise ValueError(f"a patch grid needs at least 1x1 cells, got {rows}x{cols}")
        return cls(height, width, min(rows, max(height, 1)), min(cols, max(width, 1)))

    @classmethod
    def from_patch_size(cls, height: int, width: int, patch_size: int) -> PatchGrid:
        if patch_size < 1:
            raise ValueError(f"patch_size must be a positive number of pixels, got {patch_size}")
        return cls(height, width, math.ceil(height / patch_size), math.ceil(width / patch_size))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def size(self) -> int:
        return self.rows * self.cols

    @property
    def num_levels(self) -> int:
        """Levels until a single cell covers the whole grid."""
        return max(math.ceil(math.log2(max(self.rows, self.cols))), 0) + 1

    def level_shape(self, level: int) -> tuple[int, int]:
        return (math.ceil(self.rows / 2**level), math.ceil(self.cols / 2**level))

    def normalized_boxes(self, level: np.ndarray, row: np.ndarray, col: np.ndarray) -> np.ndarray:
        """(N, 4) boxes (u0, v0, u1, v1) in [0, 1] of cells given at their levels."""
        span = 2 ** np.asarray(level)
        top, left = np.asarray(row) * span, np.asarray(col) * span
        bottom, right = np.minimum(top + span, self.rows), np.minimum(left + span, self.cols)
        return np.stack(
            [left / self.cols, top / self.rows, right / self.cols, bottom / self.rows], 1
        )

    def pixel_boxes(self, normalized: np.ndarray) -> np.ndarray:
        """(N, 4) integer pixel boxes (x0, y0, x1, y1), x1/y1 exclusive, never empty."""
        scale = np.array([self.width, self.height, self.width, self.height])
        boxes = np.round(normalized * scale).astype(np.int64)
        boxes[:, 2] = np.maximum(boxes[:, 2], boxes[:, 0] + 1)
        boxes[:, 3] = np.maximum(boxes[:, 3], boxes[:, 1] + 1)
        return np.minimum(boxes, scale)

    def spans(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Pixel spans of the finest cells: row starts, row ends, column starts, column
        ends (ends exclusive), as :meth:`cell_means` averages over them."""
        return (*_spans(self.height, self.rows), *_spans(self.width, self.cols))

    def cell_means(self, plane: np.ndarray, levels: int = 1) -> list[np.ndarray]:
        """Mean of an (H, W) map over each cell of levels 0..levels-1, via one integral image.

        Level k cells group 2^k x 2^k finest cells; their means are over the pixels
        they cover, so partial cells at the edges are weighted correctly.
        """
        if plane.shape != (self.height, self.width):
            raise ValueError(
                f"map of shape {plane.shape} does not match the image {self.height}x{self.width}"
            )
        table = cv2.integral(np.ascontiguousarray(plane, dtype=np.float32), sdepth=cv2.CV_64F)
        (y_start, y_end), (x_start, x_end) = (
            _spans(self.height, self.rows),
            _spans(self.width, self.cols),
        )
        means = []
        for level in range(levels):
            y0, y1 = _grouped(y_start, y_end, 2**level)
            x0, x1 = _grouped(x_start, x_end, 2**level)
            y0, y1, x0, x1 = y0[:, None], y1[:, None], x0[None, :], x1[None, :]
            sums = table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]
            means.append((sums / ((y1 - y0) * (x1 - x0))).astype(np.float32))
        return means


def _grouped(starts: np.ndarray, ends: np.ndarray, group: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel spans of consecutive groups of ``group`` cells."""
    first = np.arange(0, len(starts), group)
    last = np.minimum(first + group, len(starts)) - 1
    return starts[first], ends[last]


def _spans(pixels: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end pixel of each cell; a cell narrower than a pixel gets its nearest pixel."""
    edges = np.round(np.linspace(0, pixels, cells + 1)).astype(np.int64)
    starts = np.minimum(edges[:-1], pixels - 1)
    ends = np.maximum(edges[1:], starts + 1)
    return starts, ends
