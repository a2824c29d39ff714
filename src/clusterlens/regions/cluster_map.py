"""ClusterMap: an integer label map plus a table of per-cluster statistics.

Every region backend (SLIC, Felzenszwalb, the fast backend, SAM) returns a
:class:`ClusterMap`. Its labels are always consecutive ``0 .. n_clusters - 1``
(int32), so the per-cluster table is indexed by label; any other labelling
(non-contiguous ids such as ``{3, 17, 40}``) is relabelled on construction in sorted
id order.

A cluster is a set of pixels with the same label; it need not be spatially
connected (two separate blobs with one id stay one cluster). Negative labels are
rejected: backends that leave pixels unassigned must resolve them first (see
:mod:`clusterlens.regions.masks`).

Example:
    >>> import numpy as np
    >>> cmap = ClusterMap.from_labels(np.array([[5, 5, 9], [5, 9, 9]]))
    >>> cmap.labels.tolist(), cmap.counts.tolist()
    ([[0, 0, 1], [0, 1, 1]], [3, 3])
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from scipy import ndimage

LabelArray = npt.NDArray[np.int32]


class ClusterMap:
    """An (H, W) label map with consecutive ids and its per-cluster table.

    The table (``counts``, ``centroids``, ``bboxes``, ``means``) is computed on first
    access and cached, so backends pay only for the labelling.

    Args:
        labels: (H, W) integer array or tensor, values >= 0. Ids need not be
            consecutive; they are relabelled to ``0 .. K-1`` in sorted order.
        image: optional values to average per cluster (``means``): (H, W), (H, W, C)
            array or (C, H, W) tensor (e.g. ``TextureArray.data``) of the labels' size.
        meta: optional provenance (backend name, parameters, timings).

    Raises:
        ValueError: labels not 2-D, empty, not integer or negative; image of
            another size.
    """

    def __init__(self, labels: Any, image: Any | None = None, meta: dict[str, Any] | None = None):
        self.labels: LabelArray = relabel_consecutive(validate_labels(labels))
        self.meta: dict[str, Any] = dict(meta or {})
        self._image = None if image is None else _channels_last(image, self.shape)

    @classmethod
    def from_labels(
        cls, labels: Any, image: Any | None = None, meta: dict[str, Any] | None = None
    ) -> ClusterMap:
        """Same as the constructor; reads better at call sites."""
        return cls(labels, image=image, meta=meta)

    def __repr__(self) -> str:
        return f"ClusterMap(shape={self.shape}, n_clusters={self.n_clusters}, meta={self.meta})"

    @property
    def image(self) -> np.ndarray | None:
        """The (H, W, C) float64 values given at construction (for ``means``), or None."""
        return self._image

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the label map."""
        return self.labels.shape  # type: ignore[return-value]

    @cached_property
    def counts(self) -> npt.NDArray[np.int64]:
        """(K,) pixel count per cluster."""
        return np.bincount(self.labels.ravel()).astype(np.int64)

    @property
    def n_clusters(self) -> int:
        """Number of clusters K."""
        return len(self.counts)

    @cached_property
    def centroids(self) -> npt.NDArray[np.float64]:
        """(K, 2) centroid per cluster as ``(y, x)`` in pixels."""
        return _centroids(self.labels, self.counts)

    @cached_property
    def bboxes(self) -> npt.NDArray[np.int64]:
        """(K, 4) box per cluster as ``(y0, x0, y1, x1)``, end exclusive."""
        return _bboxes(self.labels)

    @cached_property
    def means(self) -> npt.NDArray[np.float64] | None:
        """(K, C) mean of the image given at construction per cluster, or None."""
        if self._image is None:
            return None
        return cluster_means(self.labels, self._image, self.counts)

    def with_image(self, image: Any) -> ClusterMap:
        """A copy whose ``means`` are the per-cluster means of ``image``."""
        return ClusterMap(self.labels, image=image, meta=self.meta)

    def at_level(self, level: int) -> ClusterMap:
        """Downsample to mip level ``level`` by mode pooling 2x2 blocks ``level`` times.

        Ids are never averaged: each coarse pixel takes the most common id of its
        2x2 block, ties going to the earliest of top-left, top-right, bottom-left,
        bottom-right. Odd sides are padded by repeating the last row/column, so
        level ``k`` has size ``ceil(H / 2**k) x ceil(W / 2**k)`` -- the convention of
        :class:`clusterlens.texture.MipPyramid`. Clusters that vanish are dropped and
        the rest relabelled (sorted order kept); the image for ``means`` is not
        carried over.

        Raises:
            ValueError: ``level`` is negative or not an integer.
        """
        if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or level < 0:
            raise ValueError(f"level must be a non-negative integer, got {level!r}")
        labels = self.labels
        for _ in range(int(level)):
            labels = mode_pool_2x2(labels)
        return ClusterMap(labels, meta={**self.meta, "level": int(level)})

    def to_channels(self) -> torch.Tensor:
        """The texture's three cluster channels (3, H, W) float32 for these labels.

        Channels are ``cluster_id``, ``cluster_dist``, ``cluster_size`` as defined by
        :func:`clusterlens.texture.cluster_channels`.
        """
        from clusterlens.texture import cluster_channels  # local: texture is heavy to import

        return cluster_channels(self.labels)

    def mask(self, cluster_id: int) -> npt.NDArray[np.bool_]:
        """Boolean (H, W) mask of one cluster."""
        if not 0 <= cluster_id < self.n_clusters:
            raise ValueError(f"cluster_id must be in [0, {self.n_clusters}), got {cluster_id}")
        return self.labels == cluster_id

    def table(self) -> list[dict[str, Any]]:
        """The per-cluster table as JSON-ready dicts, one per cluster in id order."""
        rows = []
        for k in range(self.n_clusters):
            row: dict[str, Any] = {
                "id": k,
                "pixel_count": int(self.counts[k]),
                "centroid_yx": [round(float(v), 3) for v in self.centroids[k]],
                "bbox_y0x0y1x1": [int(v) for v in self.bboxes[k]],
            }
            if self.means is not None:
                row["mean"] = [round(float(v), 6) for v in self.means[k]]
            rows.append(row)
        return rows


