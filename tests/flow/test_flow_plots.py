"""Plots are written as PNG images of the expected size; wrong data is refused."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from clusterlens.flow.plots import plot_image_grid, plot_metric_vs_nfe, plot_trajectories
from clusterlens.flow.sampling import integrate


def test_trajectory_plot(tmp_path):
    x0 = torch.randn(30, 2, generator=torch.Generator().manual_seed(0))
    runs = {"a": integrate(lambda x, t: -x, x0, nfe=4), "b": integrate(lambda x, t: x, x0, nfe=2)}
    path = plot_trajectories(runs, torch.zeros(10, 2), tmp_path / "paths.png", title="demo")
    with Image.open(path) as image:
        assert image.width > 1.5 * image.height  # two square panels side by side
    with pytest.raises(ValueError, match="2D data"):
        plot_trajectories(runs, torch.zeros(10, 64), tmp_path / "bad.png")


def test_image_grid_and_metric_plot(tmp_path):
    grid = plot_image_grid(
        {"digits": torch.zeros(5, 64), "rgb": torch.zeros(5, 3, 8, 8)}, tmp_path / "grid.png"
    )
    curve = plot_metric_vs_nfe(
        {"m": ([1, 2, 4], [3.0, 2.0, 1.0], [0.1, 0.1, 0.1])}, tmp_path / "w2.png"
    )
    for path in (grid, curve):
        with Image.open(path) as image:
            assert image.width > 100 and image.height > 100
