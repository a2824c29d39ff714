"""Embedding channels: PCA of a dense embedding, and the basis for projecting queries."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.texture import generate_texture
from clusterlens.texture.embedding import embedding_channels, fit_pca


def test_pca_recovers_the_direction_of_most_variance():
    rng = np.random.default_rng(0)
    direction = np.array([3.0, 4.0, 0.0]) / 5.0
    features = rng.normal(size=(500, 1)) * 10 * direction + rng.normal(size=(500, 3)) * 0.1
    basis = fit_pca(features, k=2)
    assert abs(basis.components[0] @ direction) == pytest.approx(1.0, abs=1e-3)
    projected = basis.project(features)
    assert projected[:, 0].std() == pytest.approx(1.0, rel=0.01)
    assert projected[:, 1].std() < 0.05


def test_components_beyond_the_rank_are_zero():
    features = np.tile(np.arange(4.0), (10, 1))  # every row identical: rank 0
    basis = fit_pca(features, k=3)
    np.testing.assert_array_equal(basis.components, 0.0)


def test_embedding_channels_follow_a_given_embedding_and_project_queries():
    grid = np.zeros((8, 2, 2), np.float32)
    grid[0, :, 1] = 1.0  # the right column differs along dimension 0
    channels, basis = embedding_channels(grid, k=4, size=(4, 4))
    assert channels.shape == (4, 4, 4)
    assert channels[0, :, 0].mean() < channels[0, :, 3].mean()
    query = np.zeros(8, np.float32)
    query[0] = 1.0
    assert basis.project(query)[0] > 0  # a query like the right column scores high
    with pytest.raises(ValueError, match="dimension"):
        basis.project(np.zeros(5))


def test_texture_uses_a_given_embedding():
    grid = np.random.default_rng(1).normal(size=(32, 4, 4)).astype(np.float32)
    tex = generate_texture(np.zeros((16, 16)), ["embedding"], embedding=grid)
    assert tex.meta["embedding_source"] == "given"
    assert tex["embedding"].shape == (16, 16, 16)


@pytest.mark.parametrize("grid", [np.zeros((4, 4)), np.zeros((0, 2, 2))])
def test_bad_embeddings(grid):
    with pytest.raises(ValueError, match="embedding"):
        embedding_channels(grid, 4, (4, 4))
