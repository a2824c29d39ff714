"""Foveated allocation: cluster budgets fall off with eccentricity from a gaze point.

Each cluster's share of the K patches is proportional to its relevance (the
cluster scan of ``cluster-cascade``) times a Gaussian of the distance between its
centroid and the gaze point, ``exp(-d^2 / (2 sigma^2))`` with d in units of the
image diagonal (``sigma`` default 0.25). Shares become whole patches by largest
remainder, capped at each cluster's size (overflow goes to the next clusters);
inside a cluster the best-scoring cells are kept. Without a cluster map, the
blocks of the scan level serve as clusters. Without a gaze point, the centre.
"""

from __future__ import annotations

import math

import torch

from clusterlens.allocate.cluster_cascade import region_scores, scan_level
from clusterlens.allocate.selection import Request, Selection, all_cells, stage

DEFAULT_SIGMA = 0.25


def foveated(request: Request) -> Selection:
    scorer, options, timings = request.scorer, request.options, {}
    grid = scorer.grid
    sigma = float(options.get("sigma", DEFAULT_SIGMA))
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    gaze = request.gaze or (0.5, 0.5)
    level = options.get("cluster_level", scan_level(scorer))
    labels = (
        request.cell_clusters
        if request.cell_clusters is not None
        else block_labels(grid.rows, grid.cols, level)
    )
    with stage(timings, "cluster_scan"):
        relevance = region_scores(scorer, labels, level, options.get("summary", "max"))
        weights = relevance.clamp(min=0).nan_to_num(neginf=0.0) * gaze_falloff(
            labels, gaze, grid, sigma
        )
        sizes = torch.bincount(labels.reshape(-1), minlength=len(weights))
        quotas = whole_quotas(weights, sizes, request.budget)
    with stage(timings, "within_clusters"):
        rows, cols = torch.nonzero(quotas[labels] > 0, as_tuple=True)
        scores = scorer.score(0, rows, cols)
        cell_labels = labels[rows, cols]
        keep = rank_within(cell_labels, scores) < quotas[cell_labels]
    return Selection.finest(rows[keep], cols[keep], scores[keep], cell_labels[keep], timings)


def block_labels(rows: int, cols: int, level: int) -> torch.Tensor:
    """Label each finest cell by its level-``level`` block: square clusters."""
    block_rows, block_cols = all_cells((rows, cols))
    level_cols = math.ceil(cols / 2**level)
    return ((block_rows >> level) * level_cols + (block_cols >> level)).reshape(rows, cols)


def gaze_falloff(
    labels: torch.Tensor, gaze: tuple[float, float], grid, sigma: float
) -> torch.Tensor:
    rows, cols = all_cells(tuple(labels.shape))
    flat = labels.reshape(-1)
    n = int(flat.max()) + 1
    counts = torch.bincount(flat, minlength=n).clamp(min=1).float()
    centre_y = torch.bincount(flat, (rows.float() + 0.5) / grid.rows, n) / counts
    centre_x = torch.bincount(flat, (cols.float() + 0.5) / grid.cols, n) / counts
    # distances in pixels, divided by the image diagonal, so the falloff is isotropic
    dy = (centre_y - gaze[1]) * grid.height
    dx = (centre_x - gaze[0]) * grid.width
    distance = torch.sqrt(dx**2 + dy**2) / math.hypot(grid.height, grid.width)
    return torch.exp(-(distance**2) / (2 * sigma**2))


def whole_quotas(weights: torch.Tensor, sizes: torch.Tensor, total: int) -> torch.Tensor:
    """Integer shares of ``total`` proportional to weights, each at most its size."""
    quotas = torch.zeros_like(sizes)
    remaining = min(total, int(sizes.sum()))
    open_ = sizes > 0
    while remaining > 0 and open_.any():
        active = torch.where(open_, weights, torch.zeros_like(weights))
        if float(active.sum()) <= 0:  # no relevance left: share by size instead
            active = torch.where(open_, sizes.float(), torch.zeros_like(weights))
        exact = remaining * active / active.sum()
        share = torch.minimum(exact.floor().long(), sizes - quotas)
        leftover = remaining - int(share.sum())
        fraction = torch.where(
            share < sizes - quotas, exact - exact.floor(), torch.full_like(exact, -1.0)
        )
        extra = torch.topk(fraction, min(leftover, int((fraction >= 0).sum()))).indices
        share[extra] += 1
        quotas += share
        remaining -= int(share.sum())
        open_ = quotas < sizes
        if int(share.sum()) == 0:
            break
    return quotas


def rank_within(groups: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Rank of each score inside its group, 0 = best."""
    order = torch.argsort(scores, descending=True, stable=True)
    order = order[torch.argsort(groups[order], stable=True)]
    sorted_groups = groups[order]
    counts = torch.bincount(sorted_groups)
    starts = torch.cumsum(counts, 0) - counts  # first position of each group
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(len(order)) - starts[sorted_groups]
    return ranks
