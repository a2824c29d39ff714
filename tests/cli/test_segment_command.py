"""The segment and seg-bench commands, run through a local Typer app."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from clusterlens.cli.segment import register

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    local = typer.Typer()
    register(local)
    return local


@pytest.fixture
def street_png(tmp_path):
    image = np.zeros((72, 96, 3), np.uint8)
    image[:30] = (120, 170, 230)  # sky
    image[30:] = (80, 80, 80)  # road
    image[45:60, 30:50] = (200, 30, 30)  # a red car
    path = tmp_path / "street.png"
    Image.fromarray(image).save(path)
    return path


def test_segment_writes_label_map_picture_and_json(app, street_png, tmp_path):
    out = tmp_path / "out"
    args = ["segment", str(street_png), "--classes", "Sky,Road,Car", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    labels = np.asarray(Image.open(out / "street_labels.png"))
    assert labels.shape == (72, 96) and labels.max() <= 2
    picture = np.asarray(Image.open(out / "street_segment.png"))
    assert picture.ndim == 3 and picture.shape[1] > 96
    payload = json.loads((out / "street_segment.json").read_text())
    assert payload["classes"] == ["Sky", "Road", "Car"]
    assert payload["stages"] == "dynamic+hierarchical+merging"
    assert payload["queries"] and payload["masks"]
    assert {row["class_name"] for row in payload["queries"]} <= {"Sky", "Road", "Car"}
    assert sum(payload["class_shares"].values()) == pytest.approx(1.0, abs=1e-3)
    assert "prompts" in result.output


def test_segment_stage_flags_reach_the_pipeline(app, street_png, tmp_path):
    out = tmp_path / "out"
    args = ["segment", str(street_png), "--classes", "Sky,Road", "--out", str(out)]
    flags = ["--no-dynamic-queries", "--no-hierarchical", "--no-merging"]
    result = runner.invoke(app, args + flags)
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "street_segment.json").read_text())
    assert payload["stages"] == "grid-masks"
    assert payload["query_meta"]["mode"] == "grid" and len(payload["queries"]) == 64


def test_segment_bad_input_exits_2_with_a_message(app, street_png, tmp_path):
    result = runner.invoke(
        app, ["segment", str(street_png), "--classes", " , ", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and "--classes" in result.output
    result = runner.invoke(
        app, ["segment", str(tmp_path / "nope.png"), "--classes", "Road", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and "nope.png" in result.output
    result = runner.invoke(
        app,
        [
            "segment",
            str(street_png),
            "--classes",
            "Road",
            "--out",
            str(tmp_path),
            "--proposer",
            "x",
        ],
    )
    assert result.exit_code == 2 and "unknown proposer" in result.output


@pytest.fixture
def tiny_cityscapes(tmp_path):
    base = tmp_path / "cityscapes"
    for stem in ("a_000000_000001", "a_000000_000002"):
        image = np.zeros((48, 64, 3), np.uint8)
        image[:20] = (120, 170, 230)
        image[20:] = (80, 80, 80)
        folder = base / "leftImg8bit" / "val" / "a"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{stem}_leftImg8bit.png")
        label = np.full((48, 64), 7, np.uint8)  # road
        label[:20] = 23  # sky
        folder = base / "gtFine" / "val" / "a"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(label).save(folder / f"{stem}_gtFine_labelIds.png")
    return base


@pytest.mark.slow  # the 19 Cityscapes names go through the sentence model
def test_seg_bench_scores_dense_and_pipeline(app, tiny_cityscapes, tmp_path):
    rows_path = tmp_path / "rows.json"
    result = runner.invoke(
        app,
        [
            "seg-bench", "--dataset", "cityscapes", "--root", str(tiny_cityscapes),
            "--num-samples", "1", "--no-hierarchical", "--json", str(rows_path),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(rows_path.read_text())
    assert [row["config"] for row in rows] == ["dense", "dynamic+merging"]
    assert all(row["images"] == 1 and 0 <= row["miou"] <= 1 for row in rows)
    assert "mIoU" in result.output


def test_seg_bench_rejects_unknown_dataset(app, tmp_path):
    result = runner.invoke(app, ["seg-bench", "--dataset", "ade20k", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "unknown data set" in result.output


def test_seg_bench_rejects_a_non_positive_sample_count(app, tiny_cityscapes):
    result = runner.invoke(
        app,
        [
            "seg-bench",
            "--dataset",
            "cityscapes",
            "--root",
            str(tiny_cityscapes),
            "--num-samples",
            "0",
        ],
    )
    assert result.exit_code == 2 and "positive integer" in result.output


def test_segment_max_side_reduces_and_says_so(app, street_png, tmp_path):
    out = tmp_path / "out"
    args = ["segment", str(street_png), "--classes", "Sky,Road", "--out", str(out)]
    result = runner.invoke(app, [*args, "--max-side", "48"])
    assert result.exit_code == 0, result.output
    assert "street.png is 96x72; processed at 48x36" in " ".join(result.output.split())
    assert Image.open(out / "street_labels.png").size == (48, 36)
    payload = json.loads((out / "street_segment.json").read_text())
    assert payload["size"] == [36, 48] and "processed at 48x36" in payload["notes"][0]
