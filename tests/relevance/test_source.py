"""CouplingSource: cell means without full-size maps, windows, fallback, cost counting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from clusterlens.allocate import PatchGrid
from clusterlens.models.offline._unet import UNet
from clusterlens.models.offline.segmenter import CamVidSegmenter
from clusterlens.models.text import QueryMatch
from clusterlens.relevance.source import (
    WINDOW_SHARE,
    CellSpans,
    CouplingSource,
    cell_operator,
    supports_lazy,
)

CLASSES = ("Sky", "Road", "Car")


class NoMatcher:
    def match(self, query: str) -> QueryMatch:
        return QueryMatch(query, False, (), {"Sky": 0.0}, 0.45)


class PointwiseNet(nn.Module):
    """A 1x1 convolution: each output pixel sees only its own input pixel, so a window's
    prediction equals the whole image's wherever the window reaches."""

    stride = 16

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, len(CLASSES), 1)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.conv(batch) * 4


def segmenter(network: nn.Module, scale: float = 0.5) -> CamVidSegmenter:
    metadata = {"class_names": list(CLASSES), "scale": scale, "flip_tta": True}
    return CamVidSegmenter(network, metadata, name="test:tiny", matcher=NoMatcher())


def spans_of(height: int, width: int, cells: int = 16) -> CellSpans:
    grid = PatchGrid.from_count(height, width, cells)
    return CellSpans(*grid.spans(), height, width)


def image(height: int = 300, width: int = 400, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = rng.random((height // 20 + 1, width // 20 + 1, 3)).astype(np.float32)
    return np.kron(smooth, np.ones((20, 20, 1), np.float32))[:height, :width]


@pytest.mark.parametrize("image_len,work_len", [(360, 176), (101, 48), (1024, 208), (7, 16)])
def test_cell_operator_matches_upsampling_then_averaging(image_len, work_len):
    rng = np.random.default_rng(1)
    line = rng.random(work_len).astype(np.float32)
    up = F.interpolate(
        torch.from_numpy(line)[None, None, None],
        size=(1, image_len),
        mode="bilinear",
        align_corners=False,
    )[0, 0, 0].numpy()
    grid = PatchGrid.from_count(1, image_len, (1, 13))
    _, _, starts, ends = grid.spans()
    expected = np.array([up[a:b].mean() for a, b in zip(starts, ends, strict=True)])
    np.testing.assert_allclose(
        cell_operator(starts, ends, image_len, work_len) @ line, expected, atol=1e-5
    )


def test_dense_cells_equal_cell_means_of_the_upsampled_map():
    model = segmenter(UNet(len(CLASSES), (4, 8)))
    rgb = image()
    source = CouplingSource(model, rgb)
    probabilities = torch.from_numpy(source.probabilities("dense"))[None]
    upsampled = F.interpolate(
        probabilities, size=rgb.shape[:2], mode="bilinear", align_corners=False
    )
    car = upsampled[0, 2].numpy()
    grid = PatchGrid.from_count(*rgb.shape[:2], 16)
    expected = grid.cell_means(car)[0]
    np.testing.assert_allclose(
        source.dense_cells(["Car"], spans_of(*rgb.shape[:2])), expected, atol=1e-5
    )
    np.testing.assert_allclose(source.coupling_map(["Car"]), car, atol=1e-5)


def test_windows_of_a_local_model_are_exact_and_cheaper_than_the_dense_pass():
    model = segmenter(PointwiseNet(), scale=1.0)
    rgb = image(360, 480)
    spans = spans_of(360, 480, 32)
    rows, cols = np.array([3, 3, 4, 20]), np.array([5, 6, 5, 28])
    lazy = CouplingSource(model, rgb)
    fine = lazy.fine_cells(["Car"], spans, rows, cols, margin=16)
    assert not lazy.has_pass("dense")  # answered from windows
    dense = CouplingSource(model, rgb)
    np.testing.assert_allclose(fine, dense.dense_cells(["Car"], spans)[rows, cols], atol=1e-5)
    assert 0 < lazy.cost.gflops < 0.5 * dense.cost.gflops
    assert lazy.cost.pixels < dense.cost.pixels
    assert all(p.startswith("window") for p in lazy.cost.passes)


def test_windows_that_would_cost_too_much_fall_back_to_the_dense_pass():
    model = segmenter(PointwiseNet(), scale=1.0)
    rgb = image(360, 480)
    spans = spans_of(360, 480, 32)
    rows, cols = np.meshgrid(np.arange(0, 32, 4), np.arange(0, 32, 4), indexing="ij")
    source = CouplingSource(model, rgb)
    fine = source.fine_cells(["Car"], spans, rows.ravel(), cols.ravel(), margin=48)
    assert source.has_pass("dense")  # spread cells: windows would exceed WINDOW_SHARE
    assert source.cost.passes == ["dense 352x480"]
    np.testing.assert_array_equal(
        fine, source.dense_cells(["Car"], spans)[rows.ravel(), cols.ravel()]
    )
    assert 0 < WINDOW_SHARE < 1


def test_the_coarse_pass_is_cheap_and_every_pass_is_counted_once():
    model = segmenter(UNet(len(CLASSES), (4, 8)))
    source = CouplingSource(model, image())
    spans = spans_of(300, 400)
    source.coarse_cells(["Sky"], spans)
    coarse = source.cost.snapshot()
    source.dense_cells(["Sky"], spans)
    source.dense_cells(["Road", "Car"], spans)  # another query: the pass is reused
    dense = source.cost.since(coarse)
    assert coarse.calls == 1 and dense.calls == 1
    assert 0 < coarse.gflops < 0.1 * dense.gflops  # a quarter of the side, no flip
    assert dense.ms > 0 and dense.pixels > 0
    assert source.cost.to_json()["encoder_calls"] == 2


def test_a_model_without_the_lazy_interface_is_evaluated_densely_once_per_class_list():
    class MapOnly:
        class_names = CLASSES

        def __init__(self) -> None:
            self.calls = 0

        def relevance(self, rgb, classes):
            self.calls += 1
            return np.full(rgb.shape[:2], 0.5, np.float32)

    model = MapOnly()
    assert not supports_lazy(model)
    source = CouplingSource(model, image(40, 50))
    assert not source.lazy
    assert source.coupling_map(["Car"]).shape == (40, 50)
    source.coupling_map(["Car"])
    assert model.calls == 1 and source.cost.calls == 1


def test_windows_may_pay_only_when_the_cells_fit_with_their_margins():
    model = segmenter(PointwiseNet(), scale=1.0)  # works at 352x480
    source = CouplingSource(model, image(360, 480))
    spans = spans_of(360, 480, 32)  # cells of about 11x15 working pixels
    assert source.windows_may_pay(4, spans, margin=16)
    assert not source.windows_may_pay(600, spans, margin=16)
    assert not source.windows_may_pay(4, spans, margin=200)
    assert not source.has_pass("dense") and source.cost.calls == 0  # deciding runs nothing
