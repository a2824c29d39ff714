"""``clusterlens train-offline``: train the bundled offline CamVid model (offline:camvid)."""

from __future__ import annotations

from pathlib import Path

import typer

from clusterlens.cli._common import console, print_json, user_errors


def train_offline_command(
    out: Path = typer.Option(
        Path("outputs/offline-camvid"), "--out", "-o", help="Output folder; rerun to resume."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="CamVid folder or its parent (default: $CLUSTERLENS_DATA)."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed (runs are deterministic)."),
    epochs: int = typer.Option(30, "--epochs", help="Training epochs."),
    batch_size: int = typer.Option(8, "--batch-size", help="Images per step."),
    threads: int = typer.Option(2, "--threads", help="Torch CPU threads."),
    limit_train: int | None = typer.Option(None, "--limit-train", help="Smoke runs: N images."),
    limit_val: int | None = typer.Option(None, "--limit-val", help="Smoke runs: N images."),
    recipe_name: str = typer.Option(
        "v1",
        "--recipe",
        help="v1: the first shipped recipe; v1-last: v1's views judged like v2 (CV "
        "baseline); v2: meant to generalise.",
    ),
    holdout: str | None = typer.Option(
        None, "--holdout", help="Train without this drive and judge on it (0001TP, 0006R0, 0016E5)."
    ),
    cross_validate: bool = typer.Option(
        False, "--cv", help="Leave-one-drive-out cross-validation: one run per drive, a report."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the final metadata as JSON."),
) -> None:
    """Train the compact U-Net behind offline:camvid; interrupt and rerun to resume."""
    import torch

    from clusterlens.models.offline import cv
    from clusterlens.models.offline import train as recipe

    argv = ["--seed", str(seed), "--epochs", str(epochs), "--recipe", recipe_name]
    argv += ["--batch-size", str(batch_size), "--threads", str(threads)]
    if data is not None:
        argv += ["--data", str(data)]
    if limit_train is not None:
        argv += ["--limit-train", str(limit_train)]
    if limit_val is not None:
        argv += ["--limit-val", str(limit_val)]
    if cross_validate:
        if holdout is not None:
            raise ValueError("--cv holds out every drive in turn; drop --holdout")
        cv.main(["--out", str(out), *argv])
        return
    if holdout is not None:
        argv += ["--holdout", holdout]
    args = recipe.parse_args(["--out", str(out), *argv])
    torch.set_num_threads(args.threads)
    metadata = recipe.train(recipe.config_from_args(args), args.data, Path(args.out))
    if as_json:
        print_json(metadata)
        return
    judged = metadata["val"]
    score = f"{metadata['judged_on']} mIoU {100 * judged['miou']:.1f}%" if judged else "no judge"
    console.print(
        f"[bold]offline:camvid[/] {score} (epoch {metadata['best_epoch']}, scale "
        f"{metadata['scale']}, flip TTA {metadata['flip_tta']}); "
        f"weights in {out / (recipe.CHECKPOINT_NAME + '.pt')}"
    )


def register(app: typer.Typer) -> None:
    """Add the ``train-offline`` command to ``app``."""
    app.command("train-offline")(user_errors(train_offline_command))
