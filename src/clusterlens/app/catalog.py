"""The catalog tab's work: browse a catalog (``--catalog DB``) read-only, no Gradio here.

Every read opens the file with ``CatalogStore(readonly=True)`` (SQLite ``mode=ro``, no
migration: the file is never written), one connection per call because Gradio runs
handlers on worker threads and an SQLite connection belongs to its thread.

Images are read only from the paths the catalog recorded, looked up by image id: the
page never names a path, and :meth:`CatalogView.read_image` refuses any path that is
not one of them. The pictures sent to the page are new arrays (Gradio caches them), so
no catalog file is ever served by path.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from clusterlens.catalog.store import LOSS_COMPONENTS, CatalogError, CatalogStore

log = logging.getLogger(__name__)

#: What images can be sorted by: each loss component, their sum, and the metrics.
METRIC_KEYS = ("mean_iou", "mean_conf", "hit_freq", "dice", "n_predictions", "n_labels")
SORT_KEYS = ("total_loss", *LOSS_COMPONENTS, *METRIC_KEYS)
#: Distances: each component, or their sum.
DISTANCE_KEYS = ("total", *LOSS_COMPONENTS)
THUMBNAIL_SIDE = 128
#: The clicked image is drawn with its predictions at this longer side (small data-set
#: images are enlarged first, so boxes and labels stay readable; large ones shrunk).
DETAIL_SIDE = 480
#: Thumbnails shown per grid and neighbours per direction.
GRID_LIMIT = 60
NEIGHBOURS = 5
#: The errors a catalog read turns into a message in the page.
CATALOG_ERRORS = (CatalogError, FileNotFoundError, ValueError, KeyError, OSError)


@dataclass(frozen=True)
class Clustering:
    """One clustering stored in the catalog's ``clusters`` table."""

    method: str
    model: str
    k: int

    @property
    def label(self) -> str:
        return f"{self.method} · {self.model} · k={self.k}"


