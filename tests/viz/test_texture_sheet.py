"""Texture contact sheets and mip chains."""

from __future__ import annotations

import numpy as np
from PIL import Image

from clusterlens.texture import MipPyramid, generate_texture
from clusterlens.viz import mip_chain_image, save_texture_sheet


def test_mip_chain_layout_places_levels_right_of_level_zero():
    rgb = np.zeros((32, 32, 3), np.float32)
    rgb[..., 0] = 1.0  # pure red at every level
    pyramid = MipPyramid.from_texture(generate_texture(rgb, ["rgb"]), min_side=4)
    chain = mip_chain_image(pyramid)
    assert chain.shape == (32, 48, 3)
    np.testing.assert_allclose(chain[:32, :32], rgb)
    np.testing.assert_allclose(chain[0:16, 32:48], rgb[:16, :16])  # level 1, top right
    np.testing.assert_allclose(chain[16:24, 32:40], rgb[:8, :8])  # level 2 below it
    np.testing.assert_allclose(chain[28:, 32:], 1.0)  # unused corner stays white


def test_mip_chain_without_rgb_shows_the_first_channel_scaled():
    ramp = np.tile(np.linspace(0, 0.5, 16, dtype=np.float32), (16, 1))
    pyramid = MipPyramid.from_texture(generate_texture(ramp, ["luminance"]), min_side=8)
    chain = mip_chain_image(pyramid)
    assert chain[:, :16].min() == 0.0 and chain[:, :16].max() == 1.0


def test_sheet_is_written_as_png(tmp_path):
    tex = generate_texture(np.random.default_rng(0).random((24, 24, 3)), "mvp13")
    path = save_texture_sheet(MipPyramid.from_texture(tex), tmp_path / "deep" / "sheet.png", "t")
    with Image.open(path) as sheet:
        assert sheet.format == "PNG" and sheet.width >= 800
