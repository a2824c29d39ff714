"""Robust z-scores and cosine nearest neighbours over a catalog's per-image values.

One definition for every ranking that reads the catalog -- label errors, hard images,
outliers, near-duplicates -- so that "z +3" and "its 5 nearest images" mean the same
thing in each section of ``clusterlens catalog issues``.

- :func:`robust_z` -- ``(x - median) / spread`` with a spread that a few wild values do
  not inflate (the MAD, scaled to a standard deviation).
- :func:`nearest_neighbours` -- exact cosine k-nearest neighbours of each row among the
  other rows, computed a block of rows at a time so a large catalog never holds its
  whole n x n similarity matrix.

Both are defined on degenerate input rather than failing deep inside; each case is
listed in the function's docstring.

Example:
    >>> import numpy as np
    >>> robust_z(np.array([1.0, 1.1, 0.9, 1.0, 9.0])).round(1)
    array([ 0. ,  0.7, -0.7,  0. , 54. ])
    >>> similarities, rows = nearest_neighbours(np.array([[1, 0], [0.9, 0.1], [0, 1.0]]), 1)
    >>> rows[:, 0]
    array([1, 0, 1])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

#: MAD -> standard deviation for normal data, so a robust z reads like a z-score.
MAD_TO_SIGMA = 1.4826
#: Mean absolute deviation -> standard deviation for normal data (sqrt(pi / 2)); the
#: spread used when the MAD is 0 (Iglewicz and Hoaglin's modified z-score).
MEAN_ABSOLUTE_DEVIATION_TO_SIGMA = 1.2533
#: Similarities :func:`nearest_neighbours` holds at once (block rows x catalog size):
#: 2**24 float32 values are 64 MiB, whatever the catalog's size.
BLOCK_ELEMENTS = 1 << 24
#: From this many rows the candidates come from faiss (``IndexFlatIP``, the same exact
#: search with BLAS blocking): 4.7x faster than the numpy blocks at 5,000 x 704 and 1.5x
#: at 20,000 x 256 (one thread, this machine). Below it the numpy path is instant and
#: needs no extra import.
FAISS_FROM = 2048
#: faiss computes in float32: candidates this close at the k-th place count as tied.
TIE_TOLERANCE = 1e-6


def robust_z(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``(x - median) / (1.4826 MAD)`` of a 1-D array: a z-score a few wild values do
    not hide.

    The median and the spread come from the finite values only. Degenerate cases:

    - a NaN stays NaN and ``+-inf`` stays ``+-inf`` (not a number, or beyond every
      finite value);
    - no finite value at all (empty, all NaN): every entry is NaN;
    - more than half the finite values equal (MAD 0) but not all: the spread is the
      mean absolute deviation from the median times 1.2533, so the values that differ
      still get a finite, comparable z;
    - all finite values equal (including a single value): 0 for each, no value is off.

    Raises:
        ValueError: ``values`` is not one-dimensional.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"robust_z takes a 1-D array of values, got shape {values.shape}")
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.full_like(values, np.nan)
    median = np.median(finite)
    deviation = np.abs(finite - median)
    spread = MAD_TO_SIGMA * np.median(deviation)
    if spread == 0:
        spread = MEAN_ABSOLUTE_DEVIATION_TO_SIGMA * np.mean(deviation)
    if spread == 0:
        return np.where(np.isfinite(values), 0.0, values)
    return (values - median) / spread


def nearest_neighbours(
    vectors: npt.ArrayLike, k: int, block_elements: int = BLOCK_ELEMENTS
) -> tuple[np.ndarray, npt.NDArray[np.int64]]:
    """(cosine similarities, row indices) of each row's ``k`` nearest *other* rows.

    Exact search. The rows are L2-normalised here (already unit rows are unchanged), and
    the similarity matrix is computed ``block_elements // n`` rows at a time. Results
    are sorted by similarity, highest first; equal similarities by row index, lowest
    first. Degenerate cases:

    - ``n <= k``: every other row, so ``n - 1`` columns (none for a single row; an
      empty input gives two (0, 0) arrays);
    - a row is never its own neighbour (removed by index, not by value): an exact
      duplicate of it is a neighbour at similarity 1;
    - a zero vector has cosine 0 with every row, itself included: it is nobody's
      close neighbour, and two zero vectors are not duplicates of each other;
    - several rows tied at the k-th place: the lowest indices are kept.

    Args:
        vectors: (n, d) finite numbers; float32 is kept (half the memory of float64),
            anything else is computed in float64.
        k: neighbours wanted per row (>= 1).
        block_elements: similarities held at once (memory, not results).

    Returns:
        ``(similarities, indices)``, both ``(n, min(k, n - 1))``.

    Raises:
        ValueError: ``vectors`` not 2-D or not finite, ``k`` or ``block_elements`` < 1.
    """
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be 2-D (images, dimensions), got shape {vectors.shape}")
    if vectors.dtype != np.float32:
        vectors = vectors.astype(np.float64)
    if not np.isfinite(vectors).all():
        raise ValueError("vectors hold NaN or infinity: no cosine similarity is defined")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a whole number >= 1, got {k!r}")
    if block_elements < 1:
        raise ValueError(f"block_elements must be >= 1, got {block_elements}")
    count = len(vectors)
    columns = max(min(int(k), count - 1), 0)
    similarities = np.zeros((count, columns), dtype=vectors.dtype)
    indices = np.zeros((count, columns), dtype=np.int64)
    if columns == 0:
        return similarities, indices
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.maximum(norms, np.finfo(vectors.dtype).tiny)
    if count >= FAISS_FROM and columns + 2 <= count:
        return _faiss_neighbours(unit, columns, block_elements)
    return _exact_neighbours(unit, range(count), columns, block_elements)


def _exact_neighbours(
    unit: np.ndarray, rows: Sequence[int], columns: int, block_elements: int
) -> tuple[np.ndarray, npt.NDArray[np.int64]]:
    """Neighbours of ``rows`` by a full similarity row each, ``block_elements`` at once."""
    rows = np.asarray(rows, dtype=np.int64)
    similarities = np.zeros((len(rows), columns), dtype=unit.dtype)
    indices = np.zeros((len(rows), columns), dtype=np.int64)
    block = max(1, block_elements // len(unit))
    for start in range(0, len(rows), block):
        chosen = rows[start : start + block]
        found_similarities, found_indices = _block_neighbours(unit, chosen, columns)
        similarities[start : start + len(chosen)] = found_similarities
        indices[start : start + len(chosen)] = found_indices
    return similarities, indices


def _faiss_neighbours(
    unit: np.ndarray, columns: int, block_elements: int
) -> tuple[np.ndarray, npt.NDArray[np.int64]]:
    """faiss's exact inner-product search for the candidates, then the same answer as
    :func:`_exact_neighbours`: self removed by index, similarities recomputed in the
    input's precision, ties broken by index (rows tied at the k-th place are redone
    exactly, since faiss orders equal values arbitrarily)."""
    import faiss  # local: the catalog extra

    index = faiss.IndexFlatIP(unit.shape[1])
    index.add(np.ascontiguousarray(unit, dtype=np.float32))
    found, candidates = index.search(np.ascontiguousarray(unit, dtype=np.float32), columns + 2)
    count = len(unit)
    own = candidates == np.arange(count)[:, None]
    # each row's candidates without itself, in faiss's order: the first ``columns``
    # are the neighbours; one more tells whether the k-th place is tied
    keep = np.argsort(own, axis=1, kind="stable")[:, : columns + 1]
    candidates = np.take_along_axis(candidates, keep, axis=1)
    found = np.take_along_axis(found, keep, axis=1)
    tied = np.abs(found[:, columns - 1] - found[:, columns]) <= TIE_TOLERANCE
    neighbours = candidates[:, :columns]
    similarities = np.einsum("nd,nkd->nk", unit, unit[neighbours])
    order = np.lexsort((neighbours, -similarities), axis=-1)
    similarities = np.take_along_axis(similarities, order, axis=1)
    neighbours = np.take_along_axis(neighbours, order, axis=1)
    if tied.any():
        redone = np.flatnonzero(tied)
        similarities[redone], neighbours[redone] = _exact_neighbours(
            unit, redone, columns, block_elements
        )
    return similarities, neighbours.astype(np.int64)


def _block_neighbours(
    unit: np.ndarray, chosen: np.ndarray, columns: int
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest neighbours of rows ``chosen`` among all rows of ``unit``."""
    similarity = unit[chosen] @ unit.T
    similarity[np.arange(len(chosen)), chosen] = -np.inf  # never one's own neighbour
    top = np.argpartition(-similarity, columns - 1, axis=1)[:, :columns]
    top_similarity = np.take_along_axis(similarity, top, axis=1)
    # argpartition keeps an arbitrary subset of values tied at the k-th place: redo
    # those rows (rare: exact copies, zero vectors) with a stable sort, lowest index first
    kth = top_similarity.min(axis=1, keepdims=True)
    for row in np.flatnonzero((similarity >= kth).sum(axis=1) > columns):
        top[row] = np.argsort(-similarity[row], kind="stable")[:columns]
        top_similarity[row] = similarity[row, top[row]]
    order = np.lexsort((top, -top_similarity), axis=-1)
    return np.take_along_axis(top_similarity, order, axis=1), np.take_along_axis(top, order, axis=1)
