"""YOLO extraction: hooked features, predictions, per-image losses and metrics.

One forward pass per batch (eval mode) gives everything:

- forward hooks on named layers (the backbone's last layer and each head input)
  record global-average-pooled vectors and the raw bottleneck map;
- the head's decoded output goes through ultralytics' NMS (and ``process_mask``)
  to give the predictions;
- the head's raw output goes through the model's own training criterion
  (``v8DetectionLoss`` / ``v8SegmentationLoss``) against the ground-truth labels.

The stock criterion averages over the whole batch. :func:`per_sample_losses` runs the
criterion's own pieces -- its target preprocessing, box decoding, task-aligned
assigner, ``BboxLoss`` and mask loss -- with each image's own normaliser, so a batch
of B images gives B rows that equal what the stock criterion gives each image alone
(tested). The same function gives the asymmetric distances (``distances.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from clusterlens.catalog.dataset import LabelSet
from clusterlens.catalog.metrics import detection_metrics
from clusterlens.catalog.store import ImageRecord
from clusterlens.models.yolo import YoloBundle

MASK_RATIO = 4  # ultralytics' prototype masks are 1/4 of the input side
PAD_VALUE = 114  # ultralytics' letterbox grey


@dataclass(frozen=True)
class Letterbox:
    """How an image of ``width`` x ``height`` was scaled and padded into ``size`` x ``size``."""

    width: int
    height: int
    size: int
    scale: float
    pad_x: int
    pad_y: int

    @classmethod
    def fit(cls, width: int, height: int, size: int) -> Letterbox:
        scale = min(size / width, size / height)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        return cls(width, height, size, scale, (size - new_w) // 2, (size - new_h) // 2)

    @property
    def inner(self) -> tuple[int, int]:
        """(width, height) of the image inside the padded square."""
        return max(1, round(self.width * self.scale)), max(1, round(self.height * self.scale))

    def apply(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (size, size, 3) uint8, aspect kept, grey padding."""
        inner_w, inner_h = self.inner
        resized = cv2.resize(image, (inner_w, inner_h), interpolation=cv2.INTER_LINEAR)
        canvas = np.full((self.size, self.size, 3), PAD_VALUE, np.uint8)
        canvas[self.pad_y : self.pad_y + inner_h, self.pad_x : self.pad_x + inner_w] = resized
        return canvas

    def boxes_to_letterbox(self, xywhn: np.ndarray) -> np.ndarray:
        """Normalised (to the image) xywh -> normalised (to the square) xywh."""
        out = xywhn.astype(np.float32).copy()
        out[:, [0, 2]] *= self.width * self.scale
        out[:, [1, 3]] *= self.height * self.scale
        out[:, 0] += self.pad_x
        out[:, 1] += self.pad_y
        return out / self.size

    def xyxy_to_image(self, xyxy: np.ndarray) -> np.ndarray:
        """Pixel xyxy in the square -> pixel xyxy in the original image (clipped)."""
        out = xyxy.astype(np.float32).copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, self.width)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, self.height)
        return out

    def mask_to_image(self, mask: np.ndarray) -> np.ndarray:
        """A (size/4, size/4) prototype-resolution mask -> (height, width) uint8 0/1."""
        full = cv2.resize(mask, (self.size, self.size), interpolation=cv2.INTER_NEAREST)
        inner_w, inner_h = self.inner
        crop = full[self.pad_y : self.pad_y + inner_h, self.pad_x : self.pad_x + inner_w]
        return cv2.resize(crop, (self.width, self.height), interpolation=cv2.INTER_NEAREST)

    def mask_from_image(self, mask: np.ndarray) -> np.ndarray:
        """A (height', width') mask over the image (any resolution) -> prototype resolution."""
        side = self.size // MASK_RATIO
        inner_w, inner_h = (max(1, round(v / MASK_RATIO)) for v in self.inner)
        out = np.zeros((side, side), np.uint8)
        x0, y0 = self.pad_x // MASK_RATIO, self.pad_y // MASK_RATIO
        inner_w, inner_h = min(inner_w, side - x0), min(inner_h, side - y0)
        out[y0 : y0 + inner_h, x0 : x0 + inner_w] = cv2.resize(
            mask.astype(np.uint8), (inner_w, inner_h), interpolation=cv2.INTER_NEAREST
        )
        return out


