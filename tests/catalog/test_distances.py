"""Asymmetric loss distances: batched = pair by pair, knn pairs, resumable."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from clusterlens.catalog import build_catalog, compute_distances, validate_catalog
from clusterlens.catalog.dataset import read_labels
from clusterlens.catalog.distances import neighbour_lists, parse_pairs
from clusterlens.catalog.store import CatalogError, CatalogStore

YOLO = "yolo:yolov8n-seg.yaml"
SETTINGS = {"imgsz": 64, "conf": 0.0, "max_det": 5}


def _plant_labels_as_predictions(db, model, shapes_dir):
    """Replace each image's stored predictions by its ground truth (boxes + masks).

    Then dist[i][i] must equal the per-image loss stored by the build (both are the
    model's loss on image i against image i's objects), and dist[i][j] must change with j.
    """
    store = CatalogStore(db)
    with store.transaction() as connection:
        connection.execute("DELETE FROM predictions WHERE model = ?", (model,))
        for image_id, path, width, height in store.query(
            "SELECT id, path, width, height FROM images"
        ):
            labels = read_labels(shapes_dir / "labels" / (Path(path).stem + ".txt"))
            for rank, (class_id, box) in enumerate(zip(labels.classes, labels.boxes, strict=True)):
                cx, cy, w, h = box * [width, height, width, height]
                polygon = labels.polygons[rank]
                if polygon is None:
                    polygon = np.array(
                        [
                            [cx - w / 2, cy - h / 2],
                            [cx + w / 2, cy - h / 2],
                            [cx + w / 2, cy + h / 2],
                            [cx - w / 2, cy + h / 2],
                        ]
                    )
                else:
                    polygon = polygon * [width, height]
                mask = np.zeros((height, width), np.uint8)
                cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 255)
                connection.execute(
                    "INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, 1.0, ?, 'shape', ?)",
                    (image_id, model, rank, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2,
                     int(class_id), cv2.imencode(".png", mask)[1].tobytes()),
                )  # fmt: skip
    store.close()


@pytest.fixture(scope="module")
def planted_db(shapes_dir, tmp_path_factory):
    """12 shapes built with yolov8n-seg.yaml, ground truth planted as predictions."""
    db = tmp_path_factory.mktemp("distances") / "c.db"
    build_catalog(shapes_dir, YOLO, db, batch=6, progress=False, **SETTINGS)
    _plant_labels_as_predictions(db, YOLO, shapes_dir)
    return db


def _matrix(db, component):
    rows = CatalogStore(db).query(
        "SELECT i, j, value FROM distances WHERE model = ? AND component = ? ORDER BY i, j",
        (YOLO, component),
    )
    return {(i, j): value for i, j, value in rows}


def test_build_stores_predictions_distances_read(shapes_dir, tmp_path):
    db = tmp_path / "c.db"
    build_catalog(shapes_dir, YOLO, db, batch=6, progress=False, **SETTINGS)
    report = compute_distances(db, pairs="knn:2", progress=False)
    assert (report.pairs_total, report.pairs_computed) == (24, 24)
    assert validate_catalog(db).ok


@pytest.mark.slow
def test_self_distance_is_the_stored_loss_and_batched_equals_pairwise(planted_db, tmp_path):
    report = compute_distances(planted_db, pairs="all", batch=5, progress=False, limit=6)
    assert (report.images, report.pairs_total, report.pairs_computed) == (6, 36, 36)
    losses = {
        row[0]: row[1:]
        for row in CatalogStore(planted_db).query("SELECT image_id, box, cls, dfl, seg FROM losses")
    }
    for index, component in enumerate(("box", "cls", "dfl", "seg")):
        matrix = _matrix(planted_db, component)
        own = [matrix[i, i] for i in sorted({i for i, _ in matrix})]
        stored = [losses[i][index] for i in sorted({i for i, _ in matrix})]
        # masks went through PNG at image size and back: seg agrees to a few percent
        np.testing.assert_allclose(own, stored, rtol=1e-3 if component != "seg" else 0.05)
    reference = tmp_path / "pairwise.db"
    reference.write_bytes(planted_db.read_bytes())
    CatalogStore(reference).connection.execute("DELETE FROM distances")
    compute_distances(reference, pairs="all", mode="pairwise", progress=False, limit=6)
    for component in ("box", "cls", "dfl", "seg"):
        batched, pairwise = _matrix(planted_db, component), _matrix(reference, component)
        keys = sorted(batched)
        assert keys == sorted(pairwise) and len(keys) == 36
        np.testing.assert_allclose(
            [batched[k] for k in keys], [pairwise[k] for k in keys], rtol=1e-4, atol=1e-5
        )


@pytest.mark.slow
def test_distances_depend_on_j_and_are_asymmetric(planted_db):
    compute_distances(planted_db, pairs="all", batch=6, progress=False, limit=6)
    box = _matrix(planted_db, "box")
    ids = sorted({i for i, _ in box})
    rows = np.array([[box[i, j] for j in ids] for i in ids])
    assert (rows.std(axis=1) > 1e-3).all()  # the targets (image j) matter
    assert np.abs(rows - rows.T).max() > 1e-2  # dist[i][j] != dist[j][i]


@pytest.mark.slow
def test_knn_pairs_and_resume(planted_db, tmp_path):
    copy = tmp_path / "knn.db"
    copy.write_bytes(planted_db.read_bytes())
    store = CatalogStore(copy)
    store.connection.execute("DELETE FROM distances")
    first = compute_distances(copy, pairs="knn:3", batch=2, progress=False)
    assert (first.pairs_total, first.pairs_computed) == (36, 36)  # 12 images x 3 neighbours
    pairs = store.query("SELECT DISTINCT i, j FROM distances")
    assert len(pairs) == 36 and all(i != j for i, j in pairs)
    store.connection.execute("DELETE FROM distances WHERE i = (SELECT MIN(i) FROM distances)")
    resumed = compute_distances(copy, pairs="knn:3", progress=False)
    assert resumed.pairs_computed == 3  # only the deleted pairs
    assert store.query("SELECT COUNT(*) FROM distances")[0][0] == 36 * 4
    runs = store.query("SELECT kind, status FROM runs WHERE kind = 'distances'")
    assert runs[-2:] == [("distances", "done"), ("distances", "done")]


def test_neighbour_lists_and_pair_specs():
    ids = np.array([5, 6, 7, 8])
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
    assert neighbour_lists(ids, vectors, 1) == {5: [6], 6: [5], 7: [8], 8: [7]}
    assert neighbour_lists(ids, vectors, None)[5] == [5, 6, 7, 8]
    assert parse_pairs("all") is None and parse_pairs("knn:4") == 4
    for bad in ("knn:0", "knn:x", "some"):
        with pytest.raises(ValueError, match="'all' or 'knn:K'"):
            parse_pairs(bad)


def test_distances_need_a_yolo_build(shapes_dir, tmp_path):
    db = tmp_path / "clip.db"
    build_catalog(shapes_dir, "open_clip:tiny", db, progress=False)
    with pytest.raises(ValueError, match="no YOLO build"):
        compute_distances(db, progress=False)
    with pytest.raises(FileNotFoundError):
        compute_distances(tmp_path / "missing.db", progress=False)
    with pytest.raises(ValueError, match="no YOLO build of 'yolo:yolov8n.yaml'"):
        compute_distances(db, model="yolo:yolov8n.yaml", progress=False)
    with pytest.raises(ValueError, match="mode must be one of"):
        compute_distances(db, mode="fast", progress=False)
    with pytest.raises(ValueError, match="--batch"):
        compute_distances(db, batch=0, progress=False)


def test_distances_refuse_images_changed_since_extraction(shapes_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(shapes_dir, data)
    db = tmp_path / "c.db"
    build_catalog(data, YOLO, db, batch=6, progress=False, **SETTINGS)
    shutil.copy(data / "images" / "shape_004.png", data / "images" / "shape_003.png")
    before = db.read_bytes()
    with pytest.raises(CatalogError, match=r"1 images changed .*shape_003\.png.*catalog build"):
        compute_distances(db, pairs="knn:1", progress=False)
    assert db.read_bytes() == before
    build_catalog(data, YOLO, db, batch=6, progress=False, **SETTINGS)  # re-extracts it
    assert compute_distances(db, pairs="knn:1", progress=False).pairs_computed == 12
