"""TextureArray: addressing by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clusterlens.texture import TextureArray, generate_texture


@pytest.fixture
def texture() -> TextureArray:
    return generate_texture(np.random.default_rng(0).random((6, 8, 3)), "mvp13")


def test_channel_and_group_indexing(texture):
    assert texture["saliency"].shape == (6, 8)
    assert texture["position"].shape == (3, 6, 8)  # mvp13 order: pos_y, pos_x, eccentricity
    assert texture["lab"].shape == (2, 6, 8)  # mvp13 keeps only L* and a*
    torch.testing.assert_close(texture["rgb"][0], texture["red"])


def test_select_keeps_the_requested_order(texture):
    chosen = texture.select(["saliency", "rgb"])
    assert chosen.channels == ("saliency", "red", "green", "blue")
    torch.testing.assert_close(chosen["saliency"], texture["saliency"])


def test_missing_channels_are_named(texture):
    with pytest.raises(KeyError, match="entropy"):
        texture["entropy"]
    assert "entropy" not in texture and "red" in texture


def test_shape_and_names_must_agree():
    with pytest.raises(ValueError, match="does not match"):
        TextureArray(torch.zeros(2, 3, 3), ("a",))
    with pytest.raises(ValueError, match="unique"):
        TextureArray(torch.zeros(2, 3, 3), ("a", "a"))
