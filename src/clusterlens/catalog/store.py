"""The catalog's SQLite store: schema, migrations, and one-transaction-per-batch writes.

Tables (see ``docs/catalog.md`` for every column):

- ``images`` -- one row per image file (path, size, content hash).
- ``runs`` -- one row per build / distances run: model, settings, library versions, counts.
- ``embeddings`` -- per image per model: float32 vector blob + its dimension.
- ``features`` -- YOLO only: per hooked layer, the global-average-pooled vector
  (``kind='gap'``) and the raw bottleneck map (``kind='map'``, float16), as raw
  little-endian bytes with dtype and shape columns (not JSON).
- ``predictions`` -- YOLO only: one row per detection, mask as PNG bytes.
- ``losses`` -- YOLO only, images with labels: box, cls, dfl, seg.
- ``metrics`` -- YOLO only: mean IoU, mean confidence, hit frequency, Dice, categories.
- ``distances`` -- YOLO only: asymmetric loss distance (i, j, component, value).
- ``clusters`` -- cluster assignments by method / model / k.
- ``failures`` -- images that could not be read or processed, with the error.

Reliability: WAL journal, a busy timeout so concurrent writers wait instead of failing,
``BEGIN IMMEDIATE`` transactions (one per batch), primary keys that make every write
idempotent, and ``PRAGMA user_version`` as the schema version with ordered migrations.
An image counts as done for a model when its ``embeddings`` row exists: that row is
written in the same transaction as all the image's other rows, so a killed build never
leaves a half-written image behind.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 60_000
LOSS_COMPONENTS = ("box", "cls", "dfl", "seg")

_MIGRATION_1 = """
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    width INTEGER NOT NULL CHECK (width > 0),
    height INTEGER NOT NULL CHECK (height > 0),
    sha256 TEXT NOT NULL,
    label_path TEXT
);
CREATE INDEX images_sha256 ON images(sha256);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    model TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('yolo', 'embedding', 'distances')),
    settings TEXT NOT NULL,
    versions TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    images_done INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'running'
);
CREATE TABLE embeddings (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL CHECK (dim > 0),
    vector BLOB NOT NULL,
    run_id INTEGER REFERENCES runs(id),
    PRIMARY KEY (image_id, model)
);
CREATE INDEX embeddings_model ON embeddings(model);
CREATE TABLE features (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    layer TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('gap', 'map')),
    dtype TEXT NOT NULL,
    shape TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (image_id, model, layer, kind)
);
CREATE TABLE predictions (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    rank INTEGER NOT NULL,
    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,
    confidence REAL NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    class_id INTEGER NOT NULL,
    class_name TEXT NOT NULL,
    mask_png BLOB,
    PRIMARY KEY (image_id, model, rank)
);
CREATE TABLE losses (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    box REAL NOT NULL, cls REAL NOT NULL, dfl REAL NOT NULL, seg REAL,
    PRIMARY KEY (image_id, model)
);
CREATE TABLE metrics (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    n_labels INTEGER,
    n_predictions INTEGER NOT NULL,
    mean_iou REAL, mean_conf REAL, hit_freq REAL, dice REAL,
    categories TEXT NOT NULL,
    PRIMARY KEY (image_id, model)
);
CREATE TABLE distances (
    model TEXT NOT NULL,
    i INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    j INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    component TEXT NOT NULL CHECK (component IN ('box', 'cls', 'dfl', 'seg')),
    value REAL NOT NULL,
    PRIMARY KEY (model, i, j, component)
);
CREATE TABLE failures (
    path TEXT NOT NULL,
    model TEXT NOT NULL,
    stage TEXT NOT NULL,
    error TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (path, model, stage)
);
"""

_MIGRATION_2 = """
CREATE TABLE clusters (
    method TEXT NOT NULL,
    model TEXT NOT NULL,
    k INTEGER NOT NULL,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    cluster INTEGER NOT NULL,
    PRIMARY KEY (method, model, k, image_id)
);
CREATE INDEX distances_model_i ON distances(model, i);
"""

# Ordered: migration n brings a database from version n - 1 to version n.
MIGRATIONS: tuple[str, ...] = (_MIGRATION_1, _MIGRATION_2)
TABLES = (
    "images",
    "runs",
    "embeddings",
    "features",
    "predictions",
    "losses",
    "metrics",
    "distances",
    "clusters",
    "failures",
)


@dataclass
class ImageRecord:
    """Everything one extractor produced for one image (written in one transaction).

    ``features`` holds ``(layer, kind, array)``; ``predictions`` holds dicts with the
    ``predictions`` columns; ``losses`` / ``metrics`` are column dicts or ``None``.
    """

    image_id: int
    embedding: np.ndarray
    features: list[tuple[str, str, np.ndarray]] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)
    losses: dict[str, float | None] | None = None
    metrics: dict[str, Any] | None = None


def array_to_blob(array: np.ndarray) -> tuple[str, str, bytes]:
    """(dtype, shape, little-endian bytes) of ``array``: compact and exact."""
    array = np.ascontiguousarray(array)
    dtype = array.dtype.newbyteorder("<")
    return dtype.str, json.dumps(list(array.shape)), array.astype(dtype).tobytes()


def blob_to_array(dtype: str, shape: str, data: bytes) -> np.ndarray:
    """Inverse of :func:`array_to_blob`."""
    return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(json.loads(shape))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class CatalogStore:
    """A connection to a catalog database, created and migrated on open.

    Args:
        path: the SQLite file (created with its folder if missing).
        create: when False, a missing file is a FileNotFoundError (read-only commands).

    Example:
        >>> import tempfile, os
        >>> store = CatalogStore(os.path.join(tempfile.mkdtemp(), "c.db"))
        >>> store.schema_version() == SCHEMA_VERSION
        True
    """

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise FileNotFoundError(f"catalog database {self.path} does not exist")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a writer takes the
        # write lock up front and waits (busy timeout) instead of failing on upgrade.
        self.connection = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
        )
        self.connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.connection.execute("PRAGMA journal_mode = WAL")
        self.connection.execute("PRAGMA foreign_keys = ON")
        self.connection.execute("PRAGMA synchronous = NORMAL")
        self.migrate()

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> CatalogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error)."""
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self.connection
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple]:
        return self.connection.execute(sql, parameters).fetchall()

    # ------------------------------------------------------------------ schema

    def schema_version(self) -> int:
        return self.query("PRAGMA user_version")[0][0]

    def migrate(self) -> None:
        """Apply the migrations this database has not seen yet, each in a transaction."""
        with self.transaction() as connection:
            # re-read inside the write lock: a concurrent process may have migrated
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ValueError(
                    f"{self.path} has schema version {version}, newer than this clusterlens "
                    f"({SCHEMA_VERSION}); upgrade clusterlens"
                )
            for number in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[number - 1].split(";"):
                    if statement.strip():
                        connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {number}")

    # ------------------------------------------------------------------ images

    def register_images(self, entries: Iterable[tuple[Path, int, int, str, Path | None]]) -> None:
        """Insert (path, width, height, sha256, label_path) rows not already present."""
        rows = list(entries)
        with self.transaction() as connection:
            connection.executemany(
                "INSERT OR IGNORE INTO images (path, width, height, sha256, label_path) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (str(path), width, height, digest, None if label is None else str(label))
                    for path, width, height, digest, label in rows
                ],
            )
            # labels given now for images first registered without them
            connection.executemany(
                "UPDATE images SET label_path = ? WHERE path = ? AND label_path IS NULL",
                [(str(label), str(path)) for path, _, _, _, label in rows if label is not None],
            )

    def image_ids(self, paths: Iterable[Path]) -> dict[str, int]:
        wanted = {str(path) for path in paths}
        return {
            path: id_ for id_, path in self.query("SELECT id, path FROM images") if path in wanted
        }

    def done_image_ids(self, model: str) -> set[int]:
        return {
            row[0]
            for row in self.query("SELECT image_id FROM embeddings WHERE model = ?", (model,))
        }

    # ------------------------------------------------------------------ runs

    def start_run(self, model: str, kind: str, settings: dict, versions: dict) -> int:
        with self.transaction() as connection:
            cursor = connection.execute(
                "INSERT INTO runs (model, kind, settings, versions, started) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    model,
                    kind,
                    json.dumps(settings, sort_keys=True),
                    json.dumps(versions),
                    time.time(),
                ),
            )
            return int(cursor.lastrowid)

    def finish_run(
        self, run_id: int, images_done: int, failures: int, status: str = "done"
    ) -> None:
        with self.transaction() as connection:
            connection.execute(
                "UPDATE runs SET finished = ?, images_done = ?, failures = ?, status = ? "
                "WHERE id = ?",
                (time.time(), images_done, failures, status, run_id),
            )

    def model_settings(self, model: str) -> dict[str, Any]:
        """The settings of the latest build run of ``model``."""
        rows = self.query(
            "SELECT settings FROM runs WHERE model = ? AND kind != 'distances' "
            "ORDER BY id DESC LIMIT 1",
            (model,),
        )
        if not rows:
            raise ValueError(f"no build of model {model!r} in {self.path}; models: {self.models()}")
        return json.loads(rows[0][0])

    def models(self) -> list[str]:
        return [
            row[0] for row in self.query("SELECT DISTINCT model FROM embeddings ORDER BY model")
        ]

    def yolo_models(self) -> list[str]:
        return [
            row[0]
            for row in self.query(
                "SELECT DISTINCT model FROM runs WHERE kind = 'yolo' ORDER BY model"
            )
        ]

    # ------------------------------------------------------------------ writes

    def write_batch(
        self,
        model: str,
        run_id: int,
        records: Sequence[ImageRecord],
        failures: Sequence[tuple[str, str, str]] = (),
    ) -> None:
        """Write a batch of extracted images and failures in ONE transaction.

        Args:
            model: model name the rows belong to.
            run_id: the run that produced them.
            records: one per successfully processed image.
            failures: ``(path, stage, error)`` of images that failed in this batch.
        """
        with self.transaction() as connection:
            for record in records:
                self._write_record(connection, model, run_id, record)
            connection.executemany(
                "INSERT OR REPLACE INTO failures (path, model, stage, error, at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(path, model, stage, error, time.time()) for path, stage, error in failures],
            )
            done_paths = [
                (row[0], model)
                for record in records
                for row in connection.execute(
                    "SELECT path FROM images WHERE id = ?", (record.image_id,)
                )
            ]
            connection.executemany("DELETE FROM failures WHERE path = ? AND model = ?", done_paths)

    @staticmethod
    def _write_record(
        connection: sqlite3.Connection, model: str, run_id: int, record: ImageRecord
    ) -> None:
        image_id = record.image_id
        vector = np.asarray(record.embedding, dtype="<f4").ravel()
        connection.execute(
            "INSERT OR REPLACE INTO embeddings (image_id, model, dim, vector, run_id) "
            "VALUES (?, ?, ?, ?, ?)",
            (image_id, model, int(vector.size), vector.tobytes(), run_id),
        )
        connection.executemany(
            "INSERT OR REPLACE INTO features (image_id, model, layer, kind, dtype, shape, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (image_id, model, layer, kind, *array_to_blob(array))
                for layer, kind, array in record.features
            ],
        )
        # predictions are replaced as a set: a re-run may find fewer detections
        connection.execute(
            "DELETE FROM predictions WHERE image_id = ? AND model = ?", (image_id, model)
        )
        connection.executemany(
            "INSERT INTO predictions (image_id, model, rank, x1, y1, x2, y2, confidence, "
            "class_id, class_name, mask_png) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    image_id,
                    model,
                    rank,
                    p["x1"],
                    p["y1"],
                    p["x2"],
                    p["y2"],
                    p["confidence"],
                    p["class_id"],
                    p["class_name"],
                    p.get("mask_png"),
                )
                for rank, p in enumerate(record.predictions)
            ],
        )
        if record.losses is not None:
            connection.execute(
                "INSERT OR REPLACE INTO losses (image_id, model, box, cls, dfl, seg) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (image_id, model, *(record.losses.get(name) for name in LOSS_COMPONENTS)),
            )
        if record.metrics is not None:
            m = record.metrics
            connection.execute(
                "INSERT OR REPLACE INTO metrics (image_id, model, n_labels, n_predictions, "
                "mean_iou, mean_conf, hit_freq, dice, categories) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    image_id,
                    model,
                    m.get("n_labels"),
                    m["n_predictions"],
                    m.get("mean_iou"),
                    m.get("mean_conf"),
                    m.get("hit_freq"),
                    m.get("dice"),
                    json.dumps(m["categories"]),
                ),
            )

    # ------------------------------------------------------------------ reads

    def embeddings(self, model: str) -> tuple[np.ndarray, np.ndarray]:
        """(image ids, (N, D) float32 matrix) of ``model``'s embeddings, by image id."""
        rows = self.query(
            "SELECT image_id, dim, vector FROM embeddings WHERE model = ? ORDER BY image_id",
            (model,),
        )
        if not rows:
            raise ValueError(
                f"no embeddings for model {model!r} in {self.path}; models: {self.models()}"
            )
        ids = np.array([row[0] for row in rows], dtype=np.int64)
        return ids, np.stack([np.frombuffer(row[2], dtype="<f4") for row in rows])

    def counts(self) -> dict[str, int]:
        return {table: self.query(f"SELECT COUNT(*) FROM {table}")[0][0] for table in TABLES}
