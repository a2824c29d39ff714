"""One entry point over every region backend: ``cluster_image`` and ``list_methods``.

A backend is a function ``(rgb, n_segments, **options) -> labels`` that receives the
canonical image of :func:`clusterlens.image.load_image` ((H, W, 3) float32 in
[0, 1]) and returns an (H, W) non-negative integer label map. The registry handles
everything common: loading and validating the image, checking ``n_segments``,
timing, and wrapping the labels in a :class:`ClusterMap`.

Example:
    >>> import numpy as np
    >>> from clusterlens.regions import cluster_image
    >>> cmap = cluster_image(np.zeros((32, 32, 3)), method="felzenszwalb")
    >>> cmap.n_clusters
    1
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from clusterlens.image import load_image
from clusterlens.regions.cluster_map import ClusterMap

Backend = Callable[..., np.ndarray]


@dataclass(frozen=True)
class _Method:
    function: Backend
    description: str


_METHODS: dict[str, _Method] = {}


def register_method(name: str, description: str) -> Callable[[Backend], Backend]:
    """Decorator adding a backend under ``name`` (lower case, unique)."""

    def add(function: Backend) -> Backend:
        if name in _METHODS:
            raise ValueError(f"region method {name!r} is already registered")
        _METHODS[name] = _Method(function, description)
        return function

    return add


def get_method(name: str) -> Backend:
    """The raw backend ``(rgb, n_segments, **options) -> labels`` registered as ``name``.

    It skips image loading and the ClusterMap wrapper: use it to time a backend alone.
    """
    if name not in _METHODS:
        raise ValueError(f"unknown region method {name!r}; available: {sorted(_METHODS)}")
    return _METHODS[name].function


def list_methods() -> dict[str, str]:
    """Registered method names mapped to one-line descriptions."""
    return {name: method.description for name, method in sorted(_METHODS.items())}


def cluster_image(
    image: Any, method: str = "slic", n_segments: int = 300, **options: Any
) -> ClusterMap:
    """Cluster ``image`` into regions with a registered backend.

    Args:
        image: anything :func:`clusterlens.image.load_image` accepts (path, PIL,
            array, tensor; grayscale and RGBA included).
        method: one of :func:`list_methods` (``slic``, ``felzenszwalb``, ``fast``,
            ``sam``, ``sam2`` ...).
        n_segments: the number of regions to aim for. Backends treat it as a target,
            not a promise. A value above the pixel count is clamped to the pixel count
            (each pixel its own region at most); recorded in ``meta["n_segments"]``.
        **options: backend options (e.g. ``compactness`` for slic); unknown options
            raise a TypeError naming the backend.

    Returns:
        A :class:`ClusterMap` whose ``means`` are the RGB means per cluster and whose
        ``meta`` holds method, options, n_segments and ``seconds``.

    Raises:
        ValueError: unknown method, ``n_segments`` < 1 or not an integer, bad image.
    """
    if method not in _METHODS:
        raise ValueError(f"unknown region method {method!r}; available: {sorted(_METHODS)}")
    if isinstance(n_segments, bool) or not isinstance(n_segments, (int, np.integer)):
        raise ValueError(f"n_segments must be a positive integer, got {n_segments!r}")
    if n_segments < 1:
        raise ValueError(f"n_segments must be >= 1, got {n_segments}")
    rgb = load_image(image)
    n_segments = int(min(n_segments, rgb.shape[0] * rgb.shape[1]))
    start = time.perf_counter()
    labels = _METHODS[method].function(rgb, n_segments, **options)
    seconds = time.perf_counter() - start
    meta = {"method": method, "n_segments": n_segments, "options": options, "seconds": seconds}
    return ClusterMap(labels, image=rgb, meta=meta)
