"""Backends that exist only when their library is installed.

- ``opencv-slic``, ``opencv-slico``, ``opencv-seeds``, ``opencv-lsc``: OpenCV's
  ``ximgproc`` superpixels, present in ``opencv-contrib-python(-headless)`` only.
- ``fast-slic``: the ``fast-slic`` package (AVX2 SLIC; builds from source).

They are registered at import when available so that the benchmark and the CLI can
compare them with the built-in backends; ``list_methods()`` shows what is present.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from clusterlens.regions.registry import register_method

HAS_XIMGPROC = hasattr(cv2, "ximgproc")

try:  # fast-slic is optional and often absent (no wheels; needs a C++ build)
    from fast_slic.avx2 import SlicAvx2 as _FastSlic
except ImportError:  # pragma: no cover - depends on the environment
    try:
        from fast_slic import Slic as _FastSlic
    except ImportError:
        _FastSlic = None


def _region_size(rgb: np.ndarray, n_segments: int) -> int:
    return max(1, round(math.sqrt(rgb.shape[0] * rgb.shape[1] / n_segments)))


def _lab_uint8(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor((rgb * 255).round().astype(np.uint8), cv2.COLOR_RGB2Lab)


def _opencv_slic(algorithm: int):
    def run(rgb: np.ndarray, n_segments: int, ruler: float = 10.0, iterations: int = 10):
        if rgb.shape[0] * rgb.shape[1] == 1 or n_segments == 1:
            return np.zeros(rgb.shape[:2], dtype=np.int32)
        engine = cv2.ximgproc.createSuperpixelSLIC(
            _lab_uint8(rgb),
            algorithm=algorithm,
            region_size=_region_size(rgb, n_segments),
            ruler=ruler,
        )
        engine.iterate(iterations)
        engine.enforceLabelConnectivity(25)
        return engine.getLabels()

    return run


def _opencv_seeds(
    rgb: np.ndarray, n_segments: int, levels: int = 4, prior: int = 2, iterations: int = 4
):
    if rgb.shape[0] * rgb.shape[1] == 1 or n_segments == 1:
        return np.zeros(rgb.shape[:2], dtype=np.int32)
    height, width = rgb.shape[:2]
    engine = cv2.ximgproc.createSuperpixelSEEDS(
        width, height, 3, n_segments, levels, prior, 5, False
    )
    engine.iterate(_lab_uint8(rgb), iterations)
    return engine.getLabels()


def _opencv_lsc(rgb: np.ndarray, n_segments: int, ratio: float = 0.075, iterations: int = 10):
    if rgb.shape[0] * rgb.shape[1] == 1 or n_segments == 1:
        return np.zeros(rgb.shape[:2], dtype=np.int32)
    engine = cv2.ximgproc.createSuperpixelLSC(
        _lab_uint8(rgb), region_size=_region_size(rgb, n_segments), ratio=ratio
    )
    engine.iterate(iterations)
    engine.enforceLabelConnectivity()
    return engine.getLabels()


def _fast_slic(rgb: np.ndarray, n_segments: int, compactness: float = 10.0):
    if rgb.shape[0] * rgb.shape[1] == 1 or n_segments == 1:
        return np.zeros(rgb.shape[:2], dtype=np.int32)
    engine = _FastSlic(num_components=n_segments, compactness=compactness)
    return engine.iterate(np.ascontiguousarray((rgb * 255).round().astype(np.uint8))).astype(
        np.int32
    )


if HAS_XIMGPROC:  # pragma: no cover - depends on the environment
    register_method("opencv-slic", "OpenCV ximgproc SLIC (contrib)")(
        _opencv_slic(cv2.ximgproc.SLIC)
    )
    register_method("opencv-slico", "OpenCV ximgproc SLICO (contrib)")(
        _opencv_slic(cv2.ximgproc.SLICO)
    )
    register_method("opencv-seeds", "OpenCV ximgproc SEEDS (contrib)")(_opencv_seeds)
    register_method("opencv-lsc", "OpenCV ximgproc LSC (contrib)")(_opencv_lsc)

if _FastSlic is not None:  # pragma: no cover - depends on the environment
    register_method("fast-slic", "fast-slic package, AVX2 SLIC (optional)")(_fast_slic)
