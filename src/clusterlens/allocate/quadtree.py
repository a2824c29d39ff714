"""Quad-tree allocation (seed 02, v0.2): split where relevance varies.

Start from the single cell covering the grid and split leaves best first. A leaf's
priority is max + (max - mean) of its relevance, both read from the pyramid in one
scoring: relevant, and varying inside. Each round splits the best quarter of the
splits still affordable (so coarse cells holding relevant detail are opened before
uniform ones, and the budget is not spent evenly on the first levels), until the
leaf count would exceed K. A leaf whose variation is at most ``min_variation``
(default 0) times the image's peak score is never split. Big leaves end up on dull
or uniform areas, small ones on relevant detail, and together they tile the image.
Each leaf keeps its mean score, so token budgets can be shared by relevance.
"""

from __future__ import annotations

import math

import torch

from clusterlens.allocate.scorer import CellScorer
from clusterlens.allocate.selection import Request, Selection, all_cells, children, stage


def quadtree(request: Request) -> Selection:
    scorer, timings = request.scorer, {}
    with stage(timings, "root"):
        level = scorer.num_levels - 1
        rows, cols = all_cells(scorer.level_shape(level))
        leaves = _scored(scorer, torch.full_like(rows, level), rows, cols)
        threshold = float(request.options.get("min_variation", 0.0)) * float(leaves[4].max().abs())
    with stage(timings, "split"):
        while True:
            chosen = _splits(leaves, threshold, request.budget)
            if chosen is None:
                break
            leaves = _split(scorer, leaves, chosen)
    levels, leaf_rows, leaf_cols, means, _ = leaves
    order = torch.argsort(means, descending=True, stable=True)
    return Selection(
        levels[order],
        leaf_rows[order],
        leaf_cols[order],
        means[order],
        torch.full_like(levels, -1),
        timings,
    )


def _scored(scorer: CellScorer, levels, rows, cols) -> tuple[torch.Tensor, ...]:
    """(levels, rows, cols, mean, peak) of cells that may sit at different levels."""
    means = torch.empty(len(rows))
    peaks = torch.empty(len(rows))
    for level in torch.unique(levels).tolist():
        at = levels == level
        means[at] = scorer.score(level, rows[at], cols[at], "mean")
        peaks[at] = scorer.combine(scorer.features(level, rows[at], cols[at], "max"))  # same read
    return levels, rows, cols, means, peaks


def _splits(leaves: tuple[torch.Tensor, ...], threshold: float, budget: int) -> torch.Tensor | None:
    """Indices of the leaves to split this round, or None when done."""
    levels, _, _, means, peaks = leaves
    affordable = (budget - len(levels)) // 3
    variation = peaks - means
    splittable = torch.nonzero(
        (levels > 0) & (variation > threshold if threshold > 0 else variation >= 0)
    )
    splittable = splittable.reshape(-1)
    if affordable <= 0 or len(splittable) == 0:
        return None
    priority = peaks[splittable] + variation[splittable]
    ranked = splittable[torch.argsort(priority, descending=True, stable=True)]
    return ranked[: max(1, math.ceil(affordable / 4))]


def _split(
    scorer: CellScorer, leaves: tuple[torch.Tensor, ...], chosen: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    levels, rows, cols, means, peaks = leaves
    keep = torch.ones(len(levels), dtype=torch.bool)
    keep[chosen] = False
    parts = [tuple(t[keep] for t in leaves)]
    for level in torch.unique(levels[chosen]).tolist():
        parents = chosen[levels[chosen] == level]
        child_rows, child_cols = children(
            rows[parents], cols[parents], scorer.level_shape(level - 1)
        )
        parts.append(
            _scored(scorer, torch.full_like(child_rows, level - 1), child_rows, child_cols)
        )
    return tuple(torch.cat(columns) for columns in zip(*parts, strict=True))
