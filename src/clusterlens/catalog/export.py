"""``catalog export --parquet DIR``: every table as one Parquet file (pyarrow).

Blobs stay binary columns (embedding vectors are little-endian float32, feature
arrays carry their dtype and shape columns), so the export is lossless.
"""

from __future__ import annotations

import os
from pathlib import Path

from clusterlens.catalog.store import TABLES, CatalogError, CatalogStore


def export_parquet(db: str | Path, out_dir: str | Path) -> dict[str, int]:
    """Write ``OUT_DIR/<table>.parquet`` for every table; returns rows per table.

    The catalog is opened read-only.

    Raises:
        FileNotFoundError: ``db`` does not exist.
        ValueError: ``out_dir`` is a file (or lies under one).
        CatalogError: the catalog cannot be read, or ``out_dir`` cannot be written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out_dir)
    with CatalogStore(db, readonly=True) as store:
        # a damaged page the table scans below happen to miss must not give a partial
        # export that looks complete
        store.quick_check()
        _prepare_folder(out)  # after the catalog opened: a bad --db creates no folder
        counts = {}
        for table in TABLES:
            cursor = store.connection.execute(f"SELECT * FROM {table}")
            names = [column[0] for column in cursor.description]
            rows = cursor.fetchall()
            columns = {name: [row[index] for row in rows] for index, name in enumerate(names)}
            schema = _schema(store, table, names)
            try:
                pq.write_table(pa.table(columns, schema=schema), out / f"{table}.parquet")
            except OSError as err:
                raise CatalogError(f"cannot write {out / f'{table}.parquet'}: {err}") from err
            counts[table] = len(rows)
    return counts


def _prepare_folder(out: Path) -> None:
    """Create the output folder, or say in one line why it cannot be one."""
    for path in (out, *out.parents):
        if path.exists() and not path.is_dir():
            raise ValueError(f"--parquet {out}: {path} is a file; give a folder")
        if path.exists():
            break
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CatalogError(f"cannot create the --parquet folder {out}: {err.strerror}") from err
    if not os.access(out, os.W_OK):
        raise CatalogError(f"cannot write to the --parquet folder {out}: it is read-only")


def _schema(store: CatalogStore, table: str, names: list[str]):
    """Arrow types from the declared SQLite column types (so empty tables keep them)."""
    import pyarrow as pa

    declared = {row[1]: row[2].upper() for row in store.query(f"PRAGMA table_info({table})")}
    kinds = {"INTEGER": pa.int64(), "REAL": pa.float64(), "TEXT": pa.string(), "BLOB": pa.binary()}
    return pa.schema([(name, kinds.get(declared.get(name, ""), pa.string())) for name in names])
