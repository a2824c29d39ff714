"""``clusterlens flow ...``: cluster-coupled flow matching from the shell.

``flow encode-cluster --data NAME|DIR --encoder pixels|pca:K|vae:NAME --n-clusters K --out DIR``
    encodes the training split and writes cluster_centers.npy, assignments.csv,
    latents.npy and summary.json.
``flow train --data ... --locality none|random|cluster --locality-weight W --noise-scale S
[--clusters DIR] --batch-size B --steps N --out DIR``
    trains (or resumes) a run: checkpoint.pt, metrics.csv, tensorboard/.
``flow evaluate --run DIR --nfe 1,2,4,8,32 --solver euler,midpoint [--plot PNG]``
    scores a run against held-out data (W2, MMD, straightness) at each NFE.
``flow sample --run DIR --nfe 4 --n 1000 --out samples.npy [--plot PNG]``
    writes generated samples (and a picture of them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer
from rich.table import Table

from clusterlens.cli._common import console, print_json, user_errors
from clusterlens.flow import (
    DEFAULT_NFES,
    SOLVERS,
    TrainConfig,
    data_floor,
    dataset_for,
    encode_and_cluster,
    evaluate_sweep,
    integrate,
    load_dataset,
    load_run,
    parse_nfes,
    plot_image_grid,
    plot_trajectories,
    sample_source,
    train,
)

flow_app = typer.Typer(
    help="Cluster-coupled flow matching: encode-and-cluster, train, evaluate, sample.",
    no_args_is_help=True,
)

DataOption = Annotated[
    str,
    typer.Option("--data", help="8gaussians, moons, checkerboard, digits, or an image folder."),
]
NTrainOption = Annotated[int, typer.Option("--n-train", help="Training samples (toys).")]
DataSeedOption = Annotated[
    int, typer.Option("--data-seed", help="Seed of the toy draws / train-test split.")
]
ImageSizeOption = Annotated[int, typer.Option("--image-size", help="Image folders: side in px.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


def register(app: typer.Typer) -> None:
    """Add the ``flow`` command group to ``app``."""
    app.add_typer(flow_app, name="flow")


@flow_app.command("encode-cluster")
@user_errors
def encode_cluster_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for the cluster files.")],
    data: DataOption = "moons",
    encoder: Annotated[
        str, typer.Option("--encoder", help="pixels, pca:K or vae:NAME (local weights).")
    ] = "pixels",
    n_clusters: Annotated[int, typer.Option("--n-clusters", help="k-means K.")] = 16,
    backend: Annotated[str, typer.Option("--backend", help="auto, faiss or sklearn.")] = "auto",
    n_train: NTrainOption = 20000,
    data_seed: DataSeedOption = 0,
    image_size: ImageSizeOption = 32,
    seed: Annotated[int, typer.Option("--seed", help="k-means seed.")] = 0,
    device: Annotated[str, typer.Option("--device", help="Torch device for the VAE.")] = "cpu",
    as_json: JsonOption = False,
) -> None:
    """Encode a data set's training split and cluster it with k-means."""
    dataset = load_dataset(data, n_train=n_train, data_seed=data_seed, image_size=image_size)
    summary = encode_and_cluster(
        dataset, encoder, n_clusters, out, seed=seed, backend=backend, device=device
    )
    if as_json:
        print_json(summary)
        return
    sizes = summary["cluster_sizes"]
    console.print(
        f"{summary['n_samples']} samples of {data} -> {n_clusters} clusters "
        f"({summary['backend']}, {encoder}, dim {summary['latent_dim']}); sizes "
        f"{min(sizes)}..{max(sizes)}, inertia {summary['inertia']:.4g}; wrote {out}"
    )


@flow_app.command("train")
@user_errors
def train_command(
    out: Annotated[Path, typer.Option("--out", help="Run folder; rerun to resume.")],
    data: DataOption = "moons",
    source: Annotated[
        str, typer.Option("--source", help="Noise side: normal or a 2D toy name.")
    ] = "normal",
    locality: Annotated[str, typer.Option("--locality", help="none, random or cluster.")] = "none",
    locality_weight: Annotated[
        float, typer.Option("--locality-weight", help="Weight of the locality loss.")
    ] = 1.0,
    noise_scale: Annotated[
        float, typer.Option("--noise-scale", help="Random mode: noise perturbation scale.")
    ] = 0.1,
    clusters: Annotated[
        Path | None, typer.Option("--clusters", help="encode-cluster folder (cluster mode).")
    ] = None,
    matcher: Annotated[
        str, typer.Option("--matcher", help="ours, or torchcfm's icfm / otcfm baselines.")
    ] = "ours",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Samples per step.")] = 256,
    steps: Annotated[int, typer.Option("--steps", help="Optimizer steps in total.")] = 2000,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = 1e-3,
    width: Annotated[int, typer.Option("--width", help="MLP width (U-Net: 4x base).")] = 128,
    depth: Annotated[int, typer.Option("--depth", help="MLP hidden layers.")] = 3,
    seed: Annotated[int, typer.Option("--seed", help="Run seed.")] = 0,
    n_train: NTrainOption = 20000,
    data_seed: DataSeedOption = 0,
    image_size: ImageSizeOption = 32,
    log_every: Annotated[int, typer.Option("--log-every", help="Steps per metrics row.")] = 50,
    checkpoint_every: Annotated[
        int, typer.Option("--checkpoint-every", help="Steps between checkpoints.")
    ] = 500,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    threads: Annotated[int, typer.Option("--threads", help="Torch CPU threads.")] = 1,
    as_json: JsonOption = False,
) -> None:
    """Train a flow-matching velocity network with a locality term (resumable)."""
    torch.set_num_threads(threads)
    config = TrainConfig(
        data=data,
        source=source,
        locality=locality,
        locality_weight=locality_weight,
        noise_scale=noise_scale,
        clusters=str(clusters) if clusters else None,
        matcher=matcher,
        batch_size=batch_size,
        steps=steps,
        lr=lr,
        width=width,
        depth=depth,
        seed=seed,
        n_train=n_train,
        data_seed=data_seed,
        image_size=image_size,
        log_every=log_every,
        checkpoint_every=checkpoint_every,
    )
    result = train(config, out, device=device, progress=not as_json)
    if as_json:
        print_json(result)
        return
    last = result["last"]
    extra = ""
    if "loss_locality" in last:
        extra = f", loss_locality {last['loss_locality']:.4f}"
    if "locality_valid_ratio" in last:
        extra += f", valid ratio {last['locality_valid_ratio']:.2f}"
    console.print(
        f"{result['steps']} steps ({last.get('locality_mode', locality)}): loss "
        f"{last.get('loss', float('nan')):.4f}{extra}; run in {out}"
    )


