"""CellScorer: scores grid cells at any level from per-cell relevance features.

The features are the relevance channels (the ways of knowing: information,
salience, query coupling) averaged over each finest grid cell, pooled into a
pyramid of coarser cells. A cell's score is the balancer's combination of its
features. Every call to :meth:`CellScorer.score` counts the cells it scored, so a
strategy's cost is measured, not claimed.

Coarse levels keep three summaries of each feature: the mean over the pixels the cell
covers (from one integral image per map, exact at any size), and the max and the min
over its finest cells. Scoring the max is optimistic: for non-negative weights a
coarse cell's max-score bounds every finest cell below it, so small bright objects
are not averaged away; the min gives the matching lower bound.

Why this is not :class:`~clusterlens.texture.MipPyramid`: a mip pyramid pools *pixels*
2x2 from the image's own size, while a cascade works on a *grid of patches* whose cells
(32x32 by default, or a VLM's patch size) rarely tile the image in powers of two, and it
needs each coarse cell's min and max over the finest cells below it (the bounds
``bound-cascade`` and the ``max`` summaries rely on), which a mean pyramid does not
keep. Building it from per-cell means is also cheaper than pooling full-size maps: the
relevance source (``clusterlens.relevance.source``) hands over cell means directly.
Cluster ids at grid cells are sampled at cell centres by ``allocate``.

*Known* channels are those that do not depend on the query (information and salience
are texture statistics, computed once per image for every cell and shared by every
query). Strategies may read them at the finest level without scoring; what a score
costs -- and what is counted -- is evaluating the other, query-dependent channels.
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
    min_levels: list[torch.Tensor] = field(default_factory=list)
    known_channels: tuple[int, ...] = ()
    _query_cache: tuple[list[np.ndarray], list[np.ndarray]] | None = field(default=None, repr=False)
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
        known_channels: Sequence[str] = (),
    ) -> CellScorer:
        """Build from relevance maps (C, H, W) or one map (H, W) at image resolution.

        ``known_channels`` names the query-independent channels (see the module note).
        """
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
        finest = means[0].numpy()
        scorer = cls(
            grid,
            means,
            _extreme_pyramid(finest, grid.num_levels, np.max, -np.inf),
            combiner,
            names,
            min_levels=_extreme_pyramid(finest, grid.num_levels, np.min, np.inf),
            known_channels=_channel_indices(known_channels, names),
        )
        scorer._query_pyramids()  # built with the other pyramids, not inside a strategy
        return scorer

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
        self._count(level, len(rows), started)
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

    @property
    def query_channels(self) -> tuple[int, ...]:
        """Channels that cost a score to read: all but the known ones."""
        return tuple(i for i in range(len(self.channel_names)) if i not in self.known_channels)

    def query_ranges(
        self, level: int, rows: np.ndarray, cols: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Min and max (N, Q) of the query channels over the finest cells below each
        cell (rows[i], cols[i]) of ``level``; counted like :meth:`score`. At the finest
        level both are the cell's exact values. NumPy in and out: the bound cascade
        calls this many times on a few cells, where torch's per-call overhead dominates."""
        started = time.perf_counter()
        flat = np.asarray(rows) * self.level_shape(level)[1] + np.asarray(cols)
        lows, highs = self._query_pyramids()
        ranges = (lows[level][flat], highs[level][flat])
        self._count(level, len(rows), started)
        return ranges

    def _count(self, level: int, cells: int, started: float) -> None:
        self.scored += cells
        self.scored_by_level[level] = self.scored_by_level.get(level, 0) + cells
        self.seconds += time.perf_counter() - started

    def _query_pyramids(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per level, the query channels' min and max as (cells, Q) arrays (built once)."""
        if self._query_cache is None:
            query = list(self.query_channels)

            def cells_by_channel(level: torch.Tensor) -> np.ndarray:
                return np.ascontiguousarray(level[query].reshape(len(query), -1).T.numpy())

            self._query_cache = (
                [cells_by_channel(level) for level in self.min_levels],
                [cells_by_channel(level) for level in self.max_levels],
            )
        return self._query_cache

    def reset_counts(self) -> None:
        self.scored, self.scored_by_level, self.seconds = 0, {}, 0.0


def _extreme_pyramid(finest: np.ndarray, levels: int, reduce, pad: float) -> list[torch.Tensor]:
    """Max (or min) over 2x2 blocks, level by level (NumPy: these arrays are tiny);
    odd edges are padded with ``pad``, the reduction's identity."""
    pyramid = [finest]
    for _ in range(1, levels):
        data = pyramid[-1]
        channels, height, width = data.shape
        padded = np.pad(data, ((0, 0), (0, height % 2), (0, width % 2)), constant_values=pad)
        blocks = padded.reshape(channels, (height + 1) // 2, 2, (width + 1) // 2, 2)
        pyramid.append(reduce(blocks, axis=(2, 4)))
    return [torch.from_numpy(np.ascontiguousarray(level)) for level in pyramid]


def _channel_indices(known: Sequence[str], names: tuple[str, ...]) -> tuple[int, ...]:
    unknown = [name for name in known if name not in names]
    if unknown:
        raise ValueError(f"known channels {unknown} are not among the channels {list(names)}")
    if len(set(known)) == len(names) and names:
        raise ValueError("at least one channel must depend on the query (none left to score)")
    return tuple(sorted(names.index(name) for name in set(known)))
