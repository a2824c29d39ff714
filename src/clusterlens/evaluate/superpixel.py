"""Superpixel quality metrics (Stutz, Hermans, Leibe, CVIU 2018) and the seed's variance summary.

All functions take an (H, W) non-negative integer segmentation ``labels``; the
ground-truth metrics take one (H, W) ground truth ``truth`` (for several annotators,
average the per-annotator values, as :func:`superpixel_scores` does). Ids need not
be consecutive. Conventions:

- A *boundary pixel* of a label map is a pixel whose right or lower neighbour has
  another label (one-sided, so boundaries are one pixel thick).
- ``boundary_recall``: share of ground-truth boundary pixels with a segmentation
  boundary pixel within ``tolerance`` pixels (Chebyshev distance, a square window).
  A ground truth without boundaries gives 1.0 (nothing to recall).
- ``undersegmentation_error``: Neubert and Protzel's UE,
  ``(1/N) sum_G sum_{S meets G} min(|S n G|, |S - G|)``; 0 is best.
- ``achievable_segmentation_accuracy``: ``(1/N) sum_S max_G |S n G|``; 1 is best.
- ``explained_variation``: ``sum_S |S| |mu_S - mu|^2 / sum_x |I(x) - mu|^2``; 1.0 for a
  constant image (nothing left to explain).
- ``compactness``: Schick et al.'s ``sum_S |S|/N * 4 pi A_S / P_S^2`` where the
  perimeter ``P_S`` counts pixel edges between S and other labels or the image border.
  A single pixel scores pi/4; a 2x2 square scores pi/4 too; an N x 1 line scores less.

Example:
    >>> import numpy as np
    >>> truth = np.array([[0, 0, 1, 1]] * 2)
    >>> achievable_segmentation_accuracy(np.zeros((2, 4), int), truth)
    0.5
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

METRIC_NAMES = (
    "boundary_recall",
    "undersegmentation_error",
    "asa",
    "explained_variation",
    "compactness",
)


def boundary_map(labels: Any) -> npt.NDArray[np.bool_]:
    """(H, W) bool: True where the right or lower neighbour has another label."""
    labels = _labels(labels)
    edges = np.zeros(labels.shape, dtype=bool)
    edges[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edges[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return edges


def boundary_recall(labels: Any, truth: Any, tolerance: int = 2) -> float:
    """Share of ground-truth boundary pixels within ``tolerance`` px of a segment boundary."""
    labels, truth = _pair(labels, truth)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, np.integer)) or tolerance < 0:
        raise ValueError(f"tolerance must be a non-negative integer (pixels), got {tolerance!r}")
    truth_edges = boundary_map(truth)
    n_truth = int(truth_edges.sum())
    if n_truth == 0:
        return 1.0
    ours = boundary_map(labels).astype(np.uint8)
    if tolerance:
        kernel = np.ones((2 * tolerance + 1, 2 * tolerance + 1), dtype=np.uint8)
        ours = cv2.dilate(ours, kernel)
    return float(np.count_nonzero(ours[truth_edges]) / n_truth)


def boundary_precision(labels: Any, truth: Any, tolerance: int = 2) -> float:
    """Share of segment boundary pixels within ``tolerance`` px of a ground-truth boundary."""
    return boundary_recall(truth, labels, tolerance)


def undersegmentation_error(labels: Any, truth: Any) -> float:
    """Neubert-Protzel undersegmentation error in [0, 1]; 0 when every segment fits one region."""
    overlap = _overlap(*_pair(labels, truth))  # (segments, truths)
    segment_sizes = overlap.sum(axis=1, keepdims=True)
    leak = np.minimum(overlap, segment_sizes - overlap)
    return float(leak[overlap > 0].sum() / overlap.sum())


def achievable_segmentation_accuracy(labels: Any, truth: Any) -> float:
    """Best pixel accuracy reachable by giving each segment one ground-truth label."""
    overlap = _overlap(*_pair(labels, truth))
    return float(overlap.max(axis=1).sum() / overlap.sum())


def explained_variation(labels: Any, image: Any) -> float:
    """Share of the image's colour variance explained by the segment means (1 = all)."""
    labels = _labels(labels)
    values = _values(image, labels.shape)
    flat = _dense(labels).ravel()
    counts = np.bincount(flat).astype(np.float64)
    pixels = values.reshape(-1, values.shape[-1])
    mean = pixels.mean(axis=0)
    total = float(((pixels - mean) ** 2).sum())
    if total <= 1e-12 * pixels.size:
        return 1.0
    explained = 0.0
    for channel in range(pixels.shape[1]):
        segment_mean = np.bincount(flat, pixels[:, channel], len(counts)) / counts
        explained += float((counts * (segment_mean - mean[channel]) ** 2).sum())
    return explained / total