def label_masks(labels: LabelSet, box: Letterbox) -> np.ndarray:
    """(n, size/4, size/4) float32 instance masks: polygons filled, boxes for box-only labels."""
    side = box.size // MASK_RATIO
    masks = np.zeros((len(labels), side, side), np.uint8)
    for index, polygon in enumerate(labels.polygons or [None] * len(labels)):
        if polygon is None:
            cx, cy, w, h = labels.boxes[index]
            polygon = np.array(
                [
                    [cx - w / 2, cy - h / 2],
                    [cx + w / 2, cy - h / 2],
                    [cx + w / 2, cy + h / 2],
                    [cx - w / 2, cy + h / 2],
                ]
            )
        points = polygon * [box.width * box.scale, box.height * box.scale] + [box.pad_x, box.pad_y]
        cv2.fillPoly(masks[index], [np.round(points / MASK_RATIO).astype(np.int32)], 1)
    return masks.astype(np.float32)


def criterion_batch(
    targets: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray | None]], device: torch.device
) -> dict[str, torch.Tensor]:
    """The criterion's batch dict from per-image (classes, letterbox xywhn boxes, masks)."""
    batch_idx = np.concatenate(
        [np.full(len(c), i, np.float32) for i, (c, _, _) in enumerate(targets)]
    )
    classes = np.concatenate([c for c, _, _ in targets]).astype(np.float32)
    boxes = np.concatenate([b.reshape(-1, 4) for _, b, _ in targets]).astype(np.float32)
    batch = {
        "batch_idx": torch.from_numpy(batch_idx).to(device),
        "cls": torch.from_numpy(classes).view(-1, 1).to(device),
        "bboxes": torch.from_numpy(boxes).to(device),
    }
    if all(m is not None for _, _, m in targets):
        batch["masks"] = torch.from_numpy(np.concatenate([m for _, _, m in targets])).to(device)
    return batch


def per_sample_losses(
    criterion: Any, preds: dict[str, Any], batch: dict[str, torch.Tensor], shared: bool = False
) -> torch.Tensor:
    """(B, 4) loss components ``box, cls, dfl, seg`` of each image of the batch.

    Runs the stock ultralytics criterion step by step with per-image normalisers; for a
    batch of one it equals ``criterion(preds, batch)[1]`` (box, cls, dfl, seg).
    ``seg`` is NaN for detection models.

    Args:
        criterion: ``v8DetectionLoss`` or ``v8SegmentationLoss`` of the model.
        preds: the head's raw output dict (``boxes``, ``scores``, ``feats`` and for
            segmentation ``mask_coefficient``, ``proto``).
        batch: ``batch_idx``, ``cls``, ``bboxes`` (normalised xywh in the input square),
            ``masks`` (per instance, prototype resolution) for segmentation.
        shared: every row of ``preds`` is the same image (one image against many
            target sets, as in the distances): the target-independent parts -- box
            decoding, score sigmoid, the ``softplus`` half of the classification BCE --
            are computed once instead of once per row.
    """
    from ultralytics.utils.tal import make_anchors

    batch_size = preds["scores"].shape[0]
    first = slice(0, 1) if shared else slice(None)
    pred_distri = preds["boxes"][first].permute(0, 2, 1).contiguous().expand(batch_size, -1, -1)
    pred_scores = preds["scores"][first].permute(0, 2, 1).contiguous().expand(batch_size, -1, -1)
    anchor_points, stride_tensor = make_anchors(preds["feats"], criterion.stride, 0.5)
    dtype, device = pred_scores.dtype, pred_scores.device
    imgsz = (
        torch.tensor(preds["feats"][0].shape[2:], device=device, dtype=dtype) * criterion.stride[0]
    )

    targets = torch.cat(
        (batch["batch_idx"].view(-1, 1), batch["cls"].view(-1, 1), batch["bboxes"]), 1
    )
    targets = criterion.preprocess(targets.to(device), batch_size, scale_tensor=imgsz[[1, 0, 1, 0]])
    gt_labels, gt_bboxes = targets.split((1, 4), 2)
    mask_gt = gt_bboxes.sum(2, keepdim=True).gt_(0.0)
    pred_bboxes = criterion.bbox_decode(anchor_points, pred_distri[first]).expand(
        batch_size, -1, -1
    )
    _, target_bboxes, target_scores, fg_mask, target_gt_idx = criterion.assigner(
        pred_scores[first].detach().sigmoid().expand(batch_size, -1, -1),
        (pred_bboxes.detach() * stride_tensor).type(gt_bboxes.dtype),
        anchor_points * stride_tensor,
        gt_labels,
        gt_bboxes,
        mask_gt,
    )
    # the stock loss divides by the batch's total target score; here each image's own
    score_sums = target_scores.sum((1, 2)).clamp(min=1)
    losses = torch.full((batch_size, 4), float("nan"), device=device)
    losses[:, 1] = _classification_sums(criterion, pred_scores, target_scores.to(dtype), shared)
    losses[:, 1] /= score_sums
    is_segment = "proto" in preds and "masks" in batch
    box_args = (pred_distri, pred_bboxes, anchor_points, target_bboxes / stride_tensor)
    box_args += (target_scores, score_sums, fg_mask, imgsz, stride_tensor)
    losses[:, [0, 2]] = _box_losses(criterion.bbox_loss, *box_args)
    if is_segment:
        for b in range(batch_size):
            losses[b, 3] = _mask_loss(
                criterion, preds, batch, b, fg_mask, target_gt_idx, target_bboxes, imgsz
            )
    hyp = criterion.hyp
    gains = torch.tensor([hyp.box, hyp.cls, hyp.dfl, hyp.box], device=device)
    return losses * gains


