"""Every strategy: what it keeps, what it costs, and its error paths."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clusterlens.allocate import allocate, list_strategies, variable_budgets

SIDE = 256


def blob_relevance(seed: int = 0) -> np.ndarray:
    """Smooth background noise plus two objects of different sizes."""
    rng = np.random.default_rng(seed)
    relevance = rng.random((SIDE, SIDE)).astype(np.float32) * 0.1
    relevance[40:104, 152:216] += 0.9  # 8x8 cells of a 32x32 grid of 8-px cells
    relevance[176:192, 32:48] += 0.7  # 2x2 cells
    return relevance


def block_clusters() -> np.ndarray:
    """Square 32-px clusters (a stand-in for a real cluster map), ids 0..63."""
    index = np.arange(SIDE) // 32
    return (index[:, None] * 8 + index[None, :]).astype(np.int64)


def kept_cells(allocation) -> set[tuple[int, int]]:
    return set(zip(allocation.rows.tolist(), allocation.cols.tolist(), strict=True))


def test_topk_is_exhaustive_and_exact():
    relevance = blob_relevance()
    allocation = allocate(relevance, "topk", budget=68)
    assert allocation.cells_scored == 1024 and len(allocation) == 68
    object_cells = {(r, c) for r in range(5, 13) for c in range(19, 27)} | {
        (r, c) for r in range(22, 24) for c in range(4, 6)
    }
    assert kept_cells(allocation) == object_cells
    assert np.all(np.diff(allocation.scores) <= 0)  # best first


@pytest.mark.parametrize("strategy", ["mip-cascade", "cluster-cascade", "hierarchical-cluster"])
def test_cascades_recover_the_exhaustive_top_k_scoring_fewer_cells(strategy):
    relevance = blob_relevance()
    clusters = block_clusters()
    reference = kept_cells(allocate(relevance, "topk", budget=64))
    allocation = allocate(relevance, strategy, budget=64, clusters=clusters, parents=clusters // 16)
    recovered = len(kept_cells(allocation) & reference) / 64
    assert recovered >= 0.95
    assert allocation.cells_scored < 0.5 * 1024


def test_mip_cascade_with_max_summary_finds_a_small_object_mean_misses():
    relevance = np.zeros((SIDE, SIDE), np.float32)
    relevance[8:16, 8:16] = 1.0  # one finest cell
    relevance[128:256, 128:256] = 0.3  # a large dull region
    found_max = allocate(relevance, "mip-cascade", budget=1, summary="max")
    found_mean = allocate(relevance, "mip-cascade", budget=1, summary="mean", min_keep=1)
    assert kept_cells(found_max) == {(1, 1)}
    assert kept_cells(found_mean) != {(1, 1)}


def test_mip_cascade_keeps_min_keep_cells_per_level_so_separate_objects_survive():
    relevance = np.zeros((SIDE, SIDE), np.float32)
    corners = [(16, 16), (16, 208), (208, 16), (208, 208)]  # 2x2 finest cells each
    for (top, left), value in zip(corners, [1.0, 0.95, 0.9, 0.85], strict=True):
        relevance[top : top + 16, left : left + 16] = value
    reference = kept_cells(allocate(relevance, "topk", budget=16))
    one = allocate(relevance, "mip-cascade", budget=16, min_keep=1)
    default = allocate(relevance, "mip-cascade", budget=16)
    assert len(kept_cells(one) & reference) == 4  # one coarse cell survives the first cut
    assert kept_cells(default) == reference


def test_cluster_cascade_samples_at_least_min_share_of_the_grid():
    relevance, clusters = blob_relevance(), block_clusters()
    small = allocate(relevance, "cluster-cascade", budget=4, clusters=clusters, min_share=0)
    wide = allocate(relevance, "cluster-cascade", budget=4, clusters=clusters, min_share=0.5)
    scan = 64  # every cell of the 8x8 scan level
    assert small.cells_scored == scan + 16  # 2 * K = 8 cells: one 16-cell cluster
    assert wide.cells_scored == scan + 512  # half the grid: 32 clusters


def test_uniform_spreads_evenly_and_scores_nothing():
    allocation = allocate(np.zeros((SIDE, SIDE)), "uniform", budget=64)
    assert allocation.cells_scored == 0 and len(kept_cells(allocation)) == 64
    assert sorted(set(allocation.rows.tolist())) == [2, 6, 10, 14, 18, 22, 26, 30]
    assert np.isnan(allocation.scores).all()


def test_random_is_seeded():
    first = allocate(np.zeros((SIDE, SIDE)), "random", budget=20, seed=3)
    again = allocate(np.zeros((SIDE, SIDE)), "random", budget=20, seed=3)
    other = allocate(np.zeros((SIDE, SIDE)), "random", budget=20, seed=4)
    assert kept_cells(first) == kept_cells(again) != kept_cells(other)


def test_foveated_concentrates_around_the_gaze():
    flat = np.full((SIDE, SIDE), 0.5, np.float32)
    allocation = allocate(flat, "foveated", budget=64, clusters=block_clusters(), gaze=(0.9, 0.1))
    assert len(allocation) == 64
    centres = allocation.boxes.reshape(-1, 2, 2).mean(axis=1)
    distance = np.hypot(centres[:, 0] - 0.9, centres[:, 1] - 0.1).mean()
    uniform = allocate(flat, "uniform", budget=64).boxes.reshape(-1, 2, 2).mean(axis=1)
    assert distance < 0.6 * np.hypot(uniform[:, 0] - 0.9, uniform[:, 1] - 0.1).mean()


def test_foveated_without_clusters_uses_blocks():
    allocation = allocate(blob_relevance(), "foveated", budget=30, gaze=(0.7, 0.3))
    assert len(allocation) == 30 and (allocation.clusters >= 0).all()


def test_quadtree_tiles_the_image_with_at_most_k_leaves():
    allocation = allocate(blob_relevance(), "quadtree", budget=100)
    assert len(allocation) <= 100
    areas = (4 ** allocation.levels.astype(np.int64)).sum()
    assert areas == 1024  # every finest cell covered exactly once
    assert allocation.coverage_mask().all()
    finest = allocation.levels == 0
    assert finest.any() and allocation.levels.max() >= 2  # detail on objects, big leaves elsewhere
    detail = allocation.boxes[finest].reshape(-1, 2, 2).mean(axis=1)
    near_objects = ((detail[:, 1] < 0.45) & (detail[:, 0] > 0.5)) | (
        (detail[:, 1] > 0.65) & (detail[:, 0] < 0.25)
    )
    assert near_objects.mean() > 0.8


def test_variable_budgets_follow_relevance_under_the_total():
    allocation = allocate(blob_relevance(), "topk", budget=100, token_budget=5120)
    assert allocation.tokens_kept <= 5120
    assert allocation.budgets.min() >= 64 and allocation.budgets.max() <= 400
    assert np.all(np.diff(allocation.budgets) <= 1)  # non-increasing with score (floor rounding)
    assert variable_budgets(np.array([0.3]), total=10).size == 0  # below the minimum: nothing fits


def test_budget_edges():
    relevance = blob_relevance()
    assert len(allocate(relevance, "mip-cascade", budget=0)) == 0
    everything = allocate(relevance, "mip-cascade", budget=5000)
    assert len(everything) == 1024 and "exceeds" in everything.meta["budget_note"]
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="budget"):
            allocate(relevance, "topk", budget=bad)


def test_every_strategy_on_an_image_smaller_than_one_patch():
    tiny = np.array([[0.2, 0.9]], np.float32)
    for strategy in list_strategies():
        allocation = allocate(
            tiny,
            strategy,
            budget=3,
            patch_size=32,
            clusters=np.zeros((1, 2), int),
            parents=np.zeros((1, 2), int),
        )
        assert len(allocation) == 1
        assert allocation.pixel_boxes.tolist() == [[0, 0, 2, 1]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "best"}, "unknown strategy"),
        ({"strategy": "cluster-cascade"}, "needs a cluster map"),
        ({"strategy": "hierarchical-cluster", "clusters": np.zeros((SIDE, SIDE), int)}, "coarse"),
        ({"strategy": "foveated", "gaze": (1.2, 0.5)}, "gaze"),
        ({"strategy": "cluster-cascade", "clusters": np.zeros((4, 4), int)}, "label map"),
        ({"strategy": "mip-cascade", "oversample": 0.5}, "oversample"),
        ({"strategy": "mip-cascade", "start_level": -1}, "start_level must lie in 0..5"),
        ({"strategy": "mip-cascade", "summary": "median"}, "summary"),
        ({"strategy": "mip-cascade", "min_keep": 0}, "min_keep must be at least 1"),
        ({"strategy": "topk", "oversample": 2}, "has no option 'oversample'; its options: none"),
        ({"strategy": "mip-cascade", "tolerance": 0.1}, "its options: halo, min_keep"),
        (
            {"strategy": "cluster-cascade", "clusters": block_clusters(), "min_share": 2},
            "min_share",
        ),
    ],
)
def test_errors_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        allocate(blob_relevance(), budget=10, **kwargs)


def test_bad_relevance_maps():
    with pytest.raises(ValueError, match="relevance"):
        allocate(np.zeros((2, 2, 2, 2)), "topk", budget=1)
    with pytest.raises(ValueError, match="finite"):
        allocate(np.full((4, 4), np.nan), "topk", budget=1)


def test_json_holds_patches_and_accounting(tmp_path):
    allocation = allocate(blob_relevance(), "mip-cascade", budget=10, query="the red car")
    payload = json.loads(allocation.save_json(tmp_path / "a.json").read_text())
    assert payload["query"] == "the red car" and len(payload["patches"]) == 10
    patch = payload["patches"][0]
    assert patch["pixel_box"] == [round(v * SIDE) for v in patch["box"]]
    accounting = payload["accounting"]
    assert accounting["cells_scored"] == allocation.cells_scored
    assert accounting["token_ratio"] == pytest.approx(10 / 1024, abs=1e-4)
    assert set(accounting["stage_ms"]) >= {"level_0"}


def test_rank_within_groups():
    import torch

    from clusterlens.allocate.foveated import rank_within

    ranks = rank_within(torch.tensor([1, 0, 1, 0, 1]), torch.tensor([0.5, 0.2, 0.9, 0.3, 0.1]))
    assert ranks.tolist() == [1, 1, 0, 0, 2]
