"""clusterlens select on extreme and malformed input (issue 15, items 1, 2, 9 and 10).

Before: a 1x10000 strip sent select to 23 GB; a 1x1 image kept 144 zero-area patches;
--grid 1000 gave 144 patches over 23 distinct boxes; a directory was "not found";
--option tolerance=abc did not name the option; a 10k-character query was echoed in
full; the class-match note printed "0.45 < 0.45"; --gaze without foveated was ignored
silently.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.reliability.conftest import TWO_GB, run_capped

from clusterlens.pipeline import below


def write_png(path: Path, height: int, width: int) -> Path:
    rng = np.random.default_rng(height * 7 + width)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def select(image: Path, out: Path, *arguments: str):
    json_path = out / "result.json"
    done = run_capped("select", str(image), "--out", str(out), "--json", str(json_path), *arguments)
    payload = json.loads(json_path.read_text()) if json_path.exists() else None
    return done, payload


def distinct_nonempty_boxes(payload) -> tuple[int, int]:
    boxes = {tuple(p["pixel_box"]) for p in payload["patches"]}
    empty = sum(1 for x0, y0, x1, y1 in boxes if x1 <= x0 or y1 <= y0)
    return len(boxes), empty


@pytest.mark.slow
def test_a_one_pixel_wide_strip_stays_small_and_keeps_real_patches(tmp_path):
    strip = write_png(tmp_path / "strip.png", 10000, 1)
    done, payload = select(strip, tmp_path, "-q", "the road", "-s", "topk", "-b", "64")
    assert done.returncode == 0, done.stderr[-2000:]
    assert 0 < done.peak_bytes < TWO_GB, f"peak {done.peak_bytes / 2**30:.2f} GiB"
    distinct, empty = distinct_nonempty_boxes(payload)
    assert empty == 0 and distinct == len(payload["patches"]) == 32  # 32 rows x 1 column
    assert "clamped to 32x1" in payload["meta"]["grid_note"]
    with Image.open(tmp_path / "strip_topk.png") as picture:
        assert max(picture.size) < 4000


def test_a_one_pixel_image_keeps_one_patch_and_says_why(tmp_path):
    dot = write_png(tmp_path / "dot.png", 1, 1)
    done, payload = select(dot, tmp_path, "-s", "topk")
    assert done.returncode == 0, done.stderr[-2000:]
    assert [p["pixel_box"] for p in payload["patches"]] == [[0, 0, 1, 1]]
    assert "clamped to 1x1" in payload["meta"]["grid_note"]
    assert "kept all 1" in payload["meta"]["budget_note"]


def test_a_grid_finer_than_the_pixels_is_clamped(tmp_path):
    image = write_png(tmp_path / "small.png", 36, 48)
    done, payload = select(image, tmp_path, "-s", "uniform", "--grid", "1000", "-b", "144")
    assert done.returncode == 0, done.stderr[-2000:]
    distinct, empty = distinct_nonempty_boxes(payload)
    assert empty == 0 and distinct == len(payload["patches"]) == 144
    assert payload["grid"] == [36, 48]


@pytest.mark.slow
def test_a_huge_photo_is_selected_within_two_gigabytes(tmp_path):
    small = np.random.default_rng(0).integers(0, 256, (900, 1200, 3), dtype=np.uint8)
    photo = tmp_path / "huge.jpg"
    Image.fromarray(small).resize((12000, 9000), Image.Resampling.NEAREST).save(photo, quality=70)
    done, payload = select(photo, tmp_path, "-q", "cars", "-s", "lazy-cascade", "-b", "64")
    assert done.returncode == 0, done.stderr[-2000:]
    assert 0 < done.peak_bytes < TWO_GB, f"peak {done.peak_bytes / 2**30:.2f} GiB"
    assert payload["image_size"] == [9000, 12000]
    assert payload["meta"]["processed_size"] == [768, 1024]
    assert "huge.jpg is 12000x9000; processed at 1024x768" in done.message


@pytest.mark.parametrize(
    "arguments,message",
    [
        (["--option", "oversample=abc", "-s", "mip-cascade"], "option 'oversample'"),
        (["--option", "tolerance=nan", "-s", "bound-cascade"], "must be finite"),
        (["--grid", "0"], "at least 1x1 cells"),
    ],
)
def test_bad_options_name_themselves(tmp_path, arguments, message):
    image = write_png(tmp_path / "a.png", 20, 30)
    done, _ = select(image, tmp_path, *arguments)
    assert done.returncode == 2 and message in done.message, done.message
    assert len(done.message.splitlines()) == 1


def test_a_directory_is_called_a_directory(tmp_path):
    done, _ = select(tmp_path, tmp_path / "out")
    assert done.returncode == 2 and "is a directory" in done.message, done.message


def test_long_queries_are_cut_in_messages_and_gaze_without_foveated_is_noted(tmp_path):
    image = write_png(tmp_path / "a.png", 20, 30)
    query = "zebra " * 2000
    done, payload = select(image, tmp_path, "-q", query, "-s", "topk", "--gaze", "0.5,0.5")
    assert done.returncode == 0, done.stderr[-2000:]
    output = done.stdout + done.stderr
    assert query not in output and "(12000 chars)" in output.replace("\n", "")
    assert any("ignores it" in note for note in payload["meta"]["notes"])


@pytest.mark.parametrize(
    "score,threshold,expected",
    [
        (0.4499, 0.45, "0.4499 < 0.4500"),
        (0.30, 0.45, "0.30 < 0.45"),
        (0.449, 0.45, "0.449 < 0.450"),
    ],
)
def test_scores_below_the_threshold_show_enough_digits(score, threshold, expected):
    assert below(score, threshold) == expected