def _box_losses(
    bbox_loss: Any,
    pred_distri: torch.Tensor,
    pred_bboxes: torch.Tensor,
    anchor_points: torch.Tensor,
    target_bboxes: torch.Tensor,
    target_scores: torch.Tensor,
    score_sums: torch.Tensor,
    fg_mask: torch.Tensor,
    imgsz: torch.Tensor,
    stride: torch.Tensor,
) -> torch.Tensor:
    """(B, 2) CIoU and DFL (L1 for reg_max 1 heads) losses of every image, each over its anchors.

    The same terms as ultralytics' ``BboxLoss.forward`` (which sums the whole batch into
    one number), summed per image with ``index_add_`` in one pass instead of one call
    per image (equal to the per-image calls: tested for DFL and reg_max 1 heads).
    """
    from ultralytics.utils.metrics import bbox_iou
    from ultralytics.utils.tal import bbox2dist

    image, anchor = fg_mask.nonzero(as_tuple=True)
    weight = target_scores[image, anchor].sum(-1)
    iou = bbox_iou(
        pred_bboxes[image, anchor], target_bboxes[image, anchor], xywh=False, CIoU=True
    ).view(-1)
    if bbox_loss.dfl_loss is not None:
        reg_max = bbox_loss.dfl_loss.reg_max
        target_ltrb = bbox2dist(anchor_points[anchor], target_bboxes[image, anchor], reg_max - 1)
        second = bbox_loss.dfl_loss(pred_distri[image, anchor].view(-1, reg_max), target_ltrb)
    else:  # reg_max 1 heads: L1 on ltrb distances normalised by the image size
        scale = stride[anchor] / imgsz[[1, 0, 1, 0]]
        target_ltrb = bbox2dist(anchor_points[anchor], target_bboxes[image, anchor]) * scale
        second = (pred_distri[image, anchor] * scale - target_ltrb).abs().mean(-1)
    totals = torch.zeros(fg_mask.shape[0], 2, device=fg_mask.device)
    totals[:, 0].index_add_(0, image, (1.0 - iou) * weight)
    totals[:, 1].index_add_(0, image, second.view(-1) * weight)
    return totals / score_sums[:, None]


def _classification_sums(
    criterion: Any, scores: torch.Tensor, targets: torch.Tensor, shared: bool
) -> torch.Tensor:
    """Per-row sum of the criterion's BCE-with-logits over anchors and classes.

    With shared logits x, BCE(x, t) = BCE(x, 0) - x * t: the ``BCE(x, 0)`` sum is the same
    for every row and is computed once, with the criterion's own ``bce`` so the rounding
    matches the stock loss (torch's float32 BCE of very negative logits is off by about
    1e-6 per element, which adds up over all anchors and classes).
    """
    if not shared or criterion.class_weights is not None:
        return criterion.bce(scores, targets).sum((1, 2))
    background = criterion.bce(scores[:1], torch.zeros_like(scores[:1])).sum()
    return background - torch.einsum("bac,bac->b", scores, targets)