class CatalogView:
    """A read-only view of one catalog file.

    Args:
        db: the catalog's SQLite file.

    Raises:
        FileNotFoundError: no such file.
        CatalogError: not a catalog, damaged, or older than this code.
    """

    def __init__(self, db: str | Path) -> None:
        self.db = Path(db).expanduser().resolve()
        with self._store() as store:  # checks the file once, now
            rows = store.query("SELECT id, path FROM images ORDER BY id")
        self.paths: dict[int, Path] = {image_id: Path(path) for image_id, path in rows}
        self._recorded = {path.resolve() for path in self.paths.values()}

    def _store(self) -> CatalogStore:
        return CatalogStore(self.db, readonly=True)

    def _query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        with self._store() as store:
            return store.query(sql, parameters)

    # ------------------------------------------------------------------ what it holds

    def clusterings(self) -> list[Clustering]:
        rows = self._query("SELECT DISTINCT method, model, k FROM clusters ORDER BY 2, 1, 3")
        return [Clustering(method, model, int(k)) for method, model, k in rows]

    def clustering(self, label: str) -> Clustering:
        """The clustering whose :attr:`Clustering.label` is ``label``.

        Raises:
            ValueError: no such clustering.
        """
        found = {clustering.label: clustering for clustering in self.clusterings()}
        if label not in found:
            raise ValueError(f"no clustering {label!r} in {self.db}; stored: {list(found)}")
        return found[label]

    def yolo_models(self) -> list[str]:
        """Models with per-image losses, metrics or predictions (YOLO builds)."""
        rows = self._query(
            "SELECT model FROM losses UNION SELECT model FROM metrics "
            "UNION SELECT model FROM predictions ORDER BY 1"
        )
        return [row[0] for row in rows]

    def cluster_sizes(self, clustering: Clustering) -> list[list[int]]:
        """Rows [cluster, images], by cluster id."""
        rows = self._query(
            "SELECT cluster, COUNT(*) FROM clusters WHERE method = ? AND model = ? AND k = ? "
            "GROUP BY cluster ORDER BY cluster",
            (clustering.method, clustering.model, clustering.k),
        )
        return [[int(cluster), int(count)] for cluster, count in rows]

    def cluster_members(self, clustering: Clustering, cluster: int) -> list[int]:
        rows = self._query(
            "SELECT image_id FROM clusters WHERE method = ? AND model = ? AND k = ? "
            "AND cluster = ? ORDER BY image_id",
            (clustering.method, clustering.model, clustering.k, int(cluster)),
        )
        return [row[0] for row in rows]

    # ------------------------------------------------------------------ sorting

    def sorted_images(
        self, model: str, key: str, descending: bool = True
    ) -> list[tuple[int, float]]:
        """(image id, value) of every image of ``model`` that has ``key``, sorted by it
        (``total_loss``: box + cls + dfl, plus seg where the model segments).

        Raises:
            ValueError: ``key`` is not one of :data:`SORT_KEYS`.
        """
        if key not in SORT_KEYS:
            raise ValueError(f"cannot sort by {key!r}; choose one of {', '.join(SORT_KEYS)}")
        if key == "total_loss":
            column, table = "box + cls + dfl + COALESCE(seg, 0)", "losses"
        else:
            column, table = key, "losses" if key in LOSS_COMPONENTS else "metrics"
        order = "DESC" if descending else "ASC"
        rows = self._query(
            f"SELECT image_id, {column} AS value FROM {table} "  # names from SORT_KEYS only
            f"WHERE model = ? AND value IS NOT NULL ORDER BY value {order}, image_id",
            (model,),
        )
        return [(int(image_id), float(value)) for image_id, value in rows]

    # ------------------------------------------------------------------ one image

    def read_image(self, path: str | Path) -> np.ndarray:
        """The pixels of ``path`` (uint8 RGB) if the catalog recorded it.

        Raises:
            PermissionError: any path the catalog did not record (the page cannot make
                the app read other files).
        """
        from clusterlens.catalog.dataset import load_rgb

        resolved = Path(path).expanduser().resolve()
        if resolved not in self._recorded:
            raise PermissionError(f"{path} is not an image of this catalog: refused")
        return load_rgb(resolved)

    def image(self, image_id: int) -> np.ndarray:
        """The pixels of the image with this id (from its recorded path)."""
        if int(image_id) not in self.paths:
            raise KeyError(f"no image with id {image_id} in {self.db}")
        return self.read_image(self.paths[int(image_id)])

    def thumbnail(self, image_id: int) -> np.ndarray:
        return _thumbnail(self, int(image_id))

    def predictions(self, image_id: int, model: str) -> list[dict[str, Any]]:
        """The model's stored detections of the image, best first (mask decoded)."""
        rows = self._query(
            "SELECT x1, y1, x2, y2, confidence, class_name, mask_png FROM predictions "
            "WHERE image_id = ? AND model = ? ORDER BY rank",
            (int(image_id), model),
        )
        found = []
        for x1, y1, x2, y2, confidence, name, mask_png in rows:
            mask = None
            if mask_png is not None:
                mask = cv2.imdecode(np.frombuffer(mask_png, np.uint8), cv2.IMREAD_GRAYSCALE)
            found.append(
                {"box": (x1, y1, x2, y2), "confidence": confidence, "name": name, "mask": mask}
            )
        return found

    def losses(self, image_id: int, model: str) -> dict[str, Any]:
        """The image's loss components and metrics for ``model`` ({} where none)."""
        values: dict[str, Any] = {}
        with self._store() as store:
            for table, names in (("losses", LOSS_COMPONENTS), ("metrics", METRIC_KEYS)):
                row = store.query(
                    f"SELECT {', '.join(names)} FROM {table} WHERE image_id = ? AND model = ?",
                    (int(image_id), model),
                )
                if row:
                    values.update(zip(names, row[0], strict=True))
            categories = store.query(
                "SELECT categories FROM metrics WHERE image_id = ? AND model = ?",
                (int(image_id), model),
            )
        if categories:
            values["categories"] = json.loads(categories[0][0])
        return values

    def neighbours(
        self, image_id: int, model: str, component: str = "total", count: int = NEIGHBOURS
    ) -> dict[str, list[tuple[int, float]]]:
        """The nearest images by the asymmetric loss distance, both ways.

        ``outgoing``: the j with the smallest dist[i][j] (image i's model output
        explains j's objects best); ``incoming``: the j with the smallest dist[j][i]
        (whose output explains i's best). dist[i][i] is left out.

        Raises:
            ValueError: ``component`` is not one of :data:`DISTANCE_KEYS`.
        """
        if component not in DISTANCE_KEYS:
            raise ValueError(f"no distance {component!r}; choose one of {DISTANCE_KEYS}")
        where = "" if component == "total" else "AND component = ?"
        extra = () if component == "total" else (component,)
        found = {}
        for name, this, other in (("outgoing", "i", "j"), ("incoming", "j", "i")):
            rows = self._query(
                f"SELECT {other}, SUM(value) AS d FROM distances "
                f"WHERE model = ? AND {this} = ? AND {other} != {this} {where} "
                f"GROUP BY {other} ORDER BY d, {other} LIMIT ?",
                (model, int(image_id), *extra, int(count)),
            )
            found[name] = [(int(j), float(d)) for j, d in rows]
        return found


@functools.lru_cache(maxsize=2048)
def _thumbnail(view: CatalogView, image_id: int) -> np.ndarray:
    # cached per view and image: a catalog opened read-only does not change under us
    rgb = view.image(image_id)
    height, width = rgb.shape[:2]
    scale = THUMBNAIL_SIDE / max(height, width)
    if scale >= 1:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def open_catalog(db: str | Path | None) -> tuple[CatalogView | None, str]:
    """The view of ``db`` and '' ; or None and the message the page shows instead
    (no ``--catalog``, a missing file, not a catalog). The app still starts."""
    if db is None:
        return None, "no catalog: start the app with --catalog DB to browse one"
    try:
        return CatalogView(db), ""
    except CATALOG_ERRORS as error:
        return None, f"⚠️ cannot open the catalog: {error}"


