"""Allocation: the patches a strategy kept, their token budgets, and the accounting."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clusterlens.allocate.grid import PatchGrid


@dataclass
class Allocation:
    """Kept patches (one row per patch, best first) plus what it cost to choose them.

    A patch is a cell of the grid at some ``level``: level 0 is one finest cell,
    level k spans 2^k x 2^k finest cells (quadtree leaves use k > 0).

    Attributes:
        strategy: the strategy's registry name.
        grid: the finest patch grid chosen from.
        levels, rows, cols: (N,) cell coordinates at each patch's own level.
        scores: (N,) the relevance score each patch was kept for (NaN when unscored).
        budgets: (N,) tokens given to each patch.
        clusters: (N,) cluster id of each patch, -1 where the strategy used none.
        cells_scored: how many cells (any level) the scorer evaluated.
        stage_ms: wall time per stage, in milliseconds.
        tokens_per_patch: tokens a finest cell costs when a uniform grid keeps all.
        query: the query text, if any.
        meta: anything else worth reporting (balancer weights, model, notes).
        cost: the whole call's cost, filled by ``select_patches``: ``total_ms``,
            ``encoder_ms`` / ``encoder_gflops`` / ``encoder_pixels`` (every
            relevance-model call), ``ways_ms``, ``clusters_ms``, ``cached`` (what
            came from an ``ImageContext``). Reported in ``to_json()["accounting"]``.
            ``cells_scored`` counts cells a strategy evaluated, not compute.
    """

    strategy: str
    grid: PatchGrid
    levels: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    scores: np.ndarray
    budgets: np.ndarray
    clusters: np.ndarray
    cells_scored: int
    stage_ms: dict[str, float] = field(default_factory=dict)
    tokens_per_patch: int = 1
    query: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.levels)

    @property
    def boxes(self) -> np.ndarray:
        """(N, 4) normalised boxes (u0, v0, u1, v1)."""
        return self.grid.normalized_boxes(self.levels, self.rows, self.cols)

    @property
    def pixel_boxes(self) -> np.ndarray:
        """(N, 4) pixel boxes (x0, y0, x1, y1), end-exclusive."""
        return self.grid.pixel_boxes(self.boxes)

    @property
    def tokens_kept(self) -> int:
        return int(self.budgets.sum())

    @property
    def tokens_full(self) -> int:
        """Tokens of the uniform grid that keeps every finest cell."""
        return self.grid.size * self.tokens_per_patch

    def coverage_mask(self) -> np.ndarray:
        """(rows, cols) bool: the finest cells covered by a kept patch."""
        mask = np.zeros((self.grid.rows, self.grid.cols), dtype=bool)
        finest = self.levels == 0
        mask[self.rows[finest], self.cols[finest]] = True
        # coarser patches (quadtree leaves) are few; each paints its block
        for level, row, col in zip(
            self.levels[~finest], self.rows[~finest], self.cols[~finest], strict=True
        ):
            span = 2 ** int(level)
            mask[row * span : (row + 1) * span, col * span : (col + 1) * span] = True
        return mask

    def to_json(self) -> dict[str, Any]:
        """A plain-JSON dictionary: patches and accounting."""
        boxes, pixels = self.boxes, self.pixel_boxes
        patches = [
            {
                "box": [round(float(v), 6) for v in boxes[i]],
                "pixel_box": [int(v) for v in pixels[i]],
                "level": int(self.levels[i]),
                "budget": int(self.budgets[i]),
                "score": None if np.isnan(self.scores[i]) else round(float(self.scores[i]), 6),
                "cluster": int(self.clusters[i]),
            }
            for i in range(len(self))
        ]
        return {
            "strategy": self.strategy,
            "query": self.query,
            "image_size": [self.grid.height, self.grid.width],
            "grid": [self.grid.rows, self.grid.cols],
            "patches": patches,
            "accounting": self.accounting(),
            "meta": _jsonable(self.meta),
        }

    def accounting(self) -> dict[str, Any]:
        """``to_json()["accounting"]`` alone, without building every patch's row (the
        browser app reads it on every re-render)."""
        return {
            "patches_kept": len(self),
            "cells_scored": self.cells_scored,
            "finest_cells": self.grid.size,
            "scored_fraction": round(self.cells_scored / self.grid.size, 4),
            "tokens_kept": self.tokens_kept,
            "tokens_full_grid": self.tokens_full,
            "token_ratio": round(self.tokens_kept / max(self.tokens_full, 1), 4),
            "stage_ms": {k: round(v, 3) for k, v in self.stage_ms.items()},
            **_jsonable(self.cost),
        }

    def save_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
