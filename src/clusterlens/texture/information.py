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
    levels = np.minimum((lum * bins).astype(np.int32), bins - 1)
    entropy = np.zeros(lum.shape, dtype=np.float32)
    for level in np.unique(levels):
        share = cv2.blur(
            (levels == level).astype(np.float32), (window, window), borderType=cv2.BORDER_REFLECT
        )
        present = share > 1e-6
        entropy[present] -= share[present] * np.log2(share[present])
    return np.clip(entropy / np.log2(bins), 0.0, 1.0)


@register_group(
    "entropy", ["entropy"], "local Shannon entropy of quantised luminance, normalised to [0, 1]"
)
def entropy_channel(ctx: ChannelContext) -> np.ndarray:
    bins = int(ctx.options.get("entropy_bins", DEFAULT_BINS))
    window = int(ctx.options.get("entropy_window", DEFAULT_WINDOW))
    return local_entropy(luminance(ctx), bins, window)[None]