# ---------------------------------------------------------------------- page handlers
# Each returns plain values and a message last; a catalog error becomes that message.


def guarded(what: str):
    """Decorator for page handlers (the problems view uses it too): turn a catalog
    error into ('⚠️ message') in the result's last place; a bug too,
    logged with its trace, so the server never falls over."""

    def wrap(function):
        @functools.wraps(function)
        def call(view: CatalogView | None, *args: Any, empty: tuple = (), **kwargs: Any):
            if view is None:
                return (*empty, "⚠️ no catalog is open (start the app with --catalog DB)")
            try:
                return function(view, *args, **kwargs)
            except (*CATALOG_ERRORS, PermissionError) as error:
                return (*empty, f"⚠️ {what}: {error}")
            except Exception as error:  # a bug: keep the server up, say so, keep the trace
                log.exception("catalog %s failed", what)
                return (*empty, f"⚠️ internal error ({type(error).__name__}: {error})")

        return call

    return wrap


@guarded("cluster sizes")
def cluster_overview(view: CatalogView, label: str) -> tuple[list[list[int]], list[int], str]:
    """Rows [cluster, images] of a clustering, the cluster ids, and a summary line."""
    sizes = view.cluster_sizes(view.clustering(label))
    total = sum(count for _, count in sizes)
    return sizes, [cluster for cluster, _ in sizes], f"{len(sizes)} clusters, {total} images"


@guarded("cluster images")
def cluster_grid(
    view: CatalogView, label: str, cluster: int
) -> tuple[list[tuple[np.ndarray, str]], list[int], str]:
    """A cluster's thumbnails (captioned with image id and file name), their ids and a
    line saying how many are shown."""
    members = view.cluster_members(view.clustering(label), int(cluster))
    shown_ids = members[:GRID_LIMIT]
    items = [(view.thumbnail(i), f"#{i} {view.paths[i].name}") for i in shown_ids]
    more = f" (first {GRID_LIMIT})" if len(members) > GRID_LIMIT else ""
    return items, shown_ids, f"cluster {cluster}: {len(members)} images{more}"


@guarded("sorting")
def sorted_grid(
    view: CatalogView, model: str, key: str, descending: bool
) -> tuple[list[tuple[np.ndarray, str]], list[int], str]:
    """Thumbnails of the images sorted by ``key`` (captioned with its value), their ids
    and a line saying what was sorted."""
    ranked = view.sorted_images(model, key, descending)
    shown_ids = [image_id for image_id, _ in ranked[:GRID_LIMIT]]
    items = [(view.thumbnail(i), f"#{i} {key}={value:.3g}") for i, value in ranked[:GRID_LIMIT]]
    order = "highest" if descending else "lowest"
    return items, shown_ids, f"{len(ranked)} images with {key}, {order} first"


@guarded("image")
def image_detail(
    view: CatalogView, image_id: int, model: str, component: str = "total"
) -> tuple[np.ndarray, list[list[Any]], list, list, str]:
    """One image: its predictions drawn on it, rows [name, value] of its losses and
    metrics, and its nearest neighbours by the asymmetric distance both ways (each a
    list of (thumbnail, caption)), with a line naming the image."""
    from clusterlens.viz.render import palette, predictions_on

    rgb = view.image(image_id)
    found = view.predictions(image_id, model)
    scale = DETAIL_SIDE / max(rgb.shape[:2])  # boxes are pixels of the stored image
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    shown = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    colours = palette(max(len(found), 1))[: len(found)]
    masks = [_full_size(p["mask"], shown.shape[:2]) for p in found]
    names = [f"{p['name']} {p['confidence']:.2f}" for p in found]
    boxes = np.array([p["box"] for p in found], np.float64).reshape(-1, 4) * scale
    picture = predictions_on(shown, boxes, names, colours, masks)
    losses = view.losses(image_id, model)
    rows = [[name, _value(value)] for name, value in losses.items()]
    near = view.neighbours(image_id, model, component)
    galleries = [
        [(view.thumbnail(j), f"#{j} d={distance:.3g}") for j, distance in near[way]]
        for way in ("outgoing", "incoming")
    ]
    line = f"#{image_id} {view.paths[int(image_id)].name}: {len(found)} predictions ({model})"
    if not near["outgoing"] and not near["incoming"]:
        line += "; no distances stored (clusterlens catalog distances)"
    return picture, rows, *galleries, line


def _full_size(mask: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    if mask is None or mask.shape == shape:
        return mask
    return cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return "" if value is None else str(value)
