"""From per-query soft masks to one label map: plain painting or the semantic merger.

Both turn masks into per-pixel class scores the same way, so that the merger's own
contribution can be measured. With ``c(p) = min(1, sum_q m_q(p))`` the share of pixel
``p`` the masks cover and ``V(p) = sum_q m_q(p) d_q / sum_q m_q(p)`` the masks' class
votes,

    S(p) = (1 - mask_weight * c(p)) * P(p) + mask_weight * c(p) * V(p),

and the label is ``argmax S``: uncovered pixels keep the dense prediction ``P``.

- :func:`paint_masks` (merging off): ``d_q`` is one-hot on the class the query was
  placed for.
- :class:`SemanticMaskMerger` (merging on):

  1. *semantic check*: ``d_q`` is the mean dense class distribution under the mask, so
     a prompt that landed on the wrong side of an edge is re-labelled by what its mask
     actually covers;
  2. *merging*: masks whose binary parts overlap (intersection over the smaller area
     above ``overlap_threshold``) merge (union-find) when their classes are similar
     (text-embedding cosine above ``class_similarity``; identity without embeddings) or
     their class distributions are (cosine above ``region_similarity``); a group's mask
     is the pixel-wise max of its members, its distribution their area-weighted mean;
  3. *boundary refinement where classes overlap*: pixels claimed (mask > 0.5) by groups
     of different classes take the dense distribution averaged over their fine region
     (the proposer's superpixel, when it has them), which snaps the contested boundary
     to an image edge.

Example:
    >>> import numpy as np
    >>> probabilities = np.full((2, 4, 4), 0.5, np.float32)
    >>> probabilities[0, :, :2] = 0.9; probabilities[1, :, :2] = 0.1
    >>> masks = np.zeros((1, 4, 4), np.float32); masks[0, :, 2:] = 1.0
    >>> paint_masks(masks, np.array([1]), probabilities).tolist()[0]
    [0, 0, 1, 1]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from scipy import ndimage


def _check(masks: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    masks = np.asarray(masks, dtype=np.float32)
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim != 3 or masks.ndim != 3 or masks.shape[1:] != probabilities.shape[1:]:
        raise ValueError(
            f"masks (N, H, W) and probabilities (K, H, W) must share H, W; got {masks.shape} "
            f"and {probabilities.shape}"
        )
    return masks, probabilities


def combine(
    masks: np.ndarray,
    distributions: np.ndarray,
    probabilities: np.ndarray,
    mask_weight: float,
) -> npt.NDArray[np.float32]:
    """Per-pixel class scores ``S`` (K, H, W) from masks, their class votes and dense P."""
    count = len(masks)
    if count == 0:
        return probabilities
    flat = torch.from_numpy(masks.reshape(count, -1))
    votes = torch.from_numpy(distributions.astype(np.float32)).T @ flat  # (K, HW)
    mass = flat.sum(dim=0)
    coverage = mass.clamp(max=1.0)
    votes = votes / mass.clamp_min(1e-6)
    dense = torch.from_numpy(probabilities.reshape(len(probabilities), -1))
    scores = (1 - mask_weight * coverage) * dense + mask_weight * coverage * votes
    return scores.reshape(probabilities.shape).numpy()


def paint_masks(
    masks: np.ndarray,
    query_classes: np.ndarray,
    probabilities: np.ndarray,
    mask_weight: float = 0.3,
) -> npt.NDArray[np.int64]:
    """Label map from masks voting for the class their query was placed for.

    Args:
        masks: (N, H, W) soft or binary masks in [0, 1].
        query_classes: (N,) class index of each mask.
        probabilities: (K, H, W) dense class probabilities (the fallback).
        mask_weight: how much covered pixels follow the masks rather than ``P``.
    """
    masks, probabilities = _check(masks, probabilities)
    one_hot = np.eye(len(probabilities), dtype=np.float32)[np.asarray(query_classes, np.int64)]
    return combine(masks, one_hot, probabilities, mask_weight).argmax(axis=0)


@dataclass(frozen=True)
class MergeResult:
    """The merger's output.

    Attributes:
        labels: (H, W) int64 final label map.
        groups: member query indices of each merged mask.
        group_classes: (G,) class of each merged mask.
        group_masks: (G, H, W) bool merged masks (soft mask > 0.5).
        contested: (H, W) bool pixels where masks of different classes overlapped.
    """

    labels: npt.NDArray[np.int64]
    groups: list[list[int]]
    group_classes: npt.NDArray[np.int64]
    group_masks: npt.NDArray[np.bool_] = field(repr=False)
    contested: npt.NDArray[np.bool_] = field(repr=False)


class SemanticMaskMerger:
    """Merge semantically consistent overlapping masks; refine contested boundaries.

    Args:
        overlap_threshold: intersection over the smaller mask that makes two masks overlap.
        class_similarity: text-embedding cosine above which two classes count as one.
        region_similarity: class-distribution cosine above which two masks merge.
        mask_weight: how much covered pixels follow the masks rather than the dense ``P``.
    """

    def __init__(
        self,
        overlap_threshold: float = 0.5,
        class_similarity: float = 0.8,
        region_similarity: float = 0.9,
        mask_weight: float = 0.3,
    ) -> None:
        for name, value in (
            ("overlap_threshold", overlap_threshold),
            ("mask_weight", mask_weight),
        ):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        self.overlap_threshold = overlap_threshold
        self.class_similarity = class_similarity
        self.region_similarity = region_similarity
        self.mask_weight = mask_weight

    def merge(
        self,
        masks: np.ndarray,
        probabilities: np.ndarray,
        class_embeddings: np.ndarray | None = None,
        regions: np.ndarray | None = None,
    ) -> MergeResult:
        """Merge ``masks`` and turn them into a label map.

        Args:
            masks: (N, H, W) soft masks in [0, 1].
            probabilities: (K, H, W) dense class probabilities.
            class_embeddings: optional (K, D) text embeddings of the classes.
            regions: optional (H, W) fine partition (superpixels) for contested pixels.

        Raises:
            ValueError: shapes that do not fit together.
        """
        masks, probabilities = _check(masks, probabilities)
        classes, height, width = probabilities.shape
        distributions = self._distributions(masks, probabilities)
        groups = self._groups(masks, distributions, class_embeddings)
        group_masks = (
            np.stack([masks[members].max(axis=0) for members in groups]) if groups else masks
        )
        areas = masks.reshape(len(masks), -1).sum(axis=1)
        group_distributions = (
            np.stack(
                [
                    (distributions[members] * areas[members, None]).sum(0)
                    / max(areas[members].sum(), 1e-6)
                    for members in groups
                ]
            )
            if groups
            else distributions
        )
        group_classes = group_distributions.argmax(axis=1) if groups else np.zeros(0, np.int64)
        scores = combine(group_masks, group_distributions, probabilities, self.mask_weight)
        hard_masks = group_masks > 0.5
        contested = self._contested(hard_masks, group_classes, classes)
        if contested.any():
            scores[:, contested] = self._region_mean(probabilities, regions)[:, contested]
        return MergeResult(
            labels=scores.argmax(axis=0),
            groups=groups,
            group_classes=np.asarray(group_classes, np.int64),
            group_masks=hard_masks,
            contested=contested,
        )

    @staticmethod
    def _distributions(masks: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        flat = masks.reshape(len(masks), -1)
        weighted = flat @ probabilities.reshape(len(probabilities), -1).T
        return weighted / np.maximum(flat.sum(axis=1, keepdims=True), 1e-6)

    def _groups(
        self, masks: np.ndarray, distributions: np.ndarray, class_embeddings: np.ndarray | None
    ) -> list[list[int]]:
        count = len(masks)
        if count == 0:
            return []
        # Overlaps are counted on a 1/4-size copy: N^2 x pixels is the merger's cost.
        small = F.avg_pool2d(torch.from_numpy(masks)[None], 4, ceil_mode=True)[0] > 0.5
        flat = small.reshape(count, -1).float()
        intersection = (flat @ flat.T).numpy()
        area = np.diag(intersection)
        overlap = intersection / np.maximum(np.minimum(area[:, None], area[None, :]), 1)
        mask_classes = distributions.argmax(axis=1)
        if class_embeddings is None:
            same_class = mask_classes[:, None] == mask_classes[None, :]
        else:
            embedded = class_embeddings / np.linalg.norm(class_embeddings, axis=1, keepdims=True)
            similarity = embedded @ embedded.T
            same_class = similarity[mask_classes][:, mask_classes] > self.class_similarity
        unit = distributions / np.maximum(
            np.linalg.norm(distributions, axis=1, keepdims=True), 1e-9
        )
        similar_regions = unit @ unit.T > self.region_similarity
        linked = (overlap > self.overlap_threshold) & (same_class | similar_regions)
        _, component = _components(linked)
        return [np.flatnonzero(component == g).tolist() for g in range(component.max() + 1)]

    @staticmethod
    def _contested(hard_masks: np.ndarray, group_classes: np.ndarray, classes: int) -> np.ndarray:
        if len(hard_masks) == 0:
            return np.zeros(hard_masks.shape[1:], bool)
        claimed = np.zeros((classes, *hard_masks.shape[1:]), bool)
        for mask, k in zip(hard_masks, group_classes, strict=True):
            claimed[k] |= mask
        return claimed.sum(axis=0) > 1

    @staticmethod
    def _region_mean(probabilities: np.ndarray, regions: np.ndarray | None) -> np.ndarray:
        if regions is None:
            return probabilities
        ids = np.unique(regions, return_inverse=True)[1].reshape(regions.shape)
        index = np.arange(ids.max() + 1)
        means = np.stack([ndimage.mean(plane, ids, index) for plane in probabilities])
        return means[:, ids].astype(np.float32)


def _components(linked: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of a symmetric boolean adjacency matrix (SciPy)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    return connected_components(csr_matrix(linked | linked.T), directed=False)
