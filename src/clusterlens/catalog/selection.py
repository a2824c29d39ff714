"""Pick a subset of a catalog to label or train on next: :func:`select_subset`.

``budget`` images by ``coverage`` (k-center greedy on the embeddings), ``hard``
(hardest first, :mod:`clusterlens.catalog.curation`'s hardness) or ``balanced`` (round
robin over clusters or label classes, hardest first in each). Deterministic: no
randomness, ties go to the smaller image id. Reads a store opened read-only; writes
nothing.

Example:
    >>> from clusterlens.catalog.store import CatalogStore
    >>> with CatalogStore("catalog.db", readonly=True) as store:  # doctest: +SKIP
    ...     paths = [item.path for item in select_subset(store, 20, "coverage")]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clusterlens.catalog.curation import hardness_table, image_paths, pick_model, unit_embeddings
from clusterlens.catalog.store import CatalogStore

STRATEGIES = ("coverage", "hard", "balanced")
GROUPINGS = ("auto", "cluster", "class")


@dataclass(frozen=True)
class SelectedImage:
    """One image of a subset, in the order it was picked (``rank`` 0 first)."""

    rank: int
    image_id: int
    path: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def select_subset(
    store: CatalogStore,
    budget: int,
    strategy: str = "coverage",
    model: str | None = None,
    group_by: str = "auto",
) -> list[SelectedImage]:
    """Pick ``budget`` images (all of them if the catalog has fewer), deterministically.

    Strategies:
        - ``coverage``: k-center greedy (farthest-point sampling) on the L2-normalised
          embeddings of ``model``: first the image closest to the mean embedding, then
          each time the image farthest from everything already picked. Covers the
          embedding space; every pick's reason gives its distance to the picked set.
        - ``hard``: the hardest images (:func:`hard_images`' score), hardest first.
        - ``balanced``: images grouped by ``group_by`` -- ``cluster`` (the catalog's
          clustering of ``model`` with the largest k; run ``catalog cluster`` first),
          ``class`` (every label class an image contains; an image without labelled
          objects goes to group ``(none)``) or ``auto`` (cluster when a clustering of
          ``model`` exists, else class); then round robin over the groups, smallest
          group first, each turn taking the hardest image not yet picked from it.

    Ties always go to the smaller image id, so the same catalog gives the same list.

    Raises:
        ValueError: a budget below 1, an unknown strategy or grouping, or missing data
            (no embeddings, no losses for ``hard`` / ``balanced``, no clustering for
            ``group_by="cluster"``).
    """
    if isinstance(budget, bool) or not isinstance(budget, int | np.integer) or budget < 1:
        raise ValueError(f"--budget must be a positive whole number, got {budget!r}")
    if strategy not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if group_by not in GROUPINGS:
        raise ValueError(f"group_by must be one of {GROUPINGS}, got {group_by!r}")
    model = pick_model(store, model)
    if strategy == "coverage":
        return _coverage(store, model, int(budget))
    hardness = hardness_table(store, model)
    if strategy == "hard":
        ranked = sorted(hardness.values(), key=lambda item: (-item.score, item.image_id))
        return [
            SelectedImage(rank, item.image_id, item.path, f"hardness {item.score:+.1f}: "
                          f"{item.reason}")
            for rank, item in enumerate(ranked[:budget])
        ]  # fmt: skip
    return _balanced(store, model, int(budget), hardness, group_by)


def _coverage(store: CatalogStore, model: str, budget: int) -> list[SelectedImage]:
    ids, vectors = unit_embeddings(store, model)
    paths = image_paths(store)
    centre = vectors.mean(axis=0)
    # lexsort: last key first -- the largest similarity to the centre, then the smaller id
    first = int(np.lexsort((ids, -(vectors @ centre)))[0])
    picked = [first]
    reasons = ["closest to the mean embedding (the most central image)"]
    nearest = np.linalg.norm(vectors - vectors[first], axis=1)
    while len(picked) < min(budget, len(ids)):
        candidate = int(np.lexsort((ids, -nearest))[0])
        reasons.append(
            f"farthest from the {len(picked)} picked so far (distance {nearest[candidate]:.3g} "
            "to the nearest picked, unit embeddings)"
        )
        picked.append(candidate)
        nearest = np.minimum(nearest, np.linalg.norm(vectors - vectors[candidate], axis=1))
    return [
        SelectedImage(rank, int(ids[row]), paths[int(ids[row])], reason)
        for rank, (row, reason) in enumerate(zip(picked, reasons, strict=True))
    ]


def _balanced(
    store: CatalogStore, model: str, budget: int, hardness: dict[int, Any], group_by: str
) -> list[SelectedImage]:
    groups = _groups(store, model, group_by, set(hardness))
    queues = {
        name: sorted(members, key=lambda i: (-hardness[i].score, i))
        for name, members in groups.items()
    }
    # smallest group first: with a small budget the rare groups are the ones at risk
    order = sorted(queues, key=lambda name: (len(queues[name]), name))
    picked: list[SelectedImage] = []
    taken: set[int] = set()
    while len(picked) < budget and any(queues.values()):
        for name in order:
            queue = queues[name]
            while queue and queue[0] in taken:
                queue.pop(0)
            if not queue or len(picked) == budget:
                continue
            image_id = queue.pop(0)
            taken.add(image_id)
            item = hardness[image_id]
            reason = f"round {len(picked) // len(order) + 1}, group {name}: hardest left " + (
                f"(hardness {item.score:+.1f}, {item.component})"
            )
            picked.append(SelectedImage(len(picked), image_id, item.path, reason))
    return picked


def _groups(
    store: CatalogStore, model: str, group_by: str, image_ids: set[int]
) -> dict[str, list[int]]:
    """Group name -> image ids (an image may be in several class groups)."""
    clustering = store.query(
        "SELECT method, k FROM clusters WHERE model = ? GROUP BY method, k "
        "ORDER BY k DESC, method LIMIT 1",
        (model,),
    )
    if group_by == "cluster" or (group_by == "auto" and clustering):
        if not clustering:
            raise ValueError(
                f"no clustering of {model!r} in {store.path}; run 'clusterlens catalog cluster "
                f"--model {model}' first, or group by class"
            )
        method, k = clustering[0]
        groups: dict[str, list[int]] = {}
        for image_id, cluster in store.query(
            "SELECT image_id, cluster FROM clusters WHERE model = ? AND method = ? AND k = ?",
            (model, method, k),
        ):
            if image_id in image_ids:
                groups.setdefault(f"{method} k={k} #{cluster}", []).append(int(image_id))
        return groups
    return _class_groups(store, model, image_ids)


def _class_groups(store: CatalogStore, model: str, image_ids: set[int]) -> dict[str, list[int]]:
    from clusterlens.catalog.label_errors import class_names

    names = class_names(store, model)  # predictions' names, completed by data.yaml
    groups: dict[str, list[int]] = {}
    for image_id, label_path in store.query("SELECT id, label_path FROM images"):
        if image_id not in image_ids:
            continue
        classes = _label_classes(label_path)
        for class_id in sorted(classes) or [None]:
            name = "(none)" if class_id is None else names.get(class_id, f"class {class_id}")
            groups.setdefault(name, []).append(int(image_id))
    return groups


def _label_classes(label_path: str | None) -> set[int]:
    """Class ids of a YOLO label file (first number of each line; unreadable: none)."""
    if label_path is None or not Path(label_path).is_file():
        return set()
    classes = set()
    for line in Path(label_path).read_text().splitlines():
        first = line.split()[:1]
        if first and first[0].isdigit():
            classes.add(int(first[0]))
    return classes
