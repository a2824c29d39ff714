"""Coarse-to-fine mip cascade (seed 02, v0.2): score coarse cells, expand the best.

Start at a coarse level of the grid pyramid and score all its cells. At each level
keep the best ``ceil(oversample * K / 4^level)`` cells (and those tied with them),
optionally grow them by a halo of neighbours (``halo`` cells, catching objects that
straddle a boundary), and score their children one level finer. At the finest
level keep the K best.

Options:
    start_level: level to begin at (default: the coarsest with at least 16 cells).
    oversample: how many more candidates than needed survive each level (default 2).
    halo: neighbourhood radius added around kept cells before expanding (default 0).
    summary: "max" (default; optimistic, keeps small bright regions alive) or "mean".
    tie_tolerance: cells within this fraction of the best score of the last kept cell
        are kept too, up to twice the planned number (default 0.02).
"""

from __future__ import annotations

import math

import torch

from clusterlens.allocate.baselines import exhaustive_topk
from clusterlens.allocate.selection import (
    Request,
    Selection,
    all_cells,
    children,
    split_index,
    stage,
    start_level,
    top,
    with_halo,
)


def mip_cascade(request: Request) -> Selection:
    scorer, budget = request.scorer, request.budget
    options = request.options
    start = start_level(request)
    oversample = float(options.get("oversample", 2.0))
    halo = int(options.get("halo", 0))
    summary = options.get("summary", "max")
    tie_tolerance = float(options.get("tie_tolerance", 0.02))
    _check(oversample, summary)
    if start == 0:
        return exhaustive_topk(request)
    timings: dict[str, float] = {}
    with stage(timings, f"level_{start}"):
        rows, cols = all_cells(scorer.level_shape(start))
        scores = scorer.score(start, rows, cols, summary)
    for level in range(start, 0, -1):
        with stage(timings, f"level_{level - 1}"):
            best = keep_with_ties(scores, math.ceil(oversample * budget / 4**level), tie_tolerance)
            kept_rows, kept_cols = with_halo(
                rows[best], cols[best], scorer.level_shape(level), halo
            )
            rows, cols = children(kept_rows, kept_cols, scorer.level_shape(level - 1))
            scores = scorer.score(level - 1, rows, cols, summary if level > 1 else "mean")
    with stage(timings, "select"):
        rows, cols, scores = _fill_short(scorer, rows, cols, scores, budget)
        best = top(scores, budget)
    clusters = (
        None if request.cell_clusters is None else request.cell_clusters[rows[best], cols[best]]
    )
    return Selection.finest(rows[best], cols[best], scores[best], clusters, timings)


def keep_with_ties(scores: torch.Tensor, count: int, tolerance: float) -> torch.Tensor:
    """The ``count`` best cells, plus cells tied with the last one (up to 2x ``count``).

    With max summaries, every coarse cell touching a strongly relevant region scores
    near the top; cutting between equals would drop part of an object that merely
    straddles a cell boundary. "Tied" means within ``tolerance`` of the best score.
    """
    ranked = torch.argsort(scores, descending=True, stable=True)
    count = min(count, len(scores))
    if count == 0:
        return ranked[:0]
    cut = scores[ranked[count - 1]] - tolerance * scores[ranked[0]].abs()
    tied = int((scores[ranked] >= cut).sum())
    return ranked[: max(count, min(tied, 2 * count))]


def _check(oversample: float, summary: str) -> None:
    if oversample < 1:
        raise ValueError(f"oversample must be at least 1, got {oversample}")
    if summary not in ("max", "mean"):
        raise ValueError(f"summary must be 'max' or 'mean', got {summary!r}")


def _fill_short(scorer, rows, cols, scores, budget):
    """Odd grid edges can leave fewer than K candidates: score the best of the rest."""
    if len(scores) >= budget:
        return rows, cols, scores
    n_rows, n_cols = scorer.level_shape(0)
    taken = torch.zeros(n_rows * n_cols, dtype=torch.bool)
    taken[rows * n_cols + cols] = True
    rest_rows, rest_cols = split_index(torch.nonzero(~taken).reshape(-1), n_cols)
    rest_scores = scorer.score(0, rest_rows, rest_cols)
    return (
        torch.cat([rows, rest_rows]),
        torch.cat([cols, rest_cols]),
        torch.cat([scores, rest_scores]),
    )
