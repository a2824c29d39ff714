"""The SQLite store: schema, migrations, blobs, idempotent batch writes."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from clusterlens.catalog.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    CatalogError,
    CatalogStore,
    ImageRecord,
    array_to_blob,
    blob_to_array,
)


def _store_with_image(tmp_path):
    store = CatalogStore(tmp_path / "c.db")
    store.register_images([(tmp_path / "a.png", 10, 8, "ab" * 32, None)])
    return store, store.image_ids([tmp_path / "a.png"])[str(tmp_path / "a.png")]


def test_new_store_is_wal_at_current_version_with_foreign_keys(tmp_path):
    store = CatalogStore(tmp_path / "sub" / "c.db")
    assert store.schema_version() == SCHEMA_VERSION
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    assert store.query("PRAGMA foreign_keys")[0][0] == 1
    with pytest.raises(sqlite3.IntegrityError):
        with store.transaction() as connection:
            connection.execute("INSERT INTO embeddings VALUES (99, 'm', 1, x'00000000', NULL)")


def test_old_database_is_migrated(tmp_path):
    path = tmp_path / "old.db"
    connection = sqlite3.connect(path)
    connection.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
    connection.close()
    store = CatalogStore(path)
    assert store.schema_version() == SCHEMA_VERSION
    assert store.counts()["clusters"] == 0  # table added by migration 2


def test_newer_database_is_refused(tmp_path):
    CatalogStore(tmp_path / "c.db").close()
    connection = sqlite3.connect(tmp_path / "c.db")
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(CatalogError, match="newer"):
        CatalogStore(tmp_path / "c.db")


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64])
def test_blobs_round_trip_exactly(dtype):
    array = (np.arange(24).reshape(2, 3, 4) * 1.5).astype(dtype)
    restored = blob_to_array(*array_to_blob(array))
    assert restored.dtype == array.dtype and restored.shape == array.shape
    np.testing.assert_array_equal(restored, array)
    assert len(array_to_blob(array)[2]) == array.nbytes  # raw bytes, not text


def test_writing_a_batch_twice_keeps_one_copy(tmp_path):
    store, image_id = _store_with_image(tmp_path)
    run = store.start_run("yolo:x", "yolo", {}, {})
    record = ImageRecord(
        image_id,
        np.ones(5, np.float32),
        features=[("model.9", "gap", np.ones(3, np.float32))],
        predictions=[
            dict(x1=0, y1=0, x2=1, y2=1, confidence=0.5, class_id=1, class_name="b", mask_png=None)
        ],
        losses={"box": 1.0, "cls": 2.0, "dfl": 3.0, "seg": None},
        metrics={"n_predictions": 1, "n_labels": None, "categories": {"b": 1}},
    )
    for _ in range(2):
        store.write_batch("yolo:x", run, [record], failures=[("/x.png", "read", "bad")])
    counts = store.counts()
    tables = ("embeddings", "features", "predictions", "losses", "metrics")
    assert {table: counts[table] for table in tables} == dict.fromkeys(tables, 1)
    assert counts["failures"] == 1
    ids, vectors = store.embeddings("yolo:x")
    assert ids.tolist() == [image_id] and vectors.shape == (1, 5)


def test_failed_transaction_leaves_nothing(tmp_path):
    store, image_id = _store_with_image(tmp_path)
    good = ImageRecord(image_id, np.ones(3, np.float32))
    bad = ImageRecord(12345, np.ones(3, np.float32))  # no such image: foreign key fails
    run = store.start_run("m", "embedding", {}, {})
    with pytest.raises(sqlite3.IntegrityError):
        store.write_batch("m", run, [good, bad])
    assert store.counts()["embeddings"] == 0
