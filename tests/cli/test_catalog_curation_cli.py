"""clusterlens catalog issues / select via CliRunner, on the row-written catalog of
tests/catalog/test_curation.py (a near-copy, an outlier and a hard image, all known)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clusterlens.catalog.store import CatalogStore

runner = CliRunner()
_SPEC = importlib.util.spec_from_file_location(
    "curation_fixture", Path(__file__).parents[1] / "catalog" / "test_curation.py"
)
fixture = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(fixture)


@pytest.fixture
def db(tmp_path) -> Path:
    return fixture.write_curation_catalog(tmp_path / "catalog.db")


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _fingerprint(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def test_issues_json_ranks_the_known_problems(catalog_cli, db):
    out = _json(
        runner.invoke(catalog_cli, ["catalog", "issues", "--db", str(db), "--top", "3", "--json"])
    )
    assert out["model"] == fixture.MODEL and out["top"] == 3
    sections = out["sections"]
    assert list(sections) == ["label_errors", "near_duplicates", "hard_images", "outliers"]
    pair = sections["near_duplicates"]["items"][0]
    assert (pair["image_a"] - 1, pair["image_b"] - 1) == fixture.COPY
    assert pair["agree"] == ["embedding", "loss"]
    assert sections["hard_images"]["items"][0]["component"] == "seg"
    assert sections["outliers"]["items"][0]["image_id"] - 1 == fixture.OUTLIER
    assert all(len(s["items"]) <= 3 for s in sections.values())
    labels = sections["label_errors"]  # clusterlens.catalog.label_errors, as it ranks them
    assert labels["note"] is None and 1 <= len(labels["items"]) <= 3
    assert {"image_id", "path", "score", "reason", "boxes"} <= set(labels["items"][0])


def test_issues_with_chosen_duplicate_signals(catalog_cli, db):
    args = ["catalog", "issues", "--db", str(db), "--top", "3", "--json"]
    out = _json(runner.invoke(catalog_cli, [*args, "--duplicate-signals", "embedding"]))
    assert out["duplicate_signals"] == ["embedding"]
    section = out["sections"]["near_duplicates"]
    pair = section["items"][0]
    assert (pair["image_a"] - 1, pair["image_b"] - 1) == fixture.COPY
    assert pair["agree"] == ["embedding"] and pair["loss_distance"] is None
    assert pair["pixel_distance"] is None and section["note"] is None
    default = _json(runner.invoke(catalog_cli, args))
    assert default["duplicate_signals"] == ["embedding", "loss", "pixels"]


def test_an_unknown_duplicate_signal_is_a_one_line_error(catalog_cli, db):
    args = ["catalog", "issues", "--db", str(db), "--duplicate-signals", "embedding,pixel"]
    result = runner.invoke(catalog_cli, args)
    assert result.exit_code == 2
    assert "unknown near-duplicate signal(s) 'pixel'; choose among embedding, loss, pixels" in (
        result.output
    )
    empty = runner.invoke(catalog_cli, [*args[:-1], ","])
    assert empty.exit_code == 2 and "no near-duplicate signal chosen" in empty.output


def test_issues_help_names_the_duplicate_signals(catalog_cli):
    result = runner.invoke(catalog_cli, ["catalog", "issues", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--duplicate-signals" in result.output and "pixels reads every image" in result.output


def test_issues_tables_for_humans(catalog_cli, db):
    result = runner.invoke(catalog_cli, ["catalog", "issues", "--db", str(db)])
    assert result.exit_code == 0, result.output
    for title in ("near-duplicates", "hard images", "outliers"):
        assert title in result.stdout
    assert "img_02.png ~ img_05.png" in result.stdout
    assert "high seg loss" in result.stdout


def test_issues_and_select_leave_the_catalog_file_as_it_was(catalog_cli, db, tmp_path):
    before = _fingerprint(db)
    assert (
        runner.invoke(catalog_cli, ["catalog", "issues", "--db", str(db), "--json"]).exit_code == 0
    )
    for strategy in ("coverage", "hard", "balanced"):
        args = ["catalog", "select", "--db", str(db), "--budget", "5", "--strategy", strategy]
        assert runner.invoke(catalog_cli, args).exit_code == 0
    out = tmp_path / "subset.txt"
    args = ["catalog", "select", "--db", str(db), "--budget", "5", "--out", str(out)]
    assert runner.invoke(catalog_cli, args).exit_code == 0
    assert _fingerprint(db) == before


def test_select_writes_one_path_per_line_and_refuses_to_overwrite(catalog_cli, db, tmp_path):
    out = tmp_path / "subset.txt"
    args = ["catalog", "select", "--db", str(db), "--budget", "4", "--out", str(out)]
    first = runner.invoke(catalog_cli, args)
    assert first.exit_code == 0, first.output
    lines = out.read_text().splitlines()
    assert len(lines) == 4 and all(line.endswith(".png") for line in lines)
    again = runner.invoke(catalog_cli, args)
    assert again.exit_code == 2 and "already exists" in again.output and "--force" in again.output
    assert out.read_text().splitlines() == lines
    forced = runner.invoke(catalog_cli, [*args[:-3], "2", "--out", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    assert out.read_text().splitlines() == lines[:2]  # deterministic: same first picks
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".subset")]  # no temp left


def test_select_json_is_deterministic_and_respects_the_budget(catalog_cli, db):
    args = ["catalog", "select", "--db", str(db), "--budget", "6", "--strategy", "hard", "--json"]
    first, second = _json(runner.invoke(catalog_cli, args)), _json(runner.invoke(catalog_cli, args))
    assert first["selected"] == second["selected"]
    assert [item["rank"] for item in first["selected"]] == list(range(6))
    assert first["selected"][0]["image_id"] - 1 == fixture.HARD


def test_select_prints_paths_without_out(catalog_cli, db):
    args = ["catalog", "select", "--db", str(db), "--budget", "3"]
    result = runner.invoke(catalog_cli, args)
    assert result.exit_code == 0, result.output
    assert len([line for line in result.stdout.splitlines() if line.endswith(".png")]) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["issues", "--top", "0"], "--top must be a positive whole number"),
        (["select", "--budget", "0"], "--budget must be a positive whole number"),
        (["select", "--budget", "3", "--strategy", "random"], "--strategy must be one of"),
        (["issues", "--model", "hf:nothing"], "no embeddings of 'hf:nothing'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(catalog_cli, db, args, message):
    result = runner.invoke(catalog_cli, ["catalog", args[0], "--db", str(db), *args[1:]])
    assert result.exit_code == 2
    assert message in result.output


def test_missing_file_and_empty_catalog(catalog_cli, tmp_path):
    missing = runner.invoke(catalog_cli, ["catalog", "issues", "--db", str(tmp_path / "none.db")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    empty = tmp_path / "empty.db"
    CatalogStore(empty).close()
    result = runner.invoke(catalog_cli, ["catalog", "select", "--db", str(empty), "--budget", "2"])
    assert result.exit_code == 2 and "has no embeddings" in result.output
    assert "catalog build" in result.output


def test_out_must_not_be_a_folder_or_the_catalog(catalog_cli, db, tmp_path):
    folder = runner.invoke(
        catalog_cli, ["catalog", "select", "--db", str(db), "--budget", "2", "--out", str(tmp_path)]
    )
    assert folder.exit_code == 2 and "is a folder" in folder.output
    args = ["catalog", "select", "--db", str(db), "--budget", "2", "--out", str(db), "--force"]
    itself = runner.invoke(catalog_cli, args)
    assert itself.exit_code == 2 and "the catalog itself" in itself.output


def test_a_section_without_its_data_says_why(catalog_cli, db):
    result = runner.invoke(
        catalog_cli, ["catalog", "issues", "--db", str(db), "--model", fixture.CLIP, "--json"]
    )
    sections = _json(result)["sections"]
    assert sections["hard_images"]["items"] == []
    assert "no losses" in sections["hard_images"]["note"]
    assert sections["outliers"]["items"][0]["image_id"] - 1 == fixture.OUTLIER


@pytest.mark.slow
def test_a_copied_image_is_the_first_duplicate_of_a_real_yolo_catalog(catalog_cli, tmp_path):
    """End to end: a YOLO build (random-init architecture) and its loss distances."""
    import shutil

    from clusterlens.catalog.synthetic import make_shapes_dataset

    data = make_shapes_dataset(tmp_path / "shapes", count=8)
    shutil.copyfile(data / "images" / "shape_003.png", data / "images" / "zz_copy.png")
    shutil.copyfile(data / "labels" / "shape_003.txt", data / "labels" / "zz_copy.txt")
    db = str(tmp_path / "catalog.db")
    yolo = ["--imgsz", "64", "--conf", "0", "--max-det", "3"]
    build = ["catalog", "build", str(data), "--model", "yolo:yolov8n-seg.yaml", "--db", db]
    assert runner.invoke(catalog_cli, [*build, *yolo]).exit_code == 0
    assert (
        runner.invoke(
            catalog_cli, ["catalog", "distances", "--db", db, "--pairs", "knn:4"]
        ).exit_code
        == 0
    )
    out = _json(
        runner.invoke(catalog_cli, ["catalog", "issues", "--db", db, "--top", "2", "--json"])
    )
    first = out["sections"]["near_duplicates"]["items"][0]
    names = {Path(first["path_a"]).name, Path(first["path_b"]).name}
    assert names == {"shape_003.png", "zz_copy.png"}
    assert "embedding" in first["agree"] and first["reason"].startswith("embedding cosine 1.0000")
