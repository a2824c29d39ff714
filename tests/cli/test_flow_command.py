"""The flow command group, run through a local Typer app."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from clusterlens.cli.flow import register

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    local = typer.Typer()
    register(local)
    return local


def invoke(app, *args):
    return runner.invoke(app, ["flow", *map(str, args)])


def test_encode_cluster_train_evaluate_sample(app, tmp_path):
    clusters, run = tmp_path / "clusters", tmp_path / "run"
    data = ["--data", "moons", "--n-train", "1000"]
    result = invoke(app, "encode-cluster", *data, "--n-clusters", 6, "--out", clusters, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n_clusters"] == 6 and sum(summary["cluster_sizes"]) == 1000

    result = invoke(
        app,
        "train",
        *data,
        "--source",
        "8gaussians",
        "--locality",
        "cluster",
        "--clusters",
        clusters,
        "--locality-weight",
        0.5,
        "--batch-size",
        64,
        "--steps",
        20,
        "--width",
        32,
        "--log-every",
        10,
        "--out",
        run,
        "--json",
    )
    assert result.exit_code == 0, result.output
    last = json.loads(result.stdout)["last"]
    assert last["step"] == 20 and last["locality_mode"] == "cluster_neighborhood"
    assert (run / "checkpoint.pt").is_file() and (run / "metrics.csv").is_file()

    plot = tmp_path / "flow.png"
    result = invoke(
        app,
        "evaluate",
        "--run",
        run,
        "--nfe",
        "1,2,4",
        "--solver",
        "euler,midpoint",
        "--n-samples",
        200,
        "--plot",
        plot,
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    pairs = [(row["solver"], row["nfe"]) for row in report["rows"]]
    assert pairs == [("euler", 1), ("euler", 2), ("euler", 4), ("midpoint", 2), ("midpoint", 4)]
    assert all(row["w2"] > 0 and "mmd" in row for row in report["rows"])
    assert plot.stat().st_size > 0 and (run / "evaluation.json").is_file()

    samples = tmp_path / "samples.npy"
    result = invoke(
        app, "sample", "--run", run, "--nfe", 4, "--solver", "heun", "--n", 50, "--out", samples
    )
    assert result.exit_code == 0, result.output
    assert np.load(samples).shape == (50, 2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--locality", "knn"], "none, random, cluster"),
        (["train", "--locality", "cluster"], "needs --clusters"),
        (["train", "--data", "spirals"], "neither a bundled data set"),
        (["train", "--locality", "random", "--locality-weight", "-1"], "weight must be >= 0"),
        (["train", "--batch-size", "1", "--n-train", "100"], "batch_size must be in"),
        (["encode-cluster", "--encoder", "clip"], "accepted: pixels, pca:K, vae:NAME"),
        (["encode-cluster", "--n-clusters", "0", "--n-train", "50"], "n_clusters must be"),
        pytest.param(
            ["encode-cluster", "--encoder", "vae:/no/such/vae"],
            "never downloads",
            marks=pytest.mark.slow,  # imports diffusers
        ),
        (["evaluate", "--nfe", "two"], "comma-separated integers"),
        (["sample", "--out", "x.txt"], "must end in .npy"),
        (["sample", "--n", "0", "--out", "x.npy"], "--n must be >= 1"),
    ],
)
def test_bad_input_exits_2_with_a_message(app, tmp_path, args, message):
    required = {
        "train": ["--out", tmp_path / "run"],
        "encode-cluster": ["--out", tmp_path / "c"],
        "evaluate": ["--run", tmp_path],
        "sample": ["--run", tmp_path],
    }
    result = invoke(app, *args, *required[args[0]])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_evaluate_without_a_run_explains(app, tmp_path):
    result = invoke(app, "evaluate", "--run", tmp_path)
    assert result.exit_code == 2
    assert "no checkpoint.pt" in result.output
