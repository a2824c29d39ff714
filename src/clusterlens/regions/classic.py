"""The scikit-image backends: ``slic`` and ``felzenszwalb``.

Both take the canonical (H, W, 3) float32 RGB image in [0, 1]. Tiny and flat
images have defined results: a 1-pixel image (or ``n_segments == 1``) is one
region; a single-colour image gives SLIC's regular grid (only position separates
pixels) and one Felzenszwalb region.
"""

from __future__ import annotations

import numpy as np
from skimage.segmentation import felzenszwalb as _skimage_felzenszwalb
from skimage.segmentation import slic as _skimage_slic

from clusterlens.regions.registry import register_method

#: Felzenszwalb has no segment-count parameter; ``min_size = FZ_MIN_SIZE_SHARE * H * W /
#: n_segments`` (measured on BSDS val: gives about 0.5-0.9 x n_segments regions).
FZ_MIN_SIZE_SHARE = 0.2


@register_method(
    "slic", "scikit-image SLIC in CIELAB (n_segments, compactness, sigma, max_num_iter)"
)
def slic(
    rgb: np.ndarray,
    n_segments: int,
    compactness: float = 10.0,
    sigma: float = 0.0,
    max_num_iter: int = 10,
    enforce_connectivity: bool = True,
) -> np.ndarray:
    """scikit-image SLIC; the image is converted to CIELAB inside ``slic``.

    Args:
        rgb: (H, W, 3) float32 in [0, 1].
        n_segments: approximate number of regions (SLIC's grid size).
        compactness: colour vs. space trade-off; higher gives squarer regions.
        sigma: Gaussian pre-smoothing width in pixels (0 = none, scikit-image default).
        max_num_iter: k-means iterations.
        enforce_connectivity: merge disconnected fragments (scikit-image default).
    """
    if rgb.shape[0] * rgb.shape[1] == 1 or n_segments == 1:
        return np.zeros(rgb.shape[:2], dtype=np.int32)
    return _skimage_slic(
        rgb,
        n_segments=n_segments,
        compactness=compactness,
        sigma=sigma,
        max_num_iter=max_num_iter,
        enforce_connectivity=enforce_connectivity,
        convert2lab=True,
        start_label=0,
    )


@register_method(
    "felzenszwalb", "scikit-image Felzenszwalb graph segmentation (scale, sigma, min_size)"
)
def felzenszwalb(
    rgb: np.ndarray,
    n_segments: int,
    scale: float = 100.0,
    sigma: float = 0.8,
    min_size: int | None = None,
) -> np.ndarray:
    """scikit-image Felzenszwalb-Huttenlocher graph-based segmentation.

    Args:
        rgb: (H, W, 3) float32 in [0, 1].
        n_segments: a hint only: sets ``min_size`` when it is not given (see
            :data:`FZ_MIN_SIZE_SHARE`); the region count follows image content.
        scale: larger gives larger regions.
        sigma: Gaussian pre-smoothing width.
        min_size: smallest region in pixels (post-merge).
    """
    if min_size is None:
        min_size = max(1, int(FZ_MIN_SIZE_SHARE * rgb.shape[0] * rgb.shape[1] / n_segments))
    if n_segments == 1:
        return np.zeros(rgb.shape[:2], dtype=np.int32)
    return _skimage_felzenszwalb(rgb, scale=scale, sigma=sigma, min_size=min_size)
