"""Fixtures: a generated YOLO-format data set."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from clusterlens.catalog.synthetic import make_shapes_dataset


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory) -> Path:
    """12 images (96 x 72) of coloured shapes with box and polygon labels."""
    torch.set_num_threads(1)
    return make_shapes_dataset(tmp_path_factory.mktemp("shapes"), count=12)
