"""Video input: a video file, a folder of frames, or a list of images, decoded lazily.

:func:`open_video` returns :class:`VideoFrames`, which knows how many frames there
are and decodes a frame only when asked, so a long clip never sits in memory whole:

    >>> import numpy as np
    >>> from clusterlens.video import open_video
    >>> clip = open_video([np.zeros((40, 60, 3)), np.ones((40, 60, 3))])
    >>> len(clip), clip.size
    (2, (40, 60))
    >>> [index for index, _ in clip]
    [0, 1]

``frame_stride`` keeps every n-th frame (indices then count kept frames, 0..len-1);
``max_side`` downscales each frame so its longer side is at most that.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from clusterlens.image import image_size, load_image

#: File endings read as frames when a folder is given (compared lower-case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: File endings offered to OpenCV as videos.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".gif")
ACCEPTED = (
    f"a video file ({', '.join(VIDEO_SUFFIXES)}; decoded by OpenCV), a folder of frames "
    f"({', '.join(IMAGE_SUFFIXES)}, read in name order) or a list of images"
)


def is_video_input(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a video file (by its ending) or a folder (of frames); a
    GIF counts only when animated (a still GIF is an image)."""
    path = Path(path)
    if path.is_dir():
        return True
    if path.suffix.lower() == ".gif":
        return _animated(path)
    return path.suffix.lower() in VIDEO_SUFFIXES


def _animated(path: Path) -> bool:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            return getattr(picture, "n_frames", 1) > 1
    except (OSError, UnidentifiedImageError):
        return False  # not readable: the image path explains what is wrong