def compactness(labels: Any) -> float:
    """Schick et al.'s compactness: area-weighted isoperimetric quotient, in (0, pi/4]."""
    dense = _dense(_labels(labels))
    k = int(dense.max()) + 1
    area = np.bincount(dense.ravel(), minlength=k).astype(np.float64)
    perimeter = np.zeros(k, dtype=np.float64)
    # Each edge between two different labels adds one to both sides' perimeters.
    for first, second in ((dense[:, :-1], dense[:, 1:]), (dense[:-1, :], dense[1:, :])):
        cut = first != second
        perimeter += np.bincount(first[cut], minlength=k) + np.bincount(second[cut], minlength=k)
    # Edges on the image border count too.
    for border in (dense[0, :], dense[-1, :], dense[:, 0], dense[:, -1]):
        perimeter += np.bincount(border, minlength=k)
    quotient = 4 * np.pi * area / perimeter**2
    return float((area / area.sum() * quotient).sum())


def variance_summary(labels: Any, image: Any) -> dict[str, float]:
    """The seed's cluster-quality summary (seed 01, section 6.3), vectorised.

    Returns n_clusters, mean/std/min/max cluster size (pixels), mean_intra_variance
    (per-cluster variance averaged over channels, then over clusters),
    inter_variance (variance of cluster means across clusters, averaged over
    channels) and their ratio ``separation = inter / (intra + 1e-6)`` (the seed's
    "silhouette"; not the silhouette coefficient).
    """
    labels = _labels(labels)
    values = _values(image, labels.shape)
    flat = _dense(labels).ravel()
    counts = np.bincount(flat).astype(np.float64)
    pixels = values.reshape(-1, values.shape[-1])
    k = len(counts)
    means = np.stack([np.bincount(flat, pixels[:, c], k) for c in range(pixels.shape[1])], 1)
    squares = np.stack([np.bincount(flat, pixels[:, c] ** 2, k) for c in range(pixels.shape[1])], 1)
    means /= counts[:, None]
    intra = np.maximum(squares / counts[:, None] - means**2, 0.0).mean(axis=1)
    inter = float(means.var(axis=0).mean()) if k > 1 else 0.0
    mean_intra = float(intra.mean())
    return {
        "n_clusters": float(k),
        "mean_cluster_size": float(counts.mean()),
        "std_cluster_size": float(counts.std()),
        "min_cluster_size": float(counts.min()),
        "max_cluster_size": float(counts.max()),
        "mean_intra_variance": mean_intra,
        "inter_variance": inter,
        "separation": inter / (mean_intra + 1e-6),
    }


def superpixel_scores(
    labels: Any, truths: list[Any], image: Any | None = None, tolerance: int = 2
) -> dict[str, float]:
    """All metrics of :data:`METRIC_NAMES` for one image, averaged over annotators.

    Args:
        labels: (H, W) segmentation.
        truths: one or more (H, W) ground truths (e.g. every BSDS annotator).
        image: (H, W, C) image for explained variation; without it that key is NaN.
        tolerance: boundary recall tolerance in pixels.

    Returns:
        dict with boundary_recall, undersegmentation_error, asa, explained_variation,
        compactness and n_segments.
    """
    if len(truths) == 0:
        raise ValueError("superpixel_scores needs at least one ground truth")
    labels = _dense(_labels(labels))
    per_truth = [
        (
            boundary_recall(labels, truth, tolerance),
            undersegmentation_error(labels, truth),
            achievable_segmentation_accuracy(labels, truth),
        )
        for truth in (_pair(labels, truth)[1] for truth in truths)
    ]
    recall, under, asa = (float(np.mean(column)) for column in zip(*per_truth, strict=True))
    return {
        "boundary_recall": recall,
        "undersegmentation_error": under,
        "asa": asa,
        "explained_variation": explained_variation(labels, image)
        if image is not None
        else float("nan"),
        "compactness": compactness(labels),
        "n_segments": float(labels.max() + 1),
    }


def _labels(labels: Any) -> np.ndarray:
    array = labels.detach().cpu().numpy() if hasattr(labels, "detach") else np.asarray(labels)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"a label map must be a non-empty (H, W) array, got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise ValueError(f"a label map must hold integers, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def _pair(labels: Any, truth: Any) -> tuple[np.ndarray, np.ndarray]:
    labels, truth = _labels(labels), _labels(truth)
    if labels.shape != truth.shape:
        raise ValueError(
            f"segmentation {labels.shape} and ground truth {truth.shape} differ in shape"
        )
    return labels, truth


def _dense(labels: np.ndarray) -> np.ndarray:
    """Consecutive ids 0..K-1 (any integers accepted, negatives included)."""
    low, high = int(labels.min()), int(labels.max())
    if high - low < 4 * labels.size + 1024:
        # O(N) lookup table; np.unique would sort every pixel.
        present = np.bincount((labels - low).ravel(), minlength=high - low + 1) > 0
        return (np.cumsum(present) - 1)[labels - low]
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse.reshape(labels.shape)


def _overlap(labels: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(K_segments, K_truth) pixel counts of every segment / ground-truth intersection."""
    seg, gt = _dense(labels).ravel(), _dense(truth).ravel()
    n_gt = int(gt.max()) + 1
    n_seg = int(seg.max()) + 1
    return np.bincount(seg * n_gt + gt, minlength=n_seg * n_gt).reshape(n_seg, n_gt)


def _values(image: Any, shape: tuple[int, ...]) -> np.ndarray:
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    array = array.astype(np.float64)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[:2] != tuple(shape):
        raise ValueError(
            f"image must be (H, W) or (H, W, C) with H, W = {tuple(shape)}, got {array.shape}"
        )
    return array
