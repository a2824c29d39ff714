"""Bound cascade: the exact top-K, found coarse to fine with score intervals.

Every finest cell's score lies in an interval known before the cell is scored. Its
*known* channels (query-independent: information, salience) are read exactly; each
query channel lies between the min and the max over the deepest evaluated cell
above it. A combiner that never decreases when a feature grows -- the fixed
balancer, any linear combination with non-negative weights -- maps the channels'
lows and highs to a low and a high for the score.

1. **scan**: evaluate the query channels of every cell of the start level;
2. **decide**: a cell is surely in the top-K when fewer than K other cells could
   beat it (high above its low), surely out when at least K cells surely beat it
   (low above its high); the rest are *open*;
3. **refine**: estimate the K-th score ``t`` (the K-th best interval middle) and
   evaluate the cells one level below the open ones -- the share
   :data:`ROUND_SHARE` whose open cells straddle ``t`` the most in total (by
   ``min(high - t, t - low)``: a cell far across ``t`` on both sides is the one
   whose fate is least known) -- and decide again, until no open cell is left
   above the finest level.

The K kept cells are the sure ones, then the best open ones (exact by then). Cells
kept without a finest-level evaluation report the midpoint of their interval as
their score. With no known channel every channel is bounded by min and max, and
the cascade scores more (measured in ``docs/benchmarks.md``). With a combiner that
is not monotone (e.g. an adaptive balancer whose weights depend on the features)
the bounds may not hold, and the result is then a good heuristic, not exact.

The bookkeeping runs in NumPy: the arrays hold at most a few thousand cells, where
torch's per-call overhead measured several times NumPy's.

Options:
    tolerance: cells within this many score units of each other count as tied, so
        a cell is settled sooner (default 0 = exact). Every unkept cell then scores
        at most the lowest kept cell + 2 x ``tolerance`` (tested).
    start_level: level to begin at (default: the coarsest with at least 16 cells).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from clusterlens.allocate.baselines import exhaustive_topk
from clusterlens.allocate.scorer import CellScorer
from clusterlens.allocate.selection import Request, Selection, stage, start_level

#: Share of the open cells' children evaluated per round, highest priority first.
#: Smaller shares evaluate slightly fewer cells but need more rounds, and each round
#: costs time (CamVid train, 396 cases, K=64, exact: 0.1 -> 15.3% of cells evaluated
#: in 13 ms, 0.25 -> 15.5%, 0.5 -> 16.6% in 4.8 ms, on a busy machine).
ROUND_SHARE = 0.25
#: ... but at least this many, so the last rounds do not evaluate one or two cells
#: each: on every sixth train image (K=64, exact) 8 cut the rounds from 12.6 to 9.8
#: for +0.2% of cells.
MIN_ROUND = 8


def bound_cascade(request: Request) -> Selection:
    scorer, budget = request.scorer, request.budget
    start = start_level(request)
    tolerance = float(request.options.get("tolerance", 0.0))
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0 (score units), got {tolerance}")
    if start == 0:
        return exhaustive_topk(request)
    timings: dict[str, float] = {}
    with stage(timings, "scan"):
        intervals = ScoreIntervals(scorer, start)
    with stage(timings, "refine"):
        while True:
            low, high = intervals.bounds()
            sure_in, sure_out = decide(low, high, budget, tolerance)
            still_open = ~sure_in & ~sure_out & (intervals.depth > 0)
            if not still_open.any():
                break
            intervals.refine(still_open, straddle(low, high, budget))
    with stage(timings, "select"):
        # sure cells first, then the rest by the middle of their (by now exact) interval
        middle = (low + high) / 2
        best = np.lexsort((-middle, ~sure_in))[:budget]
    rows, cols = (torch.from_numpy(part[best]) for part in (intervals.rows, intervals.cols))
    clusters = None if request.cell_clusters is None else request.cell_clusters[rows, cols]
    return Selection.finest(rows, cols, torch.from_numpy(middle[best]), clusters, timings)


def decide(
    low: np.ndarray, high: np.ndarray, budget: int, tolerance: float
) -> tuple[np.ndarray, np.ndarray]:
    """Which cells are surely in the top-K, and which surely out (ties within
    ``tolerance`` count as settled).

    In: fewer than K *other* cells could beat the cell's low by more than the
    tolerance, i.e. its low + tolerance reaches the K-th best high among the others.
    Out: at least K other cells surely beat its high, up to the tolerance, i.e. the
    K-th best low among the others exceeds its high - tolerance.
    """
    return (
        low + tolerance >= _kth_best_of_others(high, budget),
        _kth_best_of_others(low, budget) > high - tolerance,
    )


def straddle(low: np.ndarray, high: np.ndarray, budget: int) -> np.ndarray:
    """How far each interval reaches across the estimated K-th score on its shorter
    side (0 for intervals that do not contain it). Ranking evaluations by this, rather
    than by interval width, cut the cells evaluated on CamVid train (396 cases, exact,
    K=64) from 18.7% to 15.4%, and at K=144 from 23.1% to 19.8%."""
    middle = (low + high) / 2
    estimate = np.partition(middle, len(middle) - budget)[len(middle) - budget]
    return np.minimum(high - estimate, estimate - low).clip(min=0)


def _kth_best_of_others(values: np.ndarray, k: int) -> np.ndarray:
    """For each cell, the k-th largest value among the *other* cells: the k-th largest
    overall, or the (k+1)-th for cells whose own value reaches the k-th."""
    count = len(values)
    if k >= count:  # fewer than k others: nothing can be ruled out or in by them
        return np.full(count, -np.inf)
    kth, next_one = np.partition(values, [count - k - 1, count - k])[[count - k, count - k - 1]]
    return np.where(values >= kth, next_one, kth)


class ScoreIntervals:
    """Low and high score of every finest cell, from the deepest evaluated cell above."""

    def __init__(self, scorer: CellScorer, start: int) -> None:
        self.scorer = scorer
        self.shape = scorer.level_shape(0)
        self.rows, self.cols = np.divmod(np.arange(math.prod(self.shape)), self.shape[1])
        self.depth = np.full(len(self.rows), start)
        # known channels are read exactly; the query channels are overwritten below
        finest = scorer.mean_levels[0].reshape(len(scorer.channel_names), -1).T.numpy()
        self.low, self.high = finest.copy(), finest.copy()
        self.query = np.array(scorer.query_channels)
        start_cells = np.arange(math.prod(scorer.level_shape(start)))
        self._evaluate(start, start_cells)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        # one combiner call for both ends: the call's overhead is most of its cost here
        both = self.scorer.combine(torch.from_numpy(np.concatenate([self.low, self.high])))
        low, high = np.split(both.numpy(), 2)
        return low, high

    def refine(self, still_open: np.ndarray, priority_of_cell: np.ndarray) -> None:
        """Evaluate the children (one level down) whose open cells hold the highest
        total priority."""
        level = self.depth[still_open] - 1
        level_cols = np.array([self.scorer.level_shape(k)[1] for k in range(level.max() + 1)])
        child = (self.rows[still_open] >> level) * level_cols[level] + (
            self.cols[still_open] >> level
        )
        # one flat key per (level, child): levels never hold more cells than the finest
        keys, which = np.unique(level * len(self.rows) + child, return_inverse=True)
        priority = np.bincount(which, weights=priority_of_cell[still_open])
        count = max(MIN_ROUND, math.ceil(len(keys) * ROUND_SHARE))
        chosen = keys[np.argsort(-priority, kind="stable")[:count]]
        chosen_level, chosen_cell = np.divmod(chosen, len(self.rows))
        for child_level in np.unique(chosen_level):
            self._evaluate(int(child_level), chosen_cell[chosen_level == child_level])

    def _evaluate(self, level: int, cells: np.ndarray) -> None:
        """Evaluate cells (flat indices) of ``level`` (counted) and narrow the intervals
        of the finest cells below them."""
        level_cols = self.scorer.level_shape(level)[1]
        rows, cols = np.divmod(cells, level_cols)
        low, high = self.scorer.query_ranges(level, rows, cols)
        below, owner = self._finest_below(level, rows, cols)
        self.low[below[:, None], self.query] = low[owner]
        self.high[below[:, None], self.query] = high[owner]
        self.depth[below] = level

    def _finest_below(
        self, level: int, rows: np.ndarray, cols: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Flat indices of the finest cells below cells of ``level``, and which cell each
        lies below (cells past an odd grid edge dropped)."""
        side = 1 << level
        offsets = np.arange(side)
        finest_rows = (rows[:, None, None] * side + offsets[None, :, None]).repeat(side, axis=2)
        finest_cols = (cols[:, None, None] * side + offsets[None, None, :]).repeat(side, axis=1)
        owner = np.broadcast_to(np.arange(len(rows))[:, None, None], finest_rows.shape)
        inside = (finest_rows < self.shape[0]) & (finest_cols < self.shape[1])
        flat = finest_rows[inside] * self.shape[1] + finest_cols[inside]
        return flat, owner[inside]
