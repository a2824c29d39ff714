"""From an :class:`~clusterlens.allocate.Allocation` to the vision tokens a VLM keeps.

A VLM lays its image tokens on its own grid (Qwen2-VL: the merged-patch grid of the
resized image, 28 px per token; LLaVA-1.5: 24 x 24). An allocation is made on the
grid of the original image. Both grids cover the whole image, so they meet in
normalised coordinates: a token is kept when kept patches cover at least
``min_overlap`` of its area, and every kept patch keeps at least the token under its
centre (so a patch finer than a token is never silently lost). When the two grids
have the same shape -- the way the CLI calls ``select_patches`` -- the mapping is
one to one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from clusterlens.allocate import Allocation

DEFAULT_MIN_OVERLAP = 0.5


def token_keep_mask(
    allocation: Allocation,
    token_rows: int,
    token_cols: int,
    min_overlap: float = DEFAULT_MIN_OVERLAP,
) -> np.ndarray:
    """(token_rows, token_cols) bool: the image tokens the allocation keeps.

    Args:
        allocation: kept patches on any grid over the same image.
        token_rows, token_cols: the model's token grid over the image.
        min_overlap: fraction of a token's area kept patches must cover, in (0, 1].

    Example:
        >>> import numpy as np
        >>> from clusterlens.allocate import allocate
        >>> relevance = np.zeros((64, 64), np.float32); relevance[:32, :32] = 1
        >>> chosen = allocate(relevance, "topk", budget=16, grid=8)
        >>> token_keep_mask(chosen, 4, 4).sum()
        np.int64(4)
    """
    if min(token_rows, token_cols) < 1:
        raise ValueError(f"token grid must be at least 1x1, got {token_rows}x{token_cols}")
    if not 0 < min_overlap <= 1:
        raise ValueError(f"min_overlap must lie in (0, 1], got {min_overlap}")
    covered = allocation.coverage_mask()
    if covered.shape == (token_rows, token_cols):
        return covered
    keep = resample_mask(covered, token_rows, token_cols, min_overlap)
    keep[_centre_tokens(allocation, token_rows, token_cols)] = True
    return keep


def resample_mask(
    mask: np.ndarray, rows: int, cols: int, min_overlap: float = DEFAULT_MIN_OVERLAP
) -> np.ndarray:
    """(rows, cols) bool: cells of a new grid over the same image that ``mask`` covers.

    A cell is kept when the ``True`` cells of ``mask`` cover at least ``min_overlap``
    of its area (both grids span the whole image).

    Example:
        >>> resample_mask(np.eye(2, dtype=bool), 4, 4).astype(int).tolist()[0]
        [1, 1, 0, 0]
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2 or min(mask.shape) < 1:
        raise ValueError(f"mask must be a non-empty (rows, cols) array, got shape {mask.shape}")
    if mask.shape == (rows, cols):
        return mask.copy()
    fraction = (
        _interval_overlap(rows, mask.shape[0])
        @ mask.astype(np.float64)
        @ _interval_overlap(cols, mask.shape[1]).T
    )
    return fraction >= min_overlap - 1e-9


def _interval_overlap(targets: int, sources: int) -> np.ndarray:
    """(targets, sources): share of each target interval of [0, 1] covered by each source one."""
    t0 = np.arange(targets)[:, None] / targets
    s0 = np.arange(sources)[None, :] / sources
    overlap = np.minimum(t0 + 1 / targets, s0 + 1 / sources) - np.maximum(t0, s0)
    return np.clip(overlap, 0, None) * targets


def _centre_tokens(
    allocation: Allocation, token_rows: int, token_cols: int
) -> tuple[np.ndarray, np.ndarray]:
    boxes = allocation.boxes
    centre_u = (boxes[:, 0] + boxes[:, 2]) / 2
    centre_v = (boxes[:, 1] + boxes[:, 3]) / 2
    rows = np.minimum((centre_v * token_rows).astype(np.int64), token_rows - 1)
    cols = np.minimum((centre_u * token_cols).astype(np.int64), token_cols - 1)
    return rows, cols


def token_groups(allocation: Allocation, token_rows: int, token_cols: int) -> np.ndarray:
    """(token_rows, token_cols) int: for each token, the flat index of the one token that
    stands for its patch (-1 where no patch covers it).

    This is the coarse-patch reading of an allocation: a level-k patch (a quadtree leaf
    spanning 2^k x 2^k tokens) becomes a single token -- the one at its centre, whose
    embedding the adapter replaces by the mean of the patch's tokens -- so the prompt
    holds exactly one token per kept patch. It needs the allocation to be made on the
    token grid itself (``grid=(token_rows, token_cols)``).

    Example:
        >>> import numpy as np
        >>> from clusterlens.allocate import allocate
        >>> leaves = allocate(np.ones((64, 64), np.float32), "quadtree", budget=1, grid=4)
        >>> np.unique(token_groups(leaves, 4, 4)).tolist()  # one leaf, its centre token
        [5]
    """
    shape = (allocation.grid.rows, allocation.grid.cols)
    if shape != (token_rows, token_cols):
        raise ValueError(
            f"pooling coarse patches needs the allocation on the model's token grid "
            f"{token_rows}x{token_cols}, got {shape[0]}x{shape[1]}; allocate with "
            "grid=(rows, cols) of the token grid"
        )
    levels, rows, cols = (
        np.asarray(a, dtype=np.int64) for a in (allocation.levels, allocation.rows, allocation.cols)
    )
    span = 2**levels
    top, left = rows * span, cols * span
    centre_rows = (top + np.minimum(top + span, token_rows) - 1) // 2
    centre_cols = (left + np.minimum(left + span, token_cols) - 1) // 2
    representative = centre_rows * token_cols + centre_cols
    token_r, token_c = np.indices((token_rows, token_cols))
    groups = np.full((token_rows, token_cols), -1, dtype=np.int64)
    for level in np.unique(levels):  # a handful of levels, each handled at once
        chosen = np.flatnonzero(levels == level)
        lookup = np.full(allocation.grid.level_shape(int(level)), -1, dtype=np.int64)
        lookup[rows[chosen], cols[chosen]] = chosen
        patch = lookup[token_r >> level, token_c >> level]
        groups = np.where(patch >= 0, representative[np.maximum(patch, 0)], groups)
    return groups
