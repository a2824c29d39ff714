"""``catalog build``: images -> model -> rows in the store, resumable and idempotent.

1. Scan the folder (image folder or YOLO data set) and register every readable image
   (path, size, SHA-256) -- unreadable files go to ``failures``.
2. Skip images that already have this model's embedding row (written last, in the same
   transaction as the image's other rows, so it marks a finished image).
3. Extract the rest in batches with the chosen engine -- in-process (``local``) or
   Ray Data actors (``ray``) -- and write each batch in one transaction.

A build killed at any point and run again finishes the work with no duplicate and no
lost row; a build with another model adds only that model's rows.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import UnidentifiedImageError

from clusterlens.catalog.dataset import (
    ImageEntry,
    UnreadableImageError,
    load_rgb,
    open_image,
    read_labels,
    scan_dataset,
)
from clusterlens.catalog.store import (
    CatalogStore,
    ImageRecord,
    check_catalog_path,
    check_writable,
    file_matches,
    file_sha256,
    file_stats,
)

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class Task:
    """One image to extract: its id in the store and where its files are."""

    image_id: int
    path: str
    label_path: str | None


@dataclass
class BuildReport:
    """What a build did: counts, and the run id in the ``runs`` table."""

    model: str
    run_id: int
    images_found: int
    already_done: int
    processed: int
    failures: int
    engine: str
    #: images another build of the same model wrote while this one was running
    done_elsewhere: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose output lands in the store."""
    versions = {"sqlite": sqlite3.sqlite_version}
    for package in (
        "clusterlens",
        "torch",
        "numpy",
        "ultralytics",
        "open_clip_torch",
        "transformers",
    ):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions


def process_tasks(
    extractor: Any, tasks: Sequence[Task]
) -> tuple[list[ImageRecord], list[tuple[str, str, str]]]:
    """Read and extract a batch; returns (records, failures as (path, stage, error)).

    A file that cannot be decoded or whose labels are malformed becomes a failure and
    the rest of the batch goes on. If the model fails on the batch, each image is retried
    alone so one bad image cannot sink its neighbours.
    """
    images, labels, ids, failures, readable = [], [], [], [], []
    for task in tasks:
        try:
            image = load_rgb(Path(task.path))
        except UnreadableImageError as err:
            failures.append((task.path, "read", str(err)))
            continue
        try:
            label = read_labels(None if task.label_path is None else Path(task.label_path))
        except ValueError as err:
            failures.append((task.path, "labels", str(err)))
            continue
        images.append(image)
        labels.append(label)
        ids.append(task.image_id)
        readable.append(task)
    if not images:
        return [], failures
    try:
        return extractor.extract(images, labels, ids), failures
    except Exception as err:
        if len(images) == 1:
            failures.append((readable[0].path, "extract", f"{type(err).__name__}: {err}"))
            return [], failures
    records = []
    for image, label, image_id, task in zip(images, labels, ids, readable, strict=True):
        try:
            records.extend(extractor.extract([image], [label], [image_id]))
        except Exception as err:  # one image the model cannot take: record it, go on
            failures.append((task.path, "extract", f"{type(err).__name__}: {err}"))
    return records, failures


def register_images(store: CatalogStore, model: str, entries: Sequence[ImageEntry]) -> list[Task]:
    """Register readable images in the store; header-unreadable files become failures.

    A file registered before is re-read only when its size or mtime changed (or were
    never recorded): same content, its stats are refreshed; new content, its old rows
    -- every model's -- are replaced by a new image row in one transaction, so the
    build extracts it again; no longer readable, its rows are removed.
    """
    known = store.image_states()
    new, changed, bad, gone = [], [], [], []
    for entry in entries:
        state = known.get(str(entry.path))
        try:
            if state is not None and state[1] is not None and file_matches(entry.path, *state[1:3]):
                continue  # unchanged since it was registered: no re-hashing
            row = _describe(entry)
        except (UnidentifiedImageError, OSError) as err:
            bad.append((str(entry.path), "read", f"cannot decode image {entry.path}: {err}"))
            if state is not None:
                gone.append(entry.path)
            continue
        (changed if state is not None and row[3] != state[3] else new).append(row)
    # every entry goes through: INSERT OR IGNORE keeps known rows, and labels given now
    # are recorded for images first registered without them
    store.register_images(
        [(e.path, 1, 1, "", e.label_path) for e in entries if str(e.path) in known] + new
    )
    if changed:
        store.replace_images(changed)
    if gone:
        store.forget_images(gone)
    if bad:
        store.write_batch(model, run_id=0, records=[], failures=bad)
    failed = {path for path, _, _ in bad}
    readable = [entry for entry in entries if str(entry.path) not in failed]
    ids = store.image_ids(entry.path for entry in readable)
    return [
        Task(ids[str(e.path)], str(e.path), None if e.label_path is None else str(e.label_path))
        for e in readable
    ]


