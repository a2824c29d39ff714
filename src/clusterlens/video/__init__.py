"""Video: read clips lazily, carry clusters and maps along flow, allocate tokens over time.

One concept per module:

- :mod:`~clusterlens.video.frames`: :func:`open_video` (file, folder, list of images);
- :mod:`~clusterlens.video.context`: :class:`VideoContext`, per-clip caches for queries;
- :mod:`~clusterlens.video.warp`: optical flow and carrying maps between frames;
- :mod:`~clusterlens.video.pyramid`: the temporal pyramid and clusters carried in time;
- :mod:`~clusterlens.video.strategies`: the temporal cascade and its baselines;
- :mod:`~clusterlens.video.select`: :func:`select_video`;
- :mod:`~clusterlens.video.allocation`: :class:`VideoAllocation`.
"""

from __future__ import annotations

from clusterlens.video.allocation import VideoAllocation
from clusterlens.video.context import VideoContext
from clusterlens.video.frames import VideoFrames, is_video_input, open_video
from clusterlens.video.select import select_video
from clusterlens.video.strategies import VIDEO_STRATEGIES

__all__ = [
    "VIDEO_STRATEGIES",
    "VideoAllocation",
    "VideoContext",
    "VideoFrames",
    "is_video_input",
    "open_video",
    "select_video",
]
