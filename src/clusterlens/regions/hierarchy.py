"""Two-level cluster hierarchies: group many clusters into few, or cluster at two scales.

- :func:`group_clusters` (fixes over-segmentation): agglomerative clustering (Ward,
  SciPy) of the clusters' mean features and centroids into at most
  ``max_clusters`` meta-clusters.
- :func:`multiscale_clusters` (fixes under-segmentation): a coarse clustering and a
  fine one of the same image, intersected so that every fine region lies inside
  exactly one coarse region. One fine clustering of the whole image replaces the
  seed's per-region re-clustering loop, and the intersection is one vectorised
  relabelling.

Both return a :class:`ClusterHierarchy`: ``fine``, ``coarse`` and ``parent`` with
``coarse.labels == parent[fine.labels]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from clusterlens.image import load_image
from clusterlens.regions.cluster_map import ClusterMap, relabel_consecutive
from clusterlens.regions.registry import cluster_image


@dataclass(frozen=True)
class ClusterHierarchy:
    """Fine clusters, coarse clusters and the coarse parent of each fine cluster.

    Attributes:
        fine: the fine ClusterMap.
        coarse: the coarse ClusterMap (same size).
        parent: (K_fine,) int64, ``parent[f]`` = coarse id containing fine cluster f.
    """

    fine: ClusterMap
    coarse: ClusterMap
    parent: np.ndarray

    def children(self, coarse_id: int) -> np.ndarray:
        """Fine cluster ids inside one coarse cluster."""
        return np.flatnonzero(self.parent == coarse_id)


def group_clusters(
    clusters: ClusterMap | Any,
    image: Any | None = None,
    max_clusters: int = 50,
    position_weight: float = 1.0,
) -> ClusterHierarchy:
    """Group clusters into at most ``max_clusters`` meta-clusters by features and position.

    Each cluster is a point ``[mean feature..., position_weight * centroid_y / D,
    position_weight * centroid_x / D]`` (D = image diagonal, so position lies in
    [0, 1] like RGB); Ward linkage merges the closest points until ``max_clusters``
    groups remain. Meta-clusters need not be spatially connected when
    ``position_weight`` is small.

    Args:
        clusters: a ClusterMap or an (H, W) label map.
        image: features to average per cluster (default: the ClusterMap's image).
        max_clusters: upper bound on the number of meta-clusters (>= 1).
        position_weight: weight of position against features (0 = features only).

    Raises:
        ValueError: ``max_clusters`` < 1, negative ``position_weight``, no features.
    """
    if (
        isinstance(max_clusters, bool)
        or not isinstance(max_clusters, (int, np.integer))
        or max_clusters < 1
    ):
        raise ValueError(f"max_clusters must be a positive integer, got {max_clusters!r}")
    if position_weight < 0:
        raise ValueError(f"position_weight must be >= 0, got {position_weight}")
    fine = clusters if isinstance(clusters, ClusterMap) else ClusterMap(clusters)
    if image is not None:
        fine = fine.with_image(image)
    if fine.means is None:
        raise ValueError(
            "group_clusters needs features: pass image= or a ClusterMap built with one"
        )
    if fine.n_clusters <= max_clusters:
        parent = np.arange(fine.n_clusters)
    else:
        height, width = fine.shape
        position = fine.centroids / np.hypot(height, width) * position_weight
        points = np.concatenate([fine.means, position], axis=1)
        tree = linkage(points, method="ward")
        parent = fcluster(tree, t=max_clusters, criterion="maxclust").astype(np.int64) - 1
        parent = relabel_consecutive(parent[None, :])[0].astype(np.int64)
    coarse = ClusterMap(
        parent[fine.labels], image=fine.image, meta={"grouped_from": fine.n_clusters}
    )
    return ClusterHierarchy(fine=fine, coarse=coarse, parent=parent)


def multiscale_clusters(
    image: Any,
    coarse_segments: int = 15,
    fine_segments: int = 100,
    method: str = "fast",
    coarse_options: dict[str, Any] | None = None,
    fine_options: dict[str, Any] | None = None,
) -> ClusterHierarchy:
    """Coarse regions and fine sub-regions of one image, nested by construction.

    Args:
        image: anything :func:`clusterlens.image.load_image` accepts.
        coarse_segments: target number of coarse regions.
        fine_segments: target number of fine regions over the whole image (a fine
            region cut by a coarse boundary becomes two, so expect a few more).
        method: region method for both levels.
        coarse_options: backend options for the coarse level (default
            ``{"compactness": 20}`` for SLIC-like methods: big, regular regions).
        fine_options: backend options for the fine level.

    Raises:
        ValueError: ``fine_segments`` < ``coarse_segments``, or errors of
            :func:`clusterlens.regions.cluster_image`.
    """
    if fine_segments < coarse_segments:
        raise ValueError(
            f"fine_segments ({fine_segments}) must be >= coarse_segments ({coarse_segments})"
        )
    rgb = load_image(image)
    if coarse_options is None:
        coarse_options = {"compactness": 20.0} if method in {"slic", "fast"} else {}
    coarse = cluster_image(rgb, method=method, n_segments=coarse_segments, **coarse_options)
    fine = cluster_image(rgb, method=method, n_segments=fine_segments, **(fine_options or {}))
    # Intersect: a fine region straddling a coarse boundary splits in two.
    nested = ClusterMap(
        fine.labels.astype(np.int64) * coarse.n_clusters + coarse.labels,
        image=rgb,
        meta={**fine.meta, "level": "fine"},
    )
    parent = np.zeros(nested.n_clusters, dtype=np.int64)
    parent[nested.labels.ravel()] = coarse.labels.ravel()
    return ClusterHierarchy(fine=nested, coarse=coarse, parent=parent)
