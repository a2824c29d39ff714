"""``clusterlens train-detector``: the narrow YOLO segment model on derived CamVid instances."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from clusterlens.cli._common import console, print_json, user_errors


def train_detector_command(
    out: Path = typer.Option(
        Path("outputs/camvid-detector"), "--out", "-o", help="Run folder; rerun to resume."
    ),
    dataset: Path | None = typer.Option(
        None,
        "--dataset",
        help="Derived YOLO data set folder, written from CamVid when missing "
        "(default outputs/camvid-yolo; resume: kept).",
    ),
    data: Path | None = typer.Option(
        None, "--data", help="CamVid folder or its parent (default: $CLUSTERLENS_DATA)."
    ),
    epochs: int | None = typer.Option(None, "--epochs", help="Epochs (default 30; resume: kept)."),
    imgsz: int | None = typer.Option(
        None, "--imgsz", help="Training size, a multiple of 32 (default 480; resume: kept)."
    ),
    batch: int | None = typer.Option(None, "--batch", help="Images per step (default 8)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, 0 ... (may change on resume)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (default 0)."),
    min_area: int | None = typer.Option(
        None, "--min-area", help="Drop label components under this many pixels (default 40)."
    ),
    validate: bool = typer.Option(
        False,
        "--validate",
        help="Score the exported checkpoint on the val split with ultralytics' validator "
        "and print box / mask mAP per class.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the run's state as JSON."),
) -> None:
    """Train (or resume) the CamVid instance detector; a finished run is only reported.

    A finished run's best.pt is also written as a safe, tensors-only checkpoint
    (<out>/camvid_detector.pt, loadable as yolo:<out>/camvid_detector.pt).
    """
    from clusterlens.catalog.detector import train_detector

    run = train_detector(
        out,
        dataset,
        data=data,
        epochs=epochs,
        imgsz=imgsz,
        batch=batch,
        device=device,
        seed=seed,
        min_area=min_area,
        callbacks={"on_fit_epoch_end": _print_epoch},
    )
    scores = _validate(run, device) if validate else None
    if as_json:
        print_json({**run.to_json(), **({"validation": scores} if scores else {})})
        return
    metrics = run.metrics
    summary = ", ".join(
        f"{name} {metrics[key]:.3f}"
        for name, key in (("box mAP50", "metrics/mAP50(B)"), ("mask mAP50", "metrics/mAP50(M)"))
        if key in metrics
    )
    how = "resumed and finished" if run.resumed else "finished"
    console.print(
        f"[bold]detector[/] {how}: {run.epochs_done} epochs, {run.parameters:,} parameters, "
        f"val {summary or 'not measured'}; weights {escape(str(run.best))}",
        soft_wrap=True,
    )
    safe = run.safe_checkpoint
    console.print(
        f"safe checkpoint {escape(str(safe))} ({safe.stat().st_size / 1e6:.2f} MB, "
        f"tensors only): load it as yolo:{escape(str(safe))}",
        soft_wrap=True,
    )
    if scores:
        _print_validation(scores)


def _validate(run: Any, device: str) -> dict[str, Any]:
    """Ultralytics' validation of the run's safe checkpoint at its training size."""
    from clusterlens.catalog.detector import validate_detector

    settings = run.settings
    return validate_detector(
        run.safe_checkpoint, settings["data_yaml"], imgsz=settings["imgsz"], device=device
    )


def _print_validation(scores: dict[str, Any]) -> None:
    """One row per class and one for all: instances, box and mask mAP50 / mAP50-95."""
    table = Table("class", "instances", "box mAP50", "box mAP50-95", "mask mAP50", "mask mAP50-95")
    names = [key.split("/")[1] for key in scores if key.endswith("/instances")]
    rows = [
        (name, f"per_class/{name}/", str(scores[f"per_class/{name}/instances"])) for name in names
    ]
    for name, prefix, instances in [*rows, ("all", "metrics/", "")]:
        values = [scores.get(f"{prefix}{kind}") for kind in _COLUMNS]
        table.add_row(name, instances, *("-" if v is None else f"{v:.3f}" for v in values))
    console.print(table)


_COLUMNS = ("mAP50(B)", "mAP50-95(B)", "mAP50(M)", "mAP50-95(M)")


def _print_epoch(trainer: Any) -> None:
    """One summary line per epoch, after ultralytics' own progress output."""
    metrics = trainer.metrics or {}
    final = trainer.epoch + 1 > trainer.epochs  # final_eval reports best.pt one epoch later
    label = "best.pt" if final else f"epoch {trainer.epoch + 1}/{trainer.epochs}"
    box, mask = metrics.get("metrics/mAP50(B)"), metrics.get("metrics/mAP50(M)")
    scores = "" if box is None else f"  val box mAP50 {box:.3f}  mask mAP50 {mask:.3f}"
    console.print(f"{label}{scores}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``train-detector`` command to ``app``."""
    app.command("train-detector")(user_errors(train_detector_command))
