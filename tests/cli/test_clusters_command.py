"""The clusters and clusters-bench commands, run through a local Typer app."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io
import typer
from PIL import Image
from typer.testing import CliRunner

from clusterlens.cli.clusters import BENCH_COLUMNS, register

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    local = typer.Typer()
    register(local)
    return local


@pytest.fixture
def halves_png(tmp_path):
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    image[:, :30, 0] = 255
    image[:, 30:, 2] = 255
    path = tmp_path / "halves.png"
    Image.fromarray(image).save(path)
    return path


@pytest.fixture
def tiny_bsds(tmp_path):
    root = tmp_path / "data" / "bsds500"
    for folder in ("images/val", "groundTruth/val"):
        (root / folder).mkdir(parents=True)
    for stem in ("1", "2"):
        image = np.zeros((30, 40, 3), dtype=np.uint8)
        image[:, 20:] = 255
        Image.fromarray(image).save(root / f"images/val/{stem}.jpg")
        truth = np.ones((30, 40), dtype=np.uint16)
        truth[:, 20:] = 2
        annotations = np.empty((1, 1), dtype=object)
        annotations[0, 0] = {"Segmentation": truth, "Boundaries": np.zeros((30, 40), np.uint8)}
        scipy.io.savemat(root / f"groundTruth/val/{stem}.mat", {"groundTruth": annotations})
    return root.parent


def test_clusters_writes_overlay_and_stats(app, halves_png, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["clusters", str(halves_png), "--method", "fast", "--segments", "12", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    overlay = np.asarray(Image.open(out / "halves_clusters.png"))
    assert overlay.shape == (40, 60, 3)
    assert (overlay == [255, 255, 0]).all(axis=-1).any()  # boundaries drawn in yellow
    stats = json.loads((out / "halves_clusters.json").read_text())
    assert stats["method"] == "fast" and stats["n_segments"] == 12
    assert stats["n_clusters"] == len(stats["clusters"]) >= 2
    assert sum(row["pixel_count"] for row in stats["clusters"]) == 40 * 60
    assert stats["summary"]["n_clusters"] == stats["n_clusters"]
    assert "clusters with fast" in result.output


def test_clusters_rejects_unknown_method_and_missing_image(app, halves_png, tmp_path):
    result = runner.invoke(
        app, ["clusters", str(halves_png), "--method", "nope", "--out", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert "unknown method 'nope'" in result.output
    result = runner.invoke(app, ["clusters", str(tmp_path / "missing.png"), "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "not found" in result.output


def test_clusters_bench_prints_rows_and_writes_json(app, tiny_bsds, tmp_path):
    json_path = tmp_path / "rows.json"
    args = ["clusters-bench", "--data", str(tiny_bsds), "--methods", "slic,fast"]
    args += ["--segments", "4,8", "--json", str(json_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(json_path.read_text())
    assert [(row["method"], row["n_segments"]) for row in rows] == [
        ("slic", 4),
        ("slic", 8),
        ("fast", 4),
        ("fast", 8),
    ]
    for row in rows:
        assert set(BENCH_COLUMNS) <= set(row)
        assert row["images"] == 2
        assert row["boundary_recall"] == pytest.approx(1.0)  # the one edge is found
        assert row["asa"] == pytest.approx(1.0)
    assert "boundary_recall" in result.output and "fast" in result.output


def test_clusters_bench_limit_and_bad_arguments(app, tiny_bsds, tmp_path):
    json_path = tmp_path / "rows.json"
    result = runner.invoke(
        app,
        ["clusters-bench", "--data", str(tiny_bsds), "--methods", "fast", "--segments", "4"]
        + ["--limit", "1", "--json", str(json_path)],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(json_path.read_text())[0]["images"] == 1
    bad = runner.invoke(app, ["clusters-bench", "--data", str(tiny_bsds), "--methods", "zzz"])
    assert bad.exit_code != 0 and "unknown method" in bad.output
    bad = runner.invoke(app, ["clusters-bench", "--data", str(tiny_bsds), "--segments", "a,b"])
    assert bad.exit_code != 0 and "integers" in bad.output
    bad = runner.invoke(app, ["clusters-bench", "--data", str(tmp_path / "nowhere")])
    assert bad.exit_code != 0 and "not found" in bad.output


def test_clusters_max_side_reduces_and_says_so(app, halves_png, tmp_path):
    out = tmp_path / "out"
    args = ["clusters", str(halves_png), "--segments", "6", "--out", str(out)]
    result = runner.invoke(app, [*args, "--max-side", "30"])
    assert result.exit_code == 0, result.output
    assert "halves.png is 60x40; processed at 30x20" in result.output
    stats = json.loads((out / "halves_clusters.json").read_text())
    assert stats["size"] == [20, 30] and stats["notes"]
    assert sum(row["pixel_count"] for row in stats["clusters"]) == 20 * 30
    assert Image.open(out / "halves_clusters.png").size == (30, 20)
    bad = runner.invoke(app, [*args, "--max-side", "-1"])
    assert bad.exit_code == 2 and "--max-side" in bad.output
