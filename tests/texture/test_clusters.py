"""Cluster channels from a label map."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clusterlens.texture import cluster_channels, generate_texture


def test_two_halves():
    labels = np.zeros((4, 6), dtype=np.int64)
    labels[:, 3:] = 7  # non-contiguous ids map by rank
    ids, dist, size = cluster_channels(labels).numpy()
    np.testing.assert_array_equal(ids[:, :3], 0.0)
    np.testing.assert_array_equal(ids[:, 3:], 1.0)
    np.testing.assert_allclose(size, 0.5)
    # centroid of the left half is (1.5, 1.0); its farthest pixels are the corners
    corner = np.hypot(1.5, 1.0)
    assert dist[0, 0] == pytest.approx(1.0)
    assert dist[1, 1] == pytest.approx(np.hypot(0.5, 0.0) / corner)


def test_single_cluster_and_single_pixel():
    ids, dist, size = cluster_channels(np.zeros((3, 3), dtype=np.int32)).numpy()
    np.testing.assert_array_equal(ids, 0.0)
    assert dist[1, 1] == 0.0 and dist.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(size, 1.0)
    one = cluster_channels(torch.tensor([[5]]))
    np.testing.assert_array_equal(one.numpy().ravel(), [0.0, 0.0, 1.0])


def test_given_labels_feed_the_texture_and_must_match_its_size():
    labels = np.arange(16).reshape(4, 4) // 8
    tex = generate_texture(np.zeros((4, 4)), ["cluster"], cluster_labels=labels)
    assert tex.meta["cluster_source"] == "given"
    np.testing.assert_array_equal(tex["cluster_size"].numpy(), 0.5)
    with pytest.raises(ValueError, match="must match"):
        generate_texture(np.zeros((5, 4)), ["cluster"], cluster_labels=labels)


@pytest.mark.parametrize(
    "labels", [np.zeros((0, 3), int), np.zeros((2, 2, 2), int), np.zeros((2, 2))]
)
def test_bad_labels(labels):
    with pytest.raises(ValueError, match="cluster labels"):
        cluster_channels(labels)
