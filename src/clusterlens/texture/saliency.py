"""Bottom-up saliency by the spectral residual method.

Hou & Zhang, "Saliency Detection: A Spectral Residual Approach", CVPR 2007: the log
amplitude spectrum of a natural image is close to its local average; what sticks
out of that average (the residual), put back with the original phase, marks the
unexpected parts of the image. As in the paper the map is computed on a small
copy of the image (longer side 64 px), smoothed, normalised to [0, 1] by its
maximum and resized back, so its cost barely depends on the image size.
"""

from __future__ import annotations

import cv2
import numpy as np

from clusterlens.texture.color import luminance
from clusterlens.texture.registry import ChannelContext, register_group

WORKING_SIDE = 64
SMOOTHING_SIGMA = 2.5  # in pixels of the 64-px working image
AMPLITUDE_FLOOR = 1e-3


def spectral_residual(lum: np.ndarray, working_side: int = WORKING_SIDE) -> np.ndarray:
    """Saliency map (H, W) in [0, 1] of a luminance plane; zeros for a flat image."""
    height, width = lum.shape
    scale = working_side / max(height, width)
    small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(lum, small_size, interpolation=cv2.INTER_AREA).astype(np.float64)
    if small.size < 4 or np.ptp(small) < 1e-6:
        return np.zeros_like(lum, dtype=np.float32)
    spectrum = np.fft.fft2(small)
    amplitude = np.abs(spectrum)
    # A floor relative to the mean amplitude: exact spectral zeros (common in synthetic
    # images) would otherwise become -20 in log space and swamp the residual.
    log_amplitude = np.log(amplitude + AMPLITUDE_FLOOR * amplitude.mean())
    residual = log_amplitude - cv2.blur(log_amplitude, (3, 3), borderType=cv2.BORDER_REFLECT)
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    saliency = cv2.GaussianBlur(saliency, (0, 0), SMOOTHING_SIGMA)
    saliency = cv2.resize(
        saliency.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR
    )
    peak = float(saliency.max())
    return np.clip(saliency / peak, 0.0, 1.0) if peak > 0 else np.zeros_like(saliency)


@register_group("saliency", ["saliency"], "spectral-residual saliency (Hou & Zhang 2007) in [0, 1]")
def saliency_channel(ctx: ChannelContext) -> np.ndarray:
    return spectral_residual(luminance(ctx))[None]