def validate_labels(labels: Any) -> np.ndarray:
    """Return ``labels`` as a NumPy integer array or raise a ValueError saying why not."""
    array = (
        labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    )
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"labels must be a non-empty (H, W) array, got shape {array.shape}")
    if array.dtype == np.bool_:
        return array.astype(np.int32)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {array.dtype}")
    if array.min() < 0:
        raise ValueError(
            "labels must be >= 0 (got negative ids); resolve unassigned pixels first, "
            "e.g. with clusterlens.regions.resolve_masks"
        )
    return array


def relabel_consecutive(labels: np.ndarray) -> LabelArray:
    """Map the ids of ``labels`` (>= 0) to ``0 .. K-1`` keeping their sorted order."""
    top = int(labels.max())
    if top < 4 * labels.size + 1024:
        # A lookup table over the id range is O(N); np.unique would sort all pixels.
        present = np.bincount(labels.ravel(), minlength=top + 1) > 0
        if present.all():
            return np.ascontiguousarray(labels, dtype=np.int32)
        lookup = (np.cumsum(present) - 1).astype(np.int32)
        return lookup[labels]
    _, dense = np.unique(labels, return_inverse=True)
    return dense.reshape(labels.shape).astype(np.int32)


def mode_pool_2x2(labels: np.ndarray) -> LabelArray:
    """One mode-pooling step: (H, W) -> (ceil(H/2), ceil(W/2)).

    Each output pixel is the most common of its 2x2 block; ties go to the
    earliest of top-left, top-right, bottom-left, bottom-right.
    """
    # One mechanism for ids at every level: the same mode pooling the texture pyramid
    # applies to its cluster_id channel, so both agree by construction.
    from clusterlens.texture.pyramid import mode_pool  # local: texture is heavy to import

    height, width = labels.shape
    padded = np.pad(labels, ((0, height % 2), (0, width % 2)), mode="edge")
    pooled = mode_pool(torch.from_numpy(np.ascontiguousarray(padded, dtype=np.int64))[None])
    return pooled[0].numpy().astype(np.int32)


def cluster_means(
    labels: np.ndarray, values: np.ndarray, counts: np.ndarray | None = None
) -> npt.NDArray[np.float64]:
    """(K, C) mean of ``values`` (H, W, C) over each label of consecutive ``labels``."""
    flat = labels.ravel()
    if counts is None:
        counts = np.bincount(flat)
    k = len(counts)
    sums = [np.bincount(flat, values[..., c].ravel(), k) for c in range(values.shape[-1])]
    return np.stack(sums, axis=1) / np.maximum(counts, 1)[:, None]


def _centroids(labels: np.ndarray, counts: np.ndarray) -> np.ndarray:
    height, width = labels.shape
    k = len(counts)
    # Row/column sums per cluster via per-row bincounts would loop; weights do it in one pass.
    rows = np.repeat(np.arange(height, dtype=np.float64), width)
    cols = np.tile(np.arange(width, dtype=np.float64), height)
    flat = labels.ravel()
    return np.stack(
        [np.bincount(flat, rows, k) / counts, np.bincount(flat, cols, k) / counts], axis=1
    )


def _bboxes(labels: np.ndarray) -> np.ndarray:
    # find_objects wants ids from 1 and returns one slice pair per id, in id order.
    slices = ndimage.find_objects(labels + 1)
    return np.array(
        [[s[0].start, s[1].start, s[0].stop, s[1].stop] for s in slices], dtype=np.int64
    )


def _channels_last(image: Any, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) / (H, W, C) array or (C, H, W) tensor -> (H, W, C) float64."""
    if isinstance(image, torch.Tensor):
        array = image.detach().cpu().double().numpy()
        if array.ndim == 3:
            array = array.transpose(1, 2, 0)
    else:
        array = np.asarray(image, dtype=np.float64)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[:2] != tuple(shape):
        raise ValueError(
            f"image values must be (H, W), (H, W, C) or a (C, H, W) tensor with H, W = {shape}, "
            f"got shape {tuple(np.shape(image))}"
        )
    return array
