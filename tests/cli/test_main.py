"""The clusterlens command: version, help, texture, channels, demo and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from clusterlens import __version__
from clusterlens.cli.main import app

runner = CliRunner()


@pytest.fixture
def image_file(tmp_path):
    rgb = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    path = tmp_path / "sample.png"
    Image.fromarray(rgb).save(path)
    return path


def test_version_and_help():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"clusterlens {__version__}"
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "texture", "channels"):
        assert command in result.stdout


def test_texture_writes_sheet_and_npz(image_file, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["texture", str(image_file), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["size"] == [40, 60] and len(summary["channels"]) == 13
    assert summary["levels"][:3] == [[40, 60], [20, 30], [10, 15]]
    with np.load(out / "sample_texture.npz") as saved:
        assert list(saved["channels"]) == summary["channels"]
        assert saved["level_0"].shape == (13, 40, 60)
        assert saved["level_1"].shape == (13, 20, 30)
    with Image.open(out / "sample_texture.png") as sheet:
        assert sheet.width > 400 and sheet.height > 400


def test_texture_full40_and_channel_lists(image_file, tmp_path):
    result = runner.invoke(
        app, ["texture", str(image_file), "-p", "full40", "-o", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert len(summary["channels"]) == 40 and "slic" in summary["sources"]["cluster_source"]
    result = runner.invoke(
        app, ["texture", str(image_file), "-p", "rgb,saliency", "-o", str(tmp_path), "--json"]
    )
    assert json.loads(result.stdout)["channels"] == ["red", "green", "blue", "saliency"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["texture", "missing.png"], "not found"),
        (["texture", "{image}", "--preset", "sparkle"], "unknown texture channel"),
        (["texture", "{image}", "--fixation", "2,0.5"], "fixation"),
        (["texture", "{image}", "--fixation", "left"], "two numbers"),
    ],
)
def test_texture_errors_are_one_clear_line(arguments, message, image_file, tmp_path):
    arguments = [a.replace("{image}", str(image_file)) for a in arguments]
    result = runner.invoke(app, [*arguments, "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_channels_lists_every_group():
    result = runner.invoke(app, ["channels"], terminal_width=200)
    assert result.exit_code == 0
    for group in ("rgb", "lab", "saliency", "cluster", "embedding", "position"):
        assert group in result.output


@pytest.mark.slow
def test_demo_writes_its_pictures(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    written = summary["texture"]["wrote"] + [p for s in summary["select"] for p in s["wrote"]]
    written += summary["segment"]["wrote"]
    assert len(written) == 9 and all(Path(p).exists() for p in written)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(Path(p).name for p in written)
    first, second = (s["match"]["classes"] for s in summary["select"])
    assert first != second  # two queries, two different readings of the image
    shares = summary["segment"]["classes"]
    assert set(shares) == {"sky", "road", "building", "pedestrian"}
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    assert summary["segment"]["prompts"] > 0


def test_select_writes_picture_and_json_and_rejects_bad_input(image_file, tmp_path):
    json_path = tmp_path / "allocation.json"
    result = runner.invoke(
        app,
        [
            "select",
            str(image_file),
            "--strategy",
            "quadtree",
            "--budget",
            "10",
            "--out",
            str(tmp_path),
            "--json",
            str(json_path),
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(json_path.read_text())
    assert payload["strategy"] == "quadtree" and 1 <= len(payload["patches"]) <= 10
    assert "information and salience" in result.output  # no query given
    assert (tmp_path / "sample_quadtree.png").exists()
    for arguments, message in [
        (["--strategy", "best"], "unknown strategy"),
        (["--budget", "-3"], "budget"),
        (["--strategy", "foveated", "--gaze", "1.5,0.2"], "gaze"),
        (["--strategy", "bound-cascade", "--option", "tolerence=0.1"], "has no option 'tolerence'"),
        (["--option", "oversample"], "KEY=VALUE"),
    ]:
        result = runner.invoke(app, ["select", str(image_file), "--out", str(tmp_path), *arguments])
        assert result.exit_code == 2 and message in result.output, result.output


def test_select_passes_strategy_options(image_file, tmp_path):
    def scored(*arguments: str) -> int:
        json_path = tmp_path / "allocation.json"
        command = ["select", str(image_file), "-q", "the road", "-s", "mip-cascade", "-b", "16"]
        output = ["--out", str(tmp_path), "--json", str(json_path)]
        result = runner.invoke(app, [*command, *arguments, *output])
        assert result.exit_code == 0, result.output
        return json.loads(json_path.read_text())["accounting"]["cells_scored"]

    assert scored("--option", "oversample=4") > scored("--option", "oversample=1")


@pytest.mark.slow
def test_demo_on_a_given_image_names_its_outputs_after_it(image_file, tmp_path):
    result = runner.invoke(
        app, ["demo", "--image", str(image_file), "--out", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)["texture"]["wrote"]
    assert all(Path(p).name.startswith("sample_") for p in written)
    missing = runner.invoke(
        app, ["demo", "--image", str(tmp_path / "none.png"), "--out", str(tmp_path)]
    )
    assert missing.exit_code == 2 and "not found" in missing.output


def test_texture_max_side_reduces_and_says_so(image_file, tmp_path):
    args = ["texture", str(image_file), "-o", str(tmp_path), "--max-side", "30", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["size"] == [20, 30]
    assert summary["notes"] == [
        "sample.png is 60x40; processed at 30x20 (--max-side 30; --max-side 0 keeps the full size)"
    ]
    full = runner.invoke(app, ["texture", str(image_file), "-o", str(tmp_path), "--max-side", "0"])
    assert full.exit_code == 0 and "processed at" not in full.output
    bad = runner.invoke(app, ["texture", str(image_file), "-o", str(tmp_path), "--max-side", "-5"])
    assert bad.exit_code == 2
    assert "--max-side must be 0 (full size) or a positive side, got -5" in bad.output
