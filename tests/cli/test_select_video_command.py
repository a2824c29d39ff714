"""clusterlens select on a video file or a folder of frames."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from clusterlens.cli.main import app

runner = CliRunner()


def _clip_file(path, frames: int = 6) -> None:
    rng = np.random.default_rng(0)
    scene = cv2.GaussianBlur(rng.random((64, 96 + 4 * frames, 3)).astype(np.float32), (0, 0), 2)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    for t in range(frames):
        writer.write((scene[:, 4 * t : 4 * t + 96] * 255).astype(np.uint8))
    writer.release()


@pytest.mark.slow  # the offline model and its matcher on a real clip
def test_select_on_a_video_writes_json_gif_and_strip(tmp_path):
    video = tmp_path / "drive.avi"
    _clip_file(video)
    arguments = ["select", str(video), "-q", "cars", "-q", "the road", "-b", "4", "--grid", "8"]
    result = runner.invoke(app, [*arguments, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    first = json.loads((tmp_path / "out" / "drive_temporal-cascade_q1.json").read_text())
    second = json.loads((tmp_path / "out" / "drive_temporal-cascade_q2.json").read_text())
    assert first["frames"] == 6 and first["accounting"]["tokens_kept"] == 24  # 4 per frame
    assert first["accounting"]["encoder_gflops"] > 0
    # the second query reuses the clip's decoded frames and model passes
    assert any(entry.startswith("model passes") for entry in second["accounting"]["cached"])
    gif = Image.open(tmp_path / "out" / "drive_temporal-cascade_q1.gif")
    assert gif.n_frames == 6 and gif.size == (96, 64)
    strip = Image.open(tmp_path / "out" / "drive_temporal-cascade_q1_budget.png")
    assert strip.size[1] == 80 + 4 + 64  # bars, gap, one row per cell
    assert "over 6 frames" in result.output


@pytest.mark.slow
def test_select_on_a_folder_with_stride_and_options(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(1)
    for t in range(5):
        Image.fromarray((rng.random((40, 60, 3)) * 255).astype(np.uint8)).save(frames / f"{t}.png")
    arguments = ["select", str(frames), "-q", "cars", "-s", "per-frame", "-b", "3", "--grid", "6"]
    options = ["--option", "frame_stride=2", "--json", str(tmp_path / "kept.json")]
    result = runner.invoke(app, [*arguments, *options, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "kept.json").read_text())
    assert data["frames"] == 3 and data["accounting"]["tokens_per_frame"] == [3, 3, 3]


def test_clear_errors_for_bad_video_input(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["select", str(empty), "-q", "cars"])
    assert result.exit_code == 2 and "is a directory with no frames" in result.output
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    result = runner.invoke(app, ["select", str(broken), "-q", "cars"])
    assert result.exit_code == 2 and "cannot open" in result.output
    video = tmp_path / "clip.avi"
    _clip_file(video, frames=2)
    result = runner.invoke(app, ["select", str(video), "-q", "cars", "-s", "topk"])
    assert result.exit_code == 2 and "image strategy" in result.output
    result = runner.invoke(app, ["select", str(video), "-q", "cars", "--option", "tolerance=1"])
    assert result.exit_code == 2 and "unknown --option tolerance" in result.output
