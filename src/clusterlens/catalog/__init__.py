"""Dataset catalog: per-image embeddings, YOLO features / predictions / losses / metrics,
asymmetric loss distances, clusters -- in one SQLite file.

- :func:`build_catalog` -- extract a model's rows for an image folder or YOLO data set
  (engines: in-process or Ray Data), resumable and idempotent.
- :func:`compute_distances` -- ``dist[i][j][c]``: loss component c of the model on
  image i with image j's predictions as targets (all pairs or embedding k-NN).
- :func:`cluster_catalog` -- faiss k-means on embeddings, or agglomerative / spectral
  clustering on the symmetrised loss distance.
- :func:`validate_catalog`, :func:`catalog_summary`, :func:`export_parquet`.
- :class:`CatalogStore` -- the schema, migrations and transactional writes;
  :class:`CatalogError` -- a file that is not a catalog, damaged, too old or read-only.

Example:
    >>> import tempfile, os
    >>> from clusterlens.catalog import build_catalog, catalog_summary, validate_catalog
    >>> from clusterlens.catalog.synthetic import make_shapes_dataset
    >>> work = tempfile.mkdtemp()
    >>> data = make_shapes_dataset(os.path.join(work, "shapes"), count=4)
    >>> db = os.path.join(work, "catalog.db")
    >>> report = build_catalog(data, "open_clip:tiny", db, progress=False)
    >>> report.processed, catalog_summary(db)["counts"]["embeddings"]
    (4, 4)
    >>> validate_catalog(db).ok
    True
"""

from __future__ import annotations

from clusterlens.catalog.build import BuildReport, build_catalog
from clusterlens.catalog.clustering import cluster_catalog
from clusterlens.catalog.distances import DistanceReport, compute_distances
from clusterlens.catalog.export import export_parquet
from clusterlens.catalog.store import SCHEMA_VERSION, CatalogError, CatalogStore, ImageRecord
from clusterlens.catalog.summary import catalog_summary
from clusterlens.catalog.validate import ValidationReport, validate_catalog

__all__ = [
    "SCHEMA_VERSION",
    "BuildReport",
    "CatalogError",
    "CatalogStore",
    "DistanceReport",
    "ImageRecord",
    "ValidationReport",
    "build_catalog",
    "catalog_summary",
    "cluster_catalog",
    "compute_distances",
    "export_parquet",
    "validate_catalog",
]
