"""Resolving overlapping / incomplete masks into one label map."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.regions import resolve_masks


def box(shape, rows, cols):
    mask = np.zeros(shape, dtype=bool)
    mask[rows, cols] = True
    return mask


def test_overlap_goes_to_the_most_stable_mask():
    shape = (4, 6)
    left = {"segmentation": box(shape, slice(None), slice(0, 4)), "stability_score": 0.90}
    right = {"segmentation": box(shape, slice(None), slice(2, 6)), "stability_score": 0.95}
    labels = resolve_masks([left, right], shape)
    # right is more stable: it becomes id 0 and wins the overlap (columns 2-3).
    assert labels[0].tolist() == [1, 1, 0, 0, 0, 0]


def test_ties_fall_back_to_iou_then_area_then_input_order():
    shape = (2, 4)
    small = {"segmentation": box(shape, slice(None), slice(0, 2)), "stability_score": 0.9}
    big = {"segmentation": box(shape, slice(None), slice(0, 3)), "stability_score": 0.9}
    # Equal stability: the bigger mask ranks first and covers the small one entirely.
    assert resolve_masks([small, big], shape, "background")[0].tolist() == [0, 0, 0, 1]
    better_iou = dict(small, predicted_iou=0.99)
    assert resolve_masks([better_iou, big], shape)[0].tolist() == [0, 0, 1, 1]
    twin = box(shape, slice(None), slice(0, 2))
    # Identical twins: the first listed wins everything; the second is dropped.
    assert resolve_masks([twin, twin.copy()], shape, "background")[0].tolist() == [0, 0, 1, 1]


def test_fully_covered_mask_is_dropped():
    shape = (3, 3)
    whole = {"segmentation": np.ones(shape, bool), "stability_score": 0.99}
    inner = {"segmentation": box(shape, 1, 1), "stability_score": 0.5}
    assert np.unique(resolve_masks([whole, inner], shape)).tolist() == [0]


def test_leftovers_nearest_or_background():
    shape = (1, 6)
    left = box(shape, 0, slice(0, 2))
    right = box(shape, 0, slice(4, 6))
    nearest = resolve_masks([left, right], shape, leftovers="nearest")
    # Equal scores and areas: input order ranks; each gap pixel joins its nearer mask.
    assert nearest[0].tolist() == [0, 0, 0, 1, 1, 1]
    background = resolve_masks([left, right], shape, leftovers="background")
    assert background[0, 2] == background[0, 3] == 2  # one extra cluster, the last id


def test_no_masks_gives_one_cluster():
    assert resolve_masks([], (2, 3)).tolist() == [[0, 0, 0], [0, 0, 0]]
    empty = np.zeros((2, 3), dtype=bool)
    assert resolve_masks([empty], (2, 3), leftovers="background").max() == 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="leftovers"):
        resolve_masks([], (2, 2), leftovers="drop")
    with pytest.raises(ValueError, match="expected"):
        resolve_masks([np.zeros((3, 3), bool)], (2, 2))