def _describe(entry: ImageEntry) -> tuple[Any, ...]:
    """``(path, width, height, sha256, label, size, mtime_ns)`` of an image file."""
    size, mtime_ns = file_stats(entry.path)  # before reading: a later change shows as one
    with open_image(entry.path) as image:
        width, height = image.size
    return (entry.path, width, height, file_sha256(entry.path), entry.label_path, size, mtime_ns)


def build_catalog(
    data_dir: str | Path,
    model: str,
    db: str | Path,
    labels: str | Path | None = None,
    batch: int = 8,
    engine: str = "local",
    device: str = "cpu",
    replicas: int = 1,
    progress: bool = True,
    on_batch: Callable[[int], None] | None = None,
    **settings: Any,
) -> BuildReport:
    """Extract ``model``'s rows for every image under ``data_dir`` into ``db``.

    Args:
        data_dir: image folder or YOLO data set (``images/`` + ``labels/``).
        model: registry name (``yolo:...``, ``open_clip:...``, ``hf:...``).
        db: SQLite file (created if missing).
        labels: label folder for a plain image folder (see ``dataset.scan_dataset``).
        batch: images per forward pass and per transaction.
        engine: ``"local"`` (in-process) or ``"ray"`` (Ray Data actors).
        device: torch device.
        replicas: model replicas (Ray actors) for ``engine="ray"``.
        progress: show a progress bar.
        on_batch: called with the number of images written after each transaction.
        **settings: YOLO options (``imgsz``, ``conf``, ``iou``, ``max_det``).

    Returns:
        A :class:`BuildReport`.

    Raises:
        ValueError: bad ``batch`` / ``engine`` / model name; FileNotFoundError: no folder.
    """
    if batch < 1:
        raise ValueError(f"--batch must be >= 1, got {batch}")
    if engine not in ENGINES:
        raise ValueError(f"--engine must be one of {ENGINES}, got {engine!r}")
    from clusterlens.catalog.extractors import check_device, check_model_name, make_extractor

    check_model_name(model)
    check_device(device)
    check_catalog_path(Path(db), must_exist=False)  # cheap checks before the model loads
    check_writable(Path(db))
    entries = scan_dataset(data_dir, labels)
    # load the model before touching the store: a missing checkpoint changes nothing
    extractor = make_extractor(model, device=device, **settings) if engine == "local" else None
    with CatalogStore(db) as store:
        tasks = register_images(store, model, entries)
        done = store.done_image_ids(model)
        pending = [task for task in tasks if task.image_id not in done]
        from clusterlens.catalog.engines import run_local, run_ray

        extractor_settings = {"device": device, **settings}
        run_id = store.start_run(
            model,
            "yolo" if model.startswith("yolo:") else "embedding",
            {
                "engine": engine,
                "batch": batch,
                "device": device,
                **_resolved_settings(model, settings),
            },
            library_versions(),
        )
        if store.other_builds_running(model, run_id):
            # Another build of this model is at work (or was killed): go through the
            # images from the other end, skipping those it has written, so two builds
            # at once meet in the middle instead of both extracting every image.
            pending.reverse()
        counts = {"processed": 0, "failures": len(entries) - len(tasks), "elsewhere": 0}

        def still_pending(chunk: Sequence[Task]) -> list[Task]:
            done_now = store.done_image_ids(model, among=[task.image_id for task in chunk])
            counts["elsewhere"] += len(done_now)
            return [task for task in chunk if task.image_id not in done_now]

        def write(records: list[ImageRecord], failures: list[tuple[str, str, str]]) -> None:
            store.write_batch(model, run_id, records, failures)
            counts["processed"] += len(records)
            counts["failures"] += len(failures)
            if on_batch is not None:
                on_batch(len(records))

        try:
            if engine == "local":
                run_local(extractor, pending, batch, write, progress, still_pending)
            else:
                run_ray(model, extractor_settings, pending, batch, write, replicas, progress)
        except BaseException:
            store.finish_run(run_id, counts["processed"], counts["failures"], status="interrupted")
            raise
        store.finish_run(run_id, counts["processed"], counts["failures"])
    return BuildReport(
        model,
        run_id,
        len(entries),
        len(tasks) - len(pending),
        counts["processed"],
        counts["failures"],
        engine,
        counts["elsewhere"],
    )


def _resolved_settings(model: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The YOLO options with their defaults filled in (recorded in ``runs``)."""
    if not model.startswith("yolo:"):
        return {}
    from clusterlens.catalog.yolo_extract import YoloExtractor

    parameters = inspect.signature(YoloExtractor).parameters
    defaults = {name: parameters[name].default for name in ("imgsz", "conf", "iou", "max_det")}
    return {**defaults, **settings}
