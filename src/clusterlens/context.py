"""ImageContext: the query-free work on one image, done once and shared by every query.

Decoding, the query-free ways of knowing (information, salience), cluster maps and
the relevance model's passes (all class probabilities, which do not depend on the
query) are computed the first time a query needs them and reused by the next ones:

    >>> from clusterlens.context import ImageContext
    >>> from clusterlens.pipeline import select_patches
    >>> context = ImageContext.of("street.png")  # doctest: +SKIP
    >>> cars = select_patches(context, "parked cars", "topk", 64)  # doctest: +SKIP
    >>> # the second query reuses the model's pass:
    >>> road = select_patches(context, "the road", "topk", 64)  # doctest: +SKIP

Each result's ``accounting["cached"]`` lists what came from the context.

A context belongs to one image: passing it together with another image is an error
(the check compares a fingerprint: path, size and modification time for files; the
pixels' hash for arrays).
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from clusterlens.image import ImageInput, image_size, load_image
from clusterlens.relevance.source import CouplingSource
from clusterlens.relevance.ways import QUERY_FREE_WAYS, ways_of_knowing

#: Information and salience are computed on a copy no longer than this (see
#: :meth:`ImageContext.query_free_ways`).
WAYS_MAX_SIDE = 512


def fingerprint(image: ImageInput) -> str:
    """Identifies the image as given: a file by path, size and mtime; data by its bytes."""
    if isinstance(image, (str, Path)):
        path = Path(image).expanduser().resolve()
        stat = path.stat()
        return f"file:{path}:{stat.st_size}:{stat.st_mtime_ns}"
    array = np.asarray(image.detach().cpu().numpy() if hasattr(image, "detach") else image)
    # a guard against user mistakes, not an adversary: Adler-32 reads 12 MB in a few ms
    checksum = zlib.adler32(memoryview(np.ascontiguousarray(array)).cast("B"))
    return f"array:{array.shape}:{array.dtype}:{checksum:08x}"


@dataclass
class ImageContext:
    """One decoded image and everything about it that no query changes."""

    rgb: np.ndarray  # processed image (H, W, 3) float32, at most ``max_side``
    original_size: tuple[int, int]
    max_side: int | None
    fingerprint: str
    decode_ms: float = 0.0
    _ways: np.ndarray | None = field(default=None, repr=False)
    _thumbnail_ways: np.ndarray | None = field(default=None, repr=False)
    _clusters: dict[tuple[Any, ...], np.ndarray] = field(default_factory=dict, repr=False)
    _sources: dict[str, CouplingSource] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, image: ImageInput, max_side: int | None = 1024) -> ImageContext:
        """Decode ``image`` (downscaled to ``max_side``, None: never) into a new context."""
        started = time.perf_counter()
        original = image_size(image)
        rgb = load_image(image, max_side=max_side)
        context = cls(rgb, original, max_side, fingerprint(image))
        context.decode_ms = (time.perf_counter() - started) * 1000
        return context

    def check_same_image(self, image: ImageInput, max_side: int | None) -> None:
        """Raise ValueError unless ``image`` (at ``max_side``) is the one this context holds."""
        if fingerprint(image) != self.fingerprint:
            raise ValueError(
                "this ImageContext was made for another image; make one per image with "
                "ImageContext.of(image), or pass the context alone"
            )
        if max_side != self.max_side:
            raise ValueError(
                f"this ImageContext was decoded with max_side={self.max_side}, not {max_side}"
            )

    def query_free_ways(self, cached: list[str]) -> np.ndarray:
        """(2, H, W) information and salience at the processed size, computed once.

        They are computed on a copy at most :data:`WAYS_MAX_SIDE` pixels long and
        upsampled: a 32x32 grid's cells still span 16+ pixels of that copy, and at
        1024^2 this costs a quarter of the full-size maps (the entropy window and the
        edge scale then stay the same fraction of the image at every size).
        """
        if self._ways is None:
            height, width = self.rgb.shape[:2]
            small = load_image(self.rgb, max_side=WAYS_MAX_SIDE)
            ways = ways_of_knowing(small)[: len(QUERY_FREE_WAYS)]
            if small.shape[:2] != (height, width):
                full = np.empty((len(ways), height, width), np.float32)
                for way, target in zip(ways, full, strict=True):
                    cv2.resize(way, (width, height), dst=target, interpolation=cv2.INTER_LINEAR)
                ways = full
            self._ways = ways
        else:
            cached.append("ways")
        return self._ways

    def thumbnail_ways(self, side: int = 128) -> np.ndarray:
        """(2, h, w) information and salience of a small copy: enough for the adaptive
        balancer's image statistics when the full maps may not be needed at all."""
        if self._thumbnail_ways is None:
            small = load_image(self.rgb, max_side=side)
            self._thumbnail_ways = ways_of_knowing(small)[: len(QUERY_FREE_WAYS)]
        return self._thumbnail_ways

    def clusters(self, key: tuple[Any, ...], compute, cached: list[str]) -> np.ndarray:
        """The cluster map stored under ``key``, computed by ``compute()`` the first time."""
        if key in self._clusters:
            cached.append("clusters")
        else:
            self._clusters[key] = compute()
        return self._clusters[key]

    def source(self, model: Any, name: str, cached: list[str]) -> CouplingSource:
        """The lazy relevance source of ``model`` on this image (one per model)."""
        if name in self._sources:
            cached.append("model passes")
        else:
            self._sources[name] = CouplingSource(model, self.rgb)
        return self._sources[name]
