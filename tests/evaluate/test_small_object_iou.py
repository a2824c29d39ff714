"""Small-object IoU on hand-made label maps."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.evaluate.segmentation import SmallObjectIoU


def scene() -> np.ndarray:
    truth = np.zeros((20, 20), dtype=np.int64)
    truth[2:4, 2:4] = 1  # small: 4 px
    truth[10:12, 15:18] = 2  # small: 6 px
    return truth


def test_perfect_prediction_and_missed_objects():
    metric = SmallObjectIoU(num_classes=3, area_fraction=0.05, margin=2)
    metric.update(scene(), scene())
    assert metric.compute().miou == 1.0
    metric.reset()
    metric.update(np.zeros((20, 20), int), scene())
    scores = metric.compute()
    assert scores.miou == 0.0
    assert scores.objects.tolist() == [0, 1, 1]  # background is large, not counted


def test_nearby_false_positives_count_far_ones_do_not():
    pred = scene()
    pred[4, 2:4] = 1  # two extra pixels touching the 4-pixel object
    pred[18, 18] = 1  # far away: outside the margin
    metric = SmallObjectIoU(num_classes=3, area_fraction=0.05, margin=2)
    metric.update(pred, scene())
    scores = metric.compute()
    assert scores.class_iou[1] == pytest.approx(4 / 6)
    assert scores.class_iou[2] == 1.0
    assert scores.miou == pytest.approx((4 / 6 + 1) / 2)  # averaged over objects


def test_area_fraction_decides_what_is_small_and_ignore_is_skipped():
    truth = scene()
    metric = SmallObjectIoU(num_classes=3, area_fraction=0.012, margin=1)  # < 4.8 px
    metric.update(truth, truth)
    assert metric.compute().objects.tolist() == [0, 1, 0]
    ignored = truth.copy()
    ignored[2:4, 2:4] = 255
    metric = SmallObjectIoU(num_classes=3, area_fraction=0.05, ignore_index=255)
    metric.update(np.zeros((20, 20), int), ignored)
    assert metric.compute().objects.tolist() == [0, 0, 1]


def test_two_separate_blobs_of_one_class_are_two_objects():
    truth = np.zeros((20, 20), dtype=np.int64)
    truth[1:3, 1:3] = 1
    truth[15:17, 15:17] = 1
    pred = np.zeros_like(truth)
    pred[1:3, 1:3] = 1
    metric = SmallObjectIoU(num_classes=2, area_fraction=0.05)
    metric.update(pred, truth)
    scores = metric.compute()
    assert scores.objects[1] == 2 and scores.miou == pytest.approx(0.5)


def test_no_small_object_gives_nan_and_bad_options_raise():
    metric = SmallObjectIoU(num_classes=2)
    metric.update(np.zeros((5, 5), int), np.zeros((5, 5), int))
    assert np.isnan(metric.compute().miou)
    with pytest.raises(ValueError, match="area_fraction"):
        SmallObjectIoU(num_classes=2, area_fraction=0)
    with pytest.raises(ValueError, match="margin"):
        SmallObjectIoU(num_classes=2, margin=-1)
