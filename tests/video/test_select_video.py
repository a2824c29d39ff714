"""select_video: strategies, the clip budget, accounting and reuse of a VideoContext."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.video import VideoContext, open_video, select_video
from clusterlens.video.strategies import split_budget, top_cells

FRAMES = 9


@pytest.fixture
def long_clip(make_clip):
    return make_clip(frames=FRAMES, size=(96, 128), step=4)


def _all_scores(video, model) -> np.ndarray:
    full = select_video(video, "red", "exhaustive", budget=10**6, model=model, grid=16)
    scores = np.zeros((len(full.kept()), 16, 16), np.float32)
    scores[full.frames, full.rows, full.cols] = full.scores
    return scores


def test_exhaustive_is_the_clip_top_k(long_clip, redness):
    context = VideoContext(open_video(long_clip))
    scores = _all_scores(context, redness)
    kept = select_video(context, "red", "exhaustive", budget=40, model=redness, grid=16)
    assert len(kept) == 40
    threshold = np.sort(scores.reshape(-1))[-40]
    assert (kept.scores >= threshold - 1e-6).all()
    np.testing.assert_allclose(kept.scores, scores[kept.frames, kept.rows, kept.cols])
    # the red square is what the query is about: every kept cell overlaps it strongly
    assert kept.scores.min() > 0.5


def test_per_frame_and_uniform_split_the_budget_evenly(long_clip, redness):
    for strategy in ("per-frame", "uniform"):
        kept = select_video(long_clip, "red", strategy, budget=40, model=redness, grid=16)
        assert kept.tokens_per_frame().tolist() == split_budget(40, FRAMES).tolist()
        assert kept.kept().sum() == 40  # no cell twice
    uniform = select_video(long_clip, "red", "uniform", budget=40, grid=16)
    assert uniform.cost["encoder_calls"] == 0 and np.isnan(uniform.scores).all()


def test_temporal_cascade_matches_exhaustive_with_fewer_dense_passes(long_clip, redness):
    context = VideoContext(open_video(long_clip))
    scores = _all_scores(context, redness)
    best = np.sort(scores.reshape(-1))[::-1][:60].sum()
    fresh = VideoContext(open_video(long_clip))
    kept = select_video(
        fresh, "red", "temporal-cascade", budget=60, model=redness, grid=16, interval=4
    )
    fidelity = scores[kept.frames, kept.rows, kept.cols].sum() / best
    assert fidelity >= 0.97
    passes = kept.cost["encoder_passes"]
    assert passes["coarse 12x16"] == 3  # keyframes 0, 4, 8
    assert passes.get("dense 48x64", 0) <= 3 < FRAMES
    assert kept.cost["flows_computed"] > 0 and kept.meta["frames_scored"] == FRAMES


def test_cascade_skips_frames_the_coarse_scan_rules_out(make_clip, redness):
    clip = make_clip(frames=FRAMES, size=(96, 128), step=4)
    for frame in clip[5:]:  # the red square leaves the clip after frame 4
        frame[..., 0] = frame[..., 1]
    kept = select_video(
        clip, "red", "temporal-cascade", budget=30, model=redness, grid=16, interval=4
    )
    assert kept.frames.max() <= 4
    assert kept.meta["dense_keyframes"] == 2  # keyframes 0 and 4; frame 8 never dense
    assert kept.cost["encoder_passes"]["dense 48x64"] == 2


def test_second_query_reuses_the_context(long_clip, redness):
    context = VideoContext(open_video(long_clip))
    first = select_video(context, "red", "temporal-cascade", budget=30, model=redness, grid=16)
    again = select_video(context, "red", "temporal-cascade", budget=30, model=redness, grid=16)
    assert first.cost["encoder_calls"] > 0 and again.cost["encoder_calls"] == 0
    assert "frames_decoded" not in again.cost and "flows_computed" not in again.cost
    assert any(entry.startswith("model passes") for entry in again.cost["cached"])
    np.testing.assert_array_equal(first.frames, again.frames)


def test_unmatched_query_falls_back_to_uniform_with_a_note(long_clip, redness):
    kept = select_video(long_clip, "blue whales", budget=18, model=redness, grid=16)
    assert kept.strategy == "uniform" and len(kept) == 18
    assert any("left out" in note for note in kept.notes)
    scene = select_video(long_clip, "describe the scene", budget=18, model=redness, grid=16)
    assert any("names no object" in note for note in scene.notes)


def test_json_and_boxes_are_in_original_pixels(long_clip, redness, tmp_path):
    kept = select_video(long_clip, "red", budget=18, model=redness, grid=16, max_side=64)
    assert kept.meta["frame_size"] == [48, 64]
    boxes = kept.pixel_boxes()
    assert boxes[:, 2].max() <= 128 and boxes[:, 3].max() <= 96
    data = kept.to_json()
    assert data["accounting"]["tokens_kept"] == 18 and data["frames"] == FRAMES
    assert sum(data["accounting"]["tokens_per_frame"]) == 18
    assert kept.save_json(tmp_path / "v.json").exists()


def test_bad_arguments(long_clip, redness):
    with pytest.raises(ValueError, match="unknown video strategy 'topk'"):
        select_video(long_clip, "red", "topk", model=redness)
    with pytest.raises(ValueError, match="budget must be a positive"):
        select_video(long_clip, "red", budget=0, model=redness)
    with pytest.raises(ValueError, match="interval >= 1"):
        select_video(long_clip, "red", budget=9, model=redness, interval=0)


def test_top_cells_ignores_unscored_cells():
    scores = np.full((2, 2, 2), -np.inf, np.float32)
    scores[1, 0, 1], scores[0, 1, 1] = 0.5, 0.9
    chosen = top_cells(scores, 5)
    assert chosen.frames.tolist() == [0, 1] and np.allclose(chosen.scores, [0.9, 0.5])


def test_clusters_are_carried_ids_of_the_kept_cells(long_clip, redness):
    kept = select_video(long_clip, "red", budget=30, model=redness, grid=16, clusters=True)
    assert kept.clusters is not None and len(kept.clusters) == 30 and (kept.clusters >= 0).all()
    assert kept.cost["clusters_ms"] > 0 and kept.cost["cluster_keyframes"] >= 1
    assert kept.to_json()["cells"][0]["cluster"] == int(kept.clusters[0])
    plain = select_video(long_clip, "red", budget=30, model=redness, grid=16)
    assert plain.clusters is None and plain.to_json()["cells"][0]["cluster"] == -1


def test_a_first_call_reports_nothing_cached(long_clip, redness):
    # keyframes are decoded once and asked for twice within the call: not "cached"
    kept = select_video(long_clip, "red", budget=30, model=redness, grid=16)
    assert kept.cost["cached"] == [] and kept.cost["frames_decoded"] == FRAMES
