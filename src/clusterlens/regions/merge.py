"""Fix over-segmentation: merge small clusters into their most similar neighbour.

Neighbours come from the region adjacency graph (two clusters are adjacent when
some pixel of one has a 4-neighbour in the other), built once from the label map
with array operations -- no dilation per cluster. Merging then works on the graph
only: the smallest cluster under the threshold joins the adjacent cluster with the
closest mean feature (ties: the larger neighbour, then the lower id), the graph and
means are updated, and so on until every cluster is large enough or only one is left.
The loop runs over clusters, never over pixels; the final relabelling is one lookup.

Example:
    >>> import numpy as np
    >>> labels = np.array([[0, 0, 0, 1], [0, 0, 0, 2]])
    >>> image = np.array([[0.0, 0.0, 0.0, 0.9], [0.0, 0.0, 0.0, 1.0]])
    >>> merge_small_clusters(labels, image, min_size_ratio=0.2).labels.tolist()
    [[0, 0, 0, 1], [0, 0, 0, 1]]
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np

from clusterlens.regions.cluster_map import ClusterMap, relabel_consecutive


def adjacency_pairs(labels: np.ndarray) -> np.ndarray:
    """(E, 2) sorted unique pairs ``(a, b)``, ``a < b``, of 4-adjacent labels."""
    labels = np.asarray(labels)
    pairs = []
    for first, second in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        cut = first != second
        low = np.minimum(first[cut], second[cut]).astype(np.int64)
        high = np.maximum(first[cut], second[cut]).astype(np.int64)
        pairs.append(np.stack([low, high], axis=1))
    edges = np.concatenate(pairs)
    if edges.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    return np.unique(edges, axis=0)


def merge_small_clusters(
    clusters: ClusterMap | Any, image: Any | None = None, min_size_ratio: float = 0.01
) -> ClusterMap:
    """Merge every cluster smaller than ``min_size_ratio`` of the image into a neighbour.

    Args:
        clusters: a :class:`ClusterMap` or an (H, W) label map.
        image: features to compare clusters by: (H, W) / (H, W, C) array or
            (C, H, W) tensor. Default: the image the ClusterMap was built with; with
            neither, the most similar neighbour is simply the largest one.
        min_size_ratio: smallest allowed cluster as a share of the pixels, in [0, 1].

    Returns:
        A new ClusterMap (consecutive ids, in order of the surviving clusters' old
        ids) whose ``meta["merged_from"]`` maps every old id to its new id.

    Raises:
        ValueError: ``min_size_ratio`` outside [0, 1] or bad labels / image.
    """
    if not 0.0 <= min_size_ratio <= 1.0:
        raise ValueError(f"min_size_ratio must lie in [0, 1], got {min_size_ratio}")
    cmap = clusters if isinstance(clusters, ClusterMap) else ClusterMap(clusters)
    features = _features(cmap, image)
    min_size = min_size_ratio * cmap.labels.size
    owner = _merge(cmap, features, min_size)
    new_ids = relabel_consecutive(owner[None, :])[0]
    merged_image = image if image is not None else cmap.image
    meta = {**cmap.meta, "merged_from": new_ids.tolist(), "min_size_ratio": min_size_ratio}
    return ClusterMap(new_ids[cmap.labels], image=merged_image, meta=meta)


def _features(cmap: ClusterMap, image: Any | None) -> np.ndarray:
    if image is not None:
        return ClusterMap(cmap.labels, image=image).means
    if cmap.means is not None:
        return cmap.means
    return np.zeros((cmap.n_clusters, 1))


def _merge(cmap: ClusterMap, features: np.ndarray, min_size: float) -> np.ndarray:
    """owner[k] = the cluster that old cluster k ended up in."""
    k = cmap.n_clusters
    sizes = cmap.counts.astype(np.float64).copy()
    means = features.astype(np.float64).copy()
    neighbours: list[set[int]] = [set() for _ in range(k)]
    for a, b in adjacency_pairs(cmap.labels):
        neighbours[a].add(int(b))
        neighbours[b].add(int(a))
    owner = np.arange(k)
    alive = k
    queue = [(sizes[c], c) for c in range(k) if sizes[c] < min_size]
    heapq.heapify(queue)
    while queue and alive > 1:
        size, small = heapq.heappop(queue)
        if owner[small] != small or size != sizes[small] or not neighbours[small]:
            continue  # stale entry: already merged or grown since it was queued
        target = min(
            neighbours[small],
            key=lambda n: (float(((means[n] - means[small]) ** 2).sum()), -sizes[n], n),
        )
        total = sizes[small] + sizes[target]
        means[target] = (means[target] * sizes[target] + means[small] * sizes[small]) / total
        sizes[target] = total
        owner[owner == small] = target  # O(K) per merge; K is small next to the pixels
        for other in neighbours[small]:
            neighbours[other].discard(small)
            if other != target:
                neighbours[other].add(target)
                neighbours[target].add(other)
        neighbours[small] = set()
        alive -= 1
        if sizes[target] < min_size:
            heapq.heappush(queue, (sizes[target], target))
    return owner
