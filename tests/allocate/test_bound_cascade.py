"""bound-cascade: exact top-K by branch and bound, and its tolerance guarantee."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from clusterlens.allocate import CellScorer, PatchGrid, allocate, linear_combiner


def blob_relevance() -> np.ndarray:
    """Faint noise with one bright 8x8-cell object on a 32x32 grid of 8-px cells."""
    relevance = np.random.default_rng(0).random((256, 256)).astype(np.float32) * 0.1
    relevance[40:104, 152:216] += 0.9
    return relevance


def smooth_maps(seed: int, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.random((3, height, width)).astype(np.float32)
    return np.stack([cv2.GaussianBlur(plane, (0, 0), 6) for plane in noise])


@pytest.mark.parametrize("seed", range(6))
def test_bound_cascade_keeps_the_exhaustive_top_k(seed):
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(60, 260, 2))  # odd grids included
    maps = smooth_maps(seed, height, width)
    combine = linear_combiner([0.2, 0.3, 0.5])
    budget = int(rng.integers(1, 200))
    found = allocate(maps, "bound-cascade", budget, combine=combine)
    exhaustive = allocate(maps, "topk", budget, combine=combine)
    np.testing.assert_allclose(found.scores, exhaustive.scores, rtol=1e-6)


def test_bound_cascade_prunes_where_the_bound_rules_cells_out():
    allocation = allocate(blob_relevance(), "bound-cascade", budget=64)
    reference = allocate(blob_relevance(), "topk", budget=64)
    assert set(zip(allocation.rows.tolist(), allocation.cols.tolist(), strict=True)) == set(
        zip(reference.rows.tolist(), reference.cols.tolist(), strict=True)
    )
    assert allocation.cells_scored < 0.5 * 1024
    assert set(allocation.stage_ms) == {"descend", "bound", "select"}


@pytest.mark.parametrize("tolerance", [0.05, 0.2])
def test_no_unkept_cell_beats_the_last_kept_by_more_than_the_tolerance(tolerance):
    maps = smooth_maps(7, 256, 256)
    combine = linear_combiner([0.2, 0.3, 0.5])
    allocation = allocate(maps, "bound-cascade", 100, combine=combine, tolerance=tolerance)
    scores = CellScorer.from_maps(maps, PatchGrid.from_count(256, 256, 32), combine)
    every = scores.score_level(0).numpy()
    unkept = np.ones_like(every, dtype=bool)
    unkept[allocation.rows, allocation.cols] = False
    assert every[unkept].max() <= allocation.scores.min() + tolerance + 1e-6


def test_a_larger_tolerance_scores_fewer_cells():
    maps = smooth_maps(3, 256, 256)
    exact = allocate(maps, "bound-cascade", 64)
    loose = allocate(maps, "bound-cascade", 64, tolerance=0.1)
    assert loose.cells_scored < exact.cells_scored


def test_bound_cascade_options_are_checked():
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        allocate(blob_relevance(), "bound-cascade", 8, tolerance=-1)
    with pytest.raises(ValueError, match="start_level must lie in"):
        allocate(blob_relevance(), "bound-cascade", 8, start_level=9)
    at_finest = allocate(blob_relevance(), "bound-cascade", 8, start_level=0)
    assert at_finest.cells_scored == 1024  # starting at the finest level is exhaustive
