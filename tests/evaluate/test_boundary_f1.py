"""Boundary F1 with a pixel tolerance, on hand-made label maps."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.evaluate.segmentation import BoundaryF1, class_boundaries


def halves(split: int, shape=(8, 10)) -> np.ndarray:
    labels = np.zeros(shape, dtype=np.int64)
    labels[:, split:] = 1
    return labels


def test_boundaries_are_the_pixels_on_both_sides_of_a_label_change():
    edges = class_boundaries(halves(4, (2, 6)))
    assert edges.astype(int).tolist() == [[0, 0, 0, 1, 1, 0], [0, 0, 0, 1, 1, 0]]
    valid = np.ones((2, 6), bool)
    valid[:, 4:] = False  # an edge against ignored pixels is no edge
    assert not class_boundaries(halves(4, (2, 6)), valid).any()


def test_perfect_prediction_scores_one_and_shift_depends_on_tolerance():
    truth = halves(5)
    metric = BoundaryF1(num_classes=2, tolerance=0)
    metric.update(truth, truth)
    assert metric.compute().mean_f1 == 1.0
    for tolerance, expected in ((0, 0.0), (1, 1.0), (2, 1.0)):
        metric = BoundaryF1(num_classes=2, tolerance=tolerance)
        metric.update(halves(6), truth)  # one column off
        scores = metric.compute()
        assert scores.mean_f1 == pytest.approx(expected)
        assert scores.pooled_f1 == pytest.approx(expected)


def test_precision_and_recall_count_extra_and_missing_boundaries():
    truth = halves(5)
    pred = truth.copy()
    pred[:, 8:] = 0  # an extra boundary at column 7/8 that the truth lacks
    metric = BoundaryF1(num_classes=2, tolerance=0)
    metric.update(pred, truth)
    scores = metric.compute()
    assert scores.recall.tolist() == [1.0, 1.0]
    # class 0: 8 true edge pixels hit of 16 predicted; class 1: 8 of 16.
    assert scores.precision.tolist() == [0.5, 0.5]
    assert scores.mean_f1 == pytest.approx(2 * 0.5 / 1.5)


def test_streaming_sums_counts_and_reset_forgets():
    metric = BoundaryF1(num_classes=3, tolerance=1)
    metric.update(halves(6), halves(5))
    metric.update(halves(2), halves(5))  # far off: no hit
    scores = metric.compute()
    assert scores.mean_f1 == pytest.approx(0.5)
    assert np.isnan(scores.f1[2])  # class 2 never appears
    metric.reset()
    assert metric.counts.sum() == 0


def test_ignored_truth_hides_predicted_edges():
    truth = halves(5)
    truth[:, 7:] = 255
    pred = halves(5)
    pred[:, 8:] = 0  # an edge inside the ignored area
    metric = BoundaryF1(num_classes=2, tolerance=0, ignore_index=255)
    metric.update(pred, truth)
    assert metric.compute().mean_f1 == 1.0


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="tolerance"):
        BoundaryF1(num_classes=2, tolerance=-1)
    metric = BoundaryF1(num_classes=2)
    with pytest.raises(ValueError, match="one shape"):
        metric.update(np.zeros((3, 3), int), np.zeros((3, 4), int))
    with pytest.raises(ValueError, match="accepted: 0..1"):
        metric.update(np.full((3, 3), 5), np.zeros((3, 3), int))
