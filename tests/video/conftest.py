"""Synthetic clips for the video tests: a textured scene and a camera moving over it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest


def moving_clip(
    frames: int = 8, size: tuple[int, int] = (72, 96), step: int = 3
) -> list[np.ndarray]:
    """A smooth random scene with a bright square, panned ``step`` pixels per frame."""
    rng = np.random.default_rng(0)
    height, width = size
    scene = cv2.GaussianBlur(
        rng.random((height, width + step * frames, 3)).astype(np.float32), (0, 0), 3
    )
    scene[20:40, 30:50] = (1.0, 0.1, 0.1)
    return [np.ascontiguousarray(scene[:, step * t : step * t + width]) for t in range(frames)]


def write_video(path, frames: list[np.ndarray], fps: float = 10.0) -> None:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor((frame * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    writer.release()


@pytest.fixture
def clip() -> list[np.ndarray]:
    return moving_clip()


@pytest.fixture
def make_clip():
    return moving_clip


@pytest.fixture
def video_writer():
    return write_video


class RednessModel:
    """A tiny dense 'model' with the lazy interface: class Red is a pixel's redness.

    It runs as the offline model does (working input at half size, a coarse pass at a
    quarter of that), so the temporal cascade's code path is the real one, in
    milliseconds; its FLOPs are one 1x1 convolution.
    """

    name = "test:redness"
    class_names = ("Red", "Other")
    stride = 4
    scale = 0.5
    flip = False

    def __init__(self) -> None:
        import torch

        self.weight = torch.tensor([[1.0, -0.5, -0.5], [-1.0, 0.5, 0.5]]).reshape(2, 3, 1, 1) * 6

    def working_input(self, rgb, scale=None):
        import torch

        scale = self.scale if scale is None else scale
        height, width = rgb.shape[:2]
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        return torch.from_numpy(small).permute(2, 0, 1)[None].float()

    def forward_probabilities(self, batch, flip=None):
        import torch

        return torch.softmax(torch.nn.functional.conv2d(batch, self.weight), dim=1)

    def match_query(self, query):
        from clusterlens.models.text import QueryMatch

        red = 1.0 if "red" in query else 0.0
        scores = {"Red": red, "Other": 0.0}
        return QueryMatch(query, bool(red), ("Red",) if red else (), scores, 0.5)


@pytest.fixture
def redness() -> RednessModel:
    return RednessModel()
