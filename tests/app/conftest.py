"""Fixtures of the app tests: a small picture file with sky above and road below."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def street_file(tmp_path: Path) -> Path:
    """A 96x128 PNG: blue top half, grey bottom half with a darker stripe (a 'road')."""
    pixels = np.zeros((96, 128, 3), np.uint8)
    pixels[:48] = (110, 160, 230)
    pixels[48:] = (120, 120, 120)
    pixels[70:80] = (60, 60, 60)
    path = tmp_path / "street.png"
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def broken_file(tmp_path: Path) -> Path:
    """A file named like a PNG that holds text."""
    path = tmp_path / "broken.png"
    path.write_text("not an image")
    return path
