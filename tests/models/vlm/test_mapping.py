"""Allocation -> kept tokens of a model's grid."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.allocate import allocate
from clusterlens.models.vlm import resample_mask, token_keep_mask


def block_relevance(size: int = 64) -> np.ndarray:
    relevance = np.zeros((size, size), np.float32)
    relevance[: size // 2, : size // 2] = 1.0
    return relevance


def test_same_grid_is_one_to_one():
    allocation = allocate(block_relevance(), "topk", budget=16, grid=8)
    keep = token_keep_mask(allocation, 8, 8)
    assert np.array_equal(keep, allocation.coverage_mask())
    assert keep.sum() == 16


def test_coarser_token_grid_keeps_tokens_mostly_covered():
    allocation = allocate(block_relevance(), "topk", budget=16, grid=8)  # top-left 4 x 4 cells
    keep = token_keep_mask(allocation, 4, 4)
    expected = np.zeros((4, 4), bool)
    expected[:2, :2] = True
    assert np.array_equal(keep, expected)


def test_finer_token_grid_keeps_every_token_inside_a_kept_patch():
    allocation = allocate(block_relevance(), "topk", budget=1, grid=2)  # the top-left quarter
    keep = token_keep_mask(allocation, 6, 6)
    assert keep.sum() == 9 and keep[:3, :3].all()


def test_a_patch_smaller_than_a_token_still_keeps_its_centre_token():
    relevance = np.zeros((64, 64), np.float32)
    relevance[40:48, 8:16] = 1.0  # cell (5, 1) of an 8 x 8 grid
    allocation = allocate(relevance, "topk", budget=1, grid=8)
    keep = token_keep_mask(allocation, 3, 3)  # 1/64 of the image covers <50% of any token
    assert keep.sum() == 1 and keep[2, 0]


def test_quadtree_leaves_cover_their_blocks():
    allocation = allocate(block_relevance(), "quadtree", budget=4, grid=8)
    keep = token_keep_mask(allocation, 8, 8)
    assert np.array_equal(keep, allocation.coverage_mask())


def test_bad_arguments_are_explained():
    allocation = allocate(block_relevance(), "topk", budget=4, grid=8)
    with pytest.raises(ValueError, match="token grid must be at least 1x1"):
        token_keep_mask(allocation, 0, 4)
    with pytest.raises(ValueError, match="min_overlap must lie in"):
        token_keep_mask(allocation, 4, 4, min_overlap=0)


def test_resample_mask_between_grids():
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    assert np.array_equal(resample_mask(mask, 2, 2), [[True, False], [False, False]])
    assert resample_mask(mask, 8, 8).sum() == 16
    with pytest.raises(ValueError, match="non-empty"):
        resample_mask(np.zeros(3, bool), 2, 2)
