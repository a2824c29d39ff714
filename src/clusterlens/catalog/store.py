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
``PRAGMA application_id`` marks the file as a clusterlens catalog, so another
application's SQLite file is refused instead of being migrated. Read-only commands open
the file read-only (``mode=ro``) and never migrate; write commands run ``PRAGMA
quick_check`` first, so a damaged file is refused before anything is written.
An image counts as done for a model when its ``embeddings`` row exists: that row is
written in the same transaction as all the image's other rows, so a killed build never
leaves a half-written image behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

SCHEMA_VERSION = 3
#: ``PRAGMA application_id`` of a catalog ("CLNS"): tells our files from other SQLite files.
APPLICATION_ID = 0x434C4E53
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

# size and mtime of each image file, so a rebuild notices a file replaced since it was
# extracted (NULL for images registered before: their SHA-256 is compared instead)
_MIGRATION_3 = f"""
ALTER TABLE images ADD COLUMN size INTEGER;
ALTER TABLE images ADD COLUMN mtime_ns INTEGER;
PRAGMA application_id = {APPLICATION_ID}
"""

# Ordered: migration n brings a database from version n - 1 to version n.
MIGRATIONS: tuple[str, ...] = (_MIGRATION_1, _MIGRATION_2, _MIGRATION_3)
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


class CatalogError(Exception):
    """The catalog file cannot be used as it is: not a catalog, damaged, too old or
    too new, read-only. The message says what was found and what to do."""


#: Tables of a version-1 catalog: a file with most of them is a catalog made before
#: the application id was set (a version-3 catalog carries ``APPLICATION_ID``).
_LEGACY_TABLES = frozenset(TABLES) - {"clusters"}
_SQLITE_HEADER = b"SQLite format 3\x00"


def describe_sqlite_error(path: Path, error: sqlite3.Error, untouched: bool = False) -> str:
    """A one-line explanation of an SQLite error on the catalog ``path``.

    ``untouched``: the error came before anything could be written (opening, checks),
    which the message then says.
    """
    text = str(error)
    lowered = text.lower()
    if "malformed" in lowered or "not a database" in lowered:
        return (
            f"catalog {path} is damaged (sqlite: {text}); "
            f"{'nothing was written. ' if untouched else ''}Restore it from a copy, or build "
            "a new catalog with another --db"
        )
    if "readonly" in lowered or "read-only" in lowered:
        return f"cannot write catalog {path}: the file or its folder is read-only (sqlite: {text})"
    if "no such table" in lowered or "no such column" in lowered:
        return (
            f"catalog {path} lacks part of its schema (sqlite: {text}); "
            f"see 'clusterlens catalog validate {path}'"
        )
    if "locked" in lowered or "busy" in lowered:
        return f"catalog {path} is locked by another process (sqlite: {text}); try again later"
    return f"catalog {path}: sqlite error: {text}"


def check_catalog_path(path: Path, must_exist: bool) -> None:
    """Refuse a catalog path that can never be a catalog file, with a one-line reason.

    Raises:
        ValueError: ``path`` is a folder, or one of its parents is a file.
        FileNotFoundError: ``must_exist`` and there is no such file.
    """
    if path.is_dir():
        raise ValueError(
            f"catalog path {path} is a folder; give a catalog file, e.g. {path / 'catalog.db'}"
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"cannot use catalog {path}: {parent} is a file, not a folder")
            break
    if must_exist and not path.is_file():
        raise FileNotFoundError(f"catalog database {path} does not exist")


def check_writable(path: Path) -> None:
    """A write command on a read-only catalog or folder fails here, before any change.

    Raises:
        CatalogError: the file, or the folder SQLite keeps its journal in, is read-only.
    """
    folder = next((p for p in path.parents if p.exists()), Path("."))
    if path.exists() and not os.access(path, os.W_OK):
        raise CatalogError(f"catalog {path} is read-only; make it writable or give another --db")
    if not os.access(folder, os.W_OK):
        raise CatalogError(
            f"cannot write catalog {path}: folder {folder} is read-only (SQLite "
            "keeps its journal next to the file); give a --db in a writable folder"
        )


