"""Baselines every cascade is judged against.

- ``uniform``: K cells spread evenly over the grid, no scoring (what downscaling the
  image does to a VLM's tokens).
- ``random``: K cells drawn at random (seeded), no scoring.
- ``topk``: score every finest cell and keep the K best — the exhaustive reference
  whose top-K the cascades try to recover while scoring far fewer cells.
"""

from __future__ import annotations

import math

import torch

from clusterlens.allocate.selection import Request, Selection, all_cells, stage, top


def uniform(request: Request) -> Selection:
    timings: dict[str, float] = {}
    with stage(timings, "select"):
        rows, cols = evenly_spaced_cells(
            request.scorer.grid.rows, request.scorer.grid.cols, request.budget
        )
    nan = torch.full((len(rows),), float("nan"))
    return Selection(torch.zeros_like(rows), rows, cols, nan, torch.full_like(rows, -1), timings)


def evenly_spaced_cells(n_rows: int, n_cols: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` cells on a regular lattice matching the grid's aspect ratio.

    The lattice has ``r x c >= count`` points (r/c close to n_rows/n_cols); the
    points are taken in a row-major stride so they stay spread when r*c > count.
    """
    if count <= 0:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty
    lattice_rows = min(n_rows, max(1, round(math.sqrt(count * n_rows / n_cols))))
    lattice_cols = min(n_cols, math.ceil(count / lattice_rows))
    lattice_rows = min(n_rows, math.ceil(count / lattice_cols))
    centre_rows = ((torch.arange(lattice_rows) + 0.5) * n_rows / lattice_rows).long()
    centre_cols = ((torch.arange(lattice_cols) + 0.5) * n_cols / lattice_cols).long()
    rows, cols = torch.meshgrid(centre_rows, centre_cols, indexing="ij")
    rows, cols = rows.reshape(-1), cols.reshape(-1)
    pick = torch.linspace(0, len(rows) - 1, count).round().long()
    return rows[pick], cols[pick]


def random_cells(request: Request) -> Selection:
    timings: dict[str, float] = {}
    grid = request.scorer.grid
    with stage(timings, "select"):
        generator = torch.Generator().manual_seed(request.seed)
        flat = torch.randperm(grid.size, generator=generator)[: request.budget]
        rows, cols = flat // grid.cols, flat % grid.cols
    nan = torch.full((len(rows),), float("nan"))
    return Selection(torch.zeros_like(rows), rows, cols, nan, torch.full_like(rows, -1), timings)


def exhaustive_topk(request: Request) -> Selection:
    timings: dict[str, float] = {}
    scorer = request.scorer
    with stage(timings, "score_all"):
        rows, cols = all_cells(scorer.level_shape(0))
        scores = scorer.score(0, rows, cols)
    with stage(timings, "select"):
        best = top(scores, request.budget)
    clusters = _clusters_of(request, rows[best], cols[best])
    return Selection.finest(rows[best], cols[best], scores[best], clusters, timings)


def _clusters_of(request: Request, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor | None:
    return None if request.cell_clusters is None else request.cell_clusters[rows, cols]
