"""Catalog files that are not ours, damaged, old or read-only: one line, never a change.

Each case runs ``clusterlens catalog ...`` in a memory-capped child and checks the exit
code (2: a bad argument; 1: a catalog that cannot be used or written), that the error
is one line with no traceback, and that a file the command should only read -- or a
damaged file it must not write to -- has the same bytes afterwards.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.reliability.conftest import digest, run_capped

from clusterlens.catalog import build_catalog
from clusterlens.catalog.store import MIGRATIONS
from clusterlens.catalog.synthetic import damage_table, make_shapes_dataset

# every case starts a child that imports torch: seconds each on a small machine
pytestmark = pytest.mark.slow

MODEL = "open_clip:tiny"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """(data folder, catalog) -- three 32 x 24 shapes with the tiny open_clip model."""
    root = tmp_path_factory.mktemp("catalog")
    data = make_shapes_dataset(root / "shapes", count=3, size=(32, 24))
    build_catalog(data, MODEL, root / "c.db", progress=False)
    return data, root / "c.db"


@pytest.fixture
def catalog(built, tmp_path) -> Path:
    """A fresh copy of the built catalog (its images stay where they were)."""
    return Path(shutil.copy(built[1], tmp_path / "c.db"))


def _one_line_error(run, code: int, *fragments: str) -> None:
    assert run.returncode == code, run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""
    assert len(run.message.splitlines()) == 1, run.message
    assert run.message.startswith("error: ")
    for fragment in fragments:
        assert fragment in run.message, run.message


def _foreign(path: Path) -> Path:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (text TEXT)")
    connection.execute("INSERT INTO notes VALUES ('not yours')")
    connection.commit()
    connection.close()
    return path


@contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Make files and folders read-only; as root (who ignores modes), immutable."""
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode for path in paths}
        for path in paths:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a file read-only")
    if subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True).returncode:
        pytest.skip("running as root on a file system without the immutable attribute")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)


@pytest.mark.parametrize(
    "command",
    [["show", "--db"], ["validate"], ["distances", "--db"]],
    ids=["show", "validate", "distances"],
)
def test_another_applications_sqlite_file_is_refused_untouched(tmp_path, command):
    theirs = _foreign(tmp_path / "theirs.db")
    before = digest(theirs)
    run = run_capped("catalog", *command, theirs)
    _one_line_error(run, 1, "is not a clusterlens catalog", "tables: notes")
    assert digest(theirs) == before


def test_a_zero_byte_file_is_not_called_valid(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    run = run_capped("catalog", "validate", empty)
    _one_line_error(run, 1, "is empty, not a clusterlens catalog", "catalog build")
    assert empty.stat().st_size == 0


def test_a_file_that_is_not_sqlite_at_all(tmp_path):
    junk = tmp_path / "notes.db"
    junk.write_text("shopping list\n" * 20)
    before = digest(junk)
    _one_line_error(run_capped("catalog", "show", "--db", junk), 1, "not an SQLite file")
    assert digest(junk) == before


def test_an_older_catalog_is_read_only_until_migrated(tmp_path):
    old = tmp_path / "old.db"
    connection = sqlite3.connect(old)
    connection.executescript(";".join(MIGRATIONS[:2]) + "; PRAGMA user_version = 2;")
    connection.close()
    before = digest(old)
    run = run_capped("catalog", "show", "--db", old)
    _one_line_error(run, 1, "schema version 2, older", f"clusterlens catalog migrate --db {old}")
    assert digest(old) == before


@pytest.mark.parametrize(
    "command",
    [
        ["catalog", "distances", "--db", "{db}"],
        ["catalog", "build", "{data}", "--model", MODEL, "--db", "{db}"],
        ["catalog", "cluster", "--db", "{db}", "--k", "2"],
    ],
    ids=["distances", "build", "cluster"],
)
def test_a_damaged_catalog_gets_no_write(built, catalog, command):
    damage_table(catalog, "embeddings")
    before = digest(catalog)
    args = [part.format(db=catalog, data=built[0]) for part in command]
    _one_line_error(run_capped(*args), 1, f"catalog {catalog} is damaged", "nothing was written")
    assert digest(catalog) == before


def test_validate_reports_damage_before_anything_can_crash(catalog):
    damage_table(catalog, "images")
    before = digest(catalog)
    run = run_capped("catalog", "validate", catalog)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    lines = run.message.splitlines()
    assert lines[0] == f"invalid: {catalog} -- 2 problems"
    assert lines[1].startswith("  - sqlite: ") and "malformed" in lines[1]
    assert digest(catalog) == before


def test_validate_reports_a_dropped_table(catalog):
    with sqlite3.connect(catalog) as connection:
        connection.execute("DROP TABLE clusters")
    connection.close()
    before = digest(catalog)
    run = run_capped("catalog", "validate", catalog)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "  - schema: missing tables ['clusters']" in run.message.splitlines()
    assert digest(catalog) == before


def test_building_into_a_read_only_catalog(built, catalog):
    before = digest(catalog)
    with read_only(catalog):
        run = run_capped("catalog", "build", built[0], "--model", MODEL, "--db", catalog)
    _one_line_error(run, 1, f"catalog {catalog} is read-only")
    assert digest(catalog) == before


def test_reading_a_catalog_in_a_read_only_folder(catalog):
    before = digest(catalog.parent)
    with read_only(catalog.parent):
        run = run_capped("catalog", "show", "--db", catalog, "--json")
    assert run.returncode == 0, run.stderr
    assert '"embeddings": 3' in run.stdout
    assert digest(catalog.parent) == before


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("folder", "is a folder; give a catalog file"),
        ("under-a-file", "is a file, not a folder"),
    ],
)
def test_db_paths_that_cannot_be_a_catalog(built, tmp_path, where, expected):
    (tmp_path / "plain").write_text("mine")
    db = tmp_path if where == "folder" else tmp_path / "plain" / "c.db"
    run = run_capped("catalog", "build", built[0], "--model", MODEL, "--db", db)
    _one_line_error(run, 2, expected)
    assert (tmp_path / "plain").read_text() == "mine"


def test_export_to_a_file(catalog, tmp_path):
    target = tmp_path / "out.parquet"
    target.write_text("mine")
    run = run_capped("catalog", "export", "--db", catalog, "--parquet", target)
    _one_line_error(run, 2, "is a file; give a folder")
    assert target.read_text() == "mine"


def test_export_to_a_read_only_folder(catalog, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    with read_only(folder):
        run = run_capped("catalog", "export", "--db", catalog, "--parquet", folder)
    _one_line_error(run, 1, f"cannot write to the --parquet folder {folder}")
    assert list(folder.iterdir()) == []


def test_cuda_on_a_machine_without_a_gpu(built, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    db = tmp_path / "c.db"
    run = run_capped("catalog", "build", built[0], "--model", MODEL, "--db", db, "--device", "cuda")
    _one_line_error(run, 2, "--device cuda: no CUDA GPU is available here; use --device cpu")
    assert not db.exists()
