"""clusterlens ask on a 12000x9000 photo: decoded at a bounded size, under 2 GB."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from tests.reliability.conftest import TWO_GB, run_capped


@pytest.mark.slow
def test_ask_on_a_huge_photo_stays_under_two_gigabytes(tmp_path):
    small = np.random.default_rng(1).integers(0, 256, (900, 1200, 3), dtype=np.uint8)
    photo = tmp_path / "huge.jpg"
    Image.fromarray(small).resize((12000, 9000), Image.Resampling.NEAREST).save(photo, quality=70)
    done = run_capped("ask", str(photo), "-q", "cars", "--vlm", "tiny:qwen2_vl", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert 0 < done.peak_bytes < TWO_GB, f"peak {done.peak_bytes / 2**30:.2f} GiB"
    payload = json.loads(done.stdout[done.stdout.index("{") :])
    assert payload["image_tokens_kept"] <= payload["image_tokens_full"]


def test_ask_refuses_a_negative_max_side(tmp_path):
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    done = run_capped("ask", str(image), "-q", "cars", "--vlm", "tiny:llava", "--max-side", "-1")
    assert done.returncode == 2 and "--max-side must be 0" in done.message, done.message
