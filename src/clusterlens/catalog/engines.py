"""Extraction engines: where the model runs; the store is always written by the caller.

- :func:`run_local`: batches in this process.
- :func:`run_ray`: Ray Data ``map_batches`` with an actor class, one model replica per
  actor (``ActorPoolStrategy(size=replicas)``); the driver writes each returned batch
  into the same SQLite store in one transaction, so the store has a single writer per
  build whatever the number of replicas. Uses a running Ray cluster if one is
  connected, else starts the local runtime and shuts it down afterwards.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from clusterlens.catalog.store import ImageRecord

Writer = Callable[[list[ImageRecord], list[tuple[str, str, str]]], None]


def _batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def run_local(
    extractor: Any,
    tasks: Sequence[Any],
    batch: int,
    write: Writer,
    progress: bool = True,
    still_pending: Callable[[Sequence[Any]], Sequence[Any]] | None = None,
) -> None:
    """Extract ``tasks`` in batches of ``batch`` in this process and ``write`` each batch.

    ``still_pending`` filters each batch just before it is extracted (the build drops
    images another build has written meanwhile).
    """
    from clusterlens.catalog.build import process_tasks

    with tqdm(total=len(tasks), desc="catalog build", unit="img", disable=not progress) as bar:
        for chunk in _batches(tasks, batch):
            todo = chunk if still_pending is None else still_pending(chunk)
            if todo:
                records, failures = process_tasks(extractor, todo)
                write(records, failures)
            bar.update(len(chunk))


class ExtractActor:
    """A Ray Data actor holding one model replica; returns pickled (records, failures)."""

    def __init__(self, model: str, settings: dict[str, Any], threads: int = 1) -> None:
        import torch

        from clusterlens.catalog.extractors import make_extractor

        torch.set_num_threads(threads)
        self.extractor = make_extractor(model, **settings)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from clusterlens.catalog.build import Task, process_tasks

        tasks = [
            Task(int(image_id), str(path), str(label) or None)
            for image_id, path, label in zip(
                batch["image_id"], batch["path"], batch["label_path"], strict=True
            )
        ]
        records, failures = process_tasks(self.extractor, tasks)
        payload = np.empty(1, dtype=object)
        payload[0] = pickle.dumps((records, failures), protocol=pickle.HIGHEST_PROTOCOL)
        return {"payload": payload}


def run_ray(
    model: str,
    settings: dict[str, Any],
    tasks: Sequence[Any],
    batch: int,
    write: Writer,
    replicas: int = 1,
    progress: bool = True,
) -> None:
    """Extract ``tasks`` with Ray Data actors (``replicas`` model copies), writing here."""
    import ray

    if replicas < 1:
        raise ValueError(f"--replicas must be >= 1, got {replicas}")
    if not tasks:
        return
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = progress
        dataset = ray.data.from_items(
            [
                {"image_id": t.image_id, "path": t.path, "label_path": t.label_path or ""}
                for t in tasks
            ]
        )
        extracted = dataset.map_batches(
            ExtractActor,
            fn_constructor_kwargs={"model": model, "settings": settings},
            batch_size=batch,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=replicas),
            num_cpus=1,
        )
        for row in extracted.iter_rows():
            records, failures = pickle.loads(row["payload"])
            write(records, failures)
    finally:
        if started_here:
            ray.shutdown()
