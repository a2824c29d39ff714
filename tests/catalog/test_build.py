"""catalog build: rows per model family, idempotent re-runs, failures, kills, concurrency."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from clusterlens.catalog import build_catalog, validate_catalog
from clusterlens.catalog.build import Task, process_tasks
from clusterlens.catalog.store import CatalogStore, ImageRecord

YOLO = "yolo:yolov8n-seg.yaml"
YOLO_SETTINGS = {"imgsz": 64, "conf": 0.0, "max_det": 5}


def _counts(db, model):
    store = CatalogStore(db)
    try:
        return {
            table: store.query(f"SELECT COUNT(*) FROM {table} WHERE model = ?", (model,))[0][0]
            for table in ("embeddings", "features", "predictions", "losses", "metrics")
        }
    finally:
        store.close()


@pytest.fixture
def data_with_broken_image(shapes_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(shapes_dir, data)
    (data / "images" / "zz_broken.png").write_bytes(b"\x89PNG but not really")
    return data


def test_yolo_then_clip_model_isolation_and_failures(data_with_broken_image, tmp_path):
    db = tmp_path / "c.db"
    report = build_catalog(
        data_with_broken_image, YOLO, db, batch=5, progress=False, **YOLO_SETTINGS
    )
    assert (report.images_found, report.processed, report.failures) == (13, 12, 1)
    yolo_counts = _counts(db, YOLO)
    assert yolo_counts == {
        "embeddings": 12, "features": 12 * 5, "predictions": 12 * 5, "losses": 12, "metrics": 12
    }  # fmt: skip
    clip = build_catalog(data_with_broken_image, "open_clip:tiny", db, batch=5, progress=False)
    assert clip.processed == 12
    assert _counts(db, "open_clip:tiny") == {
        "embeddings": 12, "features": 0, "predictions": 0, "losses": 0, "metrics": 0
    }  # fmt: skip
    assert _counts(db, YOLO) == yolo_counts  # the second model added only its own rows
    store = CatalogStore(db)
    failures = store.query("SELECT path, model, stage FROM failures ORDER BY model")
    assert [(p.endswith("zz_broken.png"), m, s) for p, m, s in failures] == [
        (True, "open_clip:tiny", "read"),
        (True, YOLO, "read"),
    ]
    assert store.counts()["images"] == 12
    runs = store.query("SELECT model, kind, status, images_done FROM runs ORDER BY id")
    assert runs == [(YOLO, "yolo", "done", 12), ("open_clip:tiny", "embedding", "done", 12)]
    settings = store.model_settings(YOLO)  # what distances re-creates the extractor from
    assert {key: settings[key] for key in ("imgsz", "conf", "iou", "max_det")} == {
        **YOLO_SETTINGS, "iou": 0.7  # the extractor's default, not given
    }  # fmt: skip
    assert validate_catalog(db).ok


def test_rerun_adds_nothing_and_unlabelled_folder_has_no_losses(shapes_dir, tmp_path):
    db = tmp_path / "c.db"
    images_only = shapes_dir / "images"  # a plain folder: no labels
    build_catalog(images_only, YOLO, db, batch=4, progress=False, **YOLO_SETTINGS)
    before = _counts(db, YOLO)
    again = build_catalog(images_only, YOLO, db, batch=4, progress=False, **YOLO_SETTINGS)
    assert (again.processed, again.already_done) == (0, 12)
    assert _counts(db, YOLO) == before and before["losses"] == 0
    # the same folder with --labels: a detection model built now gets losses (no seg)
    labelled = build_catalog(
        images_only, "yolo:yolov8n.yaml", db, labels=shapes_dir / "labels", progress=False,
        **YOLO_SETTINGS,
    )  # fmt: skip
    assert labelled.processed == 12 and _counts(db, "yolo:yolov8n.yaml")["losses"] == 12
    store = CatalogStore(db)
    assert store.query("SELECT COUNT(*) FROM losses WHERE seg IS NOT NULL")[0][0] == 0
    assert store.query("SELECT COUNT(*) FROM images WHERE label_path IS NULL")[0][0] == 0
    assert _counts(db, YOLO) == before  # the first model's rows are untouched
    assert validate_catalog(db).ok


def test_bad_arguments(shapes_dir, tmp_path):
    with pytest.raises(ValueError, match="--engine"):
        build_catalog(shapes_dir, YOLO, tmp_path / "c.db", engine="spark")
    with pytest.raises(ValueError, match="--batch"):
        build_catalog(shapes_dir, YOLO, tmp_path / "c.db", batch=0)
    with pytest.raises(ValueError, match="yolo:, open_clip: or hf:"):
        build_catalog(shapes_dir, "offline:camvid", tmp_path / "c.db", progress=False)


CHILD = """
import sys, torch
torch.set_num_threads(1)
from clusterlens.catalog import build_catalog
yolo = {{"imgsz": 64, "conf": 0.0, "max_det": 5}} if sys.argv[2].startswith("yolo:") else {{}}
build_catalog(sys.argv[1], sys.argv[2], sys.argv[3], batch=int(sys.argv[4]), progress=False,
              **yolo)
