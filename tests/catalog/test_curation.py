"""Curation rankings on a catalog written row by row with known answers:

three clusters of eight images (rows 0-7, 8-15, 16-22), row 2 with a near-copy (row 5:
a tiny embedding change and a small loss distance both ways), row 23 far from
everything, row 7 with a seg loss far above the rest.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from clusterlens.catalog.curation import (
    hard_images,
    outliers,
    pick_model,
)
from clusterlens.catalog.near_duplicates import (
    check_signals,
    duplicate_candidates,
    near_duplicates,
    symmetric_loss_distances,
)
from clusterlens.catalog.selection import select_subset
from clusterlens.catalog.store import CatalogStore, ImageRecord

MODEL = "yolo:test.pt"
CLIP = "open_clip:test"
COPY = (2, 5)
COUNT = 24
OUTLIER = 23
HARD = 7
GROUP = {i: i // 8 for i in range(COUNT - 1)}  # cluster of each row; the outlier is alone
GROUP[5] = GROUP[2]  # the copy sits with its original


def write_curation_catalog(path: Path, with_maps: bool = False) -> Path:
    """The catalog described in the module docstring (image ids 1..24 hold rows 0..23).

    ``with_maps``: also store each vector as a (1, 4, 4) float16 bottleneck map.
    """
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 4
    vectors = np.stack([centres[GROUP.get(i, 0)] + rng.normal(size=16) for i in range(COUNT)])
    vectors[5] = vectors[2] + rng.normal(size=16) * 1e-3
    vectors[OUTLIER] = rng.normal(size=16) * 40
    folder = path.parent / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    with CatalogStore(path) as store:
        entries = []
        for i in range(COUNT):
            label = folder / f"img_{i:02d}.txt"
            label.write_text(f"{i % 3} 0.5 0.5 0.2 0.2\n")
            entries.append((path.parent / f"img_{i:02d}.png", 96, 72, f"sha{i}", label))
        store.register_images(entries)
        ids = store.image_ids(entry[0] for entry in entries)
        run = store.start_run(MODEL, "yolo", {"imgsz": 64}, {})
        clip_run = store.start_run(CLIP, "embedding", {}, {})
        records, clip_records = [], []
        for i, entry in enumerate(entries):
            losses = {name: 1.0 + 0.1 * rng.normal() for name in ("box", "cls", "dfl", "seg")}
            if i == HARD:
                losses["seg"] = 6.0
            records.append(ImageRecord(ids[str(entry[0])], vectors[i], [], _prediction(i), losses,
                                       _metrics(i, rng)))  # fmt: skip
            if with_maps:  # a YOLO bottleneck map: the layout vector near_duplicates prefers
                records[-1].features.append(("model.9", "map", vectors[i].reshape(1, 4, 4)))
            clip_records.append(ImageRecord(ids[str(entry[0])], vectors[i] * 2 + 1))
        store.write_batch(MODEL, run, records)
        store.write_batch(CLIP, clip_run, clip_records)
        rows = []
        for a, b in itertools.permutations(range(COUNT), 2):
            base = 0.1 if {a, b} == set(COPY) else 2.0 + rng.uniform()
            rows += [(MODEL, a + 1, b + 1, c, base / 4) for c in ("box", "cls", "dfl", "seg")]
        with store.transaction() as connection:
            connection.executemany("INSERT INTO distances VALUES (?, ?, ?, ?, ?)", rows)
    return path


def _prediction(i: int) -> list[dict]:
    box = {"x1": 38.0, "y1": 29.0, "x2": 58.0, "y2": 43.0, "confidence": 0.9}
    return [{**box, "class_id": i % 3, "class_name": f"shape{i % 3}"}]


def _metrics(i: int, rng) -> dict:
    return {
        "n_labels": 1,
        "n_predictions": 1,
        "mean_iou": 0.8 + 0.02 * rng.normal(),
        "mean_conf": 0.9,
        "hit_freq": 1.0,
        "dice": 0.7 + 0.02 * rng.normal(),
        "categories": {f"shape{i % 3}": 1},
    }


@pytest.fixture
def catalog(tmp_path) -> Path:
    return write_curation_catalog(tmp_path / "catalog.db")


@pytest.fixture
def store(catalog):
    with CatalogStore(catalog, readonly=True) as opened:
        yield opened


def _row(item_id: int) -> int:
    return item_id - 1  # image ids start at 1, rows of the fixture at 0


def test_injected_copy_is_the_first_duplicate_and_both_signals_agree(store):
    pairs = near_duplicates(store, MODEL, top=5)
    first = pairs[0]
    assert (_row(first.image_a), _row(first.image_b)) == COPY
    assert first.agree == ("embedding", "loss")
    assert first.cosine > 0.999 and first.loss_distance == pytest.approx(0.1)
    assert "agree" in first.reason
    assert first.to_json()["agree"] == ["embedding", "loss"]


def test_thresholds_and_k_are_checked(store):
    with pytest.raises(ValueError, match="thresholds must be > 0"):
        near_duplicates(store, MODEL, loss_ratio=0)
    with pytest.raises(ValueError, match="k must be >= 1"):
        duplicate_candidates(store, MODEL, k=0)


def test_other_pairs_are_not_flagged(store):
    # in-cluster pairs here sit at 0.2-0.3 of their local scale, the copy near 0
    flagged = near_duplicates(store, MODEL, top=50, embedding_ratio=0.1, loss_ratio=0.5)
    assert [(_row(p.image_a), _row(p.image_b)) for p in flagged] == [COPY]
    assert flagged[0].score < 0.1
    candidates = duplicate_candidates(store, MODEL, k=3, embedding_ratio=0.1, loss_ratio=0.5)
    assert len(candidates) > 10 and all(not p.agree for p in candidates[1:])


def test_signals_are_checked_and_put_in_order():
    assert check_signals("pixels, embedding,pixels") == ("embedding", "pixels")
    assert check_signals(["loss"]) == ("loss",)
    with pytest.raises(ValueError, match=r"unknown near-duplicate signal\(s\) 'layout', 'pixel'"):
        check_signals("pixel,embedding,layout")
    with pytest.raises(ValueError, match="no near-duplicate signal chosen"):
        check_signals(" , ")


def test_a_signal_left_out_neither_proposes_nor_flags(store, monkeypatch):
    import clusterlens.catalog.near_duplicates as module

    def unread(*args, **kwargs):
        raise AssertionError("a signal that is off must not read its data")

    monkeypatch.setattr(module, "symmetric_loss_distances", unread)
    monkeypatch.setattr(module, "catalog_thumbnails", unread)
    embedding_only = duplicate_candidates(store, MODEL, k=3, signals="embedding")
    assert all(p.loss_distance is None and p.loss_ratio is None for p in embedding_only)
    assert near_duplicates(store, MODEL, top=5, signals="embedding")[0].agree == ("embedding",)
    monkeypatch.undo()
    loss_only = duplicate_candidates(store, MODEL, k=3, signals=["loss"], pixels=False)
    # candidates: every pair of the distances table (all pairs here), none by embedding
    assert len(loss_only) == COUNT * (COUNT - 1) // 2
    assert all(p.embedding_ratio is None and p.agree in ((), ("loss",)) for p in loss_only)
    first = loss_only[0]
    assert (_row(first.image_a), _row(first.image_b)) == COPY and first.agree == ("loss",)
    # the cosine is still reported, without an embedding ratio
    assert first.reason.startswith(f"embedding cosine {first.cosine:.4f}; loss distance")
    with pytest.raises(ValueError, match="pixels=False leaves no near-duplicate signal"):
        near_duplicates(store, MODEL, signals="pixels", pixels=False)


def test_a_stored_bottleneck_map_is_the_layout_vector(tmp_path):
    db = write_curation_catalog(tmp_path / "maps.db", with_maps=True)
    with CatalogStore(db, readonly=True) as opened:
        first = near_duplicates(opened, MODEL, top=1)[0]
        pooled = near_duplicates(opened, MODEL, top=1, source="embedding")[0]
        with pytest.raises(ValueError, match="no bottleneck maps"):
            near_duplicates(opened, CLIP, source="map")
    assert (_row(first.image_a), _row(first.image_b)) == COPY
    assert first.reason.startswith("layout cosine") and pooled.reason.startswith("embedding")


def test_symmetric_loss_distance_takes_the_larger_direction(store):
    pairs = symmetric_loss_distances(store, MODEL, "max")
    back_and_forth = {
        (i, j): v for i, j, v in store.query(
            "SELECT i, j, SUM(value) FROM distances WHERE model = ? GROUP BY i, j", (MODEL,)
        )
    }  # fmt: skip
    assert pairs[(1, 2)] == pytest.approx(max(back_and_forth[1, 2], back_and_forth[2, 1]))
    mean = symmetric_loss_distances(store, MODEL, "mean")
    assert mean[(1, 2)] == pytest.approx((back_and_forth[1, 2] + back_and_forth[2, 1]) / 2)
    with pytest.raises(ValueError, match="symmetric must be one of"):
        symmetric_loss_distances(store, MODEL, "min")


def test_outlier_is_found_with_its_neighbours(store):
    found = outliers(store, MODEL, top=3, k=4)
    assert _row(found[0].image_id) == OUTLIER
    assert found[0].score > 3 and len(found[0].neighbours) == 4
    assert OUTLIER not in {_row(i) for i, _, _ in found[0].neighbours}
    assert "nearest" in found[0].reason
    assert found[0].to_json()["neighbours"][0]["path"].endswith(".png")


def test_hard_image_names_the_component_that_is_off(store):
    first = hard_images(store, MODEL, top=3)[0]
    assert _row(first.image_id) == HARD
    assert first.component == "seg" and first.score > 5
    assert first.reason.startswith("high seg loss 6")


def test_coverage_is_deterministic_respects_the_budget_and_spreads_out(store):
    picked = select_subset(store, 4, "coverage", MODEL)
    again = select_subset(store, 4, "coverage", MODEL)
    assert [p.image_id for p in picked] == [p.image_id for p in again]
    rows = [_row(p.image_id) for p in picked]
    assert len(rows) == 4 and len(set(rows)) == 4
    # the three clusters and the outlier each get one image
    assert {GROUP.get(r, "alone") for r in rows} == {0, 1, 2, "alone"}


def test_hard_and_balanced_selection(store):
    hard = select_subset(store, 2, "hard", MODEL)
    assert _row(hard[0].image_id) == HARD and len(hard) == 2
    balanced = select_subset(store, 3, "balanced", MODEL, group_by="class")
    classes = {_row(p.image_id) % 3 for p in balanced}
    assert classes == {0, 1, 2}  # one image of each label class in the first round
    assert [p.rank for p in balanced] == [0, 1, 2]


def test_budget_larger_than_the_catalog_returns_everything(store):
    assert len(select_subset(store, 100, "coverage", MODEL)) == COUNT
    assert len({p.image_id for p in select_subset(store, 100, "balanced", MODEL)}) == COUNT


@pytest.mark.parametrize(
    ("budget", "strategy", "message"),
    [(0, "coverage", "--budget must be"), (3, "random", "--strategy must be one of")],
)
def test_bad_selection_arguments(store, budget, strategy, message):
    with pytest.raises(ValueError, match=message):
        select_subset(store, budget, strategy, MODEL)


def test_cluster_grouping_needs_a_clustering(store):
    with pytest.raises(ValueError, match="catalog cluster"):
        select_subset(store, 3, "balanced", MODEL, group_by="cluster")


def test_embedding_model_has_no_hardness(store):
    with pytest.raises(ValueError, match="no losses"):
        hard_images(store, CLIP)
    assert _row(outliers(store, CLIP, top=1)[0].image_id) == OUTLIER


def test_outliers_with_k_above_the_catalog_size_use_every_other_image(store):
    found = outliers(store, MODEL, top=1, k=100)
    assert _row(found[0].image_id) == OUTLIER and len(found[0].neighbours) == COUNT - 1


def test_model_must_be_chosen_among_the_catalogs(store, tmp_path):
    assert pick_model(store, None) == MODEL  # the only YOLO model
    with pytest.raises(ValueError, match="no embeddings of"):
        pick_model(store, "hf:other")
    with CatalogStore(tmp_path / "empty.db") as empty:
        with pytest.raises(ValueError, match="has no embeddings"):
            pick_model(empty, None)
