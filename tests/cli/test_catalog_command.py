"""clusterlens catalog build / distances / cluster / show / export / validate via CliRunner."""

from __future__ import annotations

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from clusterlens.catalog.store import MIGRATIONS
from clusterlens.catalog.synthetic import make_shapes_dataset

runner = CliRunner()
YOLO = "yolo:yolov8n-seg.yaml"


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow
def test_build_distances_cluster_show_export_validate(catalog_cli, tmp_path):
    data = make_shapes_dataset(tmp_path / "shapes", count=6)
    db = str(tmp_path / "catalog.db")
    yolo = ["--imgsz", "64", "--conf", "0", "--max-det", "3"]
    built = _json(
        runner.invoke(
            catalog_cli,
            [
                "catalog",
                "build",
                str(data),
                "--model",
                YOLO,
                "--db",
                db,
                "--batch",
                "4",
                *yolo,
                "--json",
            ],
        )
    )
    assert (built["processed"], built["failures"], built["engine"]) == (6, 0, "local")
    clip = _json(
        runner.invoke(
            catalog_cli,
            ["catalog", "build", str(data), "--model", "open_clip:tiny", "--db", db, "--json"],
        )
    )
    assert clip["processed"] == 6
    distances = _json(
        runner.invoke(
            catalog_cli, ["catalog", "distances", "--db", db, "--pairs", "knn:2", "--json"]
        )
    )
    assert (distances["model"], distances["pairs_computed"]) == (YOLO, 12)
    clustered = _json(
        runner.invoke(
            catalog_cli,
            ["catalog", "cluster", "--db", db, "--k", "2", "--by", "distance", "--json"],
        )
    )
    assert sum(clustered["sizes"]) == 6 and clustered["method"] == "agglomerative"
    by_embedding = runner.invoke(
        catalog_cli, ["catalog", "cluster", "--db", db, "--k", "2", "--model", "open_clip:tiny"]
    )
    assert by_embedding.exit_code == 0 and "kmeans" in by_embedding.output
    shown = _json(runner.invoke(catalog_cli, ["catalog", "show", "--db", db, "--json"]))
    assert [m["model"] for m in shown["models"]] == ["open_clip:tiny", YOLO]
    assert shown["counts"]["distances"] == 12 * 4 and len(shown["clusterings"]) == 2
    table = runner.invoke(catalog_cli, ["catalog", "show", "--db", db])
    assert table.exit_code == 0 and "open_clip:tiny" in table.output and "sizes" in table.output
    exported = _json(
        runner.invoke(
            catalog_cli,
            ["catalog", "export", "--db", db, "--parquet", str(tmp_path / "pq"), "--json"],
        )
    )
    assert (
        exported["rows"]["embeddings"] == 12 and (tmp_path / "pq" / "predictions.parquet").is_file()
    )
    valid = runner.invoke(catalog_cli, ["catalog", "validate", db])
    assert valid.exit_code == 0 and "valid" in valid.output


def test_validate_exits_non_zero_with_a_report(catalog_cli, tmp_path):
    data = make_shapes_dataset(tmp_path / "shapes", count=3)
    db = str(tmp_path / "catalog.db")
    assert (
        runner.invoke(
            catalog_cli, ["catalog", "build", str(data), "--model", "open_clip:tiny", "--db", db]
        ).exit_code
        == 0
    )
    connection = sqlite3.connect(db)
    connection.execute("UPDATE embeddings SET dim = 7")
    connection.commit()
    connection.close()
    result = runner.invoke(catalog_cli, ["catalog", "validate", db])
    assert result.exit_code == 1
    assert "invalid" in result.output and "4 * dim" in result.output
    report = json.loads(runner.invoke(catalog_cli, ["catalog", "validate", db, "--json"]).stdout)
    assert report["ok"] is False and report["problems"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["catalog", "build", "NOPE", "--model", YOLO, "--db", "x.db"], "does not exist"),
        (
            ["catalog", "build", "DATA", "--model", "sam:x", "--db", "x.db"],
            "yolo:, open_clip: or hf:",
        ),
        (
            ["catalog", "build", "DATA", "--model", YOLO, "--db", "x.db", "--engine", "spark"],
            "--engine",
        ),
        (["catalog", "distances", "--db", "missing.db"], "does not exist"),
        (["catalog", "cluster", "--db", "missing.db", "--k", "2"], "does not exist"),
        (["catalog", "validate", "missing.db"], "does not exist"),
        (["catalog", "show", "--db", "missing.db"], "does not exist"),
        (["catalog", "export", "--db", "missing.db", "--parquet", "out"], "does not exist"),
        (["catalog", "distances", "--db", "missing.db", "--pairs", "knn:0"], "'all' or 'knn:K'"),
        (["catalog", "migrate", "--db", "missing.db"], "does not exist"),
        (["catalog", "show", "--db", "DATA"], "is a folder"),
        (
            ["catalog", "build", "DATA", "--model", YOLO, "--db", "DATA/images/shape_000.png/c.db"],
            "is a file, not a folder",
        ),
    ],
)
def test_bad_input_exits_2_with_a_message(catalog_cli, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    make_shapes_dataset(tmp_path / "DATA", count=2)
    result = runner.invoke(catalog_cli, args)
    assert result.exit_code == 2
    assert message in result.output


def test_old_catalog_is_refused_by_show_until_migrated(catalog_cli, tmp_path):
    db = tmp_path / "old.db"
    connection = sqlite3.connect(db)
    connection.executescript(";".join(MIGRATIONS[:2]) + "; PRAGMA user_version = 2;")
    connection.close()
    before = db.read_bytes()
    shown = runner.invoke(catalog_cli, ["catalog", "show", "--db", str(db)])
    assert shown.exit_code == 1 and "catalog migrate --db" in shown.output
    assert len(shown.output.strip().splitlines()) == 1 and db.read_bytes() == before
    migrated = runner.invoke(catalog_cli, ["catalog", "migrate", "--db", str(db)])
    assert migrated.exit_code == 0 and "schema v2 -> v3" in migrated.output
    assert (
        _json(runner.invoke(catalog_cli, ["catalog", "show", "--db", str(db), "--json"]))[
            "schema_version"
        ]
        == 3
    )
    again = runner.invoke(catalog_cli, ["catalog", "migrate", "--db", str(db), "--json"])
    assert json.loads(again.stdout) == {"path": str(db), "from": 3, "to": 3}
