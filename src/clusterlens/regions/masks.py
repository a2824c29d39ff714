"""Turn a set of possibly overlapping binary masks into one label map, deterministically.

Mask generators (SAM, SAM2) return masks that overlap and leave pixels uncovered.
:func:`resolve_masks` settles both:

- **Overlaps**: masks are ranked by ``stability_score``, then ``predicted_iou``,
  then area (all descending), then input order; each pixel goes to the first
  (most stable) mask covering it. A mask left with no pixel is dropped.
- **Uncovered pixels** (``leftovers``): ``"nearest"`` gives each the label of the
  nearest covered pixel (Euclidean; ties resolved by SciPy's distance transform,
  which is deterministic); ``"background"`` puts them all in one extra cluster,
  the last id.
- **No usable mask**: the whole image is one cluster (id 0) in either mode.

Labels follow the ranking: id 0 is the most stable surviving mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

LEFTOVERS = ("nearest", "background")


def resolve_masks(
    masks: Sequence[Any], shape: tuple[int, int], leftovers: str = "nearest"
) -> np.ndarray:
    """One (H, W) int32 label map from overlapping masks.

    Args:
        masks: each either an (H, W) bool array or a dict with ``segmentation``
            ((H, W) bool) and optional ``stability_score``, ``predicted_iou`` (the
            SAM / SAM2 automatic mask generator output format).
        shape: (H, W) of the image (needed when ``masks`` is empty).
        leftovers: ``"nearest"`` or ``"background"`` (see the module docstring).

    Raises:
        ValueError: unknown ``leftovers``, or a mask of another shape.
    """
    if leftovers not in LEFTOVERS:
        raise ValueError(f"leftovers must be one of {LEFTOVERS}, got {leftovers!r}")
    shape = tuple(int(side) for side in shape)
    entries = [_entry(mask, index, shape) for index, mask in enumerate(masks)]
    entries.sort(key=lambda entry: entry[0])
    labels = np.full(shape, -1, dtype=np.int32)
    next_id = 0
    for _, segmentation in entries:  # a loop over masks, never over pixels
        claim = segmentation & (labels < 0)
        if claim.any():
            labels[claim] = next_id
            next_id += 1
    uncovered = labels < 0
    if next_id == 0:
        return np.zeros(shape, dtype=np.int32)
    if uncovered.any():
        if leftovers == "background":
            labels[uncovered] = next_id
        else:
            nearest = ndimage.distance_transform_edt(
                uncovered, return_distances=False, return_indices=True
            )
            labels = labels[nearest[0], nearest[1]]
    return labels


def _entry(mask: Any, index: int, shape: tuple[int, int]) -> tuple[tuple, np.ndarray]:
    if isinstance(mask, dict):
        segmentation = np.asarray(mask["segmentation"], dtype=bool)
        stability = float(mask.get("stability_score", 0.0))
        iou = float(mask.get("predicted_iou", 0.0))
    else:
        segmentation = np.asarray(mask, dtype=bool)
        stability = iou = 0.0
    if segmentation.shape != shape:
        raise ValueError(f"mask {index} has shape {segmentation.shape}, expected {shape}")
    area = int(segmentation.sum())
    return (-stability, -iou, -area, index), segmentation
