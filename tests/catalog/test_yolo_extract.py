"""YOLO extraction: per-image losses equal the stock criterion, metrics, letterbox, rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clusterlens.catalog.dataset import LabelSet, load_rgb, read_labels, scan_dataset
from clusterlens.catalog.metrics import detection_metrics
from clusterlens.catalog.yolo_extract import (
    Letterbox,
    YoloExtractor,
    criterion_batch,
    label_masks,
    per_sample_losses,
)
from clusterlens.models import load_model

IMGSZ = 64


@pytest.fixture(scope="module")
def extractor():
    torch.set_num_threads(1)
    return YoloExtractor(load_model("yolo:yolov8n-seg.yaml"), imgsz=IMGSZ, conf=0.0)


@pytest.fixture(scope="module")
def shapes(shapes_dir):
    entries = scan_dataset(shapes_dir)[:4]
    return [load_rgb(e.path) for e in entries], [read_labels(e.label_path) for e in entries]


def _targets(images, labels, boxes):
    return [
        (lab.classes, box.boxes_to_letterbox(lab.boxes), label_masks(lab, box))
        for lab, box in zip(labels, boxes, strict=True)
    ]


def test_per_image_losses_equal_the_stock_criterion_image_by_image(extractor, shapes):
    images, labels = shapes
    pixels, boxes = extractor.prepare(images)
    _, _, raw = extractor.forward(pixels)
    batch = criterion_batch(_targets(images, labels, boxes), extractor.device)
    batched = per_sample_losses(extractor.criterion, raw, batch)
    assert batched.shape == (4, 4) and torch.isfinite(batched).all()
    for index in range(4):
        one_pixels, one_boxes = extractor.prepare(images[index : index + 1])
        _, _, one_raw = extractor.forward(one_pixels)
        one_batch = criterion_batch(
            _targets(images[index : index + 1], labels[index : index + 1], one_boxes),
            extractor.device,
        )
        _, items = extractor.criterion(one_raw, one_batch)  # ultralytics' own v8SegmentationLoss
        stock = torch.stack(
            [items["box_loss"], items["cls_loss"], items["dfl_loss"], items["seg_loss"]]
        )
        torch.testing.assert_close(batched[index], stock, rtol=1e-4, atol=1e-5)
    # images differ, so do their losses
    assert not torch.allclose(batched[0], batched[1])


def test_letterbox_maps_boxes_and_masks_both_ways():
    box = Letterbox.fit(96, 48, 64)
    assert (box.scale, box.pad_x, box.pad_y, box.inner) == (64 / 96, 0, 16, (64, 32))
    xywhn = np.array([[0.5, 0.5, 0.5, 0.5]], np.float32)
    square = box.boxes_to_letterbox(xywhn) * 64
    np.testing.assert_allclose(square, [[32, 32, 32, 16]])
    xyxy = np.array([[16, 24, 48, 40]], np.float32)
    np.testing.assert_allclose(box.xyxy_to_image(xyxy), [[24, 12, 72, 36]])
    mask = np.zeros((48, 96), np.uint8)
    mask[12:36, 24:72] = 1
    there = box.mask_from_image(mask)
    assert there.shape == (16, 16) and there.sum() == 8 * 4
    back = box.mask_to_image(there)
    assert back.shape == (48, 96) and (back == mask).mean() > 0.95


def test_metrics_of_a_perfect_and_an_empty_prediction():
    box = Letterbox.fit(64, 64, 64)
    labels = LabelSet(np.array([1]), np.array([[0.5, 0.5, 0.5, 0.5]], np.float32), [None])
    perfect = torch.tensor([[16.0, 16.0, 48.0, 48.0, 0.9, 1.0]])
    masks = torch.from_numpy(label_masks(labels, box)).byte()
    metrics = detection_metrics(perfect, masks, labels, box, {1: "circle"})
    assert metrics["mean_iou"] == pytest.approx(1.0) and metrics["hit_freq"] == 1.0
    assert metrics["dice"] == pytest.approx(1.0) and metrics["mean_conf"] == pytest.approx(0.9)
    assert metrics["categories"] == {"circle": 1}
    shifted = torch.tensor([[32.0, 16.0, 64.0, 48.0, 0.5, 1.0]])  # IoU 1/3: a miss at 0.5
    metrics = detection_metrics(shifted, None, labels, box, {1: "circle"})
    assert metrics["mean_iou"] == pytest.approx(1 / 3, abs=1e-4) and metrics["hit_freq"] == 0.0
    nothing = detection_metrics(torch.zeros(0, 6), None, labels, box, {})
    assert (
        nothing["mean_iou"] == 0.0
        and nothing["mean_conf"] is None
        and nothing["n_predictions"] == 0
    )
    unlabelled = detection_metrics(perfect, None, None, box, {1: "circle"})
    assert unlabelled["mean_iou"] is None and unlabelled["n_labels"] is None


def test_records_hold_features_predictions_losses_metrics(extractor, shapes):
    images, labels = shapes
    records = extractor.extract(images, [labels[0], None, labels[2], labels[3]], [10, 11, 12, 13])
    assert [r.image_id for r in records] == [10, 11, 12, 13]
    first = records[0]
    kinds = {(layer, kind): array for layer, kind, array in first.features}
    assert set(kinds) == {
        ("model.9", "gap"),
        ("model.9", "map"),
        ("model.15", "gap"),
        ("model.18", "gap"),
        ("model.21", "gap"),
    }
    assert kinds[("model.9", "map")].dtype == np.float16 and kinds[("model.9", "map")].shape == (
        256,
        2,
        2,
    )
    assert first.embedding.shape == (256 + 64 + 128 + 256,)
    assert set(first.losses) == {"box", "cls", "dfl", "seg"} and first.losses["seg"] is not None
    assert records[1].losses is None and records[1].metrics["mean_iou"] is None  # unlabelled
    assert len(first.predictions) == first.metrics["n_predictions"] > 0  # conf=0 keeps max_det
    prediction = first.predictions[0]
    height, width = images[0].shape[:2]
    assert 0 <= prediction["x1"] <= prediction["x2"] <= width
    assert 0 <= prediction["y1"] <= prediction["y2"] <= height
    assert prediction["mask_png"][:4] == b"\x89PNG"


def test_bad_settings(extractor):
    with pytest.raises(ValueError, match="multiple of 32"):
        YoloExtractor(extractor.bundle, imgsz=100)
    with pytest.raises(ValueError, match="conf"):
        YoloExtractor(extractor.bundle, imgsz=64, conf=2.0)


@pytest.mark.parametrize("reg_max", [16, 1])
def test_box_losses_equal_the_stock_bbox_loss_image_by_image(reg_max):
    """DFL heads and reg_max 1 heads (L1 on ltrb) both match ``BboxLoss`` per image."""
    from ultralytics.utils.loss import BboxLoss

    from clusterlens.catalog.yolo_extract import _box_losses

    gen = torch.Generator().manual_seed(0)
    batch, anchors = 3, 20
    anchor_points = torch.rand(anchors, 2, generator=gen) * 8
    stride = torch.full((anchors, 1), 8.0)
    xy = torch.rand(batch, anchors, 2, generator=gen) * 6
    pred_bboxes = torch.cat((xy, xy + 1 + torch.rand(batch, anchors, 2, generator=gen)), -1)
    xy = torch.rand(batch, anchors, 2, generator=gen) * 6
    target_bboxes = torch.cat((xy, xy + 1 + torch.rand(batch, anchors, 2, generator=gen)), -1)
    target_scores = torch.rand(batch, anchors, 3, generator=gen)
    fg_mask = torch.rand(batch, anchors, generator=gen) > 0.5
    fg_mask[2] = False  # an image without foreground anchors gives zeros
    score_sums = target_scores.sum((1, 2)).clamp(min=1)
    pred_distri = torch.randn(batch, anchors, 4 * reg_max, generator=gen)
    imgsz = torch.tensor([64.0, 96.0])
    bbox_loss = BboxLoss(reg_max)
    args = (pred_distri, pred_bboxes, anchor_points, target_bboxes, target_scores)
    got = _box_losses(bbox_loss, *args, score_sums, fg_mask, imgsz, stride)
    for b in range(batch):
        one = slice(b, b + 1)
        stock = bbox_loss(
            pred_distri[one], pred_bboxes[one], anchor_points, target_bboxes[one].clone(),
            target_scores[one], score_sums[b], fg_mask[one], imgsz, stride,
        )  # fmt: skip
        torch.testing.assert_close(got[b], torch.stack(stock), rtol=1e-5, atol=1e-6)
    assert (got[:2] > 0).all() and (got[2] == 0).all()
