"""``catalog export --parquet DIR``: every table as one Parquet file (pyarrow).

Blobs stay binary columns (embedding vectors are little-endian float32, feature
arrays carry their dtype and shape columns), so the export is lossless.
"""

from __future__ import annotations

from pathlib import Path

from clusterlens.catalog.store import TABLES, CatalogStore


def export_parquet(db: str | Path, out_dir: str | Path) -> dict[str, int]:
    """Write ``OUT_DIR/<table>.parquet`` for every table; returns rows per table.

    Raises:
        FileNotFoundError: ``db`` does not exist.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    with CatalogStore(db, create=False) as store:
        for table in TABLES:
            cursor = store.connection.execute(f"SELECT * FROM {table}")
            names = [column[0] for column in cursor.description]
            rows = cursor.fetchall()
            columns = {name: [row[index] for row in rows] for index, name in enumerate(names)}
            schema = _schema(store, table, names)
            pq.write_table(pa.table(columns, schema=schema), out / f"{table}.parquet")
            counts[table] = len(rows)
    return counts


def _schema(store: CatalogStore, table: str, names: list[str]):
    """Arrow types from the declared SQLite column types (so empty tables keep them)."""
    import pyarrow as pa

    declared = {row[1]: row[2].upper() for row in store.query(f"PRAGMA table_info({table})")}
    kinds = {"INTEGER": pa.int64(), "REAL": pa.float64(), "TEXT": pa.string(), "BLOB": pa.binary()}
    return pa.schema([(name, kinds.get(declared.get(name, ""), pa.string())) for name in names])
