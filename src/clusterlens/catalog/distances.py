"""Asymmetric loss distances between images: ``dist[i][j][c]``.

``dist[i][j][c]`` is loss component ``c`` (box, cls, dfl, seg) of the YOLO model on
image ``i`` when image ``j``'s stored predictions are the targets: how badly the model's
view of ``i`` explains what it saw in ``j``. It is not symmetric.

Batched over ``j``: image ``i`` goes through the network once, its raw head output is
broadcast over a chunk of ``j`` targets, and :func:`~clusterlens.catalog.yolo_extract.
per_sample_losses` gives one loss row per ``j`` from a single assigner / loss pass.
``mode="pairwise"`` is the reference: one forward pass and one stock-criterion call per
pair (what the seed's loop does); both give the same numbers (tested).

``pairs="knn:K"`` limits ``j`` to the K nearest neighbours of ``i`` by embedding
(faiss inner product on L2-normalised vectors), so the work grows as N*K, not N^2.
Resumable: pairs already in the table are skipped; each chunk is one transaction.
The catalog must exist (a foreign or empty file is refused, never migrated), pass
``PRAGMA quick_check``, and its images must be unchanged on disk since extraction.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from clusterlens.catalog.dataset import load_rgb
from clusterlens.catalog.store import LOSS_COMPONENTS, CatalogError, CatalogStore
from clusterlens.catalog.yolo_extract import (
    MASK_RATIO,
    Letterbox,
    YoloExtractor,
    criterion_batch,
    per_sample_losses,
)

MODES = ("batched", "pairwise")


@dataclass
class DistanceReport:
    model: str
    pairs: str
    images: int
    pairs_total: int
    pairs_computed: int
    seconds: float
    mode: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Targets:
    """Image j's predictions, normalised to j's size, ready to be mapped into any image."""

    classes: np.ndarray
    xywhn: np.ndarray
    masks: list[np.ndarray] | None


def parse_pairs(pairs: str) -> int | None:
    """``"all"`` -> None; ``"knn:K"`` -> K. Raises ValueError otherwise."""
    if pairs == "all":
        return None
    if pairs.startswith("knn:") and pairs[4:].isdigit() and int(pairs[4:]) > 0:
        return int(pairs[4:])
    raise ValueError(f"--pairs must be 'all' or 'knn:K' with K >= 1, got {pairs!r}")


def pick_yolo_model(store: CatalogStore, model: str | None) -> str:
    """``model`` if given, else the only YOLO model in the store."""
    models = store.yolo_models()
    if model is None:
        if len(models) != 1:
            raise ValueError(
                f"{store.path} has YOLO models {models}; choose one with --model"
                if models
                else f"{store.path} has no YOLO build; distances need a yolo: model"
            )
        return models[0]
    if model not in models:
        raise ValueError(f"no YOLO build of {model!r} in {store.path}; YOLO models there: {models}")
    return model


def neighbour_lists(ids: np.ndarray, vectors: np.ndarray, k: int | None) -> dict[int, list[int]]:
    """For each image id, the ids j to pair it with: all, or its k nearest neighbours."""
    if k is None:
        return {int(i): [int(j) for j in ids] for i in ids}
    import faiss

    normalised = np.ascontiguousarray(
        vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    )
    index = faiss.IndexFlatIP(normalised.shape[1])
    index.add(normalised.astype(np.float32))
    _, found = index.search(normalised.astype(np.float32), min(k + 1, len(ids)))
    out = {}
    for row, image_id in enumerate(ids):
        others = [int(ids[col]) for col in found[row] if col >= 0 and ids[col] != image_id]
        out[int(image_id)] = others[:k]
    return out


def compute_distances(
    db: str | Path,
    model: str | None = None,
    pairs: str = "all",
    batch: int = 16,
    device: str = "cpu",
    mode: str = "batched",
    progress: bool = True,
    limit: int | None = None,
) -> DistanceReport:
    """Fill the ``distances`` table for a YOLO model of the catalog.

    Args:
        db: the catalog file.
        model: the YOLO model (default: the only one in the store).
        pairs: ``"all"`` or ``"knn:K"``.
        batch: targets j per loss pass (batched mode) and per transaction.
        device: torch device.
        mode: ``"batched"`` or ``"pairwise"`` (the one-pair-at-a-time reference).
        progress: show a progress bar.
        limit: only the first ``limit`` images (by id) -- for benchmarks.

    Raises:
        ValueError: bad arguments or no YOLO build in the store.
        CatalogError: ``db`` is not a catalog or is damaged (nothing is written), or
            images changed on disk since they were extracted.
    """
    k = parse_pairs(pairs)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if batch < 1:
        raise ValueError(f"--batch must be >= 1, got {batch}")
    from clusterlens.catalog.extractors import check_device, make_extractor

    check_device(device)
    started = time.perf_counter()
    with CatalogStore(db, create=False) as store:
        model = pick_yolo_model(store, model)
        settings = store.model_settings(model)
        ids, vectors = store.embeddings(model)
        if limit is not None:
            ids, vectors = ids[:limit], vectors[:limit]
        _refuse_changed_files(store, ids)
        plan = neighbour_lists(ids, vectors, k)
        keys = ("imgsz", "conf", "iou", "max_det")
        extractor = make_extractor(model, device=device, **{key: settings[key] for key in keys})
        components = LOSS_COMPONENTS if extractor.is_segment else LOSS_COMPONENTS[:3]
        done = _done_pairs(store, model, len(components))
        todo = {i: [j for j in js if (i, j) not in done] for i, js in plan.items()}
        todo = {i: js for i, js in todo.items() if js}
        paths = dict(store.query("SELECT id, path FROM images"))
        from clusterlens.catalog.build import library_versions

        run_id = store.start_run(
            model, "distances", {"pairs": pairs, "batch": batch, "mode": mode}, library_versions()
        )
        target_cache: dict[int, _Targets] = {}
        mapped: dict[tuple[int, Letterbox], tuple] = {}
        computed = 0
        total = sum(len(js) for js in todo.values())
        with tqdm(total=total, desc="catalog distances", unit="pair", disable=not progress) as bar:
            for i, js in todo.items():
                image = load_rgb(Path(paths[i]))
                box, raw = _image_forward(extractor, image)  # once per image i
                for start in range(0, len(js), batch):
                    chunk = js[start : start + batch]
                    targets = []
                    for j in chunk:  # images mostly share one size: map each target once
                        if (j, box) not in mapped:
                            found = _targets(store, model, j, target_cache)
                            mapped[j, box] = _target_tuple(extractor, box, found)
                        targets.append(mapped[j, box])
                    if mode == "batched":
                        values = _batched_losses(extractor, raw, targets)
                    else:
                        values = np.stack([_pair_loss(extractor, image, t) for t in targets])
                    rows = [
                        (model, i, j, name, float(values[row, col]))
                        for row, j in enumerate(chunk)
                        for col, name in enumerate(components)
                    ]
                    with store.transaction() as connection:
                        connection.executemany(
                            "INSERT OR REPLACE INTO distances (model, i, j, component, value) "
                            "VALUES (?, ?, ?, ?, ?)",
                            rows,
                        )
                    computed += len(chunk)
                    bar.update(len(chunk))
        store.finish_run(run_id, images_done=len(todo), failures=0)
    return DistanceReport(
        model,
        pairs,
        len(ids),
        sum(len(js) for js in plan.values()),
        computed,
        time.perf_counter() - started,
        mode,
    )


def _refuse_changed_files(store: CatalogStore, ids: np.ndarray) -> None:
    """Image i is read from disk, its predictions from the store: both must be of the
    same pixels, or the distances would mix a new image with the old predictions."""
    changed = store.changed_files(ids.tolist())
    if changed:
        raise CatalogError(
            f"{len(changed)} images changed or went missing on disk since they were extracted "
            f"(e.g. {changed[0]}); run 'clusterlens catalog build' again first"
        )


def _done_pairs(store: CatalogStore, model: str, components: int) -> set[tuple[int, int]]:
    rows = store.query(
        "SELECT i, j FROM distances WHERE model = ? GROUP BY i, j HAVING COUNT(*) = ?",
        (model, components),
    )
    return {(int(i), int(j)) for i, j in rows}


def _targets(store: CatalogStore, model: str, j: int, cache: dict[int, _Targets]) -> _Targets:
    """Image j's stored predictions as normalised targets (decoded once per run)."""
    if j in cache:
        return cache[j]
    (width, height), *_ = store.query("SELECT width, height FROM images WHERE id = ?", (j,))
    rows = store.query(
        "SELECT x1, y1, x2, y2, class_id, mask_png FROM predictions "
        "WHERE image_id = ? AND model = ? ORDER BY rank",
        (j, model),
    )
    boxes = np.array([row[:4] for row in rows], np.float32).reshape(-1, 4) / [
        width,
        height,
        width,
        height,
    ]
    xywhn = np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], axis=1)
    masks = None
    if rows and rows[0][5] is not None:
        masks = [
            cv2.imdecode(np.frombuffer(row[5], np.uint8), cv2.IMREAD_GRAYSCALE) > 0 for row in rows
        ]
    cache[j] = _Targets(
        np.array([row[4] for row in rows], np.int64), xywhn.astype(np.float32), masks
    )
    return cache[j]


