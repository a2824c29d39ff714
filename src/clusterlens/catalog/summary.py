"""``catalog show``: what a catalog holds -- counts, models, runs, cluster sizes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clusterlens.catalog.store import CatalogStore


def catalog_summary(db: str | Path) -> dict[str, Any]:
    """Counts per table, one entry per model, the clusterings with their sizes.

    Opens the file read-only: nothing is written, an older catalog is refused with the
    command that upgrades it.

    Raises:
        FileNotFoundError: ``db`` does not exist.
        CatalogError: not a catalog, damaged or older than this code.
    """
    with CatalogStore(db, readonly=True) as store:
        kinds = dict(
            store.query("SELECT model, kind FROM runs WHERE kind != 'distances' GROUP BY model")
        )
        models = [
            {
                "model": model,
                "kind": kinds.get(model, "?"),
                "images": count,
                "dim": dim,
                "predictions": store.query(
                    "SELECT COUNT(*) FROM predictions WHERE model = ?", (model,)
                )[0][0],
                "distance_pairs": store.query(
                    "SELECT COUNT(DISTINCT i || ',' || j) FROM distances WHERE model = ?", (model,)
                )[0][0],
                "settings": json.loads(
                    store.query(
                        "SELECT settings FROM runs WHERE model = ? ORDER BY id DESC LIMIT 1",
                        (model,),
                    )[0][0]
                )
                if model in kinds
                else {},
            }
            for model, count, dim in store.query(
                "SELECT model, COUNT(*), MAX(dim) FROM embeddings GROUP BY model ORDER BY model"
            )
        ]
        clusterings = []
        for method, model, k in store.query(
            "SELECT DISTINCT method, model, k FROM clusters ORDER BY 2, 1, 3"
        ):
            sizes = store.query(
                "SELECT cluster, COUNT(*) FROM clusters WHERE method = ? AND model = ? AND k = ? "
                "GROUP BY cluster ORDER BY cluster",
                (method, model, k),
            )
            clusterings.append(
                {"method": method, "model": model, "k": k, "sizes": [n for _, n in sizes]}
            )
        return {
            "path": str(store.path),
            "schema_version": store.schema_version(),
            "counts": store.counts(),
            "models": models,
            "clusterings": clusterings,
        }
