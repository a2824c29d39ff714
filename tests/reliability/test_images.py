"""Extreme images through the commands: a 12000x9000 photo and a 1x10000 strip.

Before issue 15, the photo was decoded at full size (texture 11.8 GB, segment 6.7 GB,
clusters 11.3 GB, demo failed) and the strip's pictures asked matplotlib for a figure
tens of thousands of inches tall (MemoryError). Each case runs the real command in a
child process and checks the exit code, the note saying the image was reduced, the
size of what was written and the resident peak.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.reliability.conftest import TWO_GB, run_capped

from clusterlens.cli._common import DEFAULT_MAX_SIDE
from clusterlens.cli.segment import SEGMENT_MAX_SIDE
from clusterlens.viz._layout import DPI, MAX_PANEL_INCHES

HUGE = (12000, 9000)  # width, height
TALL = (1, 10000)
#: Figures are 12 or 16 inches wide; panels at most MAX_PANEL_INCHES tall plus titles,
#: a texture sheet's tiles plus its mip chain: nothing near the strip's 10000 pixels.
PICTURE_LIMIT = (16 * DPI, 2 * MAX_PANEL_INCHES * DPI)


@pytest.fixture(scope="module")
def huge_jpeg(tmp_path_factory) -> Path:
    """A 12000x9000 JPEG: blocky noise over a gradient (about 1 s to write, 12 MB)."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (1125, 1500, 3), dtype=np.uint8)
    small[..., 2] = np.linspace(0, 255, 1500, dtype=np.uint8)  # sky-to-ground like ramp
    path = tmp_path_factory.mktemp("huge") / "huge.jpg"
    Image.fromarray(small).resize(HUGE, Image.Resampling.NEAREST).save(path, quality=75)
    return path


@pytest.fixture(scope="module")
def tall_png(tmp_path_factory) -> Path:
    ramp = np.linspace(0, 255, TALL[1], dtype=np.uint8)
    strip = np.stack([ramp, 255 - ramp, np.full_like(ramp, 128)], axis=1)[:, None, :]
    path = tmp_path_factory.mktemp("tall") / "tall.png"
    Image.fromarray(strip).save(path)
    return path


def reduced(side: int) -> tuple[int, int]:
    """(width, height) of the huge photo with its longer side at ``side``."""
    return side, round(HUGE[1] * side / HUGE[0])


def assert_bounded_run(done, side: int) -> None:
    width, height = reduced(side)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"huge.jpg is 12000x9000; processed at {width}x{height}" in done.message
    assert 0 < done.peak_bytes < TWO_GB, f"peak {done.peak_bytes / 2**30:.2f} GiB"


def picture_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as picture:
        return picture.size


@pytest.mark.slow
def test_texture_decodes_a_huge_photo_at_a_bounded_size(huge_jpeg, tmp_path):
    done = run_capped("texture", huge_jpeg, "--out", tmp_path, "--json")
    assert_bounded_run(done, DEFAULT_MAX_SIDE)
    summary = json.loads(done.stdout)
    assert summary["size"] == [768, 1024] and summary["notes"]
    assert picture_size(tmp_path / "huge_texture.png")[0] == 16 * DPI


@pytest.mark.slow
def test_segment_decodes_a_huge_photo_at_a_bounded_size(huge_jpeg, tmp_path):
    done = run_capped("segment", huge_jpeg, "--classes", "sky,road,car", "--out", tmp_path)
    assert_bounded_run(done, SEGMENT_MAX_SIDE)
    assert picture_size(tmp_path / "huge_labels.png") == reduced(SEGMENT_MAX_SIDE)
    payload = json.loads((tmp_path / "huge_segment.json").read_text())
    assert payload["size"] == [384, 512] and "processed at 512x384" in payload["notes"][0]


@pytest.mark.slow
def test_clusters_decodes_a_huge_photo_at_a_bounded_size(huge_jpeg, tmp_path):
    done = run_capped("clusters", huge_jpeg, "--out", tmp_path, "--max-side", "800")
    width, height = reduced(800)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"processed at {width}x{height} (--max-side 800" in done.stdout  # its own console
    assert 0 < done.peak_bytes < TWO_GB
    assert picture_size(tmp_path / "huge_clusters.png") == (width, height)


@pytest.mark.slow
def test_demo_runs_every_stage_on_a_huge_photo(huge_jpeg, tmp_path):
    done = run_capped("demo", "--image", huge_jpeg, "--out", tmp_path, "--json")
    assert_bounded_run(done, SEGMENT_MAX_SIDE)
    summary = json.loads(done.stdout)
    assert summary["texture"]["size"] == [384, 512] and summary["notes"]
    assert picture_size(tmp_path / "huge_labels.png") == reduced(SEGMENT_MAX_SIDE)


@pytest.mark.slow  # a child process: about 6 s
def test_a_negative_max_side_is_refused(huge_jpeg, tmp_path):
    done = run_capped("texture", huge_jpeg, "--out", tmp_path, "--max-side", "-1")
    assert done.returncode == 2
    assert "--max-side must be 0 (full size) or a positive side, got -1" in done.message
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_a_strip_at_full_size_draws_a_bounded_texture_sheet(tall_png, tmp_path):
    done = run_capped("texture", tall_png, "--out", tmp_path, "--max-side", "0")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "processed at" not in done.message  # full size was asked for, and kept
    width, height = picture_size(tmp_path / "tall_texture.png")
    assert width <= PICTURE_LIMIT[0] and height <= PICTURE_LIMIT[1]
    assert done.peak_bytes < TWO_GB


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "count"),
    [(["segment", "--classes", "sky,road"], 2), (["demo", "--image"], 5)],
    ids=["segment", "demo"],
)
def test_a_strip_draws_bounded_pictures(tall_png, tmp_path, command, count):
    # At the default --max-side the strip is 1x512: still 512 times taller than wide,
    # which asked for a figure 3072 inches tall before the bounds.
    name, *options = command
    args = [name, *options, tall_png] if name == "demo" else [name, tall_png, *options]
    done = run_capped(*args, "--out", tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "tall.png is 1x10000; processed at 1x512" in done.message
    assert picture_size(tmp_path / "tall_labels.png") == (1, 512)  # the label map: as is
    pictures = [path for path in tmp_path.glob("*.png") if path.name != "tall_labels.png"]
    assert len(pictures) == count - 1
    for path in pictures:
        width, height = picture_size(path)
        assert width <= PICTURE_LIMIT[0] and height <= PICTURE_LIMIT[1], path.name
    assert done.peak_bytes < TWO_GB
