"""PatchGrid geometry and CellScorer pyramids."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clusterlens.allocate import CellScorer, PatchGrid, linear_combiner


def test_grid_from_count_and_patch_size():
    grid = PatchGrid.from_count(360, 480, 32)
    assert (grid.rows, grid.cols, grid.size) == (32, 32, 1024)
    clipped = PatchGrid.from_patch_size(100, 70, 28)
    assert (clipped.rows, clipped.cols) == (4, 3)
    box = clipped.normalized_boxes(np.array([0]), np.array([3]), np.array([2]))
    np.testing.assert_allclose(box, [[2 / 3, 3 / 4, 1.0, 1.0]])


def test_image_smaller_than_one_patch_is_one_clipped_patch():
    grid = PatchGrid.from_patch_size(10, 12, 32)
    assert grid.size == 1
    assert grid.pixel_boxes(
        grid.normalized_boxes(np.array([0]), np.array([0]), np.array([0]))
    ).tolist() == [[0, 0, 12, 10]]


def test_cell_means_are_exact_at_every_level():
    rng = np.random.default_rng(0)
    plane = rng.random((50, 70)).astype(np.float32)
    grid = PatchGrid(50, 70, 5, 7)  # cells of 10x10 pixels
    levels = grid.cell_means(plane, 3)
    np.testing.assert_allclose(levels[0][1, 2], plane[10:20, 20:30].mean(), rtol=1e-5)
    np.testing.assert_allclose(levels[1][0, 3], plane[0:20, 60:70].mean(), rtol=1e-5)  # clipped
    np.testing.assert_allclose(levels[2][1, 1], plane[40:50, 40:70].mean(), rtol=1e-5)


def test_grid_finer_than_the_image_uses_nearest_pixels():
    plane = np.array([[0.0, 1.0]], np.float32)
    means = PatchGrid(1, 2, 2, 4).cell_means(plane)[0]
    assert means.shape == (2, 4)
    np.testing.assert_allclose(means[0], [0, 0, 1, 1])


def test_scorer_counts_and_combines():
    maps = np.stack([np.full((8, 8), 1.0), np.full((8, 8), 0.5)]).astype(np.float32)
    scorer = CellScorer.from_maps(maps, PatchGrid(8, 8, 4, 4), linear_combiner([2.0, -1.0]))
    scores = scorer.score(0, torch.tensor([0, 1]), torch.tensor([0, 3]))
    torch.testing.assert_close(scores, torch.tensor([1.5, 1.5]))
    scorer.score_level(1)
    assert scorer.scored == 2 + 4 and scorer.scored_by_level == {0: 2, 1: 4}


def test_max_summary_keeps_a_single_bright_cell():
    plane = np.zeros((64, 64), np.float32)
    plane[0:8, 0:8] = 1.0  # one cell of an 8x8 grid
    scorer = CellScorer.from_maps(plane, PatchGrid(64, 64, 8, 8))
    assert scorer.score_level(3, "max").item() == 1.0
    assert scorer.score_level(3, "mean").item() == pytest.approx(1 / 64)


def test_maps_must_match_the_grid():
    with pytest.raises(ValueError, match="do not match"):
        CellScorer.from_maps(np.zeros((4, 5)), PatchGrid(5, 5, 1, 1))


def test_query_ranges_bound_the_query_channels_below_each_cell_and_are_counted():
    maps = np.random.default_rng(1).random((3, 24, 40)).astype(np.float32)  # odd 3x5 grid
    grid = PatchGrid.from_count(24, 40, (6, 10))
    scorer = CellScorer.from_maps(maps, grid, channel_names=("a", "b", "c"), known_channels=("b",))
    assert scorer.query_channels == (0, 2)
    low, high = scorer.query_ranges(1, np.array([0, 2]), np.array([4, 1]))
    finest = scorer.mean_levels[0].numpy()
    for index, (row, col) in enumerate([(0, 4), (2, 1)]):
        block = finest[[0, 2], 2 * row : 2 * row + 2, 2 * col : 2 * col + 2].reshape(2, -1)
        np.testing.assert_allclose(low[index], block.min(axis=1))
        np.testing.assert_allclose(high[index], block.max(axis=1))
    assert scorer.scored == 2 and scorer.scored_by_level == {1: 2}
    exact_low, exact_high = scorer.query_ranges(0, np.array([3]), np.array([7]))
    np.testing.assert_allclose(exact_low, exact_high)  # the finest level is exact


def test_known_channels_must_name_channels_and_leave_one_to_score():
    maps = np.zeros((2, 16, 16), np.float32)
    grid = PatchGrid.from_count(16, 16, 4)
    with pytest.raises(ValueError, match="not among the channels"):
        CellScorer.from_maps(maps, grid, channel_names=("a", "b"), known_channels=("z",))
    with pytest.raises(ValueError, match="at least one channel must depend on the query"):
        CellScorer.from_maps(maps, grid, channel_names=("a", "b"), known_channels=("a", "b"))
