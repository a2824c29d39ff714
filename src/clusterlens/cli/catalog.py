"""``clusterlens catalog ...``: build, inspect and cluster a dataset catalog (SQLite).

- ``catalog build DATA_DIR --model NAME --db catalog.db [--labels DIR] [--batch N]
  [--engine local|ray]``
- ``catalog distances --db FILE [--pairs all|knn:K]``
- ``catalog cluster --db FILE --k K [--by embedding|distance]``
- ``catalog show --db FILE``
- ``catalog export --db FILE --parquet DIR``
- ``catalog validate FILE`` (exit 1 and a report when anything is wrong)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from clusterlens.cli._common import console, print_json, user_errors

catalog_app = typer.Typer(help="Dataset catalog: embeddings, YOLO rows, loss distances, clusters.")

DbOption = Annotated[Path, typer.Option("--db", help="Catalog SQLite file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def register(app: typer.Typer) -> None:
    """Add the ``catalog`` command group to ``app``."""
    app.add_typer(catalog_app, name="catalog")


@catalog_app.command("build")
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
    console.print(
        f"{report.model}: {report.processed} images extracted, {report.already_done} already done, "
        f"{report.failures} failures ({report.images_found} found) -> {db}"
    )


@catalog_app.command("distances")
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
    console.print(
        f"{report.model}: {report.pairs_computed} pairs computed of {report.pairs_total} "
        f"({report.pairs}, {report.images} images) in {report.seconds:.1f} s"
    )


@catalog_app.command("cluster")
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
    console.print(f"{result['method']} on {result['model']}, k={k}: sizes {result['sizes']}")


@catalog_app.command("show")
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
    console.print(f"wrote {len(counts)} tables ({sum(counts.values())} rows) to {parquet}")


@catalog_app.command("validate")
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
        console.print(
            f"[green]valid[/]: {file} ({len(report.checks)} checks: {', '.join(report.checks)})"
        )
    else:
        console.print(f"[bold red]invalid[/]: {file} -- {len(report.problems)} problems")
        for problem in report.problems:
            console.print(f"  - {problem}")
    if not report.ok:
        raise typer.Exit(code=1)
