"""What a strategy receives and returns, and small vectorised helpers they share."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from clusterlens.allocate.scorer import CellScorer


@dataclass
class Request:
    """Everything a strategy may use.

    Attributes:
        scorer: scores grid cells at any level (and counts them).
        budget: number of patches to keep (already clamped to the grid size).
        cell_clusters: (rows, cols) cluster id of each finest cell, or None.
        cell_parents: (rows, cols) coarse (meta-)cluster id of each finest cell, or None.
        gaze: (u, v) in [0, 1], or None.
        seed: for strategies that draw at random.
        options: strategy-specific settings.
        coupling: a lazy source of the query coupling (see ``lazy_cascade``), or None.
    """

    scorer: CellScorer
    budget: int
    cell_clusters: torch.Tensor | None = None
    cell_parents: torch.Tensor | None = None
    gaze: tuple[float, float] | None = None
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    coupling: Any = None


@dataclass
class Selection:
    """Kept cells, best first: levels, rows, cols, scores, clusters (all (N,))."""

    levels: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor
    scores: torch.Tensor
    clusters: torch.Tensor
    stage_ms: dict[str, float] = field(default_factory=dict)

    @classmethod
    def finest(
        cls,
        rows: torch.Tensor,
        cols: torch.Tensor,
        scores: torch.Tensor,
        clusters: torch.Tensor | None = None,
        stage_ms: dict[str, float] | None = None,
    ) -> Selection:
        order = torch.argsort(scores, descending=True, stable=True)
        labels = clusters[order] if clusters is not None else torch.full_like(rows, -1)
        return cls(
            torch.zeros_like(rows), rows[order], cols[order], scores[order], labels, stage_ms or {}
        )


@contextmanager
def stage(timings: dict[str, float], name: str) -> Iterator[None]:
    """Record the wall time of a block, in milliseconds, under ``name``."""
    started = time.perf_counter()
    yield
    timings[name] = timings.get(name, 0.0) + (time.perf_counter() - started) * 1000


def top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k best scores (fewer if there are fewer), best first."""
    return torch.topk(scores, min(k, len(scores))).indices


def split_index(flat: torch.Tensor, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
    return flat // cols, flat % cols


def children(
    rows: torch.Tensor, cols: torch.Tensor, shape: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The 2x2 children of cells one level down, dropping those beyond an odd edge."""
    offsets = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]])
    child_rows = (rows[:, None] * 2 + offsets[:, 0]).reshape(-1)
    child_cols = (cols[:, None] * 2 + offsets[:, 1]).reshape(-1)
    inside = (child_rows < shape[0]) & (child_cols < shape[1])
    return child_rows[inside], child_cols[inside]


def with_halo(
    rows: torch.Tensor, cols: torch.Tensor, shape: tuple[int, int], radius: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cells plus their neighbours within ``radius`` (Chebyshev), unique, inside the grid."""
    if radius <= 0:
        return rows, cols
    steps = torch.arange(-radius, radius + 1)
    dr, dc = torch.meshgrid(steps, steps, indexing="ij")
    all_rows = (rows[:, None] + dr.reshape(-1)).reshape(-1)
    all_cols = (cols[:, None] + dc.reshape(-1)).reshape(-1)
    inside = (all_rows >= 0) & (all_rows < shape[0]) & (all_cols >= 0) & (all_cols < shape[1])
    flat = torch.unique(all_rows[inside] * shape[1] + all_cols[inside])
    return split_index(flat, shape[1])


#: Cascades start at the coarsest level with at least this many cells.
MIN_START_CELLS = 16


def start_level(request: Request) -> int:
    """The ``start_level`` option, or the coarsest level with at least
    :data:`MIN_START_CELLS` cells (0 when none has); raises ValueError outside the pyramid."""
    scorer = request.scorer
    default = next(
        (
            level
            for level in range(scorer.num_levels - 1, -1, -1)
            if math.prod(scorer.level_shape(level)) >= MIN_START_CELLS
        ),
        0,
    )
    start = request.options.get("start_level", default)
    if not 0 <= start < scorer.num_levels:
        raise ValueError(f"start_level must lie in 0..{scorer.num_levels - 1}, got {start}")
    return start


def all_cells(shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    return split_index(torch.arange(shape[0] * shape[1]), shape[1])