def _target_tuple(extractor: YoloExtractor, box: Letterbox, target: _Targets) -> tuple:
    """(classes, boxes, masks) of a target set mapped into the letterboxed square of ``box``."""
    masks = None
    if extractor.is_segment:
        side = box.size // MASK_RATIO
        stack = [box.mask_from_image(mask) for mask in target.masks or []]
        masks = (
            np.stack(stack).astype(np.float32) if stack else np.zeros((0, side, side), np.float32)
        )
    return target.classes, box.boxes_to_letterbox(target.xywhn), masks


@torch.no_grad()
def _image_forward(extractor: YoloExtractor, image: np.ndarray) -> tuple[Letterbox, dict[str, Any]]:
    pixels, (box,) = extractor.prepare([image])
    _, _, raw = extractor.forward(pixels)
    return box, raw


@torch.no_grad()
def _batched_losses(
    extractor: YoloExtractor, raw: dict[str, Any], targets: list[tuple]
) -> np.ndarray:
    """(len(targets), 4) losses of one image (its raw head output) against each target."""
    count = len(targets)
    expanded = {
        "boxes": raw["boxes"].expand(count, -1, -1),
        "scores": raw["scores"].expand(count, -1, -1),
        "feats": [feat.expand(count, -1, -1, -1) for feat in raw["feats"]],
    }
    if extractor.is_segment:
        expanded["mask_coefficient"] = raw["mask_coefficient"].expand(count, -1, -1)
        expanded["proto"] = raw["proto"].expand(count, -1, -1, -1)
    batch = criterion_batch(targets, extractor.device)
    return per_sample_losses(extractor.criterion, expanded, batch, shared=True).cpu().numpy()


@torch.no_grad()
def _pair_loss(extractor: YoloExtractor, image: np.ndarray, target: tuple) -> np.ndarray:
    """One pair the straightforward way: a forward pass + the stock criterion."""
    _, raw = _image_forward(extractor, image)
    _, items = extractor.criterion(raw, criterion_batch([target], extractor.device))
    return np.array(
        [
            float(items[f"{name}_loss"]) if f"{name}_loss" in items else np.nan
            for name in LOSS_COMPONENTS
        ]
    )