class VideoFrames:
    """The frames of one clip, decoded on demand as (H, W, 3) float32 RGB in [0, 1].

    Use :func:`open_video` to make one. Iterating yields ``(index, frame)``;
    :meth:`read` yields only chosen frames (a video file is still read in order, but
    frames that are not wanted are skipped without colour conversion or resizing).
    """

    def __init__(
        self,
        kind: str,
        items: Sequence[Any] | Path,
        count: int,
        size: tuple[int, int],
        original_size: tuple[int, int],
        stride: int,
        max_side: int | None,
        name: str,
    ) -> None:
        self.kind = kind  # "file", "folder" or "list"
        self._items = items
        self._count = count
        self.size = size  # (H, W) of the decoded frames
        self.original_size = original_size  # (H, W) as stored
        self.stride = stride
        self.max_side = max_side
        self.name = name

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        return self.read(range(self._count))

    def __repr__(self) -> str:
        height, width = self.size
        return f"VideoFrames({self.name!r}, {self._count} frames, {width}x{height}, {self.kind})"

    def frame(self, index: int) -> np.ndarray:
        """One frame by index (a video file is read from its start: prefer :meth:`read`)."""
        if not 0 <= index < self._count:
            raise IndexError(f"frame {index} of a clip of {self._count} frames")
        return next(self.read([index]))[1]

    def read(self, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, frame)`` for the given indices, in increasing order."""
        wanted = sorted(set(int(i) for i in indices))
        if self.kind == "file":
            yield from self._read_file(wanted)
            return
        for index in wanted:
            yield index, self._decode(index)

    def _decode(self, index: int) -> np.ndarray:
        """One frame of a folder or list; every frame must have the first one's size
        (optical flow and the per-clip grid compare frames cell by cell)."""
        frame = load_image(self._items[index * self.stride], max_side=self.max_side)
        if frame.shape[:2] != self.size:
            raise ValueError(
                f"frame {index} of {self.name} is {frame.shape[1]}x{frame.shape[0]} but the "
                f"first is {self.size[1]}x{self.size[0]}; a clip's frames must share one size"
            )
        return frame

    def _read_file(self, wanted: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        capture = _capture(self._items)
        try:
            targets = iter(wanted)
            target = next(targets, None)
            position = 0  # index in the file, before the stride
            while target is not None:
                if not capture.grab():  # grab: demux without converting the frame
                    break
                if position == target * self.stride:
                    ok, bgr = capture.retrieve()
                    if not ok:
                        raise ValueError(f"OpenCV cannot decode frame {position} of {self.name}")
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    yield target, load_image(rgb, max_side=self.max_side)
                    target = next(targets, None)
                position += 1
            if target is not None:  # the container promised more frames than it holds
                raise ValueError(
                    f"{self.name} ended after {position} frames, before frame "
                    f"{target * self.stride} (its header reports more); re-encode it or "
                    f"pass max_frames"
                )
        finally:
            capture.release()


def open_video(
    video: str | os.PathLike | Sequence[Any] | VideoFrames,
    *,
    max_side: int | None = None,
    frame_stride: int = 1,
    max_frames: int | None = None,
) -> VideoFrames:
    """Open a clip without decoding it (its first frame is decoded to learn the size).

    Args:
        video: a video file, a folder of frames (image files in name order), a list of
            images (anything :func:`clusterlens.image.load_image` takes), or a
            :class:`VideoFrames` (returned as is: the options it was opened with apply,
            and those given here are ignored).
        max_side: downscale frames so their longer side is at most this (None: never).
        frame_stride: keep every ``frame_stride``-th frame (1: all).
        max_frames: keep at most this many frames (after the stride).

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the file cannot be decoded, the folder holds no image, the list is
            empty, or an option is out of range; the message says what is accepted.
    """
    _check_options(max_side, frame_stride, max_frames)
    if isinstance(video, VideoFrames):
        return video
    if isinstance(video, (str, os.PathLike)):
        path = Path(video).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"video not found: {path}; expected {ACCEPTED}")
        if path.is_dir():
            items, kind, name = _folder_frames(path), "folder", path.name
        else:
            return _open_file(path, max_side, frame_stride, max_frames)
    elif isinstance(video, (list, tuple)):
        if not video:
            raise ValueError(f"the list of frames is empty; expected {ACCEPTED}")
        items, kind, name = list(video), "list", f"{len(video)} images"
    else:
        raise TypeError(f"cannot read a video from {type(video).__name__}; expected {ACCEPTED}")
    count = _strided_count(len(items), frame_stride, max_frames)
    first = load_image(items[0], max_side=max_side)
    original = image_size(items[0])  # from the header: never decodes a huge frame in full
    return VideoFrames(kind, items, count, first.shape[:2], original, frame_stride, max_side, name)


def _check_options(max_side: int | None, stride: int, max_frames: int | None) -> None:
    for name, value, allow_none in (
        ("max_side", max_side, True),
        ("frame_stride", stride, False),
        ("max_frames", max_frames, True),
    ):
        if value is None and allow_none:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _strided_count(available: int, stride: int, limit: int | None) -> int:
    count = -(-available // stride)
    return count if limit is None else min(count, limit)


def _folder_frames(path: Path) -> list[Path]:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        found = sorted(p.name for p in path.iterdir())[:5]
        listed = f" (it holds: {', '.join(found)}...)" if found else " (it is empty)"
        raise ValueError(
            f"{path} is a directory with no frames{listed}; a folder of frames holds image "
            f"files ({', '.join(IMAGE_SUFFIXES)}), read in name order; expected {ACCEPTED}"
        )
    return files


def _capture(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise ValueError(f"OpenCV cannot open {path} as a video; expected {ACCEPTED}")
    return capture


def _open_file(
    path: Path, max_side: int | None, stride: int, max_frames: int | None
) -> VideoFrames:
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise ValueError(
            f"{path} is a single image; a clip is {ACCEPTED} (for one image use "
            "clusterlens select on it directly)"
        )
    capture = _capture(path)
    try:
        ok, bgr = capture.read()
        if not ok or bgr is None:
            raise ValueError(
                f"OpenCV opened {path} but could not decode a frame (corrupt, empty, or a "
                f"codec this OpenCV build lacks); expected {ACCEPTED}"
            )
        total = _count_frames(capture, path)
    finally:
        capture.release()
    first = load_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), max_side=max_side)
    count = _strided_count(total, stride, max_frames)
    return VideoFrames(
        "file", path, count, first.shape[:2], bgr.shape[:2], stride, max_side, path.name
    )


def _count_frames(capture: cv2.VideoCapture, path: Path) -> int:
    """Frames in the file: the container's count when it gives one, else counted by
    reading (some containers report 0 or a guess); one frame was read already."""
    reported = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    if reported > 0:
        return reported
    count = 1
    while capture.grab():
        count += 1
    return count
