"""``catalog validate``: check every table, type, dimension and count of a catalog.

Each check appends a readable problem (``table: what is wrong (example)``); the CLI
exits non-zero when there is any. Checks:

- SQLite integrity, schema version and all tables present (the report stops at a
  failure here), foreign keys;
- files: every image file still on disk with the size / mtime (or SHA-256) it had
  when it was extracted, label files of images with losses still parse;
- embeddings: blob length = 4 * dim, one dimension per model, finite values;
- features: blob length = prod(shape) * itemsize, every YOLO image has a ``gap`` row
  per hooked layer and one bottleneck ``map``;
- model isolation: models built as embedding models (CLIP / DINOv2) have no features,
  predictions, losses, metrics or distances;
- YOLO counts: every embedded image has a metrics row, a losses row iff it was built
  with labels (``metrics.n_labels`` not NULL),
  ``n_predictions`` = its prediction rows;
- value ranges: confidences and IoU / recall / Dice in [0, 1], boxes ordered, masks
  decode to the image size, boxes, losses and distances finite and losses >= 0;
- distances only between embedded images of their model;
- clusters: cluster ids in [0, k); a clustering covers exactly the images its model
  embedded (one covering part of them is stale).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from clusterlens.catalog.dataset import read_labels
from clusterlens.catalog.store import (
    LOSS_COMPONENTS,
    SCHEMA_VERSION,
    TABLES,
    CatalogStore,
    file_matches,
    file_sha256,
    one_line,
)


@dataclass
class ValidationReport:
    """Problems found (empty = valid) and the checks that ran."""

    path: str
    problems: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "ok": self.ok, "problems": self.problems, "checks": self.checks}


CheckFunction = Callable[[CatalogStore, list[str]], object]


def validate_catalog(db: str | Path) -> ValidationReport:
    """Run every check on ``db`` (see the module docstring), opened read-only.

    The SQLite integrity and schema checks run first; when either fails the report
    ends there, since the other checks would read damaged pages or missing tables.

    Raises:
        FileNotFoundError: ``db`` does not exist.
        CatalogError: ``db`` is not a clusterlens catalog, or too damaged to open.
    """
    path = Path(db)
    report = ValidationReport(str(path))
    with CatalogStore(path, readonly=True, check_version=False) as store:
        for check in CHECKS:
            name = check.__name__.removeprefix("_check_")
            report.checks.append(name)
            try:
                can_go_on = check(store, report.problems)
            except sqlite3.DatabaseError as err:  # damage bad enough to stop a check itself
                report.problems.append(f"sqlite: damaged file, the {name} check failed: {err}")
                can_go_on = False
            if can_go_on is False:
                report.problems.append("the remaining checks were skipped until this is fixed")
                break
    return report


def _problem(problems: list[str], table: str, message: str, rows: list) -> None:
    if rows:
        problems.append(f"{table}: {message} ({len(rows)} rows, e.g. {rows[0]})")


def _check_sqlite(store: CatalogStore, problems: list[str]) -> bool:
    """Integrity, then schema version and tables, then foreign keys; False: stop here."""
    integrity = [row[0] for row in store.query("PRAGMA integrity_check")]
    if integrity != ["ok"]:
        problems.append(f"sqlite: integrity check failed: {one_line(integrity)}")
        return False
    version = store.schema_version()
    if version != SCHEMA_VERSION:
        problems.append(
            f"schema: version {version}, expected {SCHEMA_VERSION}; upgrade it with "
            f"'clusterlens catalog migrate --db {store.path}'"
        )
        return False
    present = {row[0] for row in store.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = sorted(set(TABLES) - present)
    if missing:
        problems.append(f"schema: missing tables {missing}")
        return False
    _problem(
        problems, "sqlite", "foreign keys point nowhere", store.query("PRAGMA foreign_key_check")
    )
    for (versions,) in store.query("SELECT versions FROM runs"):
        try:
            json.loads(versions)
        except json.JSONDecodeError:
            problems.append(f"runs: versions is not JSON: {versions[:60]!r}")
            break
    return True


def _check_files(store: CatalogStore, problems: list[str]) -> None:
    """Image files missing on disk, changed since extraction, or with labels that no
    longer parse (rows extracted from them are stale: rebuild)."""
    missing, changed, bad_labels = [], [], []
    labelled = {row[0] for row in store.query("SELECT DISTINCT image_id FROM losses")}
    for id_, path, size, mtime, digest, label in store.query(
        "SELECT id, path, size, mtime_ns, sha256, label_path FROM images"
    ):
        file = Path(path)
        if not file.is_file():
            missing.append(path)
        elif not file_matches(file, size, mtime) or (size is None and file_sha256(file) != digest):
            changed.append(path)
        if label is not None and id_ in labelled:
            try:
                read_labels(Path(label))
            except (ValueError, OSError) as err:
                bad_labels.append(str(err))
    _problem(problems, "images", "files missing on disk", missing)
    _problem(
        problems, "images", "files changed since extraction; run 'catalog build' again", changed
    )
    _problem(problems, "labels", "label files that no longer parse", bad_labels)


def _check_embeddings(store: CatalogStore, problems: list[str]) -> None:
    _problem(
        problems,
        "embeddings",
        "blob length is not 4 * dim",
        store.query("SELECT image_id, model FROM embeddings WHERE length(vector) != 4 * dim"),
    )
    _problem(
        problems,
        "embeddings",
        "one model has several dimensions",
        store.query(
            "SELECT model, COUNT(DISTINCT dim) FROM embeddings GROUP BY model "
            "HAVING COUNT(DISTINCT dim) > 1"
        ),
    )
    bad = [
        (image_id, model)
        for image_id, model, blob in store.query("SELECT image_id, model, vector FROM embeddings")
        if len(blob) % 4 == 0 and not np.isfinite(np.frombuffer(blob, "<f4")).all()
    ]
    _problem(problems, "embeddings", "non-finite values", bad)


def _check_features(store: CatalogStore, problems: list[str]) -> None:
    bad = []
    for image_id, model, layer, kind, dtype, shape, data in store.query("SELECT * FROM features"):
        try:
            expected = int(np.prod(json.loads(shape))) * np.dtype(dtype).itemsize
        except (TypeError, ValueError, json.JSONDecodeError):
            expected = -1
        if expected != len(data):
            bad.append((image_id, model, layer, kind, dtype, shape, len(data)))
    _problem(problems, "features", "blob size does not match dtype and shape", bad)
    for model in store.yolo_models():
        layers = store.query(
            "SELECT COUNT(DISTINCT layer) FROM features WHERE model = ? AND kind = 'gap'", (model,)
        )[0][0]
        _problem(
            problems,
            "features",
            f"{model}: images without one gap row per hooked layer ({layers}) and one map",
            store.query(
                "SELECT e.image_id, SUM(f.kind = 'gap'), SUM(f.kind = 'map') FROM embeddings e "
                "LEFT JOIN features f ON f.image_id = e.image_id AND f.model = e.model "
                "WHERE e.model = ? GROUP BY e.image_id "
                "HAVING SUM(f.kind = 'gap') IS NOT ? OR SUM(f.kind = 'map') IS NOT 1",
                (model, layers),
            ),
        )


def _check_isolation(store: CatalogStore, problems: list[str]) -> None:
    embedding_models = [
        row[0]
        for row in store.query(
            "SELECT DISTINCT model FROM runs WHERE kind = 'embedding' "
            "EXCEPT SELECT model FROM runs WHERE kind = 'yolo'"
        )
    ]
    for table in ("features", "predictions", "losses", "metrics", "distances"):
        for model in embedding_models:
            count = store.query(f"SELECT COUNT(*) FROM {table} WHERE model = ?", (model,))[0][0]
            if count:
                problems.append(f"isolation: embedding model {model} has {count} rows in {table}")
    built = {row[0] for row in store.query("SELECT model FROM runs")}
    _problem(
        problems,
        "embeddings",
        "rows of a model no run built",
        [m for m in store.models() if m not in built],
    )


def _check_yolo_counts(store: CatalogStore, problems: list[str]) -> None:
    for model in store.yolo_models():
        _problem(
            problems,
            "metrics",
            f"{model}: embedded images without a metrics row",
            store.query(
                "SELECT e.image_id FROM embeddings e LEFT JOIN metrics m "
                "ON m.image_id = e.image_id AND m.model = e.model "
                "WHERE e.model = ? AND m.image_id IS NULL",
                (model,),
            ),
        )
        _problem(
            problems,
            "losses",
            f"{model}: a losses row must exist exactly for the images built with labels",
            store.query(
                "SELECT m.image_id, m.n_labels, l.image_id FROM metrics m LEFT JOIN losses l "
                "ON l.image_id = m.image_id AND l.model = m.model WHERE m.model = ? "
                "AND ((m.n_labels IS NULL) != (l.image_id IS NULL))",
                (model,),
            ),
        )
        _problem(
            problems,
            "metrics",
            f"{model}: n_predictions differs from the predictions rows",
            store.query(
                "SELECT m.image_id, m.n_predictions, COUNT(p.rank) FROM metrics m "
                "LEFT JOIN predictions p ON p.image_id = m.image_id AND p.model = m.model "
                "WHERE m.model = ? "
                "GROUP BY m.image_id HAVING m.n_predictions != COUNT(p.rank)",
                (model,),
            ),
        )


def _check_values(store: CatalogStore, problems: list[str]) -> None:
    _problem(
        problems,
        "predictions",
        "box corners out of order or confidence outside [0, 1]",
        store.query(
            "SELECT image_id, model, rank FROM predictions "
            "WHERE x2 < x1 OR y2 < y1 OR confidence < 0 OR confidence > 1 OR class_name = ''"
        ),
    )
    _problem(
        problems,
        "predictions",
        "non-finite box corner or confidence",
        [
            row[:3]
            for row in store.query(
                "SELECT image_id, model, rank, x1, y1, x2, y2, confidence FROM predictions"
            )
            if not all(math.isfinite(value) for value in row[3:])
        ],
    )
    bad_masks = []
    for image_id, model, rank, blob, width, height in store.query(
        "SELECT p.image_id, p.model, p.rank, p.mask_png, i.width, i.height FROM predictions p "
        "JOIN images i ON i.id = p.image_id WHERE p.mask_png IS NOT NULL"
    ):
        mask = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_GRAYSCALE)
        if mask is None or mask.shape != (height, width):
            bad_masks.append((image_id, model, rank))
    _problem(problems, "predictions", "mask PNG does not decode to the image size", bad_masks)
    _problem(
        problems,
        "metrics",
        "IoU, recall, Dice or confidence outside [0, 1], or categories not JSON counts",
        [
            row[:2]
            for row in store.query(
                "SELECT image_id, model, mean_iou, hit_freq, dice, mean_conf, categories "
                "FROM metrics"
            )
            if any(v is not None and not 0 <= v <= 1 for v in row[2:6]) or not _is_counts(row[6])
        ],
    )
    _problem(
        problems,
        "losses",
        "non-finite or negative loss",
        [
            row[:2]
            for row in store.query("SELECT image_id, model, box, cls, dfl, seg FROM losses")
            if any(v is not None and (not math.isfinite(v) or v < 0) for v in row[2:])
        ],
    )


def _is_counts(text: str) -> bool:
    try:
        counts = json.loads(text)
    except json.JSONDecodeError:
        return False
    return isinstance(counts, dict) and all(isinstance(v, int) and v >= 0 for v in counts.values())


def _check_distances(store: CatalogStore, problems: list[str]) -> None:
    _problem(
        problems,
        "distances",
        "non-finite or negative value",
        [
            row[:4]
            for row in store.query("SELECT model, i, j, component, value FROM distances")
            if not math.isfinite(row[4]) or row[4] < 0
        ],
    )
    _problem(
        problems,
        "distances",
        "pair of an image the model never embedded",
        store.query(
            "SELECT d.model, d.i, d.j FROM distances d "
            "WHERE NOT EXISTS (SELECT 1 FROM embeddings e "
            "WHERE e.model = d.model AND e.image_id = d.i) "
            "OR NOT EXISTS (SELECT 1 FROM embeddings e "
            "WHERE e.model = d.model AND e.image_id = d.j)"
        ),
    )
    _problem(
        problems,
        "distances",
        f"pairs with a component count other than 3 (detect) or 4 (segment) of {LOSS_COMPONENTS}",
        store.query(
            "SELECT model, i, j, COUNT(*) FROM distances GROUP BY model, i, j HAVING COUNT(*) "
            "NOT IN (3, 4)"
        ),
    )


def _check_clusters(store: CatalogStore, problems: list[str]) -> None:
    _problem(
        problems,
        "clusters",
        "cluster id outside [0, k)",
        store.query(
            "SELECT method, model, k, image_id FROM clusters WHERE cluster < 0 OR cluster >= k"
        ),
    )
    _problem(
        problems,
        "clusters",
        "clustering does not cover exactly the model's embedded images (images changed or "
        "added since it ran?); run 'catalog cluster' again",
        store.query(
            "SELECT c.method, c.model, c.k, COUNT(*) AS clustered, "
            "(SELECT COUNT(*) FROM embeddings e WHERE e.model = c.model) AS embedded, "
            "SUM(NOT EXISTS (SELECT 1 FROM embeddings e "
            "WHERE e.model = c.model AND e.image_id = c.image_id)) AS strangers "
            "FROM clusters c GROUP BY c.method, c.model, c.k "
            "HAVING clustered != embedded OR strangers > 0"
        ),
    )


CHECKS: tuple[CheckFunction, ...] = (
    _check_sqlite,
    _check_files,
    _check_embeddings,
    _check_features,
    _check_isolation,
    _check_yolo_counts,
    _check_values,
    _check_distances,
    _check_clusters,
)
