"""Cluster a video cheaply: cluster keyframes, carry their clusters along optical flow.

Every ``keyframe_interval``-th frame is clustered with ``keyframe_method`` (e.g.
``slic`` or ``sam``). Between keyframes the previous frame's labels are warped to
the current frame with dense optical flow (OpenCV DIS, or Farneback), and each
pixel gets a *warp confidence* from forward-backward consistency:
``exp(-|f_fwd(x + f_bwd(x)) + f_bwd(x)|^2 / sigma^2)``, multiplied along the chain
since the keyframe, so confidence only decays until the next keyframe. Pixels
whose confidence is at least ``confidence_threshold`` keep the warped keyframe id;
the others take the id of a fast per-frame clustering (``frame_method``), offset
so it can never collide with a keyframe id. Keyframe ids therefore stay stable
between keyframes -- a region can be followed through time.

Frames come as a list of images (anything :func:`clusterlens.image.load_image`
accepts) or a video file path readable by OpenCV.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy import ndimage

from clusterlens.image import load_image
from clusterlens.regions.cluster_map import ClusterMap
from clusterlens.regions.registry import cluster_image

FLOW_METHODS = ("dis", "farneback")


@dataclass(frozen=True)
class VideoClusters:
    """Per-frame cluster maps and how each was obtained.

    Attributes:
        maps: one ClusterMap per frame. Ids are *not* relabelled across frames:
            ``maps[t].meta["ids"]`` holds the original ids, keyframe ids being stable.
        keyframes: indices of the keyframes.
        warped_share: per frame, the share of pixels that kept a warped keyframe id
            (1.0 on keyframes).
    """

    maps: list[ClusterMap]
    keyframes: list[int]
    warped_share: list[float]


def cluster_video(
    frames: Sequence[Any] | str | os.PathLike,
    keyframe_interval: int = 10,
    n_segments: int = 300,
    keyframe_method: str = "slic",
    frame_method: str = "fast",
    flow: str = "dis",
    confidence_threshold: float = 0.5,
    consistency_sigma: float = 1.0,
    max_frames: int | None = None,
    fallback_share: float = 0.02,
) -> VideoClusters:
    """Cluster every frame: keyframes directly, the others by warping plus a fast fallback.

    Args:
        frames: list of images of one size, or a video file path.
        keyframe_interval: cluster from scratch every this many frames (>= 1).
        n_segments: target regions per frame (both methods).
        keyframe_method: region method for keyframes.
        frame_method: region method for the low-confidence pixels of other frames.
        flow: ``dis`` (OpenCV DIS, fast preset) or ``farneback``.
        confidence_threshold: warped ids are kept where confidence >= this, in [0, 1].
            1.0 would need perfect consistency (effectively: no warping); 0 keeps
            every warped id that stays inside the frame.
        consistency_sigma: forward-backward error (pixels) at which confidence
            falls to 1/e.
        max_frames: read at most this many frames (video files).
        fallback_share: when at most this share of pixels is below the threshold,
            they take the id of the nearest confident pixel instead of running
            ``frame_method`` on the whole frame (a few pixels at the borders are not
            worth a clustering).

    Raises:
        ValueError: no frames, frames of different sizes, bad parameters or flow.
        FileNotFoundError: the video file does not exist.
    """
    _check_parameters(keyframe_interval, flow, confidence_threshold, consistency_sigma)
    images = list(_frames(frames, max_frames))
    if not images:
        raise ValueError("cluster_video needs at least one frame")
    shape = images[0].shape
    if any(image.shape != shape for image in images):
        raise ValueError(f"all frames must have one size; got {sorted({i.shape for i in images})}")
    estimator = _flow_estimator(flow)
    maps, keyframes, shares = [], [], []
    ids = confidence = None
    previous_gray = None
    for index, image in enumerate(images):
        gray = cv2.cvtColor((image * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
        if index % keyframe_interval == 0:
            ids = cluster_image(image, method=keyframe_method, n_segments=n_segments).labels
            confidence = np.ones(gray.shape, dtype=np.float32)
            keyframes.append(index)
            shares.append(1.0)
        else:
            ids, confidence = _warp(
                ids, confidence, previous_gray, gray, estimator, consistency_sigma
            )
            keep = confidence >= confidence_threshold
            shares.append(float(keep.mean()))
            if not keep.all():
                ids, confidence = _fill_uncertain(
                    ids, confidence, keep, image, frame_method, n_segments, fallback_share
                )
        maps.append(
            ClusterMap(
                ids,
                image=image,
                meta={"frame": index, "keyframe": keyframes[-1], "ids": np.unique(ids).tolist()},
            )
        )
        previous_gray = gray
    return VideoClusters(maps=maps, keyframes=keyframes, warped_share=shares)


def _fill_uncertain(
    ids: np.ndarray,
    confidence: np.ndarray,
    keep: np.ndarray,
    image: np.ndarray,
    frame_method: str,
    n_segments: int,
    fallback_share: float,
) -> tuple[np.ndarray, np.ndarray]:
    """New ids for the pixels whose warp is not trusted (``~keep``)."""
    if keep.any() and 1.0 - keep.mean() <= fallback_share:
        nearest = ndimage.distance_transform_edt(~keep, return_distances=False, return_indices=True)
        return ids[nearest[0], nearest[1]], confidence
    fresh = cluster_image(image, method=frame_method, n_segments=n_segments).labels
    offset = int(ids.max()) + 1 if keep.any() else 0  # fresh ids never reuse keyframe ids
    ids = np.where(keep, ids, fresh + offset)
    return ids, np.where(keep, confidence, 1.0).astype(np.float32)


def _check_parameters(interval: int, flow: str, threshold: float, sigma: float) -> None:
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise ValueError(f"keyframe_interval must be a positive integer, got {interval!r}")
    if flow not in FLOW_METHODS:
        raise ValueError(f"flow must be one of {FLOW_METHODS}, got {flow!r}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"confidence_threshold must lie in [0, 1], got {threshold}")
    if sigma <= 0:
        raise ValueError(f"consistency_sigma must be > 0, got {sigma}")


def _frames(frames: Sequence[Any] | str | os.PathLike, limit: int | None) -> Iterator[np.ndarray]:
    if isinstance(frames, (str, os.PathLike)):
        yield from read_video(frames, limit)
        return
    for count, frame in enumerate(frames):
        if limit is not None and count >= limit:
            return
        yield load_image(frame)


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Yield the frames of a video file as (H, W, 3) float32 RGB in [0, 1]."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"OpenCV cannot open {path} as a video")
    try:
        count = 0
        while max_frames is None or count < max_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            count += 1
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    finally:
        capture.release()


def _flow_estimator(name: str):
    if name == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        return lambda first, second: dis.calc(first, second, None)
    return lambda first, second: cv2.calcOpticalFlowFarneback(
        first, second, None, 0.5, 3, 15, 3, 5, 1.2, 0
    )


def _warp(
    ids: np.ndarray,
    confidence: np.ndarray,
    previous: np.ndarray,
    current: np.ndarray,
    estimator,
    sigma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Carry ids and confidence from the previous frame to the current one."""
    backward = estimator(current, previous)  # where each current pixel was before
    forward = estimator(previous, current)
    height, width = current.shape
    grid_x, grid_y = np.meshgrid(
        np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    )
    map_x = grid_x + backward[..., 0]
    map_y = grid_y + backward[..., 1]
    warped_ids = cv2.remap(
        ids.astype(np.float32), map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE
    ).astype(np.int64)
    carried = cv2.remap(confidence, map_x, map_y, cv2.INTER_LINEAR, borderValue=0.0)
    # Forward flow at the source point should bring the pixel back where it is now.
    forward_at_source = cv2.remap(forward, map_x, map_y, cv2.INTER_LINEAR, borderValue=0.0)
    error = np.sum((forward_at_source + backward) ** 2, axis=-1)
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    consistency = np.exp(-error / sigma**2) * inside
    return warped_ids, (carried * consistency).astype(np.float32)
