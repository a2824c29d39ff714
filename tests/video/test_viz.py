"""Pictures of a video allocation: the GIF and the budget-over-time strip."""

from __future__ import annotations

import numpy as np
from PIL import Image

from clusterlens.allocate import PatchGrid
from clusterlens.video import VideoAllocation, open_video
from clusterlens.viz.video import budget_strip, kept_cells_frame, save_video_gif


def _allocation(frames: int = 3) -> VideoAllocation:
    # frame 0 keeps cells (0, 0) and (1, 0), frame 2 keeps (3, 5), frame 1 none
    return VideoAllocation(
        "exhaustive", PatchGrid(40, 60, 4, 6), frames,
        np.array([0, 0, 2]), np.array([0, 1, 3]), np.array([0, 0, 5]),
        np.array([0.9, 0.8, 0.7], np.float32), budget=3,
    )  # fmt: skip


def test_kept_cells_stay_bright_and_the_rest_is_dimmed():
    rgb = np.ones((40, 60, 3), np.float32)
    kept = np.zeros((4, 6), bool)
    kept[1, 2] = True
    picture = kept_cells_frame(rgb, kept)
    assert picture[15, 25].tolist() == [255, 255, 255]  # inside cell (1, 2)
    assert picture[35, 55].max() < 100  # a dimmed cell


def test_strip_has_a_column_per_frame_and_bars_of_the_tokens():
    strip = budget_strip(_allocation(), bar_height=10, column=2)
    assert strip.shape == (10 + 4 + 24, 6, 3)
    cells = strip[14:, :, 0]
    assert cells[0, 0] == 235 and cells[6, 0] == 235 and cells[1, 0] == 35  # frame 0
    assert (cells[:, 2:4] == 35).all()  # frame 1 kept nothing
    assert cells[3 * 6 + 5, 4] == 235  # frame 2, cell (3, 5)
    bars = strip[:10, :, 0]
    assert (bars[:, 0] == 90).all() and (bars[:, 2] == 255).all() and (bars[5:, 4] == 90).all()


def test_gif_has_every_frame(tmp_path, make_clip):
    clip = make_clip(frames=3, size=(40, 60))
    path = save_video_gif(open_video(clip), _allocation(), tmp_path / "kept.gif", side=30)
    gif = Image.open(path)
    assert gif.n_frames == 3 and gif.size == (30, 20)
