"""VideoAllocation: the (frame, cell) cells kept over a clip, and what choosing them cost."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clusterlens.allocate import PatchGrid
from clusterlens.allocate.allocation import _jsonable


@dataclass
class VideoAllocation:
    """Kept cells, one row per cell (best first where scored), one token each.

    Attributes:
        strategy: the video strategy's name.
        grid: the patch grid of every frame, in pixels of the frames as given.
        frame_count: frames in the clip (after ``frame_stride``).
        frames, rows, cols: (N,) the kept cells.
        scores: (N,) the coupling each cell was kept for (NaN: not scored, uniform).
        budget: the clip-level budget (cells) asked for.
        query: the query text.
        clusters: (N,) cluster id of each cell (-1: clusters not computed).
        cost: the whole call's accounting (``total_ms``, ``encoder_gflops``, ...).
        meta, notes: what else is worth reporting.
    """

    strategy: str
    grid: PatchGrid
    frame_count: int
    frames: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    scores: np.ndarray
    budget: int
    query: str | None = None
    clusters: np.ndarray | None = None
    cost: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frames)

    def kept(self) -> np.ndarray:
        """(frames, rows, cols) bool: which cells of which frame are kept."""
        mask = np.zeros((self.frame_count, self.grid.rows, self.grid.cols), bool)
        mask[self.frames, self.rows, self.cols] = True
        return mask

    def tokens_per_frame(self) -> np.ndarray:
        """(frames,) cells kept in each frame."""
        return np.bincount(self.frames, minlength=self.frame_count)

    def pixel_boxes(self) -> np.ndarray:
        """(N, 4) pixel boxes (x0, y0, x1, y1) of the kept cells in their frames."""
        levels = np.zeros(len(self), np.int64)
        return self.grid.pixel_boxes(self.grid.normalized_boxes(levels, self.rows, self.cols))

    def to_json(self) -> dict[str, Any]:
        boxes = self.pixel_boxes()
        clusters = self.clusters if self.clusters is not None else np.full(len(self), -1)
        cells = [
            {
                "frame": int(self.frames[i]),
                "cell": [int(self.rows[i]), int(self.cols[i])],
                "pixel_box": [int(v) for v in boxes[i]],
                "score": None if np.isnan(self.scores[i]) else round(float(self.scores[i]), 6),
                "cluster": int(clusters[i]),
            }
            for i in range(len(self))
        ]
        per_frame = self.tokens_per_frame()
        return {
            "strategy": self.strategy,
            "query": self.query,
            "frames": self.frame_count,
            "frame_size": [self.grid.height, self.grid.width],
            "grid": [self.grid.rows, self.grid.cols],
            "cells": cells,
            "accounting": {
                "budget": self.budget,
                "tokens_kept": len(self),
                "tokens_full_clip": self.frame_count * self.grid.size,
                "tokens_per_frame": per_frame.tolist(),
                "total_ms_per_frame": round(
                    self.cost.get("total_ms", 0.0) / max(self.frame_count, 1), 2
                ),
                **_jsonable(self.cost),
            },
            "meta": _jsonable(self.meta),
            "notes": list(self.notes),
        }

    def save_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path
