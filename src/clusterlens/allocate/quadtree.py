"""Quad-tree allocation (seed 02, v0.2): split where relevance varies.

Start from the single cell covering the grid. At each level every frontier cell is
scored twice from the pyramid in one read: its mean and its max relevance. A cell
whose max exceeds its mean by more than ``min_variation`` (default 0.05) times the
image's peak score (the root cell's max) holds something that varies inside, and is split into its
children, most relevant (highest max) first, for as long as the leaf count stays
within K. Cells not split are leaves: big leaves cover uniform areas, small ones
sit on detail, and together they tile the whole image. Each leaf keeps its mean
score, so token budgets can then be shared by relevance.
"""

from __future__ import annotations

import torch

from clusterlens.allocate.selection import Request, Selection, all_cells, children, stage


def quadtree(request: Request) -> Selection:
    scorer, timings = request.scorer, {}
    budget = request.budget
    leaves: list[tuple[torch.Tensor, ...]] = []
    level = scorer.num_levels - 1
    rows, cols = all_cells(scorer.level_shape(level))
    min_variation = float(request.options.get("min_variation", 0.05))
    threshold = None
    leaf_count = len(rows)
    while True:
        with stage(timings, f"level_{level}"):
            mean = scorer.score(level, rows, cols, "mean")
            peak = scorer.combine(scorer.max_levels[level][:, rows, cols].T)  # same cells, one read
            if threshold is None:
                threshold = min_variation * max(float(peak.abs().max()), 1e-12)
            if level == 0:
                leaves.append((torch.zeros_like(rows), rows, cols, mean))
                break
            split = _cells_to_split(mean, peak, threshold, budget - leaf_count)
            keep = ~split
            leaves.append((torch.full_like(rows[keep], level), rows[keep], cols[keep], mean[keep]))
            rows, cols = children(rows[split], cols[split], scorer.level_shape(level - 1))
            leaf_count += len(rows) - int(split.sum())
            level -= 1
            if len(rows) == 0:
                break
    levels, leaf_rows, leaf_cols, scores = (torch.cat(parts) for parts in zip(*leaves, strict=True))
    order = torch.argsort(scores, descending=True, stable=True)
    return Selection(
        levels[order],
        leaf_rows[order],
        leaf_cols[order],
        scores[order],
        torch.full_like(levels, -1),
        timings,
    )


def _cells_to_split(
    mean: torch.Tensor, peak: torch.Tensor, threshold: float, room: int
) -> torch.Tensor:
    """Split the most relevant varying cells while each split's 3 extra leaves fit."""
    split = torch.zeros(len(mean), dtype=torch.bool)
    allowed = max(room, 0) // 3
    varying = torch.nonzero(peak - mean > threshold).reshape(-1)
    if allowed == 0 or len(varying) == 0:
        return split
    ranked = varying[torch.argsort(peak[varying], descending=True, stable=True)]
    split[ranked[:allowed]] = True
    return split
