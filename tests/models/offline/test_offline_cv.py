"""Recipe v2: photometric views, one scale per batch, folds by drive, the CV report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from clusterlens.models.offline import cv
from clusterlens.models.offline import train as train_module
from clusterlens.models.offline._data import (
    AugmentConfig,
    batch_geometry,
    photometric_view,
    training_batches,
)

DRIVES = ("0001TP", "0006R0", "0016E5")


def test_photometric_views_change_light_but_keep_shape_and_are_reproducible():
    image = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    first = photometric_view(image, np.random.default_rng(5))
    again = photometric_view(image, np.random.default_rng(5))
    assert first.shape == image.shape and first.dtype == np.uint8
    assert np.array_equal(first, again)
    views = [photometric_view(image, np.random.default_rng(seed)) for seed in range(8)]
    assert all(not np.array_equal(view, image) for view in views)
    assert len({view.tobytes() for view in views}) == 8


def test_batch_scales_share_one_shape_per_batch_and_cover_small_scales():
    config = AugmentConfig(
        base_scale=0.5, scale_range=(0.25, 1.6), crop=(64, 96), batch_scales=True, stride=8
    )
    rng = np.random.default_rng(0)
    draws = [batch_geometry((360, 480), config, rng) for _ in range(400)]
    scales = np.array([scale for scale, _ in draws])
    assert scales.min() >= 0.125 and scales.max() <= 0.8
    # log-uniform: as many batches below the geometric middle as above it
    middle = np.sqrt(0.125 * 0.8)
    assert 0.4 < (scales < middle).mean() < 0.6
    for scale, (height, width) in draws:
        assert height % 8 == 0 and width % 8 == 0
        assert height <= min(64, 360 * scale) and width <= min(96, 480 * scale)

    images = np.random.default_rng(1).integers(0, 255, (6, 90, 120, 3), dtype=np.uint8)
    labels = np.zeros((6, 90, 120), np.uint8)
    batches = list(training_batches(images, labels, 2, config, np.random.default_rng(3)))
    shapes = [tuple(batch_images.shape) for batch_images, _ in batches]
    assert all(shape[0] == 2 for shape in shapes)
    for (_, batch_labels), shape in zip(batches, shapes, strict=True):
        assert tuple(batch_labels.shape[1:]) == shape[2:]


def test_default_views_are_the_first_recipe_unchanged():
    """Recipe v1's views must not move: the shipped v1 checkpoint's run reproduces."""
    images = np.random.default_rng(0).integers(0, 255, (4, 20, 30, 3), dtype=np.uint8)
    labels = np.zeros((4, 20, 30), np.uint8)
    config = AugmentConfig(base_scale=1.0, scale_range=(0.8, 1.2), crop=(16, 16))
    batches = list(training_batches(images, labels, 2, config, np.random.default_rng(1)))
    # digests of the batches as drawn by the code before recipe v2 existed (f7a2868)
    sums = [float(batch_images.sum()) for batch_images, _ in batches]
    assert sums == pytest.approx([331.4482727050781, 366.4780578613281], rel=1e-6)


def _drive_camvid(root, per_drive=(4, 4, 6)):
    """A CamVid look-alike whose frames are named after three drives (val: 0016E5)."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
    for drive, count in zip(DRIVES, per_drive, strict=True):
        for index in range(count):
            split = "val" if drive == "0016E5" and index >= count - 2 else "train"
            label = np.zeros((24, 32), np.uint8)
            label[:, :16] = 3
            image = np.where(label[..., None] == 3, 60, 200) + rng.integers(0, 20, (24, 32, 3))
            name = f"{drive}_{index:05d}.png"
            Image.fromarray(image.astype(np.uint8)).save(root / split / name)
            Image.fromarray(label).save(root / f"{split}annot" / name)
    return root


def _tiny_recipe(data):
    return [
        "--data", str(data), "--epochs", "1", "--batch-size", "2", "--widths", "4,8",
        "--crop", "16x16", "--base-scale", "1.0", "--threads", "1", "--recipe", "v2",
    ]  # fmt: skip


