"""``clusterlens catalog ...``: build, inspect and cluster a dataset catalog (SQLite).

- ``catalog build DATA_DIR --model NAME --db catalog.db [--labels DIR] [--batch N]
  [--engine local|ray]``
- ``catalog distances --db FILE [--pairs all|knn:K]``
- ``catalog cluster --db FILE --k K [--by embedding|distance]``
- ``catalog show --db FILE``
- ``catalog export --db FILE --parquet DIR``
- ``catalog validate FILE`` (exit 1 and a report when anything is wrong)
- ``catalog migrate --db FILE`` (upgrade an older catalog's schema)

Exit codes: 2 for bad arguments (unknown model, missing folder, --db that is a
folder); 1 when the catalog file itself cannot be used -- not a catalog, damaged,
older or newer schema, read-only -- or cannot be written, always with one line.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from clusterlens.cli._common import console, print_json, user_errors

Command = TypeVar("Command", bound=Callable[..., Any])

catalog_app = typer.Typer(help="Dataset catalog: embeddings, YOLO rows, loss distances, clusters.")

DbOption = Annotated[Path, typer.Option("--db", help="Catalog SQLite file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def catalog_errors(command: Command) -> Command:
    """A catalog that cannot be used or written: one line on stderr and exit code 1.

    Stacked over :func:`user_errors`, which gives bad arguments exit code 2.
    """

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        from clusterlens.catalog.store import CatalogError

        try:
            return command(*args, **kwargs)
        except CatalogError as err:
            _fail(err)
        except sqlite3.Error as err:  # raised outside a store (which names the file itself)
            _fail(f"sqlite error: {err}")
        except OSError as err:  # read-only or full disk while writing: say which file
            where = f" ({err.filename})" if err.filename else ""
            _fail(f"{err.strerror or err}{where}")

    return run  # type: ignore[return-value]


def _say(text: str) -> None:
    """A summary line on stderr, never wrapped (scripts grep it; paths can be long)."""
    console.print(text, soft_wrap=True)


def _fail(message: object) -> None:
    # soft_wrap: the message stays one line whatever the terminal width
    console.print(f"[bold red]error:[/] {escape(str(message))}", soft_wrap=True)
    raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add the ``catalog`` command group to ``app``."""
    from clusterlens.cli import catalog_curation  # noqa: F401  (adds `issues` and `select`)

    app.add_typer(catalog_app, name="catalog")


@catalog_app.command("build")
@catalog_errors
@user_errors
def build(
    data_dir: Annotated[
        Path, typer.Argument(help="Image folder or YOLO data set (images/, labels/).")
    ],
    model: Annotated[str, typer.Option("--model", help="yolo:..., open_clip:... or hf:... model.")],
    db: DbOption,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="Label folder for a plain image folder.")
    ] = None,
    batch: Annotated[
        int, typer.Option("--batch", help="Images per batch and per transaction.")
    ] = 8,
    engine: Annotated[str, typer.Option("--engine", help="local or ray.")] = "local",
    imgsz: Annotated[int, typer.Option("--imgsz", help="YOLO input side.")] = 640,
    conf: Annotated[float, typer.Option("--conf", help="YOLO confidence threshold.")] = 0.25,
    iou: Annotated[float, typer.Option("--iou", help="YOLO NMS IoU threshold.")] = 0.7,
    max_det: Annotated[int, typer.Option("--max-det", help="YOLO detections per image.")] = 100,
    replicas: Annotated[int, typer.Option("--replicas", help="Ray actors (model copies).")] = 1,
    device: Annotated[str, typer.Option("--device", help="torch device.")] = "cpu",
    as_json: JsonOption = False,
) -> None:
    """Extract MODEL's rows for every image of DATA_DIR into the catalog (resumable)."""
    from clusterlens.catalog.build import build_catalog

    yolo = (
        {"imgsz": imgsz, "conf": conf, "iou": iou, "max_det": max_det}
        if model.startswith("yolo:")
        else {}
    )
    report = build_catalog(
        data_dir,
        model,
        db,
        labels=labels,
        batch=batch,
        engine=engine,
        device=device,
        replicas=replicas,
        **yolo,
    )
    if as_json:
        print_json(report.as_dict())
        return
    elsewhere = (
        f", {report.done_elsewhere} by another build running" if report.done_elsewhere else ""
    )
    _say(
        f"{report.model}: {report.processed} images extracted, {report.already_done} already done"
        f"{elsewhere}, {report.failures} failures ({report.images_found} found) -> {db}"
    )


