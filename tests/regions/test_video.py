"""Video clustering: keyframes, flow warping with confidence, frames from a file."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from clusterlens.regions.video import cluster_video, read_video


def moving_square(n_frames: int = 6, step: int = 2) -> list[np.ndarray]:
    """A red square sliding right over a smooth blue-green background."""
    rows, cols = np.mgrid[0:64, 0:96].astype(np.float32)
    background = np.stack([0.1 + 0 * cols, 0.3 + 0.4 * cols / 96, 0.3 + 0.4 * rows / 64], -1)
    frames = []
    for t in range(n_frames):
        frame = background.copy()
        frame[20:44, 20 + step * t : 44 + step * t] = [0.9, 0.1, 0.1]
        frames.append(frame.astype(np.float32))
    return frames


def original_id(cluster_map, row: int, col: int) -> int:
    return cluster_map.meta["ids"][cluster_map.labels[row, col]]


@pytest.mark.parametrize("flow", ["dis", "farneback"])
def test_keyframe_ids_follow_the_motion(flow):
    frames = moving_square()
    result = cluster_video(frames, keyframe_interval=4, n_segments=24, flow=flow)
    assert result.keyframes == [0, 4]
    assert len(result.maps) == 6
    assert result.warped_share[0] == 1.0 and result.warped_share[4] == 1.0
    assert min(result.warped_share[1:4]) > 0.8
    # The square's centre keeps the keyframe's id while it moves (frames 1-3).
    square = original_id(result.maps[0], 32, 32)
    for t in (1, 2, 3):
        assert original_id(result.maps[t], 32, 32 + 2 * t) == square


def test_threshold_one_falls_back_to_per_frame_clustering():
    frames = moving_square(3)
    result = cluster_video(frames, keyframe_interval=10, n_segments=24, confidence_threshold=1.0)
    assert result.keyframes == [0]
    assert result.warped_share[1] < 0.5  # consistency is never perfect
    # The fallback still separates the square from the background.
    square = result.maps[2].labels[32, 36]
    assert result.maps[2].labels[5, 5] != square


def test_every_frame_a_keyframe_equals_clustering_each_frame():
    frames = moving_square(2)
    result = cluster_video(frames, keyframe_interval=1, n_segments=24, keyframe_method="fast")
    assert result.keyframes == [0, 1]


def test_video_file_round_trip(tmp_path):
    path = tmp_path / "square.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MJPG video")
    for frame in moving_square(4):
        writer.write(cv2.cvtColor((frame * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    writer.release()
    frames = list(read_video(path))
    assert len(frames) == 4 and frames[0].shape == (64, 96, 3)
    result = cluster_video(path, keyframe_interval=2, n_segments=24, max_frames=3)
    assert len(result.maps) == 3 and result.keyframes == [0, 2]


def test_bad_inputs():
    frames = moving_square(2)
    with pytest.raises(ValueError, match="at least one frame"):
        cluster_video([])
    with pytest.raises(ValueError, match="one size"):
        cluster_video([frames[0], frames[1][:32]])
    with pytest.raises(ValueError, match="keyframe_interval"):
        cluster_video(frames, keyframe_interval=0)
    with pytest.raises(ValueError, match="flow must be one of"):
        cluster_video(frames, flow="lucas")
    with pytest.raises(ValueError, match="confidence_threshold"):
        cluster_video(frames, confidence_threshold=2)
    with pytest.raises(FileNotFoundError, match="video file not found"):
        cluster_video("/nonexistent/video.mp4")


def test_a_few_uncertain_pixels_take_the_nearest_warped_id():
    frames = moving_square(4)
    result = cluster_video(frames, keyframe_interval=10, n_segments=24, fallback_share=1.0)
    keyframe_ids = set(result.maps[0].meta["ids"])
    for cluster_map in result.maps[1:]:
        assert set(cluster_map.meta["ids"]) <= keyframe_ids  # no per-frame clustering ran