def _mask_loss(
    criterion: Any,
    preds: dict[str, Any],
    batch: dict[str, torch.Tensor],
    b: int,
    fg_mask: torch.Tensor,
    target_gt_idx: torch.Tensor,
    target_bboxes: torch.Tensor,
    imgsz: torch.Tensor,
) -> torch.Tensor:
    """Image b's mask loss with the criterion's own ``calculate_segmentation_loss``."""
    if not fg_mask[b].any():
        return torch.zeros((), device=fg_mask.device)
    proto = preds["proto"][0] if isinstance(preds["proto"], tuple) else preds["proto"]
    mine = batch["batch_idx"].view(-1) == b
    masks = batch["masks"][mine].float()
    one = slice(b, b + 1)
    proto_b = proto[one]
    if tuple(masks.shape[-2:]) != tuple(proto_b.shape[-2:]):
        proto_b = torch.nn.functional.interpolate(
            proto_b, masks.shape[-2:], mode="bilinear", align_corners=False
        )
    return criterion.calculate_segmentation_loss(
        fg_mask[one],
        masks,
        target_gt_idx[one],
        target_bboxes[one],
        torch.zeros(int(mine.sum()), 1, device=masks.device),
        proto_b,
        preds["mask_coefficient"][one].permute(0, 2, 1).contiguous(),
        imgsz,
    )


