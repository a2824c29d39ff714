"""Hierarchical refinement and the semantic merger on hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.segment.merge import SemanticMaskMerger, paint_masks
from clusterlens.segment.refine import HierarchicalRefiner


def two_halves(height=16, width=16):
    masks = np.zeros((2, 3, height, width), bool)
    masks[0, :, :, : width // 2] = True
    masks[1, :, :, width // 2 :] = True
    features = np.zeros((2, height, width), np.float32)
    features[0, :, : width // 2] = 1.0
    features[1, :, width // 2 :] = 1.0
    return masks, features


def test_refined_masks_follow_features_and_stay_in_unit_range():
    masks, features = two_halves()
    # The proposer's coarse masks are sloppy: both spill 3 px over the middle.
    masks[0, 0, :, :11] = True
    masks[1, 0, :, 5:] = True
    soft = HierarchicalRefiner(levels=(0.5, 1.0, 1.0), residual=0.0, carry=0.0).refine(
        masks, features, np.zeros((16, 16, 3), np.float32)
    )
    assert soft.shape == (2, 16, 16)
    assert soft.min() >= 0 and soft.max() <= 1
    assert (soft[0, :, :8] > 0.9).all() and (soft[0, :, 8:] < 0.1).all()


def test_colour_term_separates_what_semantics_cannot():
    masks, _ = two_halves()
    features = np.ones((1, 16, 16), np.float32)  # semantically all alike
    image = np.zeros((16, 16, 3), np.float32)
    image[:, 8:] = 1.0
    masks[:, 0] = True  # coarse masks cover everything
    semantic_only = HierarchicalRefiner(color_weight=0.0, residual=0.0, carry=0.0)
    with_colour = HierarchicalRefiner(color_weight=1.0, residual=0.0, carry=0.0)
    dull = semantic_only.refine(masks, features, image)
    sharp = with_colour.refine(masks, features, image)
    assert sharp[0, :, :8].mean() > 0.95
    assert sharp[0, :, :8].mean() > dull[0, :, :8].mean() + 0.15


def test_refiner_rejects_bad_shapes_and_options():
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        HierarchicalRefiner().refine(
            np.zeros((2, 2, 4, 4), bool), np.zeros((1, 4, 4)), np.zeros((4, 4, 3))
        )
    with pytest.raises(ValueError, match="residual"):
        HierarchicalRefiner(residual=1.5)
    empty = HierarchicalRefiner().refine(
        np.zeros((0, 3, 4, 4), bool), np.zeros((1, 4, 4)), np.zeros((4, 4, 3), np.float32)
    )
    assert empty.shape == (0, 4, 4)


def scores(height=8, width=8):
    probabilities = np.full((3, height, width), 0.1, np.float32)
    probabilities[0, :, :4] = 0.8
    probabilities[1, :, 4:] = 0.8
    return probabilities / probabilities.sum(axis=0, keepdims=True)


def test_painting_votes_for_the_query_class_and_keeps_dense_elsewhere():
    probabilities = scores()
    masks = np.zeros((1, 8, 8), np.float32)
    masks[0, :, 6:] = 1.0
    labels = paint_masks(masks, np.array([2]), probabilities, mask_weight=0.9)
    assert (labels[:, 6:] == 2).all() and (labels[:, :4] == 0).all() and (labels[:, 4:6] == 1).all()
    assert (
        paint_masks(np.zeros((0, 8, 8)), np.zeros(0, int), probabilities) == probabilities.argmax(0)
    ).all()


def test_merger_relabels_masks_by_what_they_cover_and_merges_same_class_overlaps():
    probabilities = scores()
    masks = np.zeros((3, 8, 8), np.float32)
    masks[0, :, :4] = 1.0
    masks[1, :, :3] = 1.0  # overlaps mask 0, same class
    masks[2, :, 4:] = 1.0
    result = SemanticMaskMerger(mask_weight=1.0).merge(masks, probabilities)
    assert sorted(map(sorted, result.groups)) == [[0, 1], [2]]
    assert sorted(result.group_classes.tolist()) == [0, 1]
    assert (result.labels == probabilities.argmax(0)).all()
    assert not result.contested.any()


def test_contested_pixels_take_the_region_mean():
    probabilities = scores()
    probabilities[:, :, 3] = probabilities[:, :, 4]  # column 3 looks like class 1 ...
    masks = np.zeros((2, 8, 8), np.float32)
    masks[0, :, :5] = 1.0
    masks[1, :, 3:] = 1.0  # columns 3-4 contested
    regions = np.zeros((8, 8), np.int32)
    regions[:, 4:] = 1  # ... but its superpixel (columns 0-3) is mostly class 0
    merger = SemanticMaskMerger(mask_weight=1.0, overlap_threshold=0.9)
    result = merger.merge(masks, probabilities, regions=regions)
    assert result.contested[:, 3:5].all() and not result.contested[:, :3].any()
    assert (result.labels[:, 3] == 0).all() and (result.labels[:, 4] == 1).all()


def test_class_embeddings_decide_which_classes_count_as_one():
    probabilities = np.full((3, 16, 16), 0.1, np.float32)
    probabilities[0, :, :6] = 0.8
    probabilities[1, :, 6:] = 0.8
    masks = np.zeros((2, 16, 16), np.float32)
    masks[0, :, :8] = 1.0  # mostly class 0
    masks[1, :, 4:] = 1.0  # mostly class 1; overlaps half of mask 0
    synonyms = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0]], np.float32)  # 0 ~ 1
    merger = SemanticMaskMerger(overlap_threshold=0.3, region_similarity=1.1)
    assert len(merger.merge(masks, probabilities, class_embeddings=synonyms).groups) == 1
    distinct = np.eye(3, dtype=np.float32)
    assert len(merger.merge(masks, probabilities, class_embeddings=distinct).groups) == 2
    with pytest.raises(ValueError, match="share H, W"):
        merger.merge(np.zeros((1, 4, 4)), probabilities)
    for option in ("overlap_threshold", "mask_weight"):
        with pytest.raises(ValueError, match=option):
            SemanticMaskMerger(**{option: 1.5})


def test_each_level_can_use_its_own_features():
    masks, features = two_halves()
    masks[:, 0] = True  # coarse masks cover everything
    flat = np.ones((2, 16, 16), np.float32)
    refiner = HierarchicalRefiner(levels=(0.5, 1.0, 1.0), color_weight=0.0, residual=0.0, carry=0.0)
    image = np.zeros((16, 16, 3), np.float32)
    sharp = refiner.refine(masks, [flat, flat, features], image)  # detail only at the fine level
    blind = refiner.refine(masks, [features, features, flat], image)  # none at the fine level
    assert sharp[0, :, :8].mean() > 0.95
    assert sharp[0, :, :8].mean() > blind[0, :, :8].mean() + 0.1
    with pytest.raises(ValueError, match="three of them"):
        refiner.refine(masks, [flat, flat], image)