"""


def _child(data, model, db, batch):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD.format(), str(data), model, str(db), str(batch)],
        env=env,
        stderr=subprocess.PIPE,
    )


def _embedded(db, model):
    try:
        connection = sqlite3.connect(db, timeout=30)
        try:
            return connection.execute(
                "SELECT COUNT(*) FROM embeddings WHERE model = ?", (model,)
            ).fetchone()[0]
        finally:
            connection.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


@pytest.mark.slow
def test_sigkill_mid_build_then_rerun_loses_and_duplicates_nothing(shapes_dir, tmp_path):
    db = tmp_path / "killed.db"
    child = _child(shapes_dir, YOLO, db, batch=1)
    deadline = time.time() + 120
    while _embedded(db, YOLO) < 3 and child.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, child.stderr.read().decode()[-2000:]
    partial = _embedded(db, YOLO)
    assert 3 <= partial < 12  # killed mid-build, with work left to do
    report = build_catalog(shapes_dir, YOLO, db, batch=1, progress=False, **YOLO_SETTINGS)
    assert report.already_done == partial and report.processed == 12 - partial
    clean = tmp_path / "clean.db"
    build_catalog(shapes_dir, YOLO, clean, batch=4, progress=False, **YOLO_SETTINGS)
    assert _counts(db, YOLO) == _counts(clean, YOLO)
    rows = (
        "SELECT i.path, p.rank, p.x1, p.confidence FROM predictions p "
        "JOIN images i ON i.id = p.image_id ORDER BY 1, 2"
    )
    resumed, fresh = CatalogStore(db).query(rows), CatalogStore(clean).query(rows)
    assert [row[:2] for row in resumed] == [row[:2] for row in fresh]
    np.testing.assert_allclose([row[2:] for row in resumed], [row[2:] for row in fresh], rtol=1e-4)
    statuses = [row[0] for row in CatalogStore(db).query("SELECT status FROM runs ORDER BY id")]
    assert statuses == ["running", "done"]  # the killed run never finished
    assert validate_catalog(db).ok


@pytest.mark.slow
def test_two_builds_writing_one_database_at_once(shapes_dir, tmp_path):
    db = tmp_path / "shared.db"
    children = [
        _child(shapes_dir, model, db, batch=2) for model in ("open_clip:tiny", "hf:tiny-clip")
    ]
    for child in children:
        child.wait(timeout=300)
        assert child.returncode == 0, child.stderr.read().decode()[-2000:]
    assert _embedded(db, "open_clip:tiny") == 12 and _embedded(db, "hf:tiny-clip") == 12
    store = CatalogStore(db)
    assert store.counts()["images"] == 12 and store.query("PRAGMA integrity_check")[0][0] == "ok"
    assert validate_catalog(db).ok


def test_missing_checkpoint_leaves_the_store_untouched(shapes_dir, tmp_path):
    from clusterlens.models import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="cannot download"):
        build_catalog(shapes_dir, f"yolo:{tmp_path}/absent.pt", tmp_path / "c.db", progress=False)
    assert not (tmp_path / "c.db").exists()


class _PickyExtractor:
    """Fails on any batch holding the image with id 2 (stands for a model error)."""

    def extract(self, images, labels, image_ids):
        if 2 in image_ids:
            raise RuntimeError("cannot take image 2")
        return [ImageRecord(i, np.zeros(3, np.float32)) for i in image_ids]


def test_one_image_the_model_cannot_take_does_not_sink_its_batch(tmp_path, shapes_dir):
    paths = sorted((shapes_dir / "images").iterdir())[:3]
    tasks = [Task(index + 1, str(path), None) for index, path in enumerate(paths)]
    records, failures = process_tasks(_PickyExtractor(), tasks)
    assert [r.image_id for r in records] == [1, 3]
    assert failures == [(str(paths[1]), "extract", "RuntimeError: cannot take image 2")]
    records, failures = process_tasks(_PickyExtractor(), tasks[1:2])
    assert records == [] and failures[0][1] == "extract"


def _copy_data(shapes_dir, tmp_path, count):
    """The first ``count`` shapes with their labels, in a folder of their own."""
    data = tmp_path / "data"
    for sub, suffix in (("images", ".png"), ("labels", ".txt")):
        (data / sub).mkdir(parents=True)
        for index in range(count):
            name = f"shape_{index:03d}{suffix}"
            shutil.copy2(shapes_dir / sub / name, data / sub / name)
    return data


def test_nan_label_line_is_a_failure_like_any_malformed_line(shapes_dir, tmp_path):
    data = _copy_data(shapes_dir, tmp_path, 3)
    (data / "labels" / "shape_001.txt").write_text("0 nan 0.5 0.2 0.2\n")
    report = build_catalog(data, YOLO, tmp_path / "c.db", progress=False, **YOLO_SETTINGS)
    assert (report.processed, report.failures) == (2, 1)
    store = CatalogStore(tmp_path / "c.db")
    failures = store.query("SELECT path, stage, error FROM failures")
    assert [(Path(p).name, stage) for p, stage, _ in failures] == [("shape_001.png", "labels")]
    assert "finite" in failures[0][2] and store.counts()["losses"] == 2


def _rows_of(db, name):
    store = CatalogStore(db)
    try:
        return store.query(
            "SELECT i.id, i.sha256, e.model, e.vector FROM images i "
            "JOIN embeddings e ON e.image_id = i.id WHERE i.path LIKE ? ORDER BY e.model",
            (f"%{name}",),
        )
    finally:
        store.close()


def test_a_changed_image_is_re_extracted_for_every_model(shapes_dir, tmp_path):
    data = _copy_data(shapes_dir, tmp_path, 3)
    db = tmp_path / "c.db"
    for model in ("open_clip:tiny", "hf:tiny-clip"):
        build_catalog(data, model, db, progress=False)
    target = data / "images" / "shape_000.png"
    before = _rows_of(db, target.name)
    shutil.copy(shapes_dir / "images" / "shape_005.png", target)  # new pixels, same path
    again = build_catalog(data, "open_clip:tiny", db, progress=False)
    assert (again.processed, again.already_done) == (1, 2)
    after = _rows_of(db, target.name)
    # the other model's stale rows went with the old content: it re-extracts too
    assert [row[2] for row in after] == ["open_clip:tiny"]
    assert after[0][1] != before[0][1] and after[0][3] != before[0][3]
    assert build_catalog(data, "hf:tiny-clip", db, progress=False).processed == 1
    assert validate_catalog(db).ok


def test_a_touched_but_identical_image_keeps_its_rows(shapes_dir, tmp_path):
    data = _copy_data(shapes_dir, tmp_path, 2)
    db = tmp_path / "c.db"
    build_catalog(data, "open_clip:tiny", db, progress=False)
    target = data / "images" / "shape_001.png"
    before = _rows_of(db, target.name)
    os.utime(target, ns=(1, 1))  # new mtime, same bytes (a copy, a checkout)
    assert build_catalog(data, "open_clip:tiny", db, progress=False).processed == 0
    assert _rows_of(db, target.name) == before
    store = CatalogStore(db)
    assert store.changed_files(store.image_ids([target]).values()) == []  # stats refreshed


class _SlowExtractor:
    """Stands for a real model: 50 ms per image, and records what it extracted."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def extract(self, images, labels, image_ids):
        time.sleep(0.05 * len(images))
        self.seen.extend(image_ids)
        return [ImageRecord(i, np.ones(4, np.float32)) for i in image_ids]