@flow_app.command("evaluate")
@user_errors
def evaluate_command(
    run: Annotated[Path, typer.Option("--run", help="Run folder written by flow train.")],
    nfe: Annotated[str, typer.Option("--nfe", help="Comma-separated NFE budgets.")] = ",".join(
        map(str, DEFAULT_NFES)
    ),
    solver: Annotated[
        str, typer.Option("--solver", help="Comma-separated: euler, midpoint, heun.")
    ] = "euler",
    n_samples: Annotated[int, typer.Option("--n-samples", help="Samples compared.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the source draws.")] = 0,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="PNG of samples and trajectories.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """NFE sweep: W2 and MMD to held-out data and path straightness; writes evaluation.json."""
    nfes = parse_nfes(nfe)
    solvers = [name.strip() for name in solver.split(",") if name.strip()]
    model, config = load_run(run)
    dataset = dataset_for(config)
    rows = evaluate_sweep(
        model,
        dataset,
        source=config.source,
        nfes=nfes,
        solvers=solvers,
        n_samples=n_samples,
        seed=seed,
    )
    if not rows:
        raise ValueError(f"no (solver, NFE) pair is possible: {solver} at NFE {nfe}")
    report = {"run": str(run), "floor_w2": data_floor(dataset, n_samples), "rows": rows}
    (run / "evaluation.json").write_text(json.dumps(report, indent=2) + "\n")
    if plot is not None:
        report["plot"] = str(_plot_run(model, config, dataset, nfes, solvers[0], plot, seed))
    if as_json:
        print_json(report)
        return
    table = Table(title=f"{run} (W2 floor {report['floor_w2']:.3f})")
    for column in ("solver", "NFE", "W2", "MMD", "straightness"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            row["solver"],
            str(row["nfe"]),
            f"{row['w2']:.4f}",
            f"{row['mmd']:.4f}",
            f"{row['straightness']:.4f}",
        )
    console.print(table)


@flow_app.command("sample")
@user_errors
def sample_command(
    run: Annotated[Path, typer.Option("--run", help="Run folder written by flow train.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the samples (.npy).")],
    nfe: Annotated[int, typer.Option("--nfe", help="Network evaluations.")] = 8,
    solver: Annotated[str, typer.Option("--solver", help="euler, midpoint or heun.")] = "euler",
    n: Annotated[int, typer.Option("--n", help="Number of samples.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the source draws.")] = 0,
    plot: Annotated[Path | None, typer.Option("--plot", help="PNG of the samples.")] = None,
) -> None:
    """Generate N samples from a trained run with a given solver and NFE."""
    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    if out.suffix != ".npy":
        raise ValueError(f"--out must end in .npy, got {out}")
    model, config = load_run(run)
    dataset = dataset_for(config)
    generator = torch.Generator().manual_seed(seed)
    x0 = sample_source(config.source, dataset.sample_shape, n, generator)
    trajectory = integrate(model, x0, nfe=nfe, solver=solver)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, trajectory.samples.numpy())
    if plot is not None:
        _plot_run(model, config, dataset, [nfe], solver, plot, seed)
    console.print(f"{n} samples ({solver}, NFE {nfe}) -> {out}")


def _plot_run(model, config, dataset, nfes, solver, path: Path, seed: int) -> Path:
    generator = torch.Generator().manual_seed(seed)
    x0 = sample_source(config.source, dataset.sample_shape, 400, generator)
    runs = {}
    for nfe in nfes:
        if nfe % SOLVERS[solver] == 0:  # skip odd NFEs of a two-evaluation solver
            runs[f"NFE {nfe}"] = integrate(model, x0, nfe=nfe, solver=solver)
    if dataset.sample_shape == (2,):
        return plot_trajectories(runs, dataset.test[:1000], path, title=str(config.data))
    rows = {"held-out": dataset.test} | {name: t.samples for name, t in runs.items()}
    return plot_image_grid(rows, path, title=str(config.data))
