"""Channel values on images whose answer is known: constants, ramps, checkerboards."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2lab

from clusterlens.texture import FULL40, MVP13, generate_texture, list_channels, list_groups
from clusterlens.texture.information import local_entropy


def ramp(height: int = 32, width: int = 40, slope: float = 0.01) -> np.ndarray:
    values = np.arange(width, dtype=np.float32) * slope
    return np.repeat(np.broadcast_to(values, (height, width))[:, :, None], 3, axis=2)


def test_presets_have_the_documented_sizes_and_every_channel_is_registered():
    assert len(MVP13) == 13 and len(FULL40) == 40
    assert len(set(FULL40)) == 40
    known = list_channels()
    assert all(name in known for name in (*MVP13, *FULL40))
    assert FULL40[12:15] == ("cluster_id", "cluster_dist", "cluster_size")  # seed 01 slots
    assert FULL40[8] == "saliency" and FULL40[18] == "embed_00" and FULL40[33] == "embed_15"


def test_rgb_and_luminance_of_a_constant_colour():
    tex = generate_texture(np.full((4, 5, 3), [1.0, 0.5, 0.0], np.float32), ["rgb", "luminance"])
    np.testing.assert_allclose(tex["rgb"][:, 0, 0].numpy(), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(tex["luminance"].numpy(), 0.299 + 0.587 * 0.5, atol=1e-5)


def test_lab_matches_scikit_image():
    rgb = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    tex = generate_texture(rgb, ["lab"])
    expected = rgb2lab(rgb) / np.array([100.0, 128.0, 128.0])
    # OpenCV's float path interpolates the sRGB curve: within 0.4 units of a* / b*
    np.testing.assert_allclose(tex["lab"].numpy().transpose(1, 2, 0), expected, atol=3e-3)


def test_sobel_on_a_ramp_gives_the_slope_and_zero_across_it():
    tex = generate_texture(ramp(slope=0.01), ["sobel"])
    interior = (slice(1, -1), slice(1, -1))
    np.testing.assert_allclose(tex["sobel_x"][interior].numpy(), 0.01, atol=1e-5)
    np.testing.assert_allclose(tex["sobel_y"].numpy(), 0.0, atol=1e-6)
    np.testing.assert_allclose(tex["sobel_mag"][interior].numpy(), 0.01, atol=1e-5)


def test_structure_channels_vanish_on_a_constant_image():
    tex = generate_texture(
        np.full((12, 12, 3), 0.3), ["sobel", "laplacian", "local_contrast", "entropy", "saliency"]
    )
    assert float(tex.data.abs().max()) < 1e-5


def test_entropy_of_a_checkerboard_is_one_bit_of_four():
    board = (np.indices((40, 40)).sum(axis=0) % 2).astype(np.float32) * 0.99
    entropy = local_entropy(board, bins=16, window=9)
    # a 9x9 window holds 41 and 40 pixels of the two levels: H = 0.99999 bits of log2(16)
    np.testing.assert_allclose(entropy[10:30, 10:30], 0.25, atol=1e-3)


def test_entropy_rejects_bad_parameters():
    with pytest.raises(ValueError, match="bins"):
        local_entropy(np.zeros((4, 4), np.float32), bins=1)


def test_local_contrast_of_a_checkerboard_is_half_the_step():
    board = (np.indices((30, 30)).sum(axis=0) % 2).astype(np.float32)
    tex = generate_texture(board, ["local_contrast"])
    np.testing.assert_allclose(tex["local_contrast"][10:20, 10:20].numpy(), 0.5, atol=0.02)


def test_saliency_peaks_on_the_odd_one_out():
    image = np.full((128, 128, 3), 0.5, np.float32)
    image[80:92, 20:32] = 1.0  # one bright square on a flat field
    saliency = generate_texture(image, ["saliency"])["saliency"].numpy()
    peak = np.unravel_index(saliency.argmax(), saliency.shape)
    assert 72 <= peak[0] <= 100 and 12 <= peak[1] <= 40
    assert saliency.max() == pytest.approx(1.0)
    assert saliency[10:40, 80:120].mean() < 0.2 * saliency[80:92, 20:32].mean()


def test_hsv_hue_is_circular():
    red = generate_texture(np.array([[[1.0, 0.0, 0.0]]], np.float32), ["hsv"])
    np.testing.assert_allclose(red["hsv"][:, 0, 0].numpy(), [1.0, 0.0, 1.0, 1.0], atol=1e-6)
    blue = generate_texture(np.array([[[0.0, 0.0, 1.0]]], np.float32), ["hue_cos", "hue_sin"])
    np.testing.assert_allclose(blue.data[:, 0, 0].numpy(), [-0.5, -np.sqrt(3) / 2], atol=1e-5)


def test_every_group_works_on_a_one_pixel_image():
    tex = generate_texture(np.zeros((1, 1, 3)), list(list_groups()))
    assert tex.data.shape == (len(list_channels()), 1, 1)
    assert np.isfinite(tex.data.numpy()).all()


def test_full40_on_a_real_image_is_finite_and_reports_its_sources():
    from skimage.data import astronaut

    tex = generate_texture(astronaut()[::4, ::4], "full40")
    assert tex.channels == FULL40 and tex.data.shape == (40, 128, 128)
    assert np.isfinite(tex.data.numpy()).all()
    assert "slic" in tex.meta["cluster_source"]
    assert "eigenpatches" in tex.meta["embedding_source"]


def test_unknown_names_and_presets_are_clear_errors():
    with pytest.raises(ValueError, match="unknown texture channel 'sparkle'"):
        generate_texture(np.zeros((4, 4)), ["sparkle"])
    with pytest.raises(ValueError, match="unknown texture preset 'mvp12'"):
        generate_texture(np.zeros((4, 4)), "mvp12")
    with pytest.raises(ValueError, match="at least one"):
        generate_texture(np.zeros((4, 4)), [])
