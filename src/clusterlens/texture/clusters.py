"""Cluster channels: which region a pixel belongs to, how central it is, how big.

Seed 01 section 3 stores a cluster map in three channels so that a pyramid can
answer cluster questions at any level:

- ``cluster_id``: the cluster's rank among the sorted ids, divided by
  ``max(n_clusters - 1, 1)``, so any labelling (non-contiguous, negative) maps to
  [0, 1] the same way. It is *categorical*: pyramids mode-pool it and sampling uses
  nearest neighbour, because an average of two ids is a third, unrelated id.
- ``cluster_dist``: distance from the cluster's centroid, divided by the largest
  such distance inside the same cluster (0 at the centroid, 1 at its farthest pixel).
- ``cluster_size``: the cluster's share of the image's pixels.

The labels come from the ``cluster_labels`` option (an (H, W) integer array, e.g.
``ClusterMap.labels``). Without it, the generator clusters the image itself with
scikit-image SLIC (``n_segments=cluster_segments``, default 64) and says so in the
texture's ``meta["cluster_source"]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import ndimage

from clusterlens.texture.registry import ChannelContext, register_group

DEFAULT_SEGMENTS = 64


def cluster_channels(labels: Any) -> torch.Tensor:
    """Turn an integer label map (H, W) into the three cluster channels (3, H, W).

    Example:
        >>> import numpy as np
        >>> cluster_channels(np.array([[0, 0, 1, 1]]))[2].tolist()
        [[0.5, 0.5, 0.5, 0.5]]
    """
    return torch.from_numpy(_cluster_planes(_validated_labels(labels)))


def _validated_labels(labels: Any) -> np.ndarray:
    array = (
        labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    )
    if array.ndim != 2 or array.size == 0:
        raise ValueError(
            f"cluster labels must be a non-empty (H, W) array, got shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"cluster labels must be integers, got dtype {array.dtype}")
    return array


def _cluster_planes(labels: np.ndarray) -> np.ndarray:
    height, width = labels.shape
    ids, dense = np.unique(labels, return_inverse=True)
    dense = dense.reshape(height, width)
    n_clusters = len(ids)
    counts = np.bincount(dense.ravel(), minlength=n_clusters).astype(np.float64)
    rows, cols = np.indices((height, width), dtype=np.float64)
    centre_y = np.bincount(dense.ravel(), rows.ravel(), n_clusters) / counts
    centre_x = np.bincount(dense.ravel(), cols.ravel(), n_clusters) / counts
    distance = np.hypot(rows - centre_y[dense], cols - centre_x[dense])
    farthest = np.asarray(ndimage.maximum(distance, dense, np.arange(n_clusters)))
    out = np.empty((3, height, width), dtype=np.float32)
    out[0] = dense / max(n_clusters - 1, 1)
    out[1] = distance / np.maximum(farthest[dense], 1e-12)
    out[2] = (counts / labels.size)[dense]
    return out


def _labels_for(ctx: ChannelContext) -> np.ndarray:
    given = ctx.options.get("cluster_labels")
    if given is not None:
        labels = _validated_labels(given)
        if labels.shape != (ctx.height, ctx.width):
            raise ValueError(
                f"cluster_labels has shape {labels.shape} but the image is "
                f"{(ctx.height, ctx.width)}; they must match"
            )
        ctx.meta["cluster_source"] = "given"
        return labels
    from skimage.segmentation import slic  # local: only when no labels are given

    segments = int(ctx.options.get("cluster_segments", DEFAULT_SEGMENTS))
    ctx.meta["cluster_source"] = f"skimage.slic(n_segments={segments}, compactness=10)"
    return slic(ctx.rgb, n_segments=segments, compactness=10, start_label=0)


@register_group(
    "cluster",
    ["cluster_id", "cluster_dist", "cluster_size"],
    "cluster id rank in [0, 1], distance to centroid (per cluster), size fraction",
    categorical=["cluster_id"],
)
def cluster_channel_group(ctx: ChannelContext) -> np.ndarray:
    return _cluster_planes(_labels_for(ctx))