def test_two_builds_of_one_model_at_once_share_the_work(shapes_dir, tmp_path, monkeypatch):
    import threading

    from clusterlens.catalog import extractors

    made: list[_SlowExtractor] = []

    def make(*args, **kwargs):
        made.append(_SlowExtractor())
        return made[-1]

    monkeypatch.setattr(extractors, "make_extractor", make)
    db = tmp_path / "c.db"
    CatalogStore(db).close()  # both builds find the catalog made
    reports = []

    def build():
        reports.append(build_catalog(shapes_dir, "open_clip:tiny", db, batch=2, progress=False))

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=60)
    extracted = sorted(i for extractor in made for i in extractor.seen)
    # both worked (they overlapped), on each image once, give or take the batch each
    # had in hand when they met -- not 2 x 12 as when both went through every image
    assert all(extractor.seen for extractor in made) and set(extracted) == set(range(1, 13))
    assert len(extracted) <= 12 + 2 * 2
    for report in reports:
        assert report.processed + report.already_done + report.done_elsewhere == 12
    assert _embedded(db, "open_clip:tiny") == 12 and validate_catalog(db).ok


def test_cuda_without_a_gpu_is_refused_before_the_store_is_touched(shapes_dir, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        build_catalog(shapes_dir, YOLO, tmp_path / "c.db", device="cuda", progress=False)
    with pytest.raises(ValueError, match="--device must be"):
        build_catalog(shapes_dir, YOLO, tmp_path / "c.db", device="gpu0", progress=False)
    assert not (tmp_path / "c.db").exists()
