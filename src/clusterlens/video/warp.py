"""Carry per-pixel maps between frames along dense optical flow (OpenCV DIS).

The temporal cascade evaluates the relevance model on keyframes only; a frame between
two keyframes gets the keyframes' coupling maps carried to it, each along the chain
of frame-to-frame flows (as :mod:`clusterlens.regions.video` carries cluster ids).
Flow is computed on small grayscale copies (:data:`FLOW_SIDE` pixels long): the maps
it carries are the model's working-resolution probabilities, no finer than that.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Longer side of the grayscale copies flow is computed on.
FLOW_SIDE = 240


def flow_gray(rgb: np.ndarray, side: int = FLOW_SIDE) -> np.ndarray:
    """A small uint8 grayscale copy of an (H, W, 3) float frame, for flow."""
    gray = cv2.cvtColor((np.clip(rgb, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    scale = side / max(height, width)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return gray


class FlowField:
    """Dense optical flow between small grayscale frames (DIS, fast preset)."""

    def __init__(self) -> None:
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)

    def __call__(self, target: np.ndarray, source: np.ndarray) -> np.ndarray:
        """(h, w, 2) flow: for each pixel of ``target``, where it lies in ``source``."""
        return self._dis.calc(target, source, None)


def carry(values: np.ndarray, valid: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pull ``values`` (C, h, w) and their validity (h, w) one frame along ``flow``.

    ``flow`` is the target-to-source flow at the flow size; maps of another size are
    sampled at the flow scaled to theirs. A pixel whose source lies outside the frame,
    or came from invalid pixels, is invalid (validity is bilinear, so it fades).
    """
    height, width = values.shape[-2:]
    if flow.shape[:2] != (height, width):
        scale_x, scale_y = width / flow.shape[1], height / flow.shape[0]
        flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
        flow = flow * np.array([scale_x, scale_y], np.float32)
    grid_x, grid_y = np.meshgrid(
        np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    )
    map_x, map_y = grid_x + flow[..., 0], grid_y + flow[..., 1]
    carried = np.stack(
        [
            cv2.remap(plane, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            for plane in values.astype(np.float32)
        ]
    )
    inside = cv2.remap(valid.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderValue=0.0)
    return carried, inside


def blend(maps: list[np.ndarray], validity: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """Per pixel, the ``weights``-and-validity weighted mean of ``maps`` (C, h, w); a
    pixel valid in none takes the plain weighted mean (replicated edges are still the
    best guess there is)."""
    total = np.zeros_like(maps[0])
    norm = np.zeros(maps[0].shape[-2:], np.float32)
    plain = np.zeros_like(maps[0])
    for values, valid, weight in zip(maps, validity, weights, strict=True):
        total += values * (valid * weight)
        norm += valid * weight
        plain += values * weight
    plain /= max(sum(weights), 1e-12)
    covered = norm > 1e-6
    return np.where(covered, total / np.maximum(norm, 1e-6), plain).astype(np.float32)
