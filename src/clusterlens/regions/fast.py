"""The ``fast`` backend: SLIC on a coarse mip level, boundaries refined at full resolution.

Why this design (measurements in ``docs/regions.md`` and ``benchmarks/results/regions.md``):
SLIC's cost is ``iterations x pixels x 9 candidate centres``. Superpixels of a few
hundred per image are 20-60 px wide, so their *interiors* are already decided on an
image 4-8x smaller; only pixels near a boundary need full resolution. So:

1. area-downsample by a power of two ``f`` chosen so a superpixel is still about
   ``coarse_spacing`` coarse pixels wide (``f`` = 1 for dense segmentations), and
   convert that small image to CIELAB;
2. run SLIC there with one seed per grid cell, each pixel compared with the 9 seeds
   of its cell and the cells around it; then keep each label's largest 4-connected
   piece;
3. refine: every full-resolution pixel lies between four coarse pixel centres; where
   their labels agree it takes that label, elsewhere it picks, among those four
   labels, the centre nearest in the SLIC distance using its own colour;
4. make every label one 4-connected piece again (stray pieces of step 3 join a
   neighbour).

Step 3 touches only the boundary band, so the full-resolution work is a fraction of
one SLIC iteration instead of ten. Images above :data:`REFINE_PIXELS` are refined
at half resolution and nearest-upsampled (boundaries within one pixel).

Each step is one compiled pass (:mod:`clusterlens.regions._fast_kernels`, Numba):
the earlier vectorised NumPy version of the same algorithm measured 2-3x slower,
most of it spent allocating boundary-band temporaries (``docs/regions.md``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from clusterlens.regions import _fast_kernels as kernels
from clusterlens.regions.registry import register_method

#: Shortest side of the coarse level. Below it too few pixels are left to place
#: boundaries (BSDS val, 100 regions: boundary recall 0.018 below scikit-image at f=8,
#: level with it at f=4).
MIN_COARSE_SIDE = 48
#: Default smallest superpixel width in coarse pixels. 3.4 rather than 4 keeps 800
#: regions on a BSDS image (14 px superpixels) at a 4x smaller coarse level: 25 val
#: images, boundary recall 0.904 instead of 0.911 in 6.8 instead of 9.4 ms (scikit-image
#: SLIC: 0.889 at a similar region count); 100-600 regions are unchanged.
COARSE_SPACING = 3.4
#: Largest downsampling factor. Beyond 8 the time goes to the boundary step anyway and
#: boundaries suffer: 1024x1024 BSDS images, 300 regions, factor 16 gave boundary
#: recall 0.683 vs 0.710 at factor 8, in the same time.
MAX_FACTOR = 8
#: Largest image (in pixels) refined at full resolution when ``refine_level`` is None.
REFINE_PIXELS = 2**19


@register_method("fast", "coarse-level SLIC + full-resolution boundary refinement (Numba)")
def fast_slic(
    rgb: np.ndarray,
    n_segments: int,
    compactness: float = 10.0,
    iterations: int = 3,
    coarse_spacing: float = COARSE_SPACING,
    min_size_factor: float = 0.0,
    refine_level: int | None = None,
) -> np.ndarray:
    """Cluster ``rgb`` into about ``n_segments`` compact, connected superpixels.

    Args:
        rgb: (H, W, 3) float32 in [0, 1].
        n_segments: approximate number of superpixels: a grid of about that many
            seeds, rounded to whole coarse cells (measured on random sizes: 0.65-1.23x
            the request, median 0.97x).
        compactness: SLIC's colour/space trade-off (CIELAB units per grid spacing),
            same meaning as scikit-image's.
        iterations: k-means iterations on the coarse level.
        coarse_spacing: smallest superpixel width, in coarse pixels, that decides the
            downsampling factor; larger = finer coarse level, slower, more accurate.
        min_size_factor: a label whose largest connected piece is smaller than this
            share of the mean superpixel area is merged into its neighbours (0 keeps
            every label; the default).
        refine_level: mip level at which boundaries are refined (0 = full
            resolution; 1 = half, then nearest-upsampled, so boundaries are exact to
            within one pixel). None picks the finest level of at most
            :data:`REFINE_PIXELS` pixels (level 0 up to 724 x 724).

    Returns:
        (H, W) int32 labels, each label one 4-connected region.
    """
    _check_options(iterations, coarse_spacing, compactness, refine_level)
    height, width = rgb.shape[:2]
    if height * width == 1 or n_segments == 1:
        return np.zeros((height, width), dtype=np.int32)
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    spacing = math.sqrt(height * width / n_segments)
    factor = _downsampling_factor(spacing, coarse_spacing, height, width)
    # Averaging RGB before the (non-linear) CIELAB conversion is close enough for seeds,
    # and it converts factor**2 fewer pixels; the refinement converts its own pixels.
    coarse = kernels.rgb_to_lab(_area_downsample(rgb, factor))
    weight = (compactness * factor / spacing) ** 2  # spatial weight in coarse pixel units
    cell_h, cell_w = _cell_size(*coarse.shape[:2], height / spacing, width / spacing)
    labels = kernels.cell_slic(coarse, cell_h, cell_w, np.float32(weight), iterations)
    labels = _enforce_connectivity(labels, min_size_factor * (spacing / factor) ** 2)
    level = _refine_level(height * width, factor) if refine_level is None else refine_level
    if 2**level >= factor:  # nothing finer to refine at
        return _upsample(labels, factor, height, width)
    step = factor // 2**level
    target = np.ascontiguousarray(_area_downsample(rgb, 2**level))
    centres = kernels.label_centres(coarse, labels)
    refined = kernels.refine_boundaries(target, labels, centres, step, np.float32(weight / step**2))
    # Per-pixel decisions can leave specks of a label inside a neighbour; reconnect.
    return _upsample(_enforce_connectivity(refined), 2**level, height, width)


def _check_options(
    iterations: int, coarse_spacing: float, compactness: float, refine_level: int | None
) -> None:
    if iterations < 1 or coarse_spacing <= 0 or compactness < 0:
        raise ValueError(
            "fast backend needs iterations >= 1, coarse_spacing > 0 and compactness >= 0; got "
            f"{iterations}, {coarse_spacing}, {compactness}"
        )
    if refine_level is not None and (not isinstance(refine_level, int) or refine_level < 0):
        raise ValueError(f"refine_level must be None or an integer >= 0, got {refine_level!r}")


def _refine_level(pixels: int, factor: int) -> int:
    level = 0
    while pixels / 4**level > REFINE_PIXELS and 2 ** (level + 1) < factor:
        level += 1
    return level


def _upsample(labels: np.ndarray, factor: int, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour upsampling by an integer factor, cropped to (height, width)."""
    if factor == 1:
        return labels
    grown = np.repeat(np.repeat(labels, factor, axis=0), factor, axis=1)
    return np.ascontiguousarray(grown[:height, :width])


