"""CellScorer: scores grid cells at any level from per-cell relevance features.

The features are the relevance channels (the ways of knowing: information,
salience, query coupling) averaged over each finest grid cell, pooled into a
pyramid of coarser cells. A cell's score is the balancer's combination of its
features. Every call to :meth:`CellScorer.score` counts the cells it scored, so a
strategy's cost is measured, not claimed.

Coarse levels keep two summaries of each feature: the mean over the pixels the cell
covers (from one integral image per map, exact at any size) and the max over its
finest cells. Scoring the max
is optimistic: for non-negative weights a coarse cell's max-score bounds every
finest cell below it, so small bright objects are not averaged away.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from clusterlens.allocate.grid import PatchGrid

Combiner = Callable[[torch.Tensor], torch.Tensor]  # (N, C) features -> (N,) scores


def linear_combiner(weights: Sequence[float]) -> Combiner:
    """Fixed weights: score = features @ weights."""
    vector = torch.as_tensor(weights, dtype=torch.float32)
    return lambda features: features @ vector


@dataclass
class CellScorer:
    """Per-cell features of a grid, pooled into mean and max pyramids, plus a combiner."""

    grid: PatchGrid
    mean_levels: list[torch.Tensor]  # level k: (C, rows_k, cols_k)
    max_levels: list[torch.Tensor]
    combine: Combiner
    channel_names: tuple[str, ...]
    scored: int = 0
    scored_by_level: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    @classmethod
    def from_maps(
        cls,
        maps: np.ndarray,
        grid: PatchGrid,
        combine: Combiner | None = None,
        channel_names: Sequence[str] | None = None,
    ) -> CellScorer:
        """Build from relevance maps (C, H, W) or one map (H, W) at image resolution."""
        stack = np.asarray(maps, dtype=np.float32)
        stack = stack[None] if stack.ndim == 2 else stack
        if stack.ndim != 3 or stack.shape[1:] != (grid.height, grid.width):
            raise ValueError(
                f"relevance maps of shape {stack.shape} do not match the image "
                f"{grid.height}x{grid.width}; expected (C, H, W) or (H, W)"
            )
        per_map = [grid.cell_means(plane, grid.num_levels) for plane in stack]
        means = [torch.from_numpy(np.stack(level)) for level in zip(*per_map, strict=True)]
        names = tuple(channel_names or (f"channel_{i}" for i in range(len(stack))))
        combiner = combine or linear_combiner([1.0 / len(stack)] * len(stack))
        return cls(grid, means, _max_pyramid(means[0].numpy(), grid.num_levels), combiner, names)

    @property
    def num_levels(self) -> int:
        return len(self.mean_levels)

    def level_shape(self, level: int) -> tuple[int, int]:
        return tuple(self.mean_levels[level].shape[1:])

    def score(
        self, level: int, rows: torch.Tensor, cols: torch.Tensor, summary: str = "mean"
    ) -> torch.Tensor:
        """Scores (N,) of the cells (rows[i], cols[i]) of ``level``; counted."""
        started = time.perf_counter()
        scores = self.combine(self.features(level, rows, cols, summary))
        self.scored += len(rows)
        self.scored_by_level[level] = self.scored_by_level.get(level, 0) + len(rows)
        self.seconds += time.perf_counter() - started
        return scores

    def features(
        self, level: int, rows: torch.Tensor, cols: torch.Tensor, summary: str = "mean"
    ) -> torch.Tensor:
        """(N, C) features of cells (not counted: reading is not scoring)."""
        source = self.mean_levels if summary == "mean" else self.max_levels
        data = source[level]
        # index_select on a flat view: 2-D fancy indexing costs milliseconds on a busy CPU
        flat = data.reshape(data.shape[0], -1)
        return torch.index_select(flat, 1, rows * data.shape[2] + cols).T

    def score_level(self, level: int, summary: str = "mean") -> torch.Tensor:
        """Scores of every cell of ``level``, shaped (rows_k, cols_k)."""
        n_rows, n_cols = self.level_shape(level)
        rows, cols = torch.meshgrid(torch.arange(n_rows), torch.arange(n_cols), indexing="ij")
        return self.score(level, rows.reshape(-1), cols.reshape(-1), summary).reshape(
            n_rows, n_cols
        )

    def reset_counts(self) -> None:
        self.scored, self.scored_by_level, self.seconds = 0, {}, 0.0


def _max_pyramid(finest: np.ndarray, levels: int) -> list[torch.Tensor]:
    """Max over 2x2 blocks, level by level (NumPy: these arrays are tiny)."""
    maxima = [finest]
    for _ in range(1, levels):
        data = maxima[-1]
        channels, height, width = data.shape
        padded = np.pad(data, ((0, 0), (0, height % 2), (0, width % 2)), constant_values=-np.inf)
        maxima.append(
            padded.reshape(channels, (height + 1) // 2, 2, (width + 1) // 2, 2).max(axis=(2, 4))
        )
    return [torch.from_numpy(np.ascontiguousarray(level)) for level in maxima]
