"""validate finds what is wrong; export writes every table losslessly."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pyarrow.parquet as pq
import pytest

from clusterlens.catalog import build_catalog, cluster_catalog, export_parquet, validate_catalog
from clusterlens.catalog.store import TABLES, blob_to_array
from clusterlens.catalog.synthetic import damage_table


@pytest.fixture(scope="module")
def built_db(shapes_dir, tmp_path_factory):
    db = tmp_path_factory.mktemp("valid") / "c.db"
    build_catalog(
        shapes_dir,
        "yolo:yolov8n-seg.yaml",
        db,
        batch=6,
        progress=False,
        imgsz=64,
        conf=0.0,
        max_det=3,
    )
    build_catalog(shapes_dir, "hf:tiny-dinov2", db, batch=6, progress=False)
    cluster_catalog(db, 3, model="hf:tiny-dinov2")
    return db


def test_a_fresh_catalog_is_valid(built_db):
    report = validate_catalog(built_db)
    assert report.ok, report.problems
    assert report.checks == [
        "sqlite", "files", "embeddings", "features", "isolation", "yolo_counts", "values",
        "distances", "clusters",
    ]  # fmt: skip


CORRUPTIONS = [
    ("UPDATE embeddings SET dim = dim + 1 WHERE image_id = 1", "blob length is not 4 * dim"),
    ("UPDATE features SET shape = '[3, 3]' WHERE image_id = 2 AND kind = 'gap'", "blob size"),
    ("INSERT INTO losses VALUES (1, 'hf:tiny-dinov2', 1, 1, 1, 1)", "isolation"),
    ("DELETE FROM metrics WHERE image_id = 3", "without a metrics row"),
    ("DELETE FROM losses WHERE image_id = 4", "exactly for the images built with labels"),
    ("DELETE FROM predictions WHERE image_id = 5 AND rank = 0", "n_predictions differs"),
    ("UPDATE metrics SET hit_freq = 1.5 WHERE image_id = 6", "outside [0, 1]"),
    ("UPDATE predictions SET x2 = x1 - 1 WHERE image_id = 7 AND rank = 0", "out of order"),
    ("UPDATE predictions SET mask_png = x'00' WHERE image_id = 8 AND rank = 0", "mask PNG"),
    ("UPDATE losses SET cls = -1 WHERE image_id = 9", "negative loss"),
    ("INSERT INTO distances VALUES ('yolo:yolov8n-seg.yaml', 1, 2, 'box', 1.0)", "component count"),
    ("UPDATE clusters SET cluster = 7 WHERE image_id = 1", "cluster id outside"),
    ("DELETE FROM features WHERE image_id = 10 AND kind = 'map'", "one gap row per hooked layer"),
    ("UPDATE predictions SET x2 = 9e999 WHERE image_id = 11 AND rank = 0", "non-finite box"),
    ("UPDATE losses SET box = -9e999 WHERE image_id = 11", "non-finite or negative loss"),
    ("DELETE FROM clusters WHERE image_id = 12", "does not cover exactly"),
    ("UPDATE images SET size = size + 1 WHERE id = 2", "files changed since extraction"),
    # an image registered before schema v3 has no stats: its SHA-256 is compared
    ("UPDATE images SET size = NULL, sha256 = 'ab' WHERE id = 3", "files changed since"),
]


@pytest.mark.parametrize(("sql", "expected"), CORRUPTIONS)
def test_each_corruption_is_reported(built_db, tmp_path, sql, expected):
    copy = tmp_path / "broken.db"
    copy.write_bytes(built_db.read_bytes())
    connection = sqlite3.connect(copy)
    connection.execute(sql)
    connection.commit()
    connection.close()
    report = validate_catalog(copy)
    assert not report.ok
    assert any(expected in problem for problem in report.problems), report.problems


def test_export_writes_every_table(built_db, tmp_path):
    counts = export_parquet(built_db, tmp_path / "pq")
    assert set(counts) == set(TABLES)
    for table in TABLES:
        assert pq.read_table(tmp_path / "pq" / f"{table}.parquet").num_rows == counts[table]
    features = pq.read_table(tmp_path / "pq" / "features.parquet").to_pylist()
    first = features[0]
    array = blob_to_array(first["dtype"], first["shape"], first["data"])
    assert array.dtype in (np.float16, np.float32) and array.size > 0
    assert counts["embeddings"] == 24 and counts["distances"] == 0
    assert (
        pq.read_table(tmp_path / "pq" / "distances.parquet").schema.field("value").type == "double"
    )


def _copy(built_db, tmp_path):
    copy = tmp_path / "copy.db"
    copy.write_bytes(built_db.read_bytes())
    return copy


def test_integrity_failure_is_reported_first_and_ends_the_report(built_db, tmp_path):
    copy = _copy(built_db, tmp_path)
    damage_table(copy, "features")
    before = copy.read_bytes()
    report = validate_catalog(copy)
    assert report.checks == ["sqlite"] and report.problems[0].startswith("sqlite:")
    assert "skipped" in report.problems[-1]
    assert copy.read_bytes() == before


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("PRAGMA user_version = 2", "version 2, expected 3; upgrade it with 'clusterlens catalog"),
        ("DROP TABLE failures", "missing tables ['failures']"),
    ],
)
def test_old_or_incomplete_schema_is_reported_not_migrated(built_db, tmp_path, sql, expected):
    copy = _copy(built_db, tmp_path)
    with sqlite3.connect(copy) as connection:
        connection.execute(sql)
    connection.close()
    before = copy.read_bytes()
    report = validate_catalog(copy)
    assert not report.ok and expected in report.problems[0]
    assert copy.read_bytes() == before


def test_missing_changed_and_unparsable_files_are_reported(shapes_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(shapes_dir, data)
    db = tmp_path / "c.db"
    build_catalog(data, "yolo:yolov8n-seg.yaml", db, progress=False, imgsz=64, max_det=2)
    assert validate_catalog(db).ok
    (data / "images" / "shape_000.png").unlink()
    shutil.copy(data / "images" / "shape_002.png", data / "images" / "shape_001.png")
    (data / "labels" / "shape_003.txt").write_text("0 nan 0.5 0.2 0.2\n")  # after the build
    problems = "\n".join(validate_catalog(db).problems)
    assert "files missing on disk (1 rows" in problems and "shape_000.png" in problems
    assert "files changed since extraction" in problems and "shape_001.png" in problems
    assert "label files that no longer parse" in problems and "shape_003.txt:1" in problems


def test_export_refuses_a_file_or_a_read_only_folder(built_db, tmp_path):
    (tmp_path / "file").write_text("mine")
    for target in (tmp_path / "file", tmp_path / "file" / "sub"):
        with pytest.raises(ValueError, match="is a file; give a folder"):
            export_parquet(built_db, target)
    assert (tmp_path / "file").read_text() == "mine"
