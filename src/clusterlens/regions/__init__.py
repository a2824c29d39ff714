"""Region clustering: cluster maps from SLIC, Felzenszwalb, the fast backend and SAM.

``cluster_image(image, method=..., n_segments=...)`` returns a :class:`ClusterMap`;
``list_methods()`` names the registered backends. Importing this package registers
the built-in backends (and the optional OpenCV-contrib / fast-slic ones when their
libraries are installed).
"""

from __future__ import annotations

from clusterlens.regions import classic, fast, optional, sam  # noqa: F401  (register backends)
from clusterlens.regions.cluster_map import ClusterMap, mode_pool_2x2, relabel_consecutive
from clusterlens.regions.hierarchy import ClusterHierarchy, group_clusters, multiscale_clusters
from clusterlens.regions.masks import resolve_masks
from clusterlens.regions.merge import adjacency_pairs, merge_small_clusters
from clusterlens.regions.registry import cluster_image, get_method, list_methods, register_method

__all__ = [
    "ClusterHierarchy",
    "ClusterMap",
    "adjacency_pairs",
    "cluster_image",
    "get_method",
    "group_clusters",
    "list_methods",
    "merge_small_clusters",
    "mode_pool_2x2",
    "multiscale_clusters",
    "register_method",
    "relabel_consecutive",
    "resolve_masks",
]