def _downsampling_factor(spacing: float, coarse_spacing: float, height: int, width: int) -> int:
    """Largest power of two (at most :data:`MAX_FACTOR`) keeping superpixels
    ``coarse_spacing`` wide and the image at least :data:`MIN_COARSE_SIDE` pixels on its
    short side."""
    factor = 1
    while (
        spacing / (2 * factor) >= coarse_spacing
        and min(height, width) / (2 * factor) >= MIN_COARSE_SIDE
        and 2 * factor <= MAX_FACTOR
    ):
        factor *= 2
    return factor


def _area_downsample(image: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return image
    height, width = image.shape[:2]
    size = (math.ceil(width / factor), math.ceil(height / factor))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _cell_size(rows_c: int, cols_c: int, rows: float, cols: float) -> tuple[int, int]:
    """Integer (height, width) of cells whose grid has closest to rows x cols cells."""
    best = None
    for cell_h in {max(1, math.floor(rows_c / rows)), max(1, math.ceil(rows_c / rows))}:
        for cell_w in {max(1, math.floor(cols_c / cols)), max(1, math.ceil(cols_c / cols))}:
            cells = math.ceil(rows_c / cell_h) * math.ceil(cols_c / cell_w)
            error = abs(cells - rows * cols)
            if best is None or error < best[0]:
                best = (error, (cell_h, cell_w))
    return best[1]


def _enforce_connectivity(labels: np.ndarray, min_size: float = 0.0) -> np.ndarray:
    """Keep each label's largest 4-connected piece; smaller pieces join a neighbour's label.

    With ``min_size`` > 0 a label whose largest piece is smaller is absorbed too
    (unless every label is that small). Labels are returned consecutive.
    """
    pieces, sizes, owners = kernels.connected_pieces(np.ascontiguousarray(labels, np.int32))
    order = np.lexsort((-sizes, owners))  # grouped by label, largest piece first
    first_of_label = np.ones(len(order), dtype=bool)
    first_of_label[1:] = owners[order[1:]] != owners[order[:-1]]
    keep = np.zeros(len(sizes), dtype=bool)
    keep[order[first_of_label]] = True
    if min_size > 0 and (keep & (sizes >= min_size)).any():
        keep &= sizes >= min_size
    if keep.all():
        return kernels.consecutive(np.ascontiguousarray(labels, np.int32))
    return kernels.consecutive(kernels.absorb_orphans(pieces, owners, keep))