@catalog_app.command("distances")
@catalog_errors
@user_errors
def distances(
    db: DbOption,
    pairs: Annotated[
        str, typer.Option("--pairs", help="all or knn:K (embedding neighbours).")
    ] = "all",
    model: Annotated[
        str | None, typer.Option("--model", help="YOLO model (default: the only one).")
    ] = None,
    batch: Annotated[int, typer.Option("--batch", help="Targets per loss pass.")] = 16,
    device: Annotated[str, typer.Option("--device", help="torch device.")] = "cpu",
    as_json: JsonOption = False,
) -> None:
    """Asymmetric loss distances dist[i][j][c] between the catalog's images (resumable)."""
    from clusterlens.catalog.distances import compute_distances

    report = compute_distances(db, model=model, pairs=pairs, batch=batch, device=device)
    if as_json:
        print_json(report.as_dict())
        return
    _say(
        f"{report.model}: {report.pairs_computed} pairs computed of {report.pairs_total} "
        f"({report.pairs}, {report.images} images) in {report.seconds:.1f} s"
    )


@catalog_app.command("cluster")
@catalog_errors
@user_errors
def cluster(
    db: DbOption,
    k: Annotated[int, typer.Option("--k", help="Number of clusters.")],
    by: Annotated[str, typer.Option("--by", help="embedding or distance.")] = "embedding",
    model: Annotated[
        str | None, typer.Option("--model", help="Model (default: the only one).")
    ] = None,
    method: Annotated[
        str, typer.Option("--method", help="For --by distance: agglomerative or spectral.")
    ] = "agglomerative",
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Cluster the images (faiss k-means, or on the symmetrised loss distance)."""
    from clusterlens.catalog.clustering import cluster_catalog

    result = cluster_catalog(db, k, by=by, model=model, method=method, seed=seed)
    if as_json:
        print_json(result)
        return
    _say(f"{result['method']} on {result['model']}, k={k}: sizes {result['sizes']}")


@catalog_app.command("show")
@catalog_errors
@user_errors
def show(db: DbOption, as_json: JsonOption = False) -> None:
    """Print counts per table, the models and the cluster sizes."""
    from clusterlens.catalog.summary import catalog_summary

    summary = catalog_summary(db)
    if as_json:
        print_json(summary)
        return
    out = Console()
    counts = Table(title=f"{summary['path']} (schema v{summary['schema_version']})")
    counts.add_column("table")
    counts.add_column("rows", justify="right")
    for table, rows in summary["counts"].items():
        counts.add_row(table, str(rows))
    out.print(counts)
    models = Table(title="models")
    for column in ("model", "kind", "images", "dim", "predictions", "distance pairs"):
        models.add_column(column)
    for row in summary["models"]:
        models.add_row(
            row["model"], row["kind"], str(row["images"]), str(row["dim"]),
            str(row["predictions"]), str(row["distance_pairs"]),
        )  # fmt: skip
    out.print(models)
    for clustering in summary["clusterings"]:
        out.print(
            f"clusters {clustering['method']} {clustering['model']} k={clustering['k']}: sizes "
            f"{clustering['sizes']}"
        )


@catalog_app.command("export")
@catalog_errors
@user_errors
def export(
    db: DbOption,
    parquet: Annotated[Path, typer.Option("--parquet", help="Output folder for <table>.parquet.")],
    as_json: JsonOption = False,
) -> None:
    """Write every table of the catalog as Parquet."""
    from clusterlens.catalog.export import export_parquet

    counts = export_parquet(db, parquet)
    if as_json:
        print_json({"parquet": str(parquet), "rows": counts})
        return
    _say(f"wrote {len(counts)} tables ({sum(counts.values())} rows) to {parquet}")


@catalog_app.command("validate")
@catalog_errors
@user_errors
def validate(
    file: Annotated[Path, typer.Argument(help="Catalog SQLite file.")], as_json: JsonOption = False
) -> None:
    """Check every table, type, dimension and count; exit 1 when anything is wrong."""
    from clusterlens.catalog.validate import validate_catalog

    report = validate_catalog(file)
    if as_json:
        print_json(report.as_dict())
    elif report.ok:
        _say(
            f"[green]valid[/]: {escape(str(file))} ({len(report.checks)} checks: "
            f"{', '.join(report.checks)})"
        )
    else:
        _say(f"[bold red]invalid[/]: {escape(str(file))} -- {len(report.problems)} problems")
        for problem in report.problems:  # soft_wrap: one line per problem, for grep
            console.print(f"  - {escape(problem)}", soft_wrap=True)
    if not report.ok:
        raise typer.Exit(code=1)


@catalog_app.command("migrate")
@catalog_errors
@user_errors
def migrate(db: DbOption, as_json: JsonOption = False) -> None:
    """Upgrade an older catalog's schema to this clusterlens (checked first, in place)."""
    from clusterlens.catalog.store import SCHEMA_VERSION, CatalogStore, schema_version_of

    before = schema_version_of(db)
    CatalogStore(db, create=False).close()  # identity and quick_check, then migrations
    if as_json:
        print_json({"path": str(db), "from": before, "to": SCHEMA_VERSION})
        return
    if before == SCHEMA_VERSION:
        _say(f"{db}: already at schema v{SCHEMA_VERSION}")
    else:
        _say(f"{db}: schema v{before} -> v{SCHEMA_VERSION}")
