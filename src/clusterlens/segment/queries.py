"""Point prompts from dense class confidence: the dynamic multi-scale query generator.

A blind grid spends prompts evenly, most of them inside big uniform regions. The
dynamic generator places one prompt per *confident region* instead:

1. **Adaptive threshold**: ``threshold = base_threshold x global confidence`` (the mean
   over pixels of the top class probability), clipped to ``[min_threshold,
   max_threshold]``. A hesitant model (open-vocabulary CLIP, probabilities ~0.3) gets a
   proportionally lower bar than a confident one, so both find regions.
2. **Per scale and class**: the probability maps are resized to each scale; pixels of
   class ``k`` above the threshold form connected components (``scipy.ndimage.label``).
   Coarse scales merge fragments into one prompt per object; fine scales keep small
   objects that coarse scales blur away.
3. **One prompt per component**, at its most interior pixel (the maximum of the distance
   transform) rather than its centroid, which for a ring or an L-shaped region lies
   outside it. Prompts of the same class closer than ``min_distance`` are duplicates
   across scales; the more confident one stays.
4. **Query count by scene complexity**: ``complexity`` (in [0, 1]) averages the
   normalised entropy of the predicted class areas and the number of candidate regions
   relative to ``max_queries``; the generator keeps the
   ``min_queries + complexity x (max_queries - min_queries)`` most confident prompts.
   A scene short of ``min_queries`` candidates is topped up from the components of the
   plain arg-max map.

Example:
    >>> import numpy as np
    >>> probabilities = np.zeros((2, 20, 20), np.float32)
    >>> probabilities[0], probabilities[1, 5:9, 5:9] = 1.0, 1.0
    >>> probabilities[0, 5:9, 5:9] = 0.0
    >>> queries = DynamicQueryGenerator(scales=(1.0,), min_queries=1).generate(probabilities)
    >>> sorted(queries.class_indices.tolist())
    [0, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from scipy import ndimage

DEFAULT_SCALES = (0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class QuerySet:
    """Point prompts, one row per query.

    Attributes:
        points: (N, 2) float32 ``(x, y)`` pixel coordinates in the full image.
        class_indices: (N,) int64 class each prompt was placed for.
        scales: (N,) float32 scale at which its region was found (1.0 for grid prompts).
        confidences: (N,) float32 mean class probability of its region.
        areas: (N,) int64 region area in full-resolution pixels.
        meta: how the set was made (threshold, global confidence, complexity, target).
    """

    points: npt.NDArray[np.float32]
    class_indices: npt.NDArray[np.int64]
    scales: npt.NDArray[np.float32]
    confidences: npt.NDArray[np.float32]
    areas: npt.NDArray[np.int64]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.points)

    def to_json(self, class_names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """One JSON-ready dict per query."""
        rows = []
        for index in range(len(self)):
            k = int(self.class_indices[index])
            rows.append(
                {
                    "x": round(float(self.points[index, 0]), 2),
                    "y": round(float(self.points[index, 1]), 2),
                    "class_index": k,
                    "class_name": class_names[k] if class_names is not None else None,
                    "scale": float(self.scales[index]),
                    "confidence": round(float(self.confidences[index]), 4),
                    "area": int(self.areas[index]),
                }
            )
        return rows


def _check_probabilities(probabilities: np.ndarray) -> np.ndarray:
    array = np.asarray(probabilities, dtype=np.float32)
    if array.ndim != 3 or min(array.shape) < 1:
        raise ValueError(f"probabilities must be a (K, H, W) array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("probabilities hold NaN or infinite values")
    return array


def _make_set(candidates: list[tuple], meta: dict[str, Any]) -> QuerySet:
    if not candidates:
        empty = np.zeros((0,), np.float32)
        return QuerySet(
            np.zeros((0, 2), np.float32),
            empty.astype(np.int64),
            empty,
            empty,
            empty.astype(np.int64),
            meta,
        )
    columns = list(zip(*candidates, strict=True))
    x, y, k, scale, confidence, area = (np.asarray(column) for column in columns[:6])
    return QuerySet(
        points=np.stack([x, y], axis=1).astype(np.float32),
        class_indices=k.astype(np.int64),
        scales=scale.astype(np.float32),
        confidences=confidence.astype(np.float32),
        areas=area.astype(np.int64),
        meta=meta,
    )


def grid_queries(probabilities: np.ndarray, side: int = 8) -> QuerySet:
    """The blind baseline: ``side x side`` prompts on a regular grid, class = arg-max.

    Args:
        probabilities: (K, H, W) class probabilities.
        side: prompts per row and column (``side**2`` in all).

    Raises:
        ValueError: bad probabilities or ``side`` < 1.
    """
    array = _check_probabilities(probabilities)
    if side < 1:
        raise ValueError(f"grid side must be >= 1, got {side}")
    _, height, width = array.shape
    ys = (np.arange(side) + 0.5) * height / side
    xs = (np.arange(side) + 0.5) * width / side
    candidates = []
    for y in ys:
        for x in xs:
            column = array[:, int(y), int(x)]
            k = int(column.argmax())
            cell = (height / side) * (width / side)
            candidates.append((x, y, k, 1.0, float(column[k]), int(round(cell)), True))
    return _make_set(candidates, {"mode": "grid", "side": side})


def _label_stats(
    labels: np.ndarray, plane: np.ndarray, inside: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel count, mean of ``plane`` and the (row, col) of the largest ``inside`` value
    (first in row-major order on ties) of each label > 0, in increasing label order.

    One pass over the labelled pixels: ``ndimage.sum_labels`` / ``mean`` /
    ``maximum_position`` would each walk the whole image again.
    """
    rows, cols = np.nonzero(labels)
    values = labels[rows, cols]
    per_label = np.bincount(values)
    present = np.flatnonzero(per_label[1:]) + 1
    owner = np.zeros(len(per_label), np.int64)
    owner[present] = np.arange(len(present))
    owner = owner[values]  # 0..len(present)-1, in label order (no sort needed)
    counts = per_label[present]
    means = np.bincount(owner, weights=plane[rows, cols]) / counts
    depth = inside[rows, cols]
    deepest = np.full(len(present), -np.inf, depth.dtype)
    np.maximum.at(deepest, owner, depth)
    winners = np.flatnonzero(depth == deepest[owner])  # row-major order
    first = np.full(len(present), len(rows))
    np.minimum.at(first, owner[winners], winners)
    return counts, means, np.stack([rows[first], cols[first]], axis=1)


