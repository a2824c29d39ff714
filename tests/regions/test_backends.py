"""The registry and the slic / felzenszwalb / fast backends, including awkward inputs."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import label as connected_components

from clusterlens.evaluate.superpixel import boundary_recall
from clusterlens.regions import ClusterMap, cluster_image, list_methods

METHODS = ["slic", "felzenszwalb", "fast"]


def two_halves(height: int = 64, width: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A red left half and a blue right half, plus the true two-region labels."""
    image = np.zeros((height, width, 3), dtype=np.float32)
    image[:, : width // 2, 0] = 1.0
    image[:, width // 2 :, 2] = 1.0
    truth = np.zeros((height, width), dtype=int)
    truth[:, width // 2 :] = 1
    return image, truth


def test_list_methods_names_the_builtin_backends():
    methods = list_methods()
    assert set(METHODS) <= set(methods)
    assert all(isinstance(text, str) and text for text in methods.values())


def test_unknown_method_and_bad_segment_counts_are_rejected():
    image = np.zeros((8, 8, 3))
    with pytest.raises(ValueError, match="unknown region method 'nope'"):
        cluster_image(image, method="nope")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n_segments"):
            cluster_image(image, n_segments=bad)


@pytest.mark.parametrize("method", METHODS)
def test_result_is_a_cluster_map_with_meta_and_rgb_means(method):
    image, _ = two_halves()
    cmap = cluster_image(image, method=method, n_segments=24)
    assert isinstance(cmap, ClusterMap)
    assert cmap.shape == (64, 96)
    assert cmap.meta["method"] == method and cmap.meta["n_segments"] == 24
    assert cmap.meta["seconds"] >= 0
    assert cmap.means.shape == (cmap.n_clusters, 3)
    assert cmap.counts.sum() == 64 * 96


@pytest.mark.parametrize("method", METHODS)
def test_every_backend_finds_the_colour_edge(method):
    image, truth = two_halves()
    cmap = cluster_image(image, method=method, n_segments=24)
    assert boundary_recall(cmap.labels, truth, tolerance=0) == 1.0
    # No region straddles the edge: every cluster is purely red or purely blue.
    red = cmap.means[:, 0] > 0.5
    assert ((cmap.means[:, 2] > 0.5) ^ red).all()


@pytest.mark.parametrize("method", METHODS)
def test_one_pixel_image_is_one_cluster(method):
    cmap = cluster_image(np.array([[0.3]]), method=method, n_segments=50)
    assert cmap.labels.tolist() == [[0]]
    assert cmap.meta["n_segments"] == 1  # clamped to the pixel count


@pytest.mark.parametrize("method", METHODS)
def test_segment_count_above_pixel_count_is_clamped(method):
    rng = np.random.default_rng(1)
    image = rng.random((3, 4, 3)).astype(np.float32)
    cmap = cluster_image(image, method=method, n_segments=1000)
    assert cmap.meta["n_segments"] == 12
    assert 1 <= cmap.n_clusters <= 12


def test_single_colour_image_slic_and_fast_give_a_grid_felzenszwalb_one_region():
    flat = np.full((60, 90, 3), 0.4, dtype=np.float32)
    assert cluster_image(flat, method="felzenszwalb", n_segments=6).n_clusters == 1
    for method in ("slic", "fast"):
        cmap = cluster_image(flat, method=method, n_segments=6)
        assert 4 <= cmap.n_clusters <= 8
        # With no colour, regions are compact: no region spans more than half the width.
        widths = cmap.bboxes[:, 3] - cmap.bboxes[:, 1]
        assert widths.max() <= 45


def test_grayscale_and_uint8_inputs_are_accepted():
    gray = np.zeros((40, 40), dtype=np.uint8)
    gray[:, 20:] = 255
    cmap = cluster_image(gray, method="fast", n_segments=8)
    assert cmap.means.shape[1] == 3
    assert set(np.round(cmap.means[:, 0], 3)) == {0.0, 1.0}


def test_fast_backend_regions_are_connected_and_deterministic():
    rng = np.random.default_rng(2)
    image = rng.random((97, 131, 3)).astype(np.float32)
    first = cluster_image(image, method="fast", n_segments=60)
    second = cluster_image(image, method="fast", n_segments=60)
    assert (first.labels == second.labels).all()
    pieces = connected_components(first.labels, background=-1, connectivity=1)
    assert pieces.max() == first.n_clusters  # each label is exactly one 4-connected piece


def test_fast_backend_count_follows_the_request():
    rng = np.random.default_rng(3)
    image = rng.random((200, 300, 3)).astype(np.float32)
    for request in (20, 100, 400):
        count = cluster_image(image, method="fast", n_segments=request).n_clusters
        assert 0.6 * request <= count <= 1.3 * request


def test_fast_backend_rejects_bad_options():
    with pytest.raises(ValueError, match="iterations"):
        cluster_image(np.zeros((8, 8, 3)), method="fast", n_segments=4, iterations=0)
    with pytest.raises(ValueError, match="refine_level"):
        cluster_image(np.zeros((8, 8, 3)), method="fast", n_segments=4, refine_level=-1)
    with pytest.raises(TypeError):
        cluster_image(np.zeros((8, 8, 3)), method="fast", n_segments=4, colour=3)


def test_slic_options_reach_scikit_image():
    image, _ = two_halves()
    loose = cluster_image(image, method="slic", n_segments=24, compactness=0.01)
    tight = cluster_image(image, method="slic", n_segments=24, compactness=100)
    assert loose.meta["options"] == {"compactness": 0.01}
    assert not np.array_equal(loose.labels, tight.labels)


def test_fast_backend_large_image_is_refined_at_half_resolution_within_one_pixel():
    image, truth = two_halves(800, 801)  # 640k pixels > REFINE_PIXELS: refined at level 1
    cmap = cluster_image(image, method="fast", n_segments=50)
    assert boundary_recall(cmap.labels, truth, tolerance=1) == 1.0
    assert 30 <= cmap.n_clusters <= 65


def test_fast_backend_explicit_refine_level_matches_on_a_clean_edge():
    image, truth = two_halves(128, 192)
    full = cluster_image(image, method="fast", n_segments=20, refine_level=0)
    half = cluster_image(image, method="fast", n_segments=20, refine_level=1)
    assert boundary_recall(full.labels, truth, tolerance=0) == 1.0
    assert boundary_recall(half.labels, truth, tolerance=1) == 1.0
