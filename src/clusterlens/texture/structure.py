"""Structure channels computed on luminance: gradients, Laplacian, local contrast.

Gradients are Sobel responses divided by 8, so on a ramp they equal the change in
luminance per pixel; a 0 -> 1 step gives 0.5 on each side of the edge. Borders are
replicated, so a constant image has zero gradient everywhere, borders included.
"""

from __future__ import annotations

import cv2
import numpy as np

from clusterlens.texture.color import luminance
from clusterlens.texture.registry import ChannelContext, register_group

SOBEL_NORM = 8.0  # sum of the absolute weights of one Sobel 3x3 half-kernel pair
CONTRAST_WINDOW = 7


def sobel(ctx: ChannelContext) -> tuple[np.ndarray, np.ndarray]:
    def compute() -> tuple[np.ndarray, np.ndarray]:
        lum = luminance(ctx)
        gx = cv2.Sobel(lum, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE)
        gy = cv2.Sobel(lum, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE)
        return gx / SOBEL_NORM, gy / SOBEL_NORM

    return ctx.shared("sobel", compute)


@register_group(
    "sobel",
    ["sobel_x", "sobel_y", "sobel_mag"],
    "luminance gradient per pixel (Sobel / 8): x, y and magnitude",
)
def sobel_channels(ctx: ChannelContext) -> np.ndarray:
    gx, gy = sobel(ctx)
    return [gx, gy, cv2.magnitude(gx, gy)]


@register_group("laplacian", ["laplacian"], "Laplacian of luminance (3x3, / 4), signed")
def laplacian_channel(ctx: ChannelContext) -> np.ndarray:
    lap = cv2.Laplacian(luminance(ctx), cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REPLICATE)
    return (lap / 4.0)[None]


@register_group(
    "local_contrast",
    ["local_contrast"],
    f"standard deviation of luminance in a {CONTRAST_WINDOW}x{CONTRAST_WINDOW} window",
)
def local_contrast_channel(ctx: ChannelContext) -> np.ndarray:
    lum = luminance(ctx)
    size = (CONTRAST_WINDOW, CONTRAST_WINDOW)
    mean = cv2.blur(lum, size, borderType=cv2.BORDER_REFLECT)
    mean_sq = cv2.blur(lum * lum, size, borderType=cv2.BORDER_REFLECT)
    return np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))[None]
