"""Superpixel metrics on small hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clusterlens.evaluate.superpixel import (
    achievable_segmentation_accuracy,
    boundary_map,
    boundary_precision,
    boundary_recall,
    compactness,
    explained_variation,
    superpixel_scores,
    undersegmentation_error,
    variance_summary,
)

# Ground truth: left two columns region 0, right two columns region 1.
TRUTH = np.array([[0, 0, 1, 1]] * 4)


def test_boundary_map_is_one_sided():
    assert boundary_map(np.array([[0, 0, 1, 1]])).tolist() == [[False, True, False, False]]
    assert boundary_map(np.array([[0], [1]])).tolist() == [[True], [False]]


def test_boundary_recall_exact_shifted_and_tolerance():
    assert boundary_recall(TRUTH, TRUTH, tolerance=0) == 1.0
    shifted = np.array([[0, 0, 0, 1]] * 4)  # boundary one pixel to the right
    assert boundary_recall(shifted, TRUTH, tolerance=0) == 0.0
    assert boundary_recall(shifted, TRUTH, tolerance=1) == 1.0
    assert boundary_recall(np.zeros((4, 4), int), TRUTH) == 0.0


def test_boundary_recall_counts_partial_hits():
    half = np.array([[0, 0, 1, 1]] * 2 + [[0, 0, 0, 0]] * 2)
    # Truth boundary pixels: column 1, rows 0-3. Ours: column 1 rows 0-1, plus row 1
    # (horizontal edge) at columns 2-3. Without tolerance rows 0 and 1 of column 1 hit.
    assert boundary_recall(half, TRUTH, tolerance=0) == pytest.approx(2 / 4)


def test_boundary_recall_without_truth_boundaries_is_one():
    assert boundary_recall(TRUTH, np.zeros((4, 4), int)) == 1.0


def test_boundary_precision_is_recall_with_roles_swapped():
    fine = np.array([[0, 1, 2, 3]] * 4)
    assert boundary_recall(fine, TRUTH, tolerance=0) == 1.0
    assert boundary_precision(fine, TRUTH, tolerance=0) == pytest.approx(1 / 3)


def test_undersegmentation_error_hand_computed():
    assert undersegmentation_error(TRUTH, TRUTH) == 0.0
    # One segment covering everything: for each truth region min(8, 8) = 8 -> 16 / 16.
    assert undersegmentation_error(np.zeros((4, 4), int), TRUTH) == 1.0
    # Segment A = columns 0-2 (12 px) leaks 4 px into region 1; segment B = column 3.
    labels = np.array([[0, 0, 0, 1]] * 4)
    # G0: A overlaps 8, min(8, 12-8=4) = 4.  G1: A overlaps 4, min(4, 8) = 4; B: min(4, 0) = 0.
    assert undersegmentation_error(labels, TRUTH) == pytest.approx(8 / 16)


def test_achievable_segmentation_accuracy_hand_computed():
    assert achievable_segmentation_accuracy(TRUTH, TRUTH) == 1.0
    assert achievable_segmentation_accuracy(np.zeros((4, 4), int), TRUTH) == 0.5
    labels = np.array([[0, 0, 0, 1]] * 4)
    assert achievable_segmentation_accuracy(labels, TRUTH) == pytest.approx((8 + 4) / 16)


def test_metrics_ignore_label_values_and_gaps():
    relabelled = np.where(TRUTH == 0, 17, 900)
    assert undersegmentation_error(relabelled, TRUTH) == 0.0
    assert achievable_segmentation_accuracy(relabelled, TRUTH - 5) == 1.0


def test_explained_variation_hand_computed():
    image = np.array([[0.0, 0.0, 1.0, 1.0]] * 4)
    assert explained_variation(TRUTH, image) == pytest.approx(1.0)
    assert explained_variation(np.zeros((4, 4), int), image) == pytest.approx(0.0)
    # Pixel values 0, 1, 2, 3 in one row; segments {0, 1} and {2, 3}: means 0.5, 2.5,
    # overall mean 1.5; explained 4 * 1 = 4 of total 2.25 + 0.25 + 0.25 + 2.25 = 5.
    row = np.array([[0.0, 1.0, 2.0, 3.0]])
    assert explained_variation(np.array([[0, 0, 1, 1]]), row) == pytest.approx(4 / 5)


def test_explained_variation_of_a_constant_image_is_one():
    assert explained_variation(TRUTH, np.full((4, 4, 3), 0.3)) == 1.0


def test_compactness_hand_computed():
    quarter_pi = math.pi / 4
    assert compactness(np.zeros((2, 2), int)) == pytest.approx(quarter_pi)  # square
    assert compactness(np.array([[0]])) == pytest.approx(quarter_pi)  # one pixel
    # A 1 x 4 line: A = 4, P = 10 -> 4 pi 4 / 100.
    assert compactness(np.zeros((1, 4), int)) == pytest.approx(16 * math.pi / 100)
    # Four 1 x 1 segments in a row: each pi/4.
    assert compactness(np.array([[0, 1, 2, 3]])) == pytest.approx(quarter_pi)
    # Two 4 x 2 halves: A = 8, P = 12 each -> 4 pi 8 / 144.
    assert compactness(TRUTH) == pytest.approx(32 * math.pi / 144)


def test_variance_summary_hand_computed():
    image = np.array([[0.0, 2.0, 10.0, 10.0]])
    summary = variance_summary(np.array([[0, 0, 1, 1]]), image)
    assert summary["n_clusters"] == 2
    assert summary["mean_cluster_size"] == 2
    assert summary["mean_intra_variance"] == pytest.approx((1.0 + 0.0) / 2)
    # Cluster means 1 and 10: population variance 20.25.
    assert summary["inter_variance"] == pytest.approx(20.25)
    assert summary["separation"] == pytest.approx(20.25 / (0.5 + 1e-6))


def test_superpixel_scores_average_over_annotators():
    other = np.array([[0, 0, 0, 1]] * 4)
    scores = superpixel_scores(TRUTH, [TRUTH, other], image=np.zeros((4, 4, 3)), tolerance=0)
    assert scores["asa"] == pytest.approx((1.0 + 0.75) / 2)
    assert scores["undersegmentation_error"] == pytest.approx((0.0 + 8 / 16) / 2)
    assert scores["boundary_recall"] == pytest.approx((1.0 + 0.0) / 2)
    assert scores["n_segments"] == 2
    assert math.isnan(superpixel_scores(TRUTH, [TRUTH])["explained_variation"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: boundary_recall(TRUTH, TRUTH[:2]), "differ in shape"),
        (lambda: boundary_recall(TRUTH, TRUTH, tolerance=-1), "tolerance"),
        (lambda: undersegmentation_error(TRUTH.astype(float), TRUTH), "integers"),
        (lambda: compactness(np.zeros((0, 0), int)), "non-empty"),
        (lambda: explained_variation(TRUTH, np.zeros((3, 3))), "H, W"),
        (lambda: superpixel_scores(TRUTH, []), "at least one"),
    ],
)
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