class YoloExtractor:
    """Extract catalog rows from images with a YOLO model.

    Args:
        bundle: from :func:`clusterlens.models.yolo.load_yolo`.
        imgsz: side of the letterboxed input (a multiple of the model stride).
        conf: confidence threshold of the stored predictions.
        iou: NMS IoU threshold.
        max_det: most detections kept per image.
    """

    kind = "yolo"

    def __init__(
        self,
        bundle: YoloBundle,
        imgsz: int = 640,
        conf: float = 0.25,
        iou: float = 0.7,
        max_det: int = 100,
    ) -> None:
        if imgsz <= 0 or imgsz % bundle.stride:
            raise ValueError(f"--imgsz must be a positive multiple of {bundle.stride}, got {imgsz}")
        if not 0.0 <= conf <= 1.0 or not 0.0 < iou <= 1.0:
            raise ValueError(
                f"conf must be in [0, 1] and iou in (0, 1], got conf={conf}, iou={iou}"
            )
        self.bundle, self.imgsz, self.conf, self.iou, self.max_det = (
            bundle,
            imgsz,
            conf,
            iou,
            max_det,
        )
        self.model = bundle.model
        self.device = next(self.model.parameters()).device
        self._captured: dict[str, torch.Tensor] = {}
        modules = dict(self.model.named_modules())
        for name in bundle.hooked_layers:
            modules[name].register_forward_hook(self._capture(name))
        self.criterion = self.model.init_criterion()

    def _capture(self, name: str):
        def hook(_module: torch.nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            self._captured[name] = output.detach()

        return hook

    @property
    def is_segment(self) -> bool:
        return self.bundle.task == "segment"

    def settings(self) -> dict[str, Any]:
        return {"imgsz": self.imgsz, "conf": self.conf, "iou": self.iou, "max_det": self.max_det}

    def prepare(self, images: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[Letterbox]]:
        """Letterbox uint8 (H, W, 3) images into a (B, 3, S, S) float batch in 0..1."""
        boxes = [Letterbox.fit(image.shape[1], image.shape[0], self.imgsz) for image in images]
        squares = np.stack([box.apply(image) for box, image in zip(boxes, images, strict=True)])
        pixels = torch.from_numpy(squares).permute(0, 3, 1, 2).float().div_(255.0)
        return pixels.to(self.device), boxes

    @torch.no_grad()
    def forward(
        self, pixels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, Any]]:
        """(decoded output, prototypes or None, raw head output) of one eval forward pass."""
        self._captured.clear()
        decoded, raw = self.model(pixels)
        proto = None
        if isinstance(decoded, tuple):  # segmentation: (outputs, proto)
            decoded, proto = decoded
        return decoded, proto, raw

    def detections(
        self, decoded: torch.Tensor, proto: torch.Tensor | None
    ) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Per image: (n, 6) ``x1 y1 x2 y2 conf class`` in the square, and (n, S/4, S/4) masks."""
        from ultralytics.utils import ops
        from ultralytics.utils.nms import non_max_suppression

        kept = non_max_suppression(
            decoded, self.conf, self.iou, max_det=self.max_det, nc=self.bundle.num_classes
        )
        out = []
        for index, det in enumerate(kept):
            masks = None
            if proto is not None:
                masks = ops.process_mask(
                    proto[index], det[:, 6:], det[:, :4], (self.imgsz, self.imgsz)
                )
            out.append((det[:, :6], masks))
        return out

    @torch.no_grad()
    def extract(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[LabelSet | None],
        image_ids: Sequence[int],
    ) -> list[ImageRecord]:
        """Rows for a batch of images (uint8 (H, W, 3)) with their labels (or None)."""
        pixels, boxes = self.prepare(images)
        decoded, proto, raw = self.forward(pixels)
        features = self._features(len(images))
        detections = self.detections(decoded, proto)
        losses = self._losses(raw, labels, boxes)
        records = []
        for index, image_id in enumerate(image_ids):
            det, masks = detections[index]
            gap = [vector for layer, kind, vector in features[index] if kind == "gap"]
            records.append(
                ImageRecord(
                    image_id=int(image_id),
                    embedding=np.concatenate(gap).astype(np.float32),
                    features=features[index],
                    predictions=self._prediction_rows(det, masks, boxes[index]),
                    losses=losses[index],
                    metrics=detection_metrics(
                        det, masks, labels[index], boxes[index], self.bundle.names
                    ),
                )
            )
        return records

    def _features(self, batch_size: int) -> list[list[tuple[str, str, np.ndarray]]]:
        out: list[list[tuple[str, str, np.ndarray]]] = [[] for _ in range(batch_size)]
        for name in self.bundle.hooked_layers:
            output = self._captured[name]
            gap = output.float().mean(dim=(2, 3)).cpu().numpy().astype(np.float32)
            raw = output.half().cpu().numpy() if name == self.bundle.bottleneck_layer else None
            for index in range(batch_size):
                out[index].append((name, "gap", gap[index]))
                if raw is not None:
                    out[index].append((name, "map", raw[index]))
        return out

    def _losses(
        self, raw: dict[str, Any], labels: Sequence[LabelSet | None], boxes: Sequence[Letterbox]
    ) -> list[dict[str, float | None] | None]:
        labelled = [index for index, label in enumerate(labels) if label is not None]
        if not labelled:
            return [None] * len(labels)
        subset = {
            key: [value[labelled] for value in raw[key]] if key == "feats" else raw[key][labelled]
            for key in raw
            if key in ("boxes", "scores", "feats", "mask_coefficient", "proto")
        }
        targets = [
            (
                labels[i].classes,
                boxes[i].boxes_to_letterbox(labels[i].boxes),
                label_masks(labels[i], boxes[i]) if self.is_segment else None,
            )
            for i in labelled
        ]
        values = (
            per_sample_losses(self.criterion, subset, criterion_batch(targets, self.device))
            .cpu()
            .numpy()
        )
        out: list[dict[str, float | None] | None] = [None] * len(labels)
        for row, index in zip(values, labelled, strict=True):
            out[index] = {
                "box": float(row[0]),
                "cls": float(row[1]),
                "dfl": float(row[2]),
                "seg": None if np.isnan(row[3]) else float(row[3]),
            }
        return out

    def _prediction_rows(
        self, det: torch.Tensor, masks: torch.Tensor | None, box: Letterbox
    ) -> list[dict[str, Any]]:
        if len(det) == 0:
            return []
        det = det.cpu().numpy()
        xyxy = box.xyxy_to_image(det[:, :4])
        rows = []
        for index in range(len(det)):
            class_id = int(det[index, 5])
            mask_png = None
            if masks is not None:
                full = box.mask_to_image(masks[index].cpu().numpy().astype(np.uint8))
                mask_png = cv2.imencode(".png", full * 255)[1].tobytes()
            x1, y1, x2, y2 = (float(v) for v in xyxy[index])
            rows.append(
                {
                    "x1": x1,
                    "y1": y1,
                    "x2": x2,
                    "y2": y2,
                    "confidence": float(det[index, 4]),
                    "class_id": class_id,
                    "class_name": self.bundle.names.get(class_id, str(class_id)),
                    "mask_png": mask_png,
                }
            )
        return rows
