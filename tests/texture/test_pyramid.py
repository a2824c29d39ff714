"""MipPyramid: shapes, the position property, mode pooling and sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clusterlens.texture import MipPyramid, TextureArray, generate_texture
from clusterlens.texture.pyramid import mode_pool


def region_means(plane: np.ndarray, level: int) -> np.ndarray:
    """Direct computation: the mean of the level-0 pixels each level-k cell covers."""
    step = 2**level
    rows = -(-plane.shape[0] // step)
    cols = -(-plane.shape[1] // step)
    return np.array(
        [
            [
                plane[i * step : (i + 1) * step, j * step : (j + 1) * step].mean()
                for j in range(cols)
            ]
            for i in range(rows)
        ]
    )


@pytest.mark.parametrize("size", [(64, 64), (37, 50), (5, 3)])
def test_levels_halve_down_to_min_side(size):
    tex = generate_texture(np.zeros(size), ["rgb"])
    pyramid = MipPyramid.from_texture(tex, min_side=2)
    shapes = [tuple(level.shape[1:]) for level in pyramid.levels]
    assert shapes[0] == size
    for (h0, w0), (h1, w1) in zip(shapes, shapes[1:], strict=False):
        assert (h1, w1) == ((h0 + 1) // 2, (w0 + 1) // 2)
    last = shapes[-1]
    assert min(last) >= 2 and min((last[0] + 1) // 2, (last[1] + 1) // 2) < 2


def test_small_images_keep_a_single_level():
    pyramid = MipPyramid.from_texture(generate_texture(np.zeros((1, 1)), ["rgb"]), min_side=1)
    assert pyramid.num_levels == 1
    assert MipPyramid.from_texture(generate_texture(np.zeros((4, 4)), ["rgb"])).num_levels == 1


@pytest.mark.parametrize("size", [(64, 48), (37, 50)])
def test_position_at_every_level_is_the_centre_of_the_pooled_region(size):
    tex = generate_texture(np.zeros(size), ["position"])
    pyramid = MipPyramid.from_texture(tex, min_side=1)
    for k in range(1, pyramid.num_levels):
        level = pyramid.level(k)
        for name in ("pos_x", "pos_y"):
            expected = region_means(tex[name].numpy(), k)
            np.testing.assert_allclose(level[name].numpy(), expected, atol=1e-6)
        # and for even sizes that centre is simply the cell centre at that level
        if size[0] % 2**k == 0 and size[1] % 2**k == 0:
            cols = level.width
            np.testing.assert_allclose(
                level["pos_x"][0].numpy(), (np.arange(cols) + 0.5) / cols, atol=1e-6
            )


def test_any_channel_pools_to_region_means_on_odd_sizes():
    tex = generate_texture(np.random.default_rng(0).random((23, 17, 3)), ["rgb"])
    pyramid = MipPyramid.from_texture(tex, min_side=1)
    for k in range(pyramid.num_levels):
        np.testing.assert_allclose(
            pyramid.level(k)["green"].numpy(), region_means(tex["green"].numpy(), k), atol=1e-5
        )


def test_cluster_ids_are_mode_pooled_never_averaged():
    labels = np.zeros((8, 8), dtype=np.int64)
    labels[:, 4:] = 2
    labels[0, 0] = 1  # a lone pixel of cluster 1 must not survive as an average
    tex = generate_texture(np.zeros((8, 8)), ["cluster"], cluster_labels=labels)
    pyramid = MipPyramid.from_texture(tex, min_side=1)
    allowed = set(np.unique(tex["cluster_id"].numpy()))
    for k in range(pyramid.num_levels):
        assert set(np.unique(pyramid.level(k)["cluster_id"].numpy())) <= allowed
    np.testing.assert_array_equal(pyramid.level(1)["cluster_id"].numpy()[:, :2], 0.0)


def test_mode_pool_ties_go_to_top_left():
    ids = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    assert mode_pool(ids).item() == 1.0
    ids = torch.tensor([[[1.0, 2.0], [2.0, 4.0]]])
    assert mode_pool(ids).item() == 2.0


def test_sample_at_pixel_centres_returns_the_pixels():
    rgb = np.random.default_rng(1).random((16, 12, 3)).astype(np.float32)
    pyramid = MipPyramid.from_texture(generate_texture(rgb, ["rgb"]), min_side=2)
    rows, cols = np.meshgrid(np.arange(16), np.arange(12), indexing="ij")
    uv = np.stack([(cols.ravel() + 0.5) / 12, (rows.ravel() + 0.5) / 16], axis=1)
    np.testing.assert_allclose(pyramid.sample(uv, 0).numpy(), rgb.reshape(-1, 3), atol=1e-6)
    level1 = pyramid.level(1).data.numpy()  # (3, 8, 6)
    uv1 = np.array([[(2 + 0.5) / 6, (5 + 0.5) / 8]])
    np.testing.assert_allclose(pyramid.sample(uv1, 1)[0].numpy(), level1[:, 5, 2], atol=1e-6)


def test_sample_is_bilinear_between_centres():
    tex = TextureArray(torch.tensor([[[0.0, 1.0], [2.0, 3.0]]]), ("red",))
    pyramid = MipPyramid([tex.data], tex.channels)
    value = pyramid.sample([[0.5, 0.5]], 0)  # halfway between all four centres
    assert value.item() == pytest.approx(1.5)
    quarter = pyramid.sample([[0.375, 0.25]], 0)  # x a quarter of the way between columns
    assert quarter.item() == pytest.approx(0.25)


def test_fractional_levels_blend_linearly_and_per_point_levels_work():
    rgb = np.random.default_rng(2).random((32, 32, 3)).astype(np.float32)
    pyramid = MipPyramid.from_texture(generate_texture(rgb, ["rgb"]), min_side=4)
    uv = torch.rand(50, 2, generator=torch.Generator().manual_seed(0))
    at1, at2 = pyramid.sample(uv, 1), pyramid.sample(uv, 2)
    torch.testing.assert_close(pyramid.sample(uv, 1.25), 0.75 * at1 + 0.25 * at2)
    levels = torch.tensor([1.0, 2.0] * 25)
    mixed = pyramid.sample(uv, levels)
    torch.testing.assert_close(mixed[0::2], at1[0::2])
    torch.testing.assert_close(mixed[1::2], at2[1::2])


def test_sample_selected_channels_and_categorical_nearest():
    labels = np.repeat(np.arange(4), 4).reshape(4, 4).T  # columns 0..3
    tex = generate_texture(np.zeros((4, 4)), ["rgb", "cluster"], cluster_labels=labels)
    pyramid = MipPyramid.from_texture(tex, min_side=1)
    out = pyramid.sample([[0.49, 0.5], [0.51, 0.5]], 0.4, ["cluster_id", "red"])
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out[:, 0].numpy(), [1 / 3, 2 / 3], atol=1e-6)  # never 0.5


@pytest.mark.parametrize(
    ("uv", "level", "message"),
    [
        ([[1.2, 0.5]], 0, "lie in"),
        ([[0.5, 0.5, 0.5]], 0, "shape"),
        ([[0.5, 0.5]], 9, "levels must lie"),
        ([[0.5, 0.5]], [0, 1], "level must be"),
        ([[float("nan"), 0.5]], 0, "finite"),
    ],
)
def test_sample_errors(uv, level, message):
    pyramid = MipPyramid.from_texture(generate_texture(np.zeros((16, 16)), ["rgb"]), min_side=4)
    with pytest.raises(ValueError, match=message):
        pyramid.sample(uv, level)


def test_bad_pyramid_arguments():
    tex = generate_texture(np.zeros((16, 16)), ["rgb"])
    with pytest.raises(ValueError, match="min_side"):
        MipPyramid.from_texture(tex, min_side=0)
    with pytest.raises(IndexError, match="levels 0"):
        MipPyramid.from_texture(tex).level(5)
    with pytest.raises(ValueError, match="at least one level"):
        MipPyramid([], ())


def test_fast_2x2_average_matches_avg_pool_on_strided_input():
    import torch.nn.functional as F

    from clusterlens.texture.pyramid import average_2x2

    data = torch.rand(3, 40, 60).transpose(1, 2)  # (3, 60, 40), not contiguous
    torch.testing.assert_close(average_2x2(data), F.avg_pool2d(data[None], 2)[0])
    doubles = data.double()
    torch.testing.assert_close(average_2x2(doubles), F.avg_pool2d(doubles[None], 2)[0])
