"""The training recipe: data views, class weights, determinism and resumption."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from clusterlens.models import load_model
from clusterlens.models.offline import train as train_module
from clusterlens.models.offline._data import AugmentConfig, class_weights, training_batches
from clusterlens.models.offline._unet import UNet


def test_unet_keeps_resolution_and_reports_its_stride():
    net = UNet(num_classes=11, widths=(4, 8, 16))
    assert net.stride == 4
    assert net(torch.zeros(2, 3, 24, 36)).shape == (2, 11, 24, 36)


def test_unet_rejects_bad_widths():
    with pytest.raises(ValueError, match="widths"):
        UNet(num_classes=11, widths=(8,))


def test_rare_classes_get_larger_weights():
    labels = np.zeros((1, 10, 100), np.uint8)  # class 0 everywhere ...
    labels[0, 0, :10] = 2  # ... except a few pixels of class 2
    labels[0, 1, :] = 11  # ignored pixels do not count
    weights = class_weights(labels)
    assert weights.shape == (11,)
    assert weights[2] > weights[0]
    assert weights.mean().item() == pytest.approx(1.0)


def test_training_views_are_reproducible_and_pad_with_ignore():
    images = np.random.default_rng(0).integers(0, 255, (4, 20, 30, 3), dtype=np.uint8)
    labels = np.zeros((4, 20, 30), np.uint8)
    config = AugmentConfig(base_scale=1.0, scale_range=(1.0, 1.0), crop=(24, 32))

    def draw(seed):
        return list(training_batches(images, labels, 2, config, np.random.default_rng(seed)))

    first, again, other = draw(1), draw(1), draw(2)
    assert len(first) == 2
    assert first[0][0].shape == (2, 3, 24, 32) and first[0][1].shape == (2, 24, 32)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, other, strict=True))
    # The 20x30 image is padded to 24x32 with the ignore label.
    assert set(torch.unique(first[0][1]).tolist()) == {0, 11}


def test_bad_compound_options_are_clear_errors():
    args = train_module.parse_args(["--out", "x", "--crop", "192by256"])
    with pytest.raises(ValueError, match="--crop"):
        train_module.config_from_args(args)


def _tiny_camvid(root):
    """A 6 + 2 image CamVid look-alike: left half class 3 (Road), right half class 0."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("val", 2)):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for index in range(count):
            label = np.zeros((24, 32), np.uint8)
            label[:, :16] = 3
            image = np.where(label[..., None] == 3, 60, 200) + rng.integers(0, 20, (24, 32, 3))
            Image.fromarray(image.astype(np.uint8)).save(root / split / f"{index}.png")
            Image.fromarray(label).save(root / f"{split}annot" / f"{index}.png")
    return root


def _tiny_args(data, out):
    return [
        "--data", str(data), "--out", str(out), "--epochs", "2", "--batch-size", "2",
        "--widths", "4,8", "--crop", "16x16", "--base-scale", "1.0", "--threads", "1",
    ]  # fmt: skip


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    data = _tiny_camvid(tmp_path / "camvid")
    assert train_module.main(_tiny_args(data, tmp_path / "straight")) == 0

    real_epoch = train_module._train_one_epoch

    def interrupt_second_epoch(*args):
        if args[-1] == 2:
            raise KeyboardInterrupt
        return real_epoch(*args)

    monkeypatch.setattr(train_module, "_train_one_epoch", interrupt_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_module.main(_tiny_args(data, tmp_path / "resumed"))
    assert torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["epoch"] == 1
    # A time-limited run can ship its best epoch so far, saying how far it got.
    assert train_module.main([*_tiny_args(data, tmp_path / "resumed"), "--export-only"]) == 0
    early = json.loads((tmp_path / "resumed" / "camvid_unet.json").read_text())
    assert early["epochs_completed"] == 1 and early["epochs"] == 2
    monkeypatch.setattr(train_module, "_train_one_epoch", real_epoch)
    assert train_module.main(_tiny_args(data, tmp_path / "resumed")) == 0

    straight = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    assert [r["epoch"] for r in resumed["history"]] == [1, 2]  # none repeated or lost
    for key, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][key]), key

    metadata = json.loads((tmp_path / "resumed" / "camvid_unet.json").read_text())
    assert metadata["widths"] == [4, 8] and len(metadata["val"]["iou"]) == 11
    assert metadata["epochs_completed"] == 2
    segmenter = load_model(f"offline:{tmp_path / 'resumed' / 'camvid_unet.pt'}")
    assert segmenter.predict_proba(np.zeros((24, 32, 3), np.uint8)).shape == (11, 24, 32)


@pytest.mark.slow
def test_resuming_with_different_options_is_refused(tmp_path):
    data = _tiny_camvid(tmp_path / "camvid")
    args = _tiny_args(data, tmp_path / "run")
    train_module.main(args)
    with pytest.raises(ValueError, match="different configuration"):
        train_module.main([*args, "--seed", "1"])
