"""The query's coupling on the frames of a clip, through each frame's lazy source.

Every strategy scores a (frame, cell) by the same number: the mean over the cell of
the model's probability of the query's classes (their sum, clipped to 1), bilinearly
upsampled from the model's working resolution -- what
:meth:`clusterlens.relevance.source.CouplingSource.dense_cells` computes for images.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from clusterlens.allocate import PatchGrid
from clusterlens.context import ImageContext
from clusterlens.relevance.source import CellSpans, CouplingSource, cell_operator
from clusterlens.video.context import Ledger, VideoContext


@dataclass
class ClipCoupling:
    """The query's classes and the model that scores them, on one clip."""

    video: VideoContext
    model: Any
    model_name: str
    classes: tuple[str, ...]
    grid: PatchGrid  # at the decoded frame size
    ledger: Ledger

    @property
    def spans(self) -> CellSpans:
        return CellSpans(*self.grid.spans(), self.grid.height, self.grid.width)

    def source(self, context: ImageContext) -> CouplingSource:
        return self.video.source(context, self.model, self.model_name, self.ledger)

    def coarse_cells(self, context: ImageContext) -> np.ndarray:
        """(rows, cols) from the model's low-resolution pass (lazy models; else dense)."""
        source = self.source(context)
        if not source.lazy:
            return self.dense_cells(context)
        return source.coarse_cells(self.classes, self.spans)

    def dense_cells(self, context: ImageContext) -> np.ndarray:
        """(rows, cols) at the model's shipped settings (the reference)."""
        source = self.source(context)
        if not source.lazy:
            return self.grid.cell_means(source.coupling_map(self.classes))[0]
        return source.dense_cells(self.classes, self.spans)

    def working_map(self, context: ImageContext, kind: str) -> np.ndarray:
        """(h, w) coupling of the ``kind`` pass ("dense" or "coarse") at that pass's own
        resolution, to be carried along flow; a model without passes gives its map."""
        source = self.source(context)
        if not source.lazy:
            return source.coupling_map(self.classes)
        probabilities = source.probabilities(kind)
        indices = source.class_indices(self.classes)
        return probabilities[indices].sum(0).clip(0.0, 1.0).astype(np.float32)

    def cells_of(self, working: np.ndarray) -> np.ndarray:
        """(rows, cols) cell means of a working-size map, as ``dense_cells`` computes them."""
        ops_y, ops_x = _operators(self.spans, *working.shape)
        return (ops_y @ working @ ops_x.T).astype(np.float32)


def _operators(spans: CellSpans, work_h: int, work_w: int) -> tuple[np.ndarray, np.ndarray]:
    rows = (tuple(spans.row_starts), tuple(spans.row_ends), spans.height, work_h)
    cols = (tuple(spans.col_starts), tuple(spans.col_ends), spans.width, work_w)
    return _operator(*rows), _operator(*cols)


@functools.lru_cache(maxsize=16)
def _operator(starts: tuple, ends: tuple, image_len: int, work_len: int) -> np.ndarray:
    return cell_operator(np.array(starts), np.array(ends), image_len, work_len)
