"""Local information: Shannon entropy of luminance in a window.

Luminance is quantised into ``entropy_bins`` levels (default 16); the entropy of
the level histogram in a square window (default 9x9, ``entropy_window``) is divided
by log2(bins), so a flat region scores 0 and a window using all levels equally
scores 1. Window histograms come from one box filter per level, so memory stays
at a few image planes whatever the number of levels.
"""

from __future__ import annotations

import cv2
import numpy as np

from clusterlens.texture.color import luminance
from clusterlens.texture.registry import ChannelContext, register_group

DEFAULT_BINS = 16
DEFAULT_WINDOW = 9


def local_entropy(
    lum: np.ndarray, bins: int = DEFAULT_BINS, window: int = DEFAULT_WINDOW
) -> np.ndarray:
    """Normalised local entropy (H, W) of a luminance plane in [0, 1]."""
    if bins < 2 or window < 1:
        raise ValueError(
            f"entropy needs bins >= 2 and window >= 1, got bins={bins}, window={window}"
        )
    if bins <= 256 and window * window <= 255:
        return _entropy_from_counts(lum, bins, window)
    levels = np.minimum((lum * bins).astype(np.int32), bins - 1)
    entropy = np.zeros(lum.shape, dtype=np.float32)
    for level in np.unique(levels):
        share = cv2.blur(
            (levels == level).astype(np.float32), (window, window), borderType=cv2.BORDER_REFLECT
        )
        present = share > 1e-6
        entropy[present] -= share[present] * np.log2(share[present])
    return np.clip(entropy / np.log2(bins), 0.0, 1.0)


def _entropy_from_counts(lum: np.ndarray, bins: int, window: int) -> np.ndarray:
    """The same entropy from integer window counts c of each level (8-bit box sums and a
    look-up table of c*log2(c)): -sum p log2 p = log2(n) - sum(c log2 c) / n, with n the
    window's area. About 5x faster at 1024^2 than float shares (no masked logarithms)."""
    levels = np.minimum((lum * bins).astype(np.int32), bins - 1).astype(np.uint8)
    area = window * window
    counts = np.arange(256, dtype=np.float64)
    table = np.zeros(256, np.float32)
    table[1:] = counts[1:] * np.log2(counts[1:])
    weighted = np.zeros(lum.shape, np.float32)
    for level in np.flatnonzero(np.bincount(levels.ravel(), minlength=bins)):
        mask = (levels == level).view(np.uint8)
        count = cv2.boxFilter(
            mask, -1, (window, window), normalize=False, borderType=cv2.BORDER_REFLECT
        )
        weighted += cv2.LUT(count, table)
    # n log2 n read from the same table, so a window holding one level is exactly 0
    entropy = (table[area] - weighted) / area
    return np.clip(entropy / np.log2(bins), 0.0, 1.0).astype(np.float32)


@register_group(
    "entropy", ["entropy"], "local Shannon entropy of quantised luminance, normalised to [0, 1]"
)
def entropy_channel(ctx: ChannelContext) -> np.ndarray:
    bins = int(ctx.options.get("entropy_bins", DEFAULT_BINS))
    window = int(ctx.options.get("entropy_window", DEFAULT_WINDOW))
    return local_entropy(luminance(ctx), bins, window)[None]
