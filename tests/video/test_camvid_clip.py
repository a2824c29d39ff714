"""The temporal cascade with the shipped model on a virtual-camera CamVid clip."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from clusterlens.evaluate.camvid import list_pairs, load_pair
from clusterlens.video import VideoContext, open_video, select_video


def _pan(image: np.ndarray, frames: int) -> list[np.ndarray]:
    """A 1.15x zoom-in panned over 12% of the width (as benchmarks/video.py does)."""
    height, width = image.shape[:2]
    clip = []
    for t in range(frames):
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0.0, 1.15)
        matrix[0, 2] -= (t / (frames - 1) - 0.5) * 0.12 * width
        clip.append(cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT))
    return clip


@pytest.mark.slow
def test_cascade_recovers_exhaustive_top_k_with_a_third_of_the_dense_passes(shared_data):
    image, _ = load_pair(*list_pairs("val", shared_data / "camvid")[40])  # cars in view
    clip = _pan(image, 10)
    context = VideoContext(open_video(clip))
    everything = select_video(context, "cars", "exhaustive", budget=10 * 32 * 32)
    scores = np.zeros((10, 32, 32), np.float32)
    scores[everything.frames, everything.rows, everything.cols] = everything.scores
    budget = 64 * 10
    best = np.sort(scores.reshape(-1))[::-1][:budget].sum()
    kept = select_video(open_video(clip), "cars", "temporal-cascade", budget=budget)
    assert scores[kept.frames, kept.rows, kept.cols].sum() / best >= 0.95
    assert kept.cost["encoder_passes"]["dense 176x240"] == 3  # keyframes 0, 8 and 9
    assert kept.cost["encoder_gflops"] < 0.4 * everything.cost["encoder_gflops"]
