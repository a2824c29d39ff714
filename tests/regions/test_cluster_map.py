"""ClusterMap: relabelling, the per-cluster table, mode pooling and cluster channels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clusterlens.regions import ClusterMap, mode_pool_2x2, relabel_consecutive


def test_non_contiguous_ids_are_relabelled_in_sorted_order():
    cmap = ClusterMap(np.array([[40, 40, 3], [17, 3, 3]]))
    assert cmap.labels.tolist() == [[2, 2, 0], [1, 0, 0]]
    assert cmap.labels.dtype == np.int32
    assert cmap.n_clusters == 3


def test_table_counts_centroids_boxes_and_means():
    labels = np.array([[0, 0, 1], [0, 1, 1], [2, 2, 2]])
    image = np.arange(9, dtype=np.float32).reshape(3, 3)
    cmap = ClusterMap(labels, image=image)
    assert cmap.counts.tolist() == [3, 3, 3]
    np.testing.assert_allclose(cmap.centroids[0], [1 / 3, 1 / 3])
    np.testing.assert_allclose(cmap.centroids[2], [2.0, 1.0])
    assert cmap.bboxes.tolist() == [[0, 0, 2, 2], [0, 1, 2, 3], [2, 0, 3, 3]]
    np.testing.assert_allclose(cmap.means[:, 0], [(0 + 1 + 3) / 3, (2 + 4 + 5) / 3, 7.0])
    rows = cmap.table()
    assert rows[1] == {
        "id": 1,
        "pixel_count": 3,
        "centroid_yx": [pytest.approx(2 / 3, abs=1e-3), pytest.approx(5 / 3, abs=1e-3)],
        "bbox_y0x0y1x1": [0, 1, 2, 3],
        "mean": [pytest.approx(11 / 3)],
    }


def test_means_accept_a_channels_first_tensor():
    labels = np.array([[0, 1], [0, 1]])
    texture = torch.tensor([[[1.0, 5.0], [3.0, 7.0]], [[0.0, 0.0], [2.0, 2.0]]])  # (2, 2, 2)
    cmap = ClusterMap(labels, image=texture)
    np.testing.assert_allclose(cmap.means, [[2.0, 1.0], [6.0, 1.0]])


def test_cluster_of_two_separate_blobs_stays_one_cluster():
    cmap = ClusterMap(np.array([[1, 0, 1]]))
    assert cmap.n_clusters == 2
    assert cmap.counts.tolist() == [1, 2]
    assert cmap.bboxes[1].tolist() == [0, 0, 1, 3]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.array([[0, -1]]), ">= 0"),
        (np.array([[0.5, 1.0]]), "integers"),
        (np.zeros((0, 3), dtype=int), "non-empty"),
        (np.zeros((2, 2, 2), dtype=int), r"\(H, W\)"),
    ],
)
def test_bad_labels_raise_a_clear_error(labels, message):
    with pytest.raises(ValueError, match=message):
        ClusterMap(labels)


def test_image_of_another_size_is_rejected():
    with pytest.raises(ValueError, match="H, W"):
        ClusterMap(np.zeros((2, 2), dtype=int), image=np.zeros((3, 3, 3)))


def test_one_pixel_map():
    cmap = ClusterMap(np.array([[7]]))
    assert cmap.labels.tolist() == [[0]]
    assert cmap.bboxes.tolist() == [[0, 0, 1, 1]]
    assert cmap.at_level(3).labels.tolist() == [[0]]


def test_bool_mask_is_a_two_cluster_map():
    cmap = ClusterMap(np.array([[True, False]]))
    assert cmap.labels.tolist() == [[1, 0]]


def test_relabel_consecutive_handles_huge_ids_without_a_lookup_table():
    labels = np.array([[10**12, 5], [5, 10**12]])
    assert relabel_consecutive(labels).tolist() == [[1, 0], [0, 1]]


def test_mode_pool_takes_the_majority_and_breaks_ties_top_left():
    labels = np.array(
        [
            [1, 1, 2, 3],
            [1, 2, 3, 2],
        ]
    )
    # left block: 1 wins 3-1; right block: 2 vs 3 tie 2-2 -> top-left corner (2).
    assert mode_pool_2x2(labels).tolist() == [[1, 2]]


def test_mode_pool_odd_sides_repeat_the_last_row_and_column():
    labels = np.array([[0, 0, 5], [0, 0, 5], [4, 4, 5]])
    pooled = mode_pool_2x2(labels)
    assert pooled.shape == (2, 2)
    assert pooled.tolist() == [[0, 5], [4, 5]]


def test_at_level_matches_the_texture_pyramid_mode_pooling():
    pyramid = pytest.importorskip("clusterlens.texture.pyramid")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=(13, 10))
    ours = ClusterMap(labels).at_level(1).labels
    padded = torch.from_numpy(np.pad(labels, ((0, 1), (0, 0)), mode="edge"))[None]
    theirs = pyramid.mode_pool(padded)[0].numpy()
    assert (ClusterMap(theirs).labels == ours).all()


def test_at_level_sizes_and_ids_are_never_averaged():
    labels = np.zeros((9, 7), dtype=int)
    labels[:, 4:] = 10
    coarse = ClusterMap(labels).at_level(2)
    assert coarse.shape == (3, 2)
    assert set(np.unique(coarse.labels)) == {0, 1}  # never 5 = mean of 0 and 10
    assert coarse.meta["level"] == 2
    assert ClusterMap(labels).at_level(0).labels.tolist() == ClusterMap(labels).labels.tolist()


def test_at_level_rejects_negative_levels():
    with pytest.raises(ValueError, match="non-negative"):
        ClusterMap(np.zeros((2, 2), dtype=int)).at_level(-1)


def test_vanished_clusters_are_dropped_and_ids_stay_consecutive():
    labels = np.zeros((4, 4), dtype=int)
    labels[0, 0] = 3  # a single pixel loses every vote
    coarse = ClusterMap(labels).at_level(1)
    assert coarse.n_clusters == 1


def test_to_channels_gives_id_distance_and_size_planes():
    pytest.importorskip("clusterlens.texture")
    labels = np.array([[0, 0, 0, 1]])
    channels = ClusterMap(labels).to_channels()
    assert channels.shape == (3, 1, 4)
    assert channels.dtype == torch.float32
    np.testing.assert_allclose(channels[0, 0].numpy(), [0, 0, 0, 1])
    np.testing.assert_allclose(channels[1, 0].numpy(), [1, 0, 1, 0])
    np.testing.assert_allclose(channels[2, 0].numpy(), [0.75, 0.75, 0.75, 0.25])
