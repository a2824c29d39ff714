"""Several objects in one query: each object gets a fair share of the patch budget.

A query that names several objects ("cars and the sidewalk") should keep, for each of
them, nearly what a query for that object alone would keep. Two simple rules fail:

- summing the objects' probabilities lets a large, confident class fill the budget;
- giving every object the same number of cells starves an object that needs many
  cells, while one that needs few wastes the rest of its share.

**Fair shares of predicted recall.** An object's *mass* in a cell is the model's
probability of it summed over the cell's pixels. Alone, with a budget of K cells, the
object would keep its K heaviest cells and cover their mass, ``own = M(K)``. Here cells
are chosen one at a time; the next is whichever object's heaviest unchosen cell most
raises the smallest ``covered / own`` over the objects (capped at 1: beyond what it
would get alone an object needs nothing more), then the sum of those shares, then the
mass the cell adds. A cell that holds several objects counts for each of them.

Nothing here is tuned: the order follows the model's own probabilities and the budget,
so it is the same rule on any data set. :func:`fair_order` returns every cell, best
first. The rule runs for the first ``2 K`` cells (cascades look at up to twice the
budget; every share is usually capped long before); the rest follow by their summed
mass, which keeps a call on a 32x32 grid to a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def fair_order(masses: Sequence[np.ndarray], budget: int) -> np.ndarray:
    """Every cell's flat index, best first, so that the first ``budget`` share fairly.

    Args:
        masses: one array per object, each the same shape (e.g. the grid's rows x cols):
            the object's probability mass in every cell (non-negative).
        budget: the number of cells a strategy will keep (K); it sets what each object
            would get alone.

    Raises:
        ValueError: no object, arrays of different shapes, negative masses or budget.
    """
    flat = _checked(masses, budget)
    objects, cells = flat.shape
    own = np.sort(flat, axis=1)[:, ::-1][:, : max(budget, 1)].sum(axis=1)
    # an object with no mass anywhere has nothing to miss: its share is full from the start
    scale = np.where(own > 0, 1.0 / np.where(own > 0, own, 1.0), 0.0)
    preference = np.argsort(-flat, axis=1, kind="stable")  # each object's heaviest first
    pointer = np.zeros(objects, np.int64)
    chosen = np.zeros(cells, bool)
    covered = np.zeros(objects)
    order = np.empty(cells, np.int64)
    fair_steps = min(cells, 2 * max(budget, 1))
    for step in range(fair_steps):
        candidates = _next_unchosen(preference, pointer, chosen)
        gains = flat[:, candidates]  # (objects covered by a candidate, candidate)
        shares = np.minimum((covered[:, None] + gains) * scale[:, None], 1.0)
        shares[scale == 0] = 1.0
        key = np.lexsort((gains.sum(axis=0), shares.sum(axis=0), shares.min(axis=0)))
        best = candidates[key[-1]]
        order[step] = best
        chosen[best] = True
        covered += flat[:, best]
    rest = np.flatnonzero(~chosen)
    order[fair_steps:] = rest[np.argsort(-flat[:, rest].sum(axis=0), kind="stable")]
    return order


def fair_scores(masses: Sequence[np.ndarray], budget: int) -> np.ndarray:
    """Scores in (0, 1] with the shape of one mass array, decreasing along
    :func:`fair_order`: a map a top-K strategy reads to keep the fair cells."""
    order = fair_order(masses, budget)
    scores = np.empty(order.size, np.float32)
    scores[order] = 1.0 - np.arange(order.size) / order.size
    return scores.reshape(np.shape(masses[0]))


def _checked(masses: Sequence[np.ndarray], budget: int) -> np.ndarray:
    if len(masses) == 0:
        raise ValueError("fair shares need at least one object's cell masses")
    shapes = {np.shape(mass) for mass in masses}
    if len(shapes) != 1:
        raise ValueError(f"every object's masses must have one shape, got {sorted(shapes)}")
    flat = np.stack([np.asarray(mass, np.float64).reshape(-1) for mass in masses])
    if (flat < 0).any() or not np.isfinite(flat).all():
        raise ValueError("cell masses must be finite and non-negative")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise ValueError(f"budget must be a non-negative whole number of cells, got {budget!r}")
    return flat


def _next_unchosen(preference: np.ndarray, pointer: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Each object's heaviest cell not chosen yet (advances ``pointer`` past chosen ones)."""
    for index, ranked in enumerate(preference):
        while chosen[ranked[pointer[index]]]:
            pointer[index] += 1
    return preference[np.arange(len(preference)), pointer]
