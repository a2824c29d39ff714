"""A clip of huge frames is read at --max-side in under 2 GB (a capped child process)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image


def _capped_runner():
    """tests/reliability's capped child runner, loaded by path so that this file also
    runs under a bare ``pytest`` (``tests`` is a package only under ``python -m``)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).parents[1] / "reliability" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_reliability_conftest", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_RELIABILITY = _capped_runner()
TWO_GB, run_capped = _RELIABILITY.TWO_GB, _RELIABILITY.run_capped


@pytest.mark.slow
def test_a_folder_of_huge_frames_stays_under_two_gigabytes(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    small = np.random.default_rng(0).integers(0, 256, (600, 800, 3), dtype=np.uint8)
    for t in range(3):  # 8000x6000 JPEGs: 144 MB each as uint8, 576 MB as float32
        picture = Image.fromarray(np.roll(small, 10 * t, axis=1))
        picture.resize((8000, 6000), Image.Resampling.NEAREST).save(frames / f"{t}.jpg", quality=70)
    json_path = tmp_path / "kept.json"
    done = run_capped(
        "select",
        str(frames),
        "-q",
        "cars",
        "-b",
        "8",
        "--max-side",
        "512",
        "--out",
        str(tmp_path / "out"),
        "--json",
        str(json_path),
    )  # fmt: skip  (address space capped at the default; resident memory is what we bound)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 0 < done.peak_bytes < TWO_GB, f"peak {done.peak_bytes / 2**30:.2f} GiB"
    payload = json.loads(json_path.read_text())
    assert payload["frames"] == 3 and payload["frame_size"] == [6000, 8000]
    assert payload["accounting"]["tokens_kept"] == 24
    assert "processed at 512x384" in done.stderr.replace("\n", " ")
