"""The SQLite store: schema, migrations, blobs, idempotent batch writes."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from clusterlens.catalog.store import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    CatalogError,
    CatalogStore,
    ImageRecord,
    array_to_blob,
    blob_to_array,
)
from clusterlens.catalog.synthetic import damage_table


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


def _foreign(path):
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (text TEXT)")
    connection.execute("INSERT INTO notes VALUES ('mine')")
    connection.commit()
    connection.close()
    return path.read_bytes()


@pytest.mark.parametrize(
    "options", [{"readonly": True}, {"create": False}, {}], ids=["read", "write", "create"]
)
def test_another_applications_file_is_refused_and_left_untouched(tmp_path, options):
    before = _foreign(tmp_path / "theirs.db")
    with pytest.raises(CatalogError, match="not a clusterlens catalog .*tables: notes"):
        CatalogStore(tmp_path / "theirs.db", **options)
    assert (tmp_path / "theirs.db").read_bytes() == before


def test_empty_file_is_refused_unless_a_build_creates_the_catalog(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    for options in ({"readonly": True}, {"create": False}):
        with pytest.raises(CatalogError, match="is empty, not a clusterlens catalog"):
            CatalogStore(path, **options)
    assert path.stat().st_size == 0
    (tmp_path / "junk.db").write_bytes(b"plain text, no SQLite header" * 10)
    with pytest.raises(CatalogError, match="not an SQLite file"):
        CatalogStore(tmp_path / "junk.db", readonly=True)
    store = CatalogStore(path)  # a write command may make a 0-byte file a catalog
    assert store.schema_version() == SCHEMA_VERSION
    assert store.query("PRAGMA application_id")[0][0] == APPLICATION_ID


def _version_2(path):
    connection = sqlite3.connect(path)
    connection.executescript(";".join(MIGRATIONS[:2]) + "; PRAGMA user_version = 2;")
    connection.close()
    return path.read_bytes()


def test_read_only_open_never_migrates_and_names_the_upgrade(tmp_path):
    path = tmp_path / "old.db"
    before = _version_2(path)
    with pytest.raises(CatalogError, match="older than .*catalog migrate --db"):
        CatalogStore(path, readonly=True)
    with CatalogStore(path, readonly=True, check_version=False) as store:
        assert store.schema_version() == 2
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.connection.execute("CREATE TABLE x (y)")
    assert path.read_bytes() == before
    CatalogStore(path).close()  # a write command migrates it
    with CatalogStore(path, readonly=True) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert {"size", "mtime_ns"} <= {row[1] for row in store.query("PRAGMA table_info(images)")}


def test_old_catalog_without_application_id_is_still_recognised(tmp_path):
    path = tmp_path / "old.db"
    _version_2(path)
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TABLE clusters")  # damaged, but still ours
    store = CatalogStore(path)
    assert store.query("PRAGMA application_id")[0][0] == APPLICATION_ID


def test_damaged_file_is_refused_before_anything_is_written(tmp_path):
    store, image_id = _store_with_image(tmp_path)
    run = store.start_run("m", "embedding", {}, {})
    store.write_batch("m", run, [ImageRecord(image_id, np.ones(3, np.float32))])
    store.close()
    path = tmp_path / "c.db"
    damage_table(path)
    before = path.read_bytes()
    with pytest.raises(CatalogError, match="is damaged .*nothing was written"):
        CatalogStore(path, create=False)
    assert path.read_bytes() == before
    with CatalogStore(path, readonly=True) as store, pytest.raises(CatalogError, match="damaged"):
        with store:  # damage met mid-query becomes the same one-line error
            store.query("SELECT * FROM embeddings")


def test_paths_that_cannot_be_a_catalog(tmp_path):
    with pytest.raises(ValueError, match="is a folder"):
        CatalogStore(tmp_path)
    (tmp_path / "file").touch()
    with pytest.raises(ValueError, match="is a file, not a folder"):
        CatalogStore(tmp_path / "file" / "sub" / "c.db")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CatalogStore(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()


def test_replacing_a_changed_image_drops_every_models_rows_of_it(tmp_path):
    store, image_id = _store_with_image(tmp_path)
    other = tmp_path / "b.png"
    store.register_images([(other, 4, 4, "cd" * 32, None)])
    other_id = store.image_ids([other])[str(other)]
    for model in ("m1", "m2"):
        store.write_batch(
            model,
            store.start_run(model, "embedding", {}, {}),
            [ImageRecord(i, np.ones(2, np.float32)) for i in (image_id, other_id)],
        )
    with store.transaction() as connection:
        connection.execute(
            "INSERT INTO distances VALUES ('m1', ?, ?, 'box', 1.0)", (other_id, image_id)
        )
    store.replace_images([(tmp_path / "a.png", 12, 9, "ef" * 32, None, 100, 5)])
    new_id = store.image_ids([tmp_path / "a.png"])[str(tmp_path / "a.png")]
    assert new_id != image_id
    assert store.query("SELECT image_id, model FROM embeddings ORDER BY model") == [
        (other_id, "m1"), (other_id, "m2")
    ]  # fmt: skip
    assert store.counts()["distances"] == 0
    assert store.query("SELECT width, sha256, size FROM images WHERE id = ?", (new_id,)) == [
        (12, "ef" * 32, 100)
    ]
