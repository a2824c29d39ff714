"""Colour channels: RGB, CIE LAB, luminance and HSV.

Scales are chosen so every channel lies in a small, documented range:
``lab_l`` is L*/100 in [0, 1]; ``lab_a`` and ``lab_b`` are a*/128 and b*/128 in
about [-1, 1] (D65 white, sRGB input, as scikit-image's ``rgb2lab``); luminance is
BT.601 luma in [0, 1]; hue is stored as (cos, sin) of its angle, because hue is
circular and a plain angle would jump from 1 back to 0 at red and average wrongly
in a pyramid.
"""

from __future__ import annotations

import cv2
import numpy as np

from clusterlens.texture.registry import ChannelContext, register_group

LAB_SCALE = np.array([100.0, 128.0, 128.0], dtype=np.float32)


def planes(hwc: np.ndarray) -> list[np.ndarray]:
    """(H, W, C) -> C strided (H, W) views; the registry copies each once into place."""
    return [hwc[:, :, c] for c in range(hwc.shape[2])]


def luminance(ctx: ChannelContext) -> np.ndarray:
    """BT.601 luma (H, W), shared by every generator that works on intensity."""
    return ctx.shared("luminance", lambda: cv2.cvtColor(ctx.rgb, cv2.COLOR_RGB2GRAY))


@register_group("rgb", ["red", "green", "blue"], "sRGB in [0, 1]")
def rgb_channels(ctx: ChannelContext) -> np.ndarray:
    return planes(ctx.rgb)


@register_group(
    "lab", ["lab_l", "lab_a", "lab_b"], "CIE L*a*b* (D65) scaled: L*/100, a*/128, b*/128"
)
def lab_channels(ctx: ChannelContext) -> np.ndarray:
    # OpenCV's float path applies the sRGB transfer curve like skimage.color.rgb2lab,
    # but is about 10x faster on this machine.
    lab = cv2.cvtColor(ctx.rgb, cv2.COLOR_RGB2Lab)
    lab *= 1.0 / LAB_SCALE
    return planes(lab)


@register_group("luminance", ["luminance"], "BT.601 luma in [0, 1]")
def luminance_channel(ctx: ChannelContext) -> np.ndarray:
    return [luminance(ctx)]


@register_group(
    "hsv",
    ["hue_cos", "hue_sin", "saturation", "value"],
    "HSV with hue as (cos, sin) of its angle; saturation, value in [0, 1]",
)
def hsv_channels(ctx: ChannelContext) -> np.ndarray:
    hsv = cv2.cvtColor(ctx.rgb, cv2.COLOR_RGB2HSV)  # float input: H in degrees
    hue, saturation, value = planes(hsv)
    hue_x, hue_y = cv2.polarToCart(np.ones_like(hue), hue, angleInDegrees=True)
    return [hue_x, hue_y, saturation, value]
