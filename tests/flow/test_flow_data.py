"""Toys, digits, image folders, sources and the resumable batch stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from clusterlens.flow.data import BatchStream, load_dataset, sample_source, sample_toy


@pytest.mark.parametrize("name", ["8gaussians", "moons", "checkerboard"])
def test_toys_are_2d_reproducible_and_split(name):
    first = load_dataset(name, n_train=500, n_test=100, data_seed=3)
    again = load_dataset(name, n_train=500, n_test=100, data_seed=3)
    other = load_dataset(name, n_train=500, n_test=100, data_seed=4)
    assert first.train.shape == (500, 2) and first.test.shape == (100, 2)
    assert torch.equal(first.train, again.train)
    assert not torch.equal(first.train, other.train)
    assert first.ids[:3] == ["0", "1", "2"] and len(first.ids) == 500
    assert first.train.abs().max() < 8


def test_toy_shapes_match_their_names():
    generator = torch.Generator().manual_seed(0)
    gaussians = sample_toy("8gaussians", 4000, generator)
    radius = gaussians.norm(dim=1)
    assert 3.0 < radius.median() < 5.0  # modes on the circle of radius 4
    board = sample_toy("checkerboard", 4000, generator)
    cell = (torch.floor(board[:, 0] / 2) + torch.floor(board[:, 1] / 2)) % 2
    assert torch.all(cell == cell[0])  # every point on squares of one colour


def test_digits_are_64d_in_range_with_stable_ids():
    digits = load_dataset("digits")
    assert digits.sample_shape == (64,)
    assert digits.train.min() >= -1 and digits.train.max() <= 1
    assert len(digits.train) + len(digits.test) == 1797
    assert len(set(digits.ids)) == len(digits.ids)


def test_image_folder(tmp_path):
    for k in range(6):
        Image.fromarray(np.full((20, 30), 40 * k, dtype=np.uint8)).save(tmp_path / f"{k}.png")
    dataset = load_dataset(tmp_path, image_size=16)
    assert dataset.is_image and dataset.sample_shape == (3, 16, 16)
    assert len(dataset.train) == 5 and len(dataset.test) == 1
    assert all(name.endswith(".png") for name in dataset.ids)


def test_sources():
    generator = torch.Generator().manual_seed(0)
    assert sample_source("normal", (3, 4, 4), 5, generator).shape == (5, 3, 4, 4)
    assert sample_source("8gaussians", (2,), 5, generator).shape == (5, 2)
    with pytest.raises(ValueError, match="is 2D"):
        sample_source("moons", (64,), 5, generator)
    with pytest.raises(ValueError, match="accepted: normal"):
        sample_source("uniform", (2,), 5, generator)


def test_bad_data_specs(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a bundled data set"):
        load_dataset("spirals")
    with pytest.raises(FileNotFoundError, match="holds 0 images"):
        load_dataset(tmp_path)
    with pytest.raises(ValueError, match="n_train"):
        load_dataset("moons", n_train=1)


def test_batch_stream_covers_each_epoch_once_and_rebuilds_any_step():
    stream = BatchStream(10, 3, seed=7)
    epoch = torch.cat([stream.indices(step) for step in range(3)])
    assert len(set(epoch.tolist())) == 9  # a permutation, ragged tail dropped
    later = [stream.indices(step).tolist() for step in range(3, 6)]
    fresh = BatchStream(10, 3, seed=7)
    assert [fresh.indices(step).tolist() for step in range(3, 6)] == later
    assert stream.indices(0).tolist() != stream.indices(3).tolist()
    with pytest.raises(ValueError, match="batch_size"):
        BatchStream(10, 11, seed=0)
