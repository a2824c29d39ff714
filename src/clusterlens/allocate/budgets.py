"""Token budgets: how many tokens each kept patch gets.

Fixed budgets give every patch ``tokens_per_patch``. Variable budgets (seed 02,
v0.2) map relevance linearly onto ``[low, high]`` tokens (64-400 by default) and
keep patches, best first, while the running total fits ``total``; the tokens left
over are shared out in proportion to the budgets already given, never above
``high``.
"""

from __future__ import annotations

import numpy as np

DEFAULT_RANGE = (64, 400)


def fixed_budgets(count: int, tokens_per_patch: int) -> np.ndarray:
    if tokens_per_patch < 1:
        raise ValueError(f"tokens_per_patch must be at least 1, got {tokens_per_patch}")
    return np.full(count, tokens_per_patch, dtype=np.int64)


def variable_budgets(
    scores: np.ndarray, total: int, low: int = DEFAULT_RANGE[0], high: int = DEFAULT_RANGE[1]
) -> np.ndarray:
    """Budgets for patches sorted best first; the result may be shorter (patches dropped).

    Example:
        >>> variable_budgets(np.array([1.0, 0.5, 0.0]), total=632).tolist()
        [400, 232]
    """
    if not 1 <= low <= high:
        raise ValueError(f"token range must satisfy 1 <= low <= high, got ({low}, {high})")
    if total < 0:
        raise ValueError(f"total token budget must be non-negative, got {total}")
    values = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0)
    if len(values) == 0 or total < low:
        return np.zeros(0, dtype=np.int64)
    spread = values.max() - values.min()
    relevance = (values - values.min()) / spread if spread > 0 else np.ones_like(values)
    wanted = np.floor(low + relevance * (high - low)).astype(np.int64)
    kept = int(np.searchsorted(np.cumsum(wanted), total, side="right"))
    budgets = wanted[:kept]
    spare = total - int(budgets.sum())
    if spare > 0 and kept:
        room = high - budgets
        extra = np.minimum(np.floor(spare * budgets / budgets.sum()).astype(np.int64), room)
        budgets = budgets + extra
    return budgets
