"""Training: learns (W2 beats the untrained network), logs, resumes exactly, validates."""

from __future__ import annotations

import csv

import pytest
import torch

from clusterlens.flow.clustering import encode_and_cluster
from clusterlens.flow.data import load_dataset
from clusterlens.flow.evaluation import evaluate_sweep
from clusterlens.flow.networks import SmallUNet, build_network
from clusterlens.flow.train import TrainConfig, Trainer, load_run, train

SMALL = {"n_train": 2000, "n_test": 300, "width": 32, "batch_size": 128}


@pytest.fixture
def moons_clusters(tmp_path):
    dataset = load_dataset("moons", n_train=2000, n_test=300)
    encode_and_cluster(dataset, "pixels", 8, tmp_path / "clusters")
    return tmp_path / "clusters"


def w2_at(model, config, nfe=8):
    dataset = load_dataset(config.data, n_train=config.n_train, n_test=config.n_test)
    rows = evaluate_sweep(
        model.eval(), dataset, source=config.source, nfes=(nfe,), n_samples=300, with_mmd=False
    )
    return rows[0]["w2"]


@pytest.mark.slow
@pytest.mark.parametrize("locality", ["none", "random", "cluster"])
def test_short_training_beats_the_untrained_network(tmp_path, moons_clusters, locality):
    config = TrainConfig(
        data="moons",
        source="8gaussians",
        locality=locality,
        clusters=str(moons_clusters),
        steps=300,
        **SMALL,
    )
    torch.manual_seed(config.seed)
    untrained = build_network((2,), width=config.width)
    train(config, tmp_path / "run", progress=False)
    model, _ = load_run(tmp_path / "run")
    assert w2_at(model, config) < 0.6 * w2_at(untrained, config)


def test_cluster_run_logs_the_seed_metrics(tmp_path, moons_clusters):
    config = TrainConfig(
        data="moons",
        locality="cluster",
        clusters=str(moons_clusters),
        steps=6,
        log_every=3,
        **SMALL,
    )
    train(config, tmp_path / "run", progress=False)
    with open(tmp_path / "run" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["step"] for row in rows] == ["3", "6"]
    row = rows[-1]
    assert row["locality_mode"] == "cluster_neighborhood"
    assert 0.9 <= float(row["locality_valid_ratio"]) <= 1.0  # 8 clusters, 128 per batch
    assert float(row["locality_valid_pairs"]) == pytest.approx(
        128 * float(row["locality_valid_ratio"])
    )
    assert float(row["locality_n_unique_clusters"]) == 8
    assert float(row["loss_locality"]) > 0 and float(row["locality_target_diff"]) > 0
    assert float(row["loss"]) == pytest.approx(
        float(row["loss_flow"]) + float(row["loss_locality"]), rel=1e-5
    )
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert events

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(events[0].parent))
    accumulator.Reload()
    scalars = set(accumulator.Tags()["scalars"])
    assert {
        "training/loss_locality",
        "training/locality_valid_ratio",
        "training/locality_target_diff",
        "training/locality_n_unique_clusters",
    } <= scalars


@pytest.mark.parametrize("locality", ["random", "cluster"])
def test_resume_continues_exactly_where_it_stopped(tmp_path, moons_clusters, locality):
    common = {
        "data": "moons",
        "locality": locality,
        "clusters": str(moons_clusters),
        "log_every": 2,
        "checkpoint_every": 4,
        **SMALL,
    }
    train(TrainConfig(steps=10, **common), tmp_path / "straight", progress=False)
    train(TrainConfig(steps=4, **common), tmp_path / "split", progress=False)
    # An interrupted attempt: it logged steps 6 and 8 but its last checkpoint is step 4.
    with open(tmp_path / "split" / "metrics.csv", "a", newline="") as handle:
        handle.write("6,9,9,,,,,,\n8,9,9,,,,,,\n")
    train(TrainConfig(steps=10, **common), tmp_path / "split", progress=False)
    straight, _ = load_run(tmp_path / "straight")
    resumed, _ = load_run(tmp_path / "split")
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    steps = [row.split(",")[0] for row in (tmp_path / "split" / "metrics.csv").read_text().split()]
    assert steps == ["step", "2", "4", "6", "8", "10"]
    assert (tmp_path / "straight" / "metrics.csv").read_text() == (
        tmp_path / "split" / "metrics.csv"
    ).read_text()


def test_resume_refuses_different_settings(tmp_path):
    train(TrainConfig(data="moons", steps=2, **SMALL), tmp_path, progress=False)
    with pytest.raises(ValueError, match="locality_weight: 1.0 -> 2.0"):
        train(
            TrainConfig(data="moons", steps=4, locality_weight=2.0, **SMALL),
            tmp_path,
            progress=False,
        )


def test_bad_configs_are_explained(tmp_path, moons_clusters):
    with pytest.raises(ValueError, match="needs --clusters"):
        Trainer(TrainConfig(locality="cluster"), tmp_path)
    with pytest.raises(ValueError, match="none, random, cluster"):
        Trainer(TrainConfig(locality="knn"), tmp_path)
    with pytest.raises(ValueError, match="runs without locality"):
        Trainer(TrainConfig(matcher="otcfm", locality="random"), tmp_path)
    with pytest.raises(ValueError, match="were made from 'moons'"):
        Trainer(
            TrainConfig(
                data="moons", locality="cluster", clusters=str(moons_clusters), n_train=3000
            ),
            tmp_path,
        )
    with pytest.raises(FileNotFoundError, match="no checkpoint.pt"):
        load_run(tmp_path / "empty")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"steps": 0}, "steps must be >= 1"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"source": "uniform"}, "source must be one of"),
        ({"locality": "random", "locality_weight": -1.0}, "weight must be >= 0"),
        ({"locality": "random", "noise_scale": 0.0}, "noise_scale > 0"),
    ],
)
def test_config_validation_names_the_bad_field(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes).validate()


@pytest.mark.parametrize("matcher", ["icfm", "otcfm"])
def test_torchcfm_baselines_train(tmp_path, matcher):
    config = TrainConfig(data="moons", matcher=matcher, steps=3, log_every=1, **SMALL)
    result = train(config, tmp_path, progress=False)
    assert result["last"]["locality_mode"] == f"torchcfm_{matcher}"


def test_independent_coupling_matches_torchcfm_icfm(tmp_path):
    """Our locality-free loss and torchcfm's I-CFM see identical batches: same weights."""
    runs = {}
    for matcher in ("ours", "icfm"):
        config = TrainConfig(data="moons", matcher=matcher, steps=5, **SMALL)
        train(config, tmp_path / matcher, progress=False)
        runs[matcher] = load_run(tmp_path / matcher)[0].state_dict()
    for name, tensor in runs["ours"].items():
        assert torch.allclose(tensor, runs["icfm"][name], atol=1e-6)


def test_image_folder_trains_the_unet(tmp_path):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    generator = torch.Generator().manual_seed(0)
    for k in range(12):
        pixels = (torch.rand(12, 12, 3, generator=generator) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{k:02d}.png")
    clusters = tmp_path / "clusters"
    encode_and_cluster(load_dataset(folder, image_size=8), "pca:3", 2, clusters)
    config = TrainConfig(
        data=str(folder),
        image_size=8,
        locality="cluster",
        clusters=str(clusters),
        batch_size=8,
        steps=2,
        width=32,
    )
    train(config, tmp_path / "run", progress=False)
    model, _ = load_run(tmp_path / "run")
    assert isinstance(model, SmallUNet)
    assert model(torch.zeros(2, 3, 8, 8), torch.zeros(2)).shape == (2, 3, 8, 8)