class DynamicQueryGenerator:
    """Confident regions per class and scale -> point prompts (see the module docstring).

    Args:
        scales: resize factors of the probability maps (seed default 0.25, 0.5, 1, 2).
        base_threshold: multiplied by the global confidence to give the threshold.
        min_threshold: lowest threshold allowed.
        max_threshold: highest threshold allowed.
        min_queries: fewest prompts wanted (topped up from the arg-max map).
        max_queries: most prompts kept.
        min_area: smallest region, in full-resolution pixels, that gets a prompt.
        min_distance: same-class prompts closer than this many pixels are duplicates.
        cell: side, in pixels of each scaled map, of the cells that split large regions
            into several prompts (so ``cell / scale`` full-resolution pixels).

    Raises:
        ValueError: empty or non-positive scales, thresholds outside (0, 1], or
            ``min_queries > max_queries``.
    """

    def __init__(
        self,
        scales: Sequence[float] = DEFAULT_SCALES,
        base_threshold: float = 0.9,
        min_threshold: float = 0.2,
        max_threshold: float = 0.95,
        min_queries: int = 10,
        max_queries: int = 200,
        min_area: int = 16,
        min_distance: float = 12.0,
        cell: int = 96,
    ) -> None:
        scales = tuple(float(scale) for scale in scales)
        if not scales or min(scales) <= 0:
            raise ValueError(f"scales must be positive numbers, got {scales!r}")
        for name, value in (
            ("base_threshold", base_threshold),
            ("min_threshold", min_threshold),
            ("max_threshold", max_threshold),
        ):
            if not 0 < value <= 1:
                raise ValueError(f"{name} must lie in (0, 1], got {value}")
        if not 1 <= min_queries <= max_queries:
            raise ValueError(
                f"need 1 <= min_queries <= max_queries, got {min_queries} and {max_queries}"
            )
        self.scales = scales
        self.base_threshold = base_threshold
        self.min_threshold = min_threshold
        self.max_threshold = max_threshold
        self.min_queries = min_queries
        self.max_queries = max_queries
        self.min_area = min_area
        self.min_distance = min_distance
        self.cell = cell

    def threshold_for(self, probabilities: np.ndarray) -> tuple[float, float]:
        """The adaptive threshold and the global confidence it was derived from."""
        global_confidence = float(probabilities.max(axis=0).mean())
        threshold = self.base_threshold * global_confidence
        return float(np.clip(threshold, self.min_threshold, self.max_threshold)), global_confidence

    def generate(self, probabilities: np.ndarray) -> QuerySet:
        """Prompts for one image's ``(K, H, W)`` class probabilities.

        Raises:
            ValueError: ``probabilities`` is not a finite (K, H, W) array.
        """
        array = _check_probabilities(probabilities)
        threshold, global_confidence = self.threshold_for(array)
        candidates = []
        for scale in self.scales:
            candidates += self._regions(array, scale, threshold)
        # Every region's primary prompt first (most confident first), then the cell prompts.
        candidates = self._deduplicate(sorted(candidates, key=lambda row: (not row[6], -row[4])))
        complexity = self._complexity(array, len(candidates))
        target = round(self.min_queries + complexity * (self.max_queries - self.min_queries))
        kept = candidates[:target]
        if len(kept) < self.min_queries:  # hesitant scene: fall back to arg-max regions
            fallback = sorted(
                self._regions(array, 1.0, None), key=lambda row: (not row[6], -row[4])
            )
            extra = self._deduplicate(kept + fallback)
            kept = extra[: self.min_queries]
        meta = {
            "mode": "dynamic",
            "threshold": round(threshold, 4),
            "global_confidence": round(global_confidence, 4),
            "complexity": round(complexity, 4),
            "target": target,
            "candidates": len(candidates),
        }
        return _make_set(kept, meta)

    def _regions(self, probabilities: np.ndarray, scale: float, threshold: float | None) -> list:
        """Candidate rows ``(x, y, class, scale, confidence, area, primary)`` at one scale.

        Every component gives one *primary* prompt at its most interior pixel. A
        component larger than one cell (``cell / scale`` pixels wide) also gives one
        *secondary* prompt per cell it covers, so that a road spanning the frame is
        prompted in several places and its masks cover it. With ``threshold=None`` a
        pixel belongs to its arg-max class (no confidence bar).
        """
        classes, height, width = probabilities.shape
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        resized = np.stack(
            [cv2.resize(plane, size, interpolation=cv2.INTER_LINEAR) for plane in probabilities]
        )
        winners = resized.argmax(axis=0)
        cells = self._cell_ids(winners.shape, self.cell)
        rows = []
        for k in range(classes):
            region = winners == k
            if threshold is not None:
                region &= resized[k] > threshold
            components, count = ndimage.label(region)
            if count == 0:
                continue
            inside = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 3)
            pieces = np.where(region, components * cells.max(initial=0) + components + cells, 0)
            for labels, primary in ((components, True), (pieces, False)):
                rows += self._prompts(
                    labels, resized[k], inside, k, scale, primary, (height, width)
                )
        return rows

    def _prompts(self, labels, plane, inside, k, scale, primary, full_size) -> list:
        if not labels.any():
            return []
        counts, confidence, interior = _label_stats(labels, plane, inside)
        areas = counts / (scale * scale)
        height, width = full_size
        rows = []
        for (row, col), area, conf in zip(interior, areas, confidence, strict=True):
            if area < self.min_area:
                continue
            x = min((col + 0.5) / scale, width - 0.5)
            y = min((row + 0.5) / scale, height - 0.5)
            rows.append((x, y, k, scale, float(conf), int(round(area)), primary))
        return rows

    def _cell_ids(self, shape: tuple[int, int], cell: float) -> np.ndarray:
        """Ids of ``cell``-pixel squares in a map of ``shape`` (scale-relative cells)."""
        rows = (np.arange(shape[0]) // cell).astype(np.int64)
        cols = (np.arange(shape[1]) // cell).astype(np.int64)
        return rows[:, None] * (cols.max() + 1) + cols[None, :]

    def _deduplicate(self, rows: list) -> list:
        kept: list = []
        for row in rows:
            duplicate = any(
                other[2] == row[2]
                and np.hypot(other[0] - row[0], other[1] - row[1]) < self.min_distance
                for other in kept
            )
            if not duplicate:
                kept.append(row)
        return kept

    def _complexity(self, probabilities: np.ndarray, candidates: int) -> float:
        classes = probabilities.shape[0]
        shares = (
            np.bincount(probabilities.argmax(axis=0).ravel(), minlength=classes)
            / probabilities[0].size
        )
        shares = shares[shares > 0]
        entropy = float(-(shares * np.log(shares)).sum() / np.log(classes)) if classes > 1 else 0.0
        return float(
            np.clip(0.5 * entropy + 0.5 * min(1.0, candidates / self.max_queries), 0.0, 1.0)
        )
