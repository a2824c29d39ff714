"""Merging small clusters over the region adjacency graph."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.regions import ClusterMap, adjacency_pairs, merge_small_clusters


def test_adjacency_pairs_are_four_connected_and_unique():
    labels = np.array([[0, 0, 1], [2, 2, 1], [2, 3, 3]])
    assert adjacency_pairs(labels).tolist() == [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]]
    assert adjacency_pairs(np.zeros((3, 3), int)).shape == (0, 2)


def test_small_cluster_joins_the_most_similar_neighbour_not_the_largest():
    labels = np.array([[0, 0, 0, 0, 2, 2], [0, 0, 0, 1, 2, 2]])
    image = np.array([[0.0] * 4 + [0.9] * 2, [0.0] * 3 + [0.8] + [0.9] * 2])
    merged = merge_small_clusters(labels, image, min_size_ratio=0.1)  # min 1.2 px
    # Cluster 1 (1 px, value 0.8) touches 0 (7 px, 0.0) and 2 (4 px, 0.9): joins 2.
    assert merged.labels.tolist() == [[0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1]]
    assert merged.meta["merged_from"] == [0, 1, 1]
    np.testing.assert_allclose(merged.means[1], [(0.8 + 4 * 0.9) / 5])


def test_without_features_the_largest_neighbour_wins():
    labels = np.array([[0, 0, 0, 1, 2, 2]])
    merged = merge_small_clusters(ClusterMap(labels), min_size_ratio=0.2)
    assert merged.labels.tolist() == [[0, 0, 0, 0, 1, 1]]


def test_merging_repeats_until_every_cluster_is_big_enough():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 40, size=(30, 30))  # salt-and-pepper: all clusters tiny
    image = rng.random((30, 30, 3))
    merged = merge_small_clusters(labels, image, min_size_ratio=0.05)
    assert merged.counts.min() >= 0.05 * 900
    assert merged.counts.sum() == 900
    # Every old cluster maps to exactly one new one, consistent with the pixels.
    old_to_new = np.asarray(merged.meta["merged_from"])
    assert (old_to_new[ClusterMap(labels).labels] == merged.labels).all()


def test_nothing_to_merge_and_degenerate_inputs():
    labels = np.array([[0, 0, 1, 1]])
    assert merge_small_clusters(labels, min_size_ratio=0.0).labels.tolist() == [[0, 0, 1, 1]]
    assert merge_small_clusters(np.zeros((3, 3), int), min_size_ratio=1.0).n_clusters == 1
    # Everything below the threshold: merging stops with one cluster left.
    assert merge_small_clusters(labels, min_size_ratio=1.0).n_clusters == 1
    with pytest.raises(ValueError, match="min_size_ratio"):
        merge_small_clusters(labels, min_size_ratio=1.5)
