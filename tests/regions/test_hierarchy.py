"""Grouping clusters into meta-clusters and two-scale clustering."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.regions import ClusterMap, cluster_image, group_clusters, multiscale_clusters


def quadrants() -> np.ndarray:
    image = np.zeros((64, 64, 3), dtype=np.float32)
    image[:32, :32] = [1, 0, 0]
    image[:32, 32:] = [0, 1, 0]
    image[32:, :32] = [0, 0, 1]
    image[32:, 32:] = [1, 1, 0]
    return image


def test_group_clusters_recovers_the_four_colours():
    image = quadrants()
    fine = cluster_image(image, method="fast", n_segments=64)
    assert fine.n_clusters > 20
    tree = group_clusters(fine, max_clusters=4, position_weight=0.1)
    assert tree.coarse.n_clusters == 4
    assert (tree.coarse.labels == tree.parent[tree.fine.labels]).all()
    # Each meta-cluster is one colour: its mean is a pure corner colour.
    colours = {tuple(np.round(mean, 3)) for mean in tree.coarse.means}
    assert colours == {(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0)}
    assert sorted(np.concatenate([tree.children(k) for k in range(4)])) == list(
        range(fine.n_clusters)
    )


def test_position_separates_same_coloured_clusters():
    labels = np.array([[0, 1, 2, 3]])
    image = np.zeros((1, 4))
    tree = group_clusters(labels, image=image, max_clusters=2, position_weight=1.0)
    assert tree.coarse.labels.tolist() == [[0, 0, 1, 1]]


def test_group_clusters_with_few_clusters_is_the_identity():
    cmap = ClusterMap(np.array([[0, 1]]), image=np.zeros((1, 2)))
    tree = group_clusters(cmap, max_clusters=5)
    assert tree.parent.tolist() == [0, 1]


def test_group_clusters_rejects_bad_arguments():
    cmap = ClusterMap(np.array([[0, 1]]))
    with pytest.raises(ValueError, match="needs features"):
        group_clusters(cmap, max_clusters=1)
    with pytest.raises(ValueError, match="max_clusters"):
        group_clusters(cmap, image=np.zeros((1, 2)), max_clusters=0)


def test_multiscale_fine_regions_nest_in_coarse_regions():
    image = quadrants()
    tree = multiscale_clusters(image, coarse_segments=4, fine_segments=30)
    assert tree.coarse.n_clusters <= 8
    assert tree.fine.n_clusters >= 30 * 0.6
    # Nesting: every fine region lies inside exactly one coarse region.
    assert (tree.coarse.labels == tree.parent[tree.fine.labels]).all()
    for fine_id in range(tree.fine.n_clusters):
        assert len(np.unique(tree.coarse.labels[tree.fine.labels == fine_id])) == 1


def test_multiscale_rejects_fewer_fine_than_coarse_segments():
    with pytest.raises(ValueError, match="fine_segments"):
        multiscale_clusters(quadrants(), coarse_segments=20, fine_segments=10)