def _is_sqlite_file(path: Path) -> bool:
    """True for a missing or empty file (SQLite's empty database) or an SQLite header."""
    if not path.exists() or path.stat().st_size == 0:
        return True
    with open(path, "rb") as handle:
        return handle.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER


class CatalogStore:
    """A connection to a catalog database.

    Opened for writing (the default), the file is created if missing, checked with
    ``PRAGMA quick_check`` and migrated to :data:`SCHEMA_VERSION`. Opened with
    ``readonly=True`` it is opened read-only and never migrated: an older catalog is
    refused with a message saying how to upgrade it.

    Args:
        path: the SQLite file (created with its folder if missing and ``create``).
        create: when False, a missing or empty file is refused (commands that need
            an existing catalog).
        readonly: open read-only (``show``, ``validate``, ``export``); implies
            ``create=False``.
        check_version: with ``readonly``, refuse a catalog whose schema is older than
            this code (``validate`` turns it off to report the version itself).

    Raises:
        FileNotFoundError: no file where one must exist.
        ValueError: ``path`` is a folder, or a parent of it is a file.
        CatalogError: not a clusterlens catalog, damaged, newer than this code (or
            older, read-only), or read-only when opened for writing.

    Example:
        >>> import tempfile, os
        >>> store = CatalogStore(os.path.join(tempfile.mkdtemp(), "c.db"))
        >>> store.schema_version() == SCHEMA_VERSION
        True
    """

    def __init__(
        self,
        path: str | Path,
        create: bool = True,
        readonly: bool = False,
        check_version: bool = True,
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        check_catalog_path(self.path, must_exist=readonly or not create)
        if not readonly:
            check_writable(self.path)
        if not _is_sqlite_file(self.path):
            raise CatalogError(f"{self.path} is not a clusterlens catalog: not an SQLite file")
        self.connection = self._connect()
        try:
            self._check_identity(may_initialise=create and not readonly)
            if readonly:
                if check_version:
                    self._check_not_older()
            else:
                self.quick_check()
                self.connection.execute("PRAGMA journal_mode = WAL")
                self.connection.execute("PRAGMA foreign_keys = ON")
                self.connection.execute("PRAGMA synchronous = NORMAL")
                self.migrate()
        except sqlite3.DatabaseError as err:
            self.connection.close()
            raise CatalogError(describe_sqlite_error(self.path, err, untouched=True)) from err
        except BaseException:
            self.connection.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a writer takes the
        # write lock up front and waits (busy timeout) instead of failing on upgrade.
        options = {"timeout": BUSY_TIMEOUT_MS / 1000, "isolation_level": None}
        if not self.readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, **options)
        else:
            uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
            connection = sqlite3.connect(uri, uri=True, **options)
            try:  # reading the schema opens the WAL index: fails where it cannot be created
                connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            except sqlite3.OperationalError:
                connection.close()
                if os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK):
                    raise
                # A WAL catalog in a read-only folder: SQLite cannot create its -shm file
                # there. Nobody can write to it either, so reading it as immutable is safe.
                connection = sqlite3.connect(f"{uri}&immutable=1", uri=True, **options)
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return connection

    def _check_identity(self, may_initialise: bool) -> None:
        """Refuse a file that is not a clusterlens catalog (nothing is written to it)."""
        version = self.schema_version()
        application = self.query("PRAGMA application_id")[0][0]
        tables = {row[0] for row in self.query("SELECT name FROM sqlite_master WHERE type='table'")}
        if version == 0 and application == 0 and not tables:
            if may_initialise:
                return  # a new (or 0-byte) file: the migrations make it a catalog
            raise CatalogError(
                f"{self.path} is empty, not a clusterlens catalog; create one with "
                f"'clusterlens catalog build DATA --model MODEL --db {self.path}'"
            )
        legacy = application == 0 and version >= 1 and len(tables & _LEGACY_TABLES) >= 5
        if application != APPLICATION_ID and not legacy:
            listed = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
            raise CatalogError(
                f"{self.path} is not a clusterlens catalog (application_id {application}, "
                f"user_version {version}, tables: {listed or 'none'}); it was left untouched"
            )
        if version > SCHEMA_VERSION:
            raise CatalogError(
                f"{self.path} has schema version {version}, newer than this clusterlens "
                f"({SCHEMA_VERSION}); upgrade clusterlens"
            )

    def _check_not_older(self) -> None:
        version = self.schema_version()
        if version < SCHEMA_VERSION:
            raise CatalogError(
                f"{self.path} has schema version {version}, older than this clusterlens "
                f"({SCHEMA_VERSION}); upgrade it with 'clusterlens catalog migrate --db "
                f"{self.path}' or any write command (build, distances, cluster)"
            )

    def quick_check(self) -> None:
        """``PRAGMA quick_check``: a damaged file is refused before anything is written."""
        try:
            found = [row[0] for row in self.query("PRAGMA quick_check")]
        except sqlite3.DatabaseError as err:  # damage bad enough that the check cannot run
            raise CatalogError(describe_sqlite_error(self.path, err, untouched=True)) from err
        if found != ["ok"]:
            raise CatalogError(
                f"catalog {self.path} is damaged (PRAGMA quick_check: {one_line(found)}); "
                "nothing was written. Restore it from a copy, or build a new catalog with "
                "another --db"
            )

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> CatalogStore:
        return self

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        self.close()
        # damage found mid-command (a page read deep in a query) becomes the same one-line
        # CatalogError as damage found on open
        if isinstance(error, sqlite3.DatabaseError):
            raise CatalogError(describe_sqlite_error(self.path, error)) from error

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error)."""
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self.connection
        except BaseException:
            try:
                self.connection.execute("ROLLBACK")
            except sqlite3.Error:  # a damaged file may refuse the rollback too: keep the cause
                pass
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
                raise CatalogError(
                    f"{self.path} has schema version {version}, newer than this clusterlens "
                    f"({SCHEMA_VERSION}); upgrade clusterlens"
                )
            for number in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[number - 1].split(";"):
                    if statement.strip():
                        connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {number}")

    # ------------------------------------------------------------------ images

    def register_images(self, entries: Iterable[Sequence[Any]]) -> None:
        """Insert image rows not already present; refresh what is known of the others.

        Each entry is ``(path, width, height, sha256, label_path[, size, mtime_ns])``.
        A known path keeps its row (and its id); labels given now are recorded for
        images first registered without them, and size / mtime for a file whose
        content (SHA-256) is the one stored.
        """
        rows = [_image_row(entry) for entry in entries]
        with self.transaction() as connection:
            connection.executemany(
                "INSERT OR IGNORE INTO images "
                "(path, width, height, sha256, label_path, size, mtime_ns) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            connection.executemany(
                "UPDATE images SET label_path = ? WHERE path = ? AND label_path IS NULL",
                [(row[4], row[0]) for row in rows if row[4] is not None],
            )
            connection.executemany(
                "UPDATE images SET size = ?, mtime_ns = ? WHERE path = ? AND sha256 = ?",
                [(row[5], row[6], row[0], row[3]) for row in rows if row[5] is not None],
            )

    def replace_images(self, entries: Iterable[Sequence[Any]]) -> None:
        """Files whose content changed: new image rows, the stale rows gone, in ONE
        transaction.

        Deleting the old image row removes every model's rows of it -- embeddings,
        features, predictions, losses, metrics, distances, clusters -- through
        ``ON DELETE CASCADE``; the next build extracts the new content.
        """
        rows = [_image_row(entry) for entry in entries]
        with self.transaction() as connection:
            connection.executemany("DELETE FROM images WHERE path = ?", [(r[0],) for r in rows])
            connection.executemany(
                "INSERT INTO images (path, width, height, sha256, label_path, size, mtime_ns) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def forget_images(self, paths: Iterable[str | Path]) -> None:
        """Delete image rows (and, by cascade, every model's rows of them)."""
        with self.transaction() as connection:
            connection.executemany(
                "DELETE FROM images WHERE path = ?", [(str(path),) for path in paths]
            )

    def image_states(self) -> dict[str, tuple[int, int | None, int | None, str]]:
        """``path -> (id, size, mtime_ns, sha256)`` of every registered image."""
        return {
            path: (id_, size, mtime, digest)
            for id_, path, size, mtime, digest in self.query(
                "SELECT id, path, size, mtime_ns, sha256 FROM images"
            )
        }

    def image_ids(self, paths: Iterable[Path]) -> dict[str, int]:
        wanted = {str(path) for path in paths}
        return {
            path: id_ for id_, path in self.query("SELECT id, path FROM images") if path in wanted
        }

    def done_image_ids(self, model: str, among: Iterable[int] | None = None) -> set[int]:
        """Ids of the images with ``model``'s embedding row (all, or those ``among``)."""
        if among is None:
            rows = self.query("SELECT image_id FROM embeddings WHERE model = ?", (model,))
        else:
            wanted = list(among)
            marks = ", ".join("?" * len(wanted))
            rows = self.query(
                f"SELECT image_id FROM embeddings WHERE model = ? AND image_id IN ({marks})",
                (model, *wanted),
            )
        return {row[0] for row in rows}

    def changed_files(self, ids: Iterable[int]) -> list[str]:
        """Paths of the images ``ids`` missing on disk or whose size / mtime differ from
        what was stored when they were registered (unknown stats are not compared)."""
        wanted = {int(i) for i in ids}
        changed = []
        for id_, path, size, mtime in self.query("SELECT id, path, size, mtime_ns FROM images"):
            if id_ in wanted and not file_matches(Path(path), size, mtime):
                changed.append(path)
        return changed

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

    def other_builds_running(self, model: str, run_id: int) -> int:
        """Builds of ``model`` started before run ``run_id`` and not finished (or killed).

        Run ids are handed out one transaction at a time, so of two builds started
        together exactly one sees the other here.
        """
        return self.query(
            "SELECT COUNT(*) FROM runs WHERE model = ? AND kind != 'distances' "
            "AND status = 'running' AND id < ?",
            (model, run_id),
        )[0][0]

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


def one_line(lines: Sequence[str], most: int = 3) -> str:
    """SQLite check output (one message per row, some with newlines) as one short line."""
    parts = [" ".join(str(line).split()) for line in lines[:most]]
    return "; ".join(parts) + (f"; ... ({len(lines)} in all)" if len(lines) > most else "")


def schema_version_of(path: str | Path) -> int:
    """The schema version of the catalog ``path``, read without changing anything."""
    with CatalogStore(path, readonly=True, check_version=False) as store:
        return store.schema_version()


def file_stats(path: Path) -> tuple[int, int]:
    """``(size, mtime_ns)`` of a file: cheap evidence that it has not changed."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def file_matches(path: Path, size: int | None, mtime_ns: int | None) -> bool:
    """False when ``path`` is missing, or its size / mtime differ from the stored ones."""
    try:
        stats = file_stats(path)
    except OSError:
        return False
    return size is None or stats == (size, mtime_ns)


def _image_row(entry: Sequence[Any]) -> tuple[Any, ...]:
    """``(path, width, height, sha256, label[, size, mtime_ns])`` as an ``images`` row."""
    path, width, height, digest, label, *stats = entry
    size, mtime_ns = stats if stats else (None, None)
    return (str(path), width, height, digest, None if label is None else str(label), size, mtime_ns)