def test_a_fold_never_trains_on_the_drive_it_is_judged_on(tmp_path):
    data = _drive_camvid(tmp_path / "camvid")
    args = train_module.parse_args([*_tiny_recipe(data), "--holdout", "0006R0", "--out", "x"])
    config = train_module.config_from_args(args)
    (train_images, _), (judge_images, _) = train_module.load_frames(config, str(data))
    assert len(train_images) == 10 and len(judge_images) == 4
    held = {image.tobytes() for image in judge_images}
    assert not held & {image.tobytes() for image in train_images}


def test_unknown_drives_and_splits_are_clear_errors(tmp_path):
    with pytest.raises(SystemExit):
        train_module.parse_args(["--out", "x", "--holdout", "Seq05VD"])
    args = train_module.parse_args(["--out", "x", "--splits", "train,test"])
    with pytest.raises(ValueError, match="--splits"):
        train_module.config_from_args(args)
    with pytest.raises(SystemExit):
        cv.main(["--out", str(tmp_path), "--folds", "0001TP,Seq05VD"])


@pytest.mark.slow
def test_cross_validation_reports_every_fold_and_resumes_without_retraining(tmp_path, monkeypatch):
    data = _drive_camvid(tmp_path / "camvid")
    out = tmp_path / "cv"
    assert cv.main(["--out", str(out), "--choose-scales", "0.5,1.0", *_tiny_recipe(data)]) == 0
    summary = json.loads((out / "cv.json").read_text())
    assert summary["folds"] == sorted(DRIVES)
    assert summary["chosen"] in ("0.5 flip", "0.5 no-flip", "1.0 flip", "1.0 no-flip")
    row = summary["settings"]["0.25 no-flip"]
    assert set(row["fold_miou"]) == set(DRIVES)
    assert row["mean_miou"] == pytest.approx(np.mean(list(row["fold_miou"].values())), abs=1e-4)
    for drive in DRIVES:
        metadata = json.loads((out / drive / "camvid_unet.json").read_text())
        assert metadata["judged_on"] == f"drive {drive}"
        assert metadata["config"]["epoch_choice"] == "last"
    assert "CV mean" in (out / "cv.md").read_text()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished fold was trained again")

    monkeypatch.setattr(train_module, "train", no_training)
    assert cv.main(["--out", str(out), "--choose-scales", "0.5,1.0", *_tiny_recipe(data)]) == 0

    # a torn metadata file or an early export is not a finished fold: it trains again
    (out / "0001TP" / "camvid_unet.json").write_text('{"config": ')
    with pytest.raises(AssertionError, match="trained again"):
        cv.main(["--out", str(out), "--choose-scales", "0.5,1.0", *_tiny_recipe(data)])


def test_cross_validation_refuses_a_recipe_that_picks_its_epoch_on_the_judged_drive(tmp_path):
    data = _drive_camvid(tmp_path / "camvid")
    v1 = [arg if arg != "v2" else "v1" for arg in _tiny_recipe(data)]
    with pytest.raises(ValueError, match="last epoch"):
        cv.main(["--out", str(tmp_path / "cv"), *v1])


def test_recipe_v1_last_keeps_v1_views_and_is_judged_like_v2():
    args = train_module.parse_args(["--out", "unused", "--recipe", "v1-last"])
    baseline = train_module.parse_args(["--out", "unused", "--recipe", "v1"])
    config = train_module.config_from_args(args)
    v1 = train_module.config_from_args(baseline)
    assert config.augment == v1.augment  # the same views as the shipped model's run
    assert config.epoch_choice == "last" and v1.epoch_choice == "best"
    assert config.splits == ("train", "val")


@pytest.mark.slow
def test_the_final_v2_run_trains_on_every_frame_and_ships_the_given_setting(tmp_path):
    data = _drive_camvid(tmp_path / "camvid")
    out = tmp_path / "final"
    argv = [*_tiny_recipe(data), "--out", str(out), "--export-scale", "0.75", "--no-flip"]
    assert train_module.main(argv) == 0
    metadata = json.loads((out / "camvid_unet.json").read_text())
    assert metadata["judged_on"] is None and metadata["val"] is None
    assert metadata["flip_tta"] is False and metadata["scale"] == 0.75
    assert metadata["config"]["splits"] == ["train", "val"]
    saved = torch.load(out / "last.pt", weights_only=True)
    assert saved["epoch"] == 1
