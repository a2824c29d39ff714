"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from clusterlens.evaluate.datasets import data_root


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder holding bsds500/ and camvid/; skips the test when it is absent."""
    root = data_root()
    if root is None:
        pytest.skip("annotated data not found: set CLUSTERLENS_DATA or provide ../shared/data")
    return root
