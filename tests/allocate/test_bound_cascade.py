"""bound-cascade: exact top-K from score intervals, known channels, and its tolerance."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from clusterlens.allocate import CellScorer, PatchGrid, allocate, linear_combiner
from clusterlens.allocate.bound_cascade import decide


def blob_relevance() -> np.ndarray:
    """Faint noise with one bright 8x8-cell object on a 32x32 grid of 8-px cells."""
    relevance = np.random.default_rng(0).random((256, 256)).astype(np.float32) * 0.1
    relevance[40:104, 152:216] += 0.9
    return relevance


def smooth_maps(seed: int, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.random((3, height, width)).astype(np.float32)
    return np.stack([cv2.GaussianBlur(plane, (0, 0), 6) for plane in noise])


def kept(allocation) -> set[tuple[int, int]]:
    return set(zip(allocation.rows.tolist(), allocation.cols.tolist(), strict=True))


def true_scores(maps: np.ndarray, combine) -> np.ndarray:
    grid = PatchGrid.from_count(*maps.shape[1:], 32)
    return CellScorer.from_maps(maps, grid, combine).score_level(0).numpy()


@pytest.mark.parametrize("known", [(), ("channel_0", "channel_1")])
@pytest.mark.parametrize("seed", range(6))
def test_bound_cascade_keeps_the_exhaustive_top_k(seed, known):
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(60, 260, 2))  # odd grids included
    maps = smooth_maps(seed, height, width)
    combine = linear_combiner([0.2, 0.3, 0.5])
    budget = int(rng.integers(1, 200))
    found = allocate(maps, "bound-cascade", budget, combine=combine, known_channels=known)
    exhaustive = allocate(maps, "topk", budget, combine=combine)
    assert kept(found) == kept(exhaustive)


def test_reported_scores_are_close_to_the_true_scores():
    maps = smooth_maps(4, 256, 256)
    combine = linear_combiner([0.2, 0.3, 0.5])
    found = allocate(maps, "bound-cascade", 50, combine=combine, known_channels=["channel_0"])
    every = true_scores(maps, combine)
    # midpoints of intervals narrow enough to decide: close to, not equal to, the truth
    np.testing.assert_allclose(found.scores, every[found.rows, found.cols], atol=0.05)


def test_known_channels_are_read_for_free_and_cut_the_cells_scored():
    maps = smooth_maps(5, 256, 256)
    maps[2] *= 0.2  # the query channel varies less than the known ones
    counted = allocate(maps, "bound-cascade", 64)
    known = allocate(maps, "bound-cascade", 64, known_channels=["channel_0", "channel_1"])
    assert kept(known) == kept(counted)
    assert known.cells_scored < counted.cells_scored


def test_bound_cascade_prunes_where_the_bound_rules_cells_out():
    allocation = allocate(blob_relevance(), "bound-cascade", budget=64)
    reference = allocate(blob_relevance(), "topk", budget=64)
    assert set(zip(allocation.rows.tolist(), allocation.cols.tolist(), strict=True)) == set(
        zip(reference.rows.tolist(), reference.cols.tolist(), strict=True)
    )
    assert allocation.cells_scored < 0.5 * 1024
    assert set(allocation.stage_ms) == {"scan", "refine", "select"}


@pytest.mark.parametrize("known", [(), ("channel_1",)])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tolerance", [0.01, 0.05, 0.2])
def test_no_unkept_cell_beats_the_lowest_kept_by_more_than_twice_the_tolerance(
    tolerance, seed, known
):
    maps = smooth_maps(seed, 256, 256)
    combine = linear_combiner([0.2, 0.3, 0.5])
    allocation = allocate(
        maps, "bound-cascade", 100, combine=combine, tolerance=tolerance, known_channels=known
    )
    every = true_scores(maps, combine)
    unkept = np.ones_like(every, dtype=bool)
    unkept[allocation.rows, allocation.cols] = False
    lowest_kept = every[allocation.rows, allocation.cols].min()
    assert every[unkept].max() <= lowest_kept + 2 * tolerance + 1e-6


def test_a_larger_tolerance_scores_fewer_cells():
    maps = smooth_maps(3, 256, 256)
    exact = allocate(maps, "bound-cascade", 64)
    loose = allocate(maps, "bound-cascade", 64, tolerance=0.1)
    assert loose.cells_scored < exact.cells_scored


def test_bound_cascade_options_are_checked():
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        allocate(blob_relevance(), "bound-cascade", 8, tolerance=-1)
    with pytest.raises(ValueError, match="not among the channels"):
        allocate(blob_relevance(), "bound-cascade", 8, known_channels=["salience"])
    with pytest.raises(ValueError, match="at least one channel must depend on the query"):
        allocate(blob_relevance(), "bound-cascade", 8, known_channels=["channel_0"])
    with pytest.raises(ValueError, match="start_level must lie in"):
        allocate(blob_relevance(), "bound-cascade", 8, start_level=9)
    at_finest = allocate(blob_relevance(), "bound-cascade", 8, start_level=0)
    assert at_finest.cells_scored == 1024  # starting at the finest level is exhaustive


def test_decide_settles_cells_by_their_intervals():
    low = np.array([0.9, 0.5, 0.45, 0.1])
    high = np.array([1.0, 0.6, 0.7, 0.2])
    sure_in, sure_out = decide(low, high, budget=2, tolerance=0.0)
    # 0.9 beats every other high; 0.1-0.2 is below two lows; 0.5-0.6 and 0.45-0.7 overlap
    assert sure_in.tolist() == [True, False, False, False]
    assert sure_out.tolist() == [False, False, False, True]
    sure_in, _ = decide(low, high, budget=2, tolerance=0.2)  # within 0.2 counts as tied
    assert sure_in.tolist() == [True, True, True, False]
    everything_in, nothing_out = decide(low, high, budget=4, tolerance=0.0)
    assert everything_in.all() and not nothing_out.any()
