"""Pictures stay a bounded size whatever the image's aspect ratio (issue 15, case 1)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clusterlens.allocate import Allocation
from clusterlens.allocate.grid import PatchGrid
from clusterlens.texture import MipPyramid, generate_texture
from clusterlens.viz import DPI, panel_height, save_allocation_picture, save_texture_sheet
from clusterlens.viz._layout import MAX_PANEL_INCHES, MIN_PANEL_INCHES

# 1 x 10000 asked for a 60000-inch (6 million pixel) tall figure before the bounds.
EXTREME = [(10000, 1), (1, 10000), (3, 4000)]


def test_panel_height_follows_the_image_within_bounds():
    assert panel_height(6, 0.75) == pytest.approx(4.5)
    assert panel_height(6, 10000) == MAX_PANEL_INCHES
    assert panel_height(6, 1e-4) == MIN_PANEL_INCHES


@pytest.mark.parametrize("aspect", [0.0, -1.0, float("nan")])
def test_panel_height_rejects_a_meaningless_aspect(aspect):
    with pytest.raises(ValueError, match="aspect must be a positive number"):
        panel_height(6, aspect)


def _one_patch(height: int, width: int) -> Allocation:
    grid = PatchGrid.from_count(height, width, 1)
    one = np.zeros(1, np.int64)
    return Allocation(
        "topk", grid, one, one, one, np.ones(1), np.ones(1, np.int64), -np.ones(1, np.int64), 1
    )


@pytest.mark.parametrize(("height", "width"), EXTREME)
def test_allocation_picture_of_a_strip_is_bounded(tmp_path, height, width):
    image = np.random.default_rng(0).random((height, width, 3)).astype(np.float32)
    path = save_allocation_picture(
        image, _one_patch(height, width), image[..., 0], tmp_path / "a.png"
    )
    with Image.open(path) as picture:
        assert picture.width == 12 * DPI
        assert picture.height <= (MAX_PANEL_INCHES + 0.9) * DPI


@pytest.mark.parametrize(("height", "width"), EXTREME)
def test_texture_sheet_of_a_strip_is_bounded(tmp_path, height, width):
    rgb = np.random.default_rng(0).random((height, width, 3)).astype(np.float32)
    pyramid = MipPyramid.from_texture(generate_texture(rgb, "mvp13"))
    path = save_texture_sheet(pyramid, tmp_path / "sheet.png", "strip")
    with Image.open(path) as sheet:
        # 13 channels: 2 rows of tiles at most 4 inches, plus the chain and the title
        assert sheet.width == 16 * DPI and sheet.height <= (2 * 4 + 6) * DPI
