"""Bound cascade: the exact top-K, found coarse to fine by branch and bound.

A coarse cell's *max* summary (every feature's largest finest-cell value below it)
combined by a combiner that never decreases when a feature grows -- the fixed
balancer, any linear combination with non-negative weights -- is an upper bound on
the score of every finest cell below it. So:

1. **descend**: score the start level; at each level expand the ``ceil(K / 4^level)``
   best cells into their children, leaving the others *pending* with their bound;
   at the finest level this yields at least K scored candidates;
2. **bound**: let ``t`` be the K-th best candidate score. A pending cell whose bound
   is at most ``t`` cannot hold a finest cell that beats the candidates, so it is
   dropped unscored; every other pending cell is expanded, coarse to fine (its
   children stay pending or are dropped by the same test). One sweep suffices,
   because ``t`` only grows as candidates are added.

The result is the exhaustive top-K (up to ties) while scoring only the cells the
bound cannot rule out -- measured in ``docs/benchmarks.md``. With a combiner that
is not monotone (e.g. an adaptive balancer whose weights depend on the features)
the bound may not hold and the result is then a good heuristic, not exact.

The bookkeeping runs in NumPy: the arrays hold at most a few thousand cells, where
torch's per-call overhead measured several times NumPy's.

Options:
    tolerance: prune cells whose bound is at most the K-th candidate + ``tolerance``
        (score units; default 0 = exact). Guarantee: no unkept finest cell scores more
        than the last kept one + ``tolerance``.
    start_level: level to begin at (default: the coarsest with at least 16 cells).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from clusterlens.allocate.baselines import exhaustive_topk
from clusterlens.allocate.selection import Request, Selection, stage, start_level

#: Share of the still-open cells expanded per round, best bounds first: smaller shares
#: score fewer cells but need more rounds (CamVid val, K=64: 0.25 -> 25% of cells,
#: 0.5 -> 35%, one round -> 110%).
ROUND_SHARE = 0.25
Cells = tuple[np.ndarray, np.ndarray, np.ndarray]  # rows, cols, scores (or bounds)


def bound_cascade(request: Request) -> Selection:
    scorer, budget = request.scorer, request.budget
    start = start_level(request)
    tolerance = float(request.options.get("tolerance", 0.0))
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0 (score units), got {tolerance}")
    if start == 0:
        return exhaustive_topk(request)
    timings: dict[str, float] = {}
    with stage(timings, "descend"):
        candidates, pending = _descend(scorer, start, budget)
    with stage(timings, "bound"):
        candidates = _expand_open(scorer, pending, tolerance, budget, candidates)
    with stage(timings, "select"):
        rows, cols, scores = (torch.from_numpy(part) for part in candidates)
        best = torch.topk(scores, min(budget, len(scores))).indices
    clusters = (
        None if request.cell_clusters is None else request.cell_clusters[rows[best], cols[best]]
    )
    return Selection.finest(rows[best], cols[best], scores[best], clusters, timings)


def _score(scorer, level: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Exact scores at the finest level, upper bounds (max summary) above it."""
    summary = "max" if level > 0 else "mean"
    return scorer.score(level, torch.from_numpy(rows), torch.from_numpy(cols), summary).numpy()


def _children(scorer, level: int, rows: np.ndarray, cols: np.ndarray) -> Cells:
    """The 2x2 children of cells of ``level`` (inside the grid), scored one level down."""
    shape = scorer.level_shape(level - 1)
    child_rows = (rows[:, None] * 2 + np.array([0, 0, 1, 1])).ravel()
    child_cols = (cols[:, None] * 2 + np.array([0, 1, 0, 1])).ravel()
    inside = (child_rows < shape[0]) & (child_cols < shape[1])
    child_rows, child_cols = child_rows[inside], child_cols[inside]
    return child_rows, child_cols, _score(scorer, level - 1, child_rows, child_cols)


def _descend(scorer, start: int, budget: int) -> tuple[Cells, dict[int, Cells]]:
    """Greedy descent; returns the finest candidates and the unexpanded cells per level."""
    n_rows, n_cols = scorer.level_shape(start)
    flat = np.arange(n_rows * n_cols)
    rows, cols = flat // n_cols, flat % n_cols
    cells = (rows, cols, _score(scorer, start, rows, cols))
    pending: dict[int, Cells] = {}
    for level in range(start, 0, -1):
        order = np.argsort(-cells[2], kind="stable")
        expand, rest = np.split(order, [math.ceil(budget / 4**level)])
        pending[level] = _take(cells, rest)
        cells = _children(scorer, level, cells[0][expand], cells[1][expand])
    return cells, pending


def _expand_open(
    scorer, pending: dict[int, Cells], tolerance: float, budget: int, candidates: Cells
) -> Cells:
    """Expand pending cells whose bound beats the K-th candidate (+ tolerance), best
    bounds first, in rounds: each round expands the best :data:`ROUND_SHARE` of the
    cells still open, then raises the threshold with the candidates it found, so
    cells a better candidate rules out are never scored."""
    while True:
        threshold = _kth_best(candidates[2], budget) + tolerance
        pending = {level: _take(cells, cells[2] > threshold) for level, cells in pending.items()}
        pending = {level: cells for level, cells in pending.items() if len(cells[2])}
        if not pending:
            return candidates
        bounds = np.concatenate([cells[2] for cells in pending.values()])
        count = max(1, int(len(bounds) * ROUND_SHARE))
        cut = np.partition(bounds, len(bounds) - count)[len(bounds) - count]
        opened: dict[int, Cells] = {}
        for level, cells in pending.items():
            expand = cells[2] >= cut
            if not expand.any():
                pending[level] = cells
                continue
            pending[level] = _take(cells, ~expand)
            opened[level - 1] = _children(scorer, level, cells[0][expand], cells[1][expand])
        for level, found in opened.items():
            if level == 0:
                candidates = _concat(candidates, found)
            else:
                pending[level] = _concat(pending.get(level), found)


def _kth_best(scores: np.ndarray, k: int) -> float:
    """The K-th best score, or -inf while there are fewer than K (nothing can be ruled out)."""
    if len(scores) < k:
        return float("-inf")
    return float(np.partition(scores, len(scores) - k)[len(scores) - k])


def _take(cells: Cells, which: np.ndarray) -> Cells:
    return cells[0][which], cells[1][which], cells[2][which]


def _concat(first: Cells | None, second: Cells) -> Cells:
    if first is None:
        return second
    return tuple(np.concatenate([a, b]) for a, b in zip(first, second, strict=True))  # type: ignore[return-value]
