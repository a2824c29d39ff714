"""Per-image detection metrics against ground-truth labels.

- ``mean_iou``: mean over ground-truth objects of the best IoU any prediction reaches
  (0 for a missed object);
- ``hit_freq``: recall at IoU 0.5 -- the fraction of ground-truth objects some
  prediction overlaps with IoU >= 0.5;
- ``mean_conf``: mean confidence of the predictions;
- ``dice``: Dice of the union of predicted masks against the union of ground-truth
  masks (segmentation models; prototype resolution, 1/4 of the input side);
- ``categories``: predicted class name -> count.

IoU and Dice are computed in the letterboxed frame: a uniform scale and shift leave
IoU unchanged.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import torch
from torchvision.ops import box_iou

from clusterlens.catalog.dataset import LabelSet

HIT_IOU = 0.5


def detection_metrics(
    detections: torch.Tensor,
    masks: torch.Tensor | None,
    labels: LabelSet | None,
    box: Any,
    names: dict[int, str],
) -> dict[str, Any]:
    """Metrics of one image's detections (see the module docstring).

    Args:
        detections: (n, 6) ``x1 y1 x2 y2 conf class`` in the letterboxed square.
        masks: (n, S/4, S/4) binary masks, or None for detection models.
        labels: the image's ground truth, or None (unlabelled: label metrics are None).
        box: the image's :class:`~clusterlens.catalog.yolo_extract.Letterbox`.
        names: class id -> name.
    """
    detections = detections.detach().cpu().float()
    categories = Counter(names.get(int(c), str(int(c))) for c in detections[:, 5].tolist())
    metrics: dict[str, Any] = {
        "n_predictions": len(detections),
        "n_labels": None if labels is None else len(labels),
        "mean_conf": float(detections[:, 4].mean()) if len(detections) else None,
        "categories": dict(sorted(categories.items())),
        "mean_iou": None,
        "hit_freq": None,
        "dice": None,
    }
    if labels is None or len(labels) == 0:
        return metrics
    truth = torch.from_numpy(_letterbox_xyxy(labels, box))
    best = (
        box_iou(truth, detections[:, :4]).max(dim=1).values
        if len(detections)
        else torch.zeros(len(truth))
    )
    metrics["mean_iou"] = float(best.mean())
    metrics["hit_freq"] = float((best >= HIT_IOU).float().mean())
    if masks is not None:
        from clusterlens.catalog.yolo_extract import label_masks

        truth_union = label_masks(labels, box).max(axis=0) > 0
        predicted = masks.detach().cpu().numpy()
        predicted_union = (
            predicted.max(axis=0) > 0 if len(predicted) else np.zeros_like(truth_union)
        )
        total = truth_union.sum() + predicted_union.sum()
        metrics["dice"] = (
            float(2 * (truth_union & predicted_union).sum() / total) if total else None
        )
    return metrics


def _letterbox_xyxy(labels: LabelSet, box: Any) -> np.ndarray:
    xywh = box.boxes_to_letterbox(labels.boxes) * box.size
    return np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
