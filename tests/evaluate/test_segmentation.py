"""Confusion-matrix mIoU, checked against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clusterlens.evaluate.segmentation import (
    MeanIoU,
    confusion_matrix,
    mean_iou,
    per_class_iou,
    scores_from_confusion,
)

# truth   0 0 1      prediction   0 1 1
#         1 2 2                   1 2 0
TARGET = np.array([[0, 0, 1], [1, 2, 2]])
PRED = np.array([[0, 1, 1], [1, 2, 0]])
# Rows are truth, columns prediction:
#   class 0: one pixel right, one predicted 1  -> [1, 1, 0]
#   class 1: both right                        -> [0, 2, 0]
#   class 2: one right, one predicted 0        -> [1, 0, 1]
EXPECTED_CONFUSION = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 1]])
# IoU_k = TP / (row + column - TP): 1/(2+2-1), 2/(2+3-2), 1/(2+1-1)
EXPECTED_IOU = np.array([1 / 3, 2 / 3, 1 / 2])


def test_confusion_matrix_counts_truth_rows_and_prediction_columns():
    np.testing.assert_array_equal(confusion_matrix(PRED, TARGET, 3), EXPECTED_CONFUSION)


def test_per_class_and_mean_iou_match_hand_computation():
    np.testing.assert_allclose(per_class_iou(PRED, TARGET, 3), EXPECTED_IOU)
    assert mean_iou(PRED, TARGET, 3) == pytest.approx(0.5)


def test_pixel_accuracy_is_fraction_of_correct_pixels():
    assert scores_from_confusion(EXPECTED_CONFUSION).pixel_accuracy == pytest.approx(4 / 6)


def test_ignored_pixels_are_not_counted():
    target = np.array([[0, 0, 1, 11], [1, 2, 2, 11]])
    pred = np.array([[0, 1, 1, 2], [1, 2, 0, 0]])
    matrix = confusion_matrix(pred, target, 3, ignore_index=11)
    np.testing.assert_array_equal(matrix, EXPECTED_CONFUSION)


def test_class_absent_from_truth_and_prediction_is_nan_and_left_out_of_mean():
    scores = scores_from_confusion(confusion_matrix(PRED, TARGET, 4))
    assert math.isnan(scores.iou[3])
    assert scores.miou == pytest.approx(0.5)


def test_class_predicted_but_absent_from_truth_scores_zero():
    # Truth is all class 0; one pixel wrongly predicted as class 1.
    iou = per_class_iou(np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0]), 2)
    np.testing.assert_allclose(iou, [0.75, 0.0])


def test_perfect_prediction_scores_one():
    assert mean_iou(TARGET, TARGET, 3) == 1.0


def test_torch_tensors_are_accepted():
    matrix = confusion_matrix(torch.from_numpy(PRED), torch.from_numpy(TARGET), 3)
    np.testing.assert_array_equal(matrix, EXPECTED_CONFUSION)


def test_metric_accumulates_over_updates_and_resets():
    metric = MeanIoU(num_classes=3, ignore_index=255)
    metric.update(PRED[0], TARGET[0])
    metric.update(PRED[1], TARGET[1])
    result = metric.compute()
    np.testing.assert_array_equal(result.confusion, EXPECTED_CONFUSION)
    assert result.miou == pytest.approx(0.5)
    metric.reset()
    assert metric.confusion.sum() == 0
    assert math.isnan(metric.compute().miou)


def test_dataset_level_miou_differs_from_mean_of_image_mious():
    # Image A: perfect on a large class-0 area. Image B: class 1 entirely missed.
    metric = MeanIoU(num_classes=2)
    metric.update(np.zeros(8, int), np.zeros(8, int))
    metric.update(np.zeros(2, int), np.ones(2, int))
    # Summed matrix [[8, 0], [2, 0]]: IoU0 = 8/10, IoU1 = 0 -> 0.4.
    assert metric.compute().miou == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("pred", "target", "message"),
    [
        (np.zeros((2, 3), int), np.zeros((3, 2), int), "shape"),
        (np.zeros(3, float), np.zeros(3, int), "integer"),
        (np.array([0, 3]), np.array([0, 1]), "0..2"),
        (np.array([0, 1]), np.array([0, 7]), "0..2"),
    ],
)
def test_bad_inputs_raise_clear_value_errors(pred, target, message):
    with pytest.raises(ValueError, match=message):
        confusion_matrix(pred, target, 3)


def test_bad_num_classes_is_rejected():
    with pytest.raises(ValueError, match="num_classes"):
        MeanIoU(num_classes=0)
