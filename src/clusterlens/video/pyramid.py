"""The temporal pyramid: frames pooled in time and space, and clusters carried in time.

:func:`temporal_pyramid` builds a 3D mip pyramid over (t, h, w): level 0 is the clip
at a small working size, each next level averages 2x2x2 blocks (two frames, 2x2
pixels), so level 2 of a 16-frame clip is 4 frames at a quarter of the side. A
change of the picture over time shows as a difference between time-pooled levels;
:meth:`TemporalPyramid.motion` reads it per frame.

:func:`carry_clusters` gives every frame a cluster map whose ids follow regions in
time, with :func:`clusterlens.regions.video.cluster_video` (keyframe + flow warp) run
on stretches of the clip: a stretch ends, and a new keyframe is clustered from
scratch, when the share of pixels whose warped id is trusted falls below
``min_warped_share`` -- not only every ``keyframe_interval`` frames. Each stretch's
ids are offset so that no two stretches share an id.

    >>> import numpy as np
    >>> from clusterlens.video.pyramid import temporal_pyramid
    >>> clip = [np.full((32, 48, 3), t / 8, np.float32) for t in range(8)]
    >>> pyramid = temporal_pyramid(clip, levels=3, side=48)
    >>> [level.shape for level in pyramid.levels]
    [(8, 32, 48, 3), (4, 16, 24, 3), (2, 8, 12, 3)]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from clusterlens.image import load_image
from clusterlens.regions.video import cluster_video

#: Longer side of the pyramid's level 0 (small: it holds every frame).
PYRAMID_SIDE = 128


@dataclass(frozen=True)
class TemporalPyramid:
    """Levels of (frames, h, w, 3) float32; level k pools 2^k frames and 2^k x 2^k pixels."""

    levels: list[np.ndarray]

    def motion(self) -> np.ndarray:
        """(frames,) mean absolute change of each frame from the one before (level 0;
        0 for the first frame): where the camera or the scene moves fast."""
        base = self.levels[0]
        change = np.abs(np.diff(base, axis=0)).mean(axis=(1, 2, 3))
        return np.concatenate([[0.0], change]).astype(np.float32)


def temporal_pyramid(
    frames: Iterable[np.ndarray], levels: int = 3, side: int = PYRAMID_SIDE
) -> TemporalPyramid:
    """Build the (t, h, w) pyramid of ``frames`` (images of one size) at ``side``.

    Raises:
        ValueError: no frames, frames of different sizes, or ``levels`` < 1.
    """
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels must be a positive integer, got {levels!r}")
    small = [load_image(frame, max_side=side) for frame in frames]
    if not small:
        raise ValueError("temporal_pyramid needs at least one frame")
    if len({frame.shape for frame in small}) > 1:
        raise ValueError(f"frames differ in size: {sorted({f.shape for f in small})}")
    stack = [np.stack(small)]
    for _ in range(levels - 1):
        stack.append(_pool(stack[-1]))
    return TemporalPyramid(stack)


def _pool(level: np.ndarray) -> np.ndarray:
    """2x2x2 average pooling; an odd last frame, row or column is averaged alone."""
    frames = level.shape[0]
    pairs = [level[t : t + 2].mean(axis=0) for t in range(0, frames, 2)]
    height, width = pairs[0].shape[:2]
    size = (max(1, -(-width // 2)), max(1, -(-height // 2)))
    return np.stack([cv2.resize(frame, size, interpolation=cv2.INTER_AREA) for frame in pairs])


def carry_clusters(
    frames: Iterable[np.ndarray],
    keyframe_interval: int = 10,
    min_warped_share: float = 0.8,
    n_segments: int = 300,
    **options,
) -> tuple[list[np.ndarray], list[int]]:
    """(H, W) id maps of every frame, ids carried along flow, and the keyframes.

    An id means one region from its keyframe until the next (ClusterMap relabels ids
    per frame; these are the original, carried ones). This keeps every frame's map:
    a caller that needs a few pixels of each should read :func:`iter_carried_clusters`,
    which holds one stretch at a time.
    """
    maps: list[np.ndarray] = []
    keyframes: list[int] = []
    for index, (ids, is_keyframe) in enumerate(
        iter_carried_clusters(frames, keyframe_interval, min_warped_share, n_segments, **options)
    ):
        maps.append(ids)
        if is_keyframe:
            keyframes.append(index)
    return maps, keyframes


def iter_carried_clusters(
    frames: Iterable[np.ndarray],
    keyframe_interval: int = 10,
    min_warped_share: float = 0.8,
    n_segments: int = 300,
    **options,
) -> Iterator[tuple[np.ndarray, bool]]:
    """Each frame's (H, W) carried id map and whether it is a keyframe, in order.

    Frames are read ``keyframe_interval`` at a time, so memory holds one stretch of
    frames and maps, not the clip's. A frame whose warped share is below
    ``min_warped_share`` starts a new stretch: it becomes a keyframe, clustered from
    scratch. ``options`` go to :func:`~clusterlens.regions.video.cluster_video`.
    """
    if not 0.0 <= min_warped_share <= 1.0:
        raise ValueError(f"min_warped_share must lie in [0, 1], got {min_warped_share}")
    pending: list[np.ndarray] = []
    offset = 0
    iterator = iter(frames)
    exhausted = False
    while not exhausted or pending:
        while not exhausted and len(pending) < keyframe_interval:
            frame = next(iterator, None)
            if frame is None:
                exhausted = True
            else:
                pending.append(frame)
        if not pending:
            break
        result = cluster_video(
            pending, keyframe_interval=keyframe_interval, n_segments=n_segments, **options
        )
        # keep frames up to the first whose warp is no longer trusted; it restarts
        low = [i for i, share in enumerate(result.warped_share) if share < min_warped_share]
        keep = low[0] if low else len(pending)
        largest = -1
        for position, cluster_map in enumerate(result.maps[:keep]):
            ids = np.asarray(cluster_map.meta["ids"])[cluster_map.labels] + offset
            largest = max(largest, int(ids.max()))
            yield ids, position == 0
        offset = largest + 1
        pending = pending[keep:]
