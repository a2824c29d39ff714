"""Semantic-segmentation metrics from a confusion matrix: per-class IoU and mean IoU.

The confusion matrix ``C`` has ground truth on the rows and prediction on the columns,
``C[t, p]`` = number of pixels of true class ``t`` predicted as ``p``. Then, per class,

    IoU = TP / (TP + FP + FN) = C[k, k] / (row_k + col_k - C[k, k]).

A class that appears neither in the ground truth nor in the prediction has an undefined
IoU (NaN) and is left out of the mean, the convention of the Cityscapes / CamVid
scripts. Pixels whose ground truth equals ``ignore_index`` are not counted at all.

Example:
    >>> import numpy as np
    >>> target = np.array([[0, 0], [1, 1]])
    >>> pred = np.array([[0, 1], [1, 1]])
    >>> round(mean_iou(pred, target, num_classes=2), 4)
    0.5833
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch

ArrayLike = npt.NDArray[np.integer] | torch.Tensor


@dataclass(frozen=True)
class SegmentationScores:
    """Scores computed from one confusion matrix.

    Attributes:
        iou: Per-class IoU, NaN where a class is absent from both prediction and truth.
        miou: Mean of the defined per-class IoUs (NaN if none is defined).
        pixel_accuracy: Fraction of counted pixels predicted correctly.
        confusion: The ``(K, K)`` int64 confusion matrix (rows truth, columns prediction).
    """

    iou: npt.NDArray[np.float64]
    miou: float
    pixel_accuracy: float
    confusion: npt.NDArray[np.int64] = field(repr=False)


def _as_numpy(values: ArrayLike, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    if not isinstance(values, np.ndarray):
        raise ValueError(f"{name} must be a NumPy array or torch tensor, got {type(values)}")
    if not (np.issubdtype(values.dtype, np.integer) or values.dtype == np.bool_):
        raise ValueError(f"{name} must hold integer class indices, got dtype {values.dtype}")
    return values


def confusion_matrix(
    pred: ArrayLike,
    target: ArrayLike,
    num_classes: int,
    ignore_index: int | None = None,
) -> npt.NDArray[np.int64]:
    """Count ``(truth, prediction)`` pairs into a ``(num_classes, num_classes)`` matrix.

    Args:
        pred: Predicted class indices, any shape.
        target: True class indices, the same shape as ``pred``.
        num_classes: Number of classes ``K``; valid indices are ``0..K-1``.
        ignore_index: Truth value whose pixels are skipped (e.g. 11 for CamVid, 255).

    Raises:
        ValueError: shapes differ, dtypes are not integer, or a counted value lies
            outside ``0..K-1``.
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    pred_np, target_np = _as_numpy(pred, "pred"), _as_numpy(target, "target")
    if pred_np.shape != target_np.shape:
        raise ValueError(f"pred shape {pred_np.shape} differs from target shape {target_np.shape}")
    pred_flat = pred_np.reshape(-1).astype(np.int64)
    target_flat = target_np.reshape(-1).astype(np.int64)
    if ignore_index is not None:
        keep = target_flat != ignore_index
        pred_flat, target_flat = pred_flat[keep], target_flat[keep]
    for name, values in (("target", target_flat), ("pred", pred_flat)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"{name} holds values in [{values.min()}, {values.max()}]; accepted: "
                f"0..{num_classes - 1}"
                + (f" or ignore_index={ignore_index} (target)" if ignore_index is not None else "")
            )
    counts = np.bincount(target_flat * num_classes + pred_flat, minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def scores_from_confusion(confusion: npt.NDArray[np.integer]) -> SegmentationScores:
    """Per-class IoU, mean IoU and pixel accuracy of a ``(K, K)`` confusion matrix."""
    matrix = np.asarray(confusion, dtype=np.int64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"confusion matrix must be square (K, K), got shape {matrix.shape}")
    true_positive = np.diag(matrix).astype(np.float64)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - true_positive
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, true_positive / np.maximum(union, 1), np.nan)
    defined = iou[~np.isnan(iou)]
    total = matrix.sum()
    return SegmentationScores(
        iou=iou,
        miou=float(defined.mean()) if defined.size else float("nan"),
        pixel_accuracy=float(true_positive.sum() / total) if total else float("nan"),
        confusion=matrix,
    )


def per_class_iou(
    pred: ArrayLike, target: ArrayLike, num_classes: int, ignore_index: int | None = None
) -> npt.NDArray[np.float64]:
    """Per-class IoU of one prediction (NaN for classes absent from both maps)."""
    return scores_from_confusion(confusion_matrix(pred, target, num_classes, ignore_index)).iou


def mean_iou(
    pred: ArrayLike, target: ArrayLike, num_classes: int, ignore_index: int | None = None
) -> float:
    """Mean IoU of one prediction over the classes whose IoU is defined."""
    return scores_from_confusion(confusion_matrix(pred, target, num_classes, ignore_index)).miou


class MeanIoU:
    """Accumulate a confusion matrix over many images, then score it once.

    Scoring the summed matrix (not averaging per-image mIoU) is the standard
    data-set-level mIoU.

    Example:
        >>> import numpy as np
        >>> metric = MeanIoU(num_classes=2, ignore_index=255)
        >>> metric.update(np.array([0, 1]), np.array([0, 255]))
        >>> metric.compute().iou.tolist()
        [1.0, nan]
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred: ArrayLike, target: ArrayLike) -> None:
        """Add one prediction / truth pair (any matching shapes) to the matrix."""
        self.confusion += confusion_matrix(pred, target, self.num_classes, self.ignore_index)

    def compute(self) -> SegmentationScores:
        """Score everything added since the last :meth:`reset`."""
        return scores_from_confusion(self.confusion)

    def reset(self) -> None:
        """Forget all accumulated pixels."""
        self.confusion[:] = 0


# --------------------------------------------------------------------------------------
# Boundary F1 (pixel tolerance) and small-object IoU, streaming like MeanIoU.
# --------------------------------------------------------------------------------------


def _label_maps(
    pred: ArrayLike, target: ArrayLike, num_classes: int, ignore_index: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated 2-D int64 prediction, truth and the mask of counted (not ignored) pixels."""
    pred_np, target_np = _as_numpy(pred, "pred"), _as_numpy(target, "target")
    if pred_np.ndim != 2 or pred_np.shape != target_np.shape:
        raise ValueError(
            f"pred and target must be (H, W) maps of one shape, got {pred_np.shape} and "
            f"{target_np.shape}"
        )
    pred_np, target_np = pred_np.astype(np.int64), target_np.astype(np.int64)
    valid = np.ones(target_np.shape, bool) if ignore_index is None else target_np != ignore_index
    for name, values in (("pred", pred_np), ("target", target_np[valid])):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"{name} holds values in [{values.min()}, {values.max()}]; accepted: "
                f"0..{num_classes - 1}"
                + (f" or ignore_index={ignore_index} (target)" if ignore_index is not None else "")
            )
    return pred_np, target_np, valid


def class_boundaries(labels: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Pixels of a label map that touch (4-neighbourhood) a pixel of another label.

    Args:
        labels: (H, W) integer label map.
        valid: optional (H, W) bool mask; a neighbour outside it never makes a boundary
            (edges against ignored truth are not boundaries of the truth).

    Returns:
        (H, W) bool map; the image border itself is not a boundary.

    Example:
        >>> class_boundaries(np.array([[0, 0, 1, 1]])).astype(int).tolist()
        [[0, 1, 1, 0]]
    """
    valid = np.ones(labels.shape, bool) if valid is None else valid
    boundary = np.zeros(labels.shape, bool)
    for axis in (0, 1):
        here = [slice(None)] * 2
        there = [slice(None)] * 2
        here[axis], there[axis] = slice(None, -1), slice(1, None)
        here_t, there_t = tuple(here), tuple(there)
        differs = (labels[here_t] != labels[there_t]) & valid[here_t] & valid[there_t]
        boundary[here_t] |= differs
        boundary[there_t] |= differs
    return boundary


@dataclass(frozen=True)
class BoundaryScores:
    """Boundary precision / recall / F1, per class and pooled.

    Attributes:
        precision: (K,) share of predicted boundary pixels within tolerance of a true one.
        recall: (K,) share of true boundary pixels within tolerance of a predicted one.
        f1: (K,) harmonic mean; NaN for classes with no boundary in truth or prediction.
        mean_f1: mean of the defined per-class F1 (the BF score of Csurka et al. 2013).
        pooled_f1: F1 of all classes' boundary pixels counted together.
        tolerance: the pixel tolerance used.
    """

    precision: npt.NDArray[np.float64]
    recall: npt.NDArray[np.float64]
    f1: npt.NDArray[np.float64]
    mean_f1: float
    pooled_f1: float
    tolerance: float


class BoundaryF1:
    """Per-class boundary F1 with a pixel tolerance, accumulated over images.

    For every class ``k``, the boundary of the prediction's ``k`` region and of the
    truth's ``k`` region are compared with distance transforms (SciPy): a predicted
    boundary pixel is a hit if a true boundary pixel of ``k`` lies within
    ``tolerance`` pixels (Euclidean), and vice versa for recall. Counts are summed over
    images, so big images weigh more (like the data-set mIoU). Predicted boundaries on
    ignored truth are not counted, nor are truth edges against ignored pixels.

    Example:
        >>> truth = np.zeros((6, 6), int); truth[:, 3:] = 1
        >>> shifted = np.zeros((6, 6), int); shifted[:, 4:] = 1
        >>> metric = BoundaryF1(num_classes=2, tolerance=0)
        >>> metric.update(shifted, truth)
        >>> metric.compute().mean_f1  # one pixel off, zero tolerance: no hit
        0.0
        >>> metric = BoundaryF1(num_classes=2, tolerance=1)
        >>> metric.update(shifted, truth)
        >>> metric.compute().mean_f1
        1.0
    """

    def __init__(
        self, num_classes: int, tolerance: float = 2.0, ignore_index: int | None = None
    ) -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        if tolerance < 0:
            raise ValueError(f"tolerance must be >= 0 pixels, got {tolerance}")
        self.num_classes = num_classes
        self.tolerance = float(tolerance)
        self.ignore_index = ignore_index
        # Rows: predicted hits, predicted total, true hits, true total.
        self.counts = np.zeros((4, num_classes), dtype=np.int64)

    def update(self, pred: ArrayLike, target: ArrayLike) -> None:
        """Add one (H, W) prediction / truth pair."""
        from scipy import ndimage  # local: keeps importing the metrics module cheap

        pred_np, target_np, valid = _label_maps(pred, target, self.num_classes, self.ignore_index)
        pred_edges = class_boundaries(pred_np) & valid
        true_edges = class_boundaries(target_np, valid)
        for k in np.union1d(np.unique(pred_np[pred_edges]), np.unique(target_np[true_edges])):
            pred_k = pred_edges & (pred_np == k)
            true_k = true_edges & (target_np == k)
            self.counts[1, k] += pred_k.sum()
            self.counts[3, k] += true_k.sum()
            if pred_k.any() and true_k.any():
                to_true = ndimage.distance_transform_edt(~true_k)
                to_pred = ndimage.distance_transform_edt(~pred_k)
                self.counts[0, k] += (to_true[pred_k] <= self.tolerance).sum()
                self.counts[2, k] += (to_pred[true_k] <= self.tolerance).sum()

    def compute(self) -> BoundaryScores:
        """Precision, recall and F1 of everything added since the last :meth:`reset`."""
        pred_hits, pred_total, true_hits, true_total = self.counts.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(pred_total > 0, pred_hits / np.maximum(pred_total, 1), 0.0)
            recall = np.where(true_total > 0, true_hits / np.maximum(true_total, 1), 0.0)
            f1 = np.where(
                precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0
            )
        undefined = (pred_total == 0) & (true_total == 0)
        f1 = np.where(undefined, np.nan, f1)
        pooled_p = pred_hits.sum() / max(pred_total.sum(), 1)
        pooled_r = true_hits.sum() / max(true_total.sum(), 1)
        pooled = 2 * pooled_p * pooled_r / (pooled_p + pooled_r) if pooled_p + pooled_r else 0.0
        defined = f1[~np.isnan(f1)]
        return BoundaryScores(
            precision=np.where(undefined, np.nan, precision),
            recall=np.where(undefined, np.nan, recall),
            f1=f1,
            mean_f1=float(defined.mean()) if defined.size else float("nan"),
            pooled_f1=float(pooled),
            tolerance=self.tolerance,
        )

    def reset(self) -> None:
        """Forget all accumulated boundary pixels."""
        self.counts[:] = 0


@dataclass(frozen=True)
class SmallObjectScores:
    """IoU of small ground-truth objects.

    Attributes:
        miou: mean IoU over all small objects seen (object-averaged).
        class_iou: (K,) mean IoU of the small objects of each class (NaN if none).
        objects: (K,) number of small objects per class.
    """

    miou: float
    class_iou: npt.NDArray[np.float64]
    objects: npt.NDArray[np.int64]


class SmallObjectIoU:
    """IoU of the small objects of the truth: components below an area fraction.

    An *object* is an 8-connected component of one class in the truth whose area is
    below ``area_fraction`` of the image's counted pixels. Its IoU is

        |pred == k inside the object| / |object  ∪  (pred == k within ``margin`` px)|,

    so false positives next to the object count against it, but the class's pixels
    elsewhere in the image do not (a large correct region far away must not drown a
    missed traffic sign). Scores are averaged over objects.

    Example:
        >>> truth = np.zeros((10, 10), int); truth[2:4, 2:4] = 1
        >>> pred = np.zeros((10, 10), int); pred[2:4, 2:5] = 1
        >>> metric = SmallObjectIoU(num_classes=2, area_fraction=0.1)
        >>> metric.update(pred, truth)
        >>> round(metric.compute().miou, 3)
        0.667
    """

    def __init__(
        self,
        num_classes: int,
        area_fraction: float = 0.01,
        margin: int = 5,
        ignore_index: int | None = None,
    ) -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        if not 0 < area_fraction <= 1:
            raise ValueError(f"area_fraction must lie in (0, 1], got {area_fraction}")
        if margin < 0:
            raise ValueError(f"margin must be >= 0 pixels, got {margin}")
        self.num_classes = num_classes
        self.area_fraction = float(area_fraction)
        self.margin = int(margin)
        self.ignore_index = ignore_index
        self.iou_sum = np.zeros(num_classes, dtype=np.float64)
        self.objects = np.zeros(num_classes, dtype=np.int64)

    def update(self, pred: ArrayLike, target: ArrayLike) -> None:
        """Add one (H, W) prediction / truth pair."""
        from scipy import ndimage

        pred_np, target_np, valid = _label_maps(pred, target, self.num_classes, self.ignore_index)
        limit = self.area_fraction * valid.sum()
        eight = np.ones((3, 3), bool)
        for k in np.unique(target_np[valid]):
            components, count = ndimage.label((target_np == k) & valid, structure=eight)
            if count == 0:
                continue
            areas = np.bincount(components.ravel(), minlength=count + 1)
            predicted_k = (pred_np == k) & valid
            for index, box in enumerate(ndimage.find_objects(components), start=1):
                if areas[index] >= limit:
                    continue
                self.iou_sum[k] += self._object_iou(components, index, box, predicted_k)
                self.objects[k] += 1

    def _object_iou(
        self, components: np.ndarray, index: int, box: tuple, predicted_k: np.ndarray
    ) -> float:
        from scipy import ndimage

        # Work in the object's box grown by the margin: cost follows the object's size.
        rows = slice(max(box[0].start - self.margin, 0), box[0].stop + self.margin)
        cols = slice(max(box[1].start - self.margin, 0), box[1].stop + self.margin)
        obj = components[rows, cols] == index
        near = ndimage.distance_transform_edt(~obj) <= self.margin if self.margin else obj
        pred_near = predicted_k[rows, cols] & near
        union = (obj | pred_near).sum()
        return float((obj & pred_near).sum() / union)

    def compute(self) -> SmallObjectScores:
        """Scores of everything added since the last :meth:`reset`."""
        with np.errstate(invalid="ignore", divide="ignore"):
            class_iou = np.where(
                self.objects > 0, self.iou_sum / np.maximum(self.objects, 1), np.nan
            )
        total = self.objects.sum()
        return SmallObjectScores(
            miou=float(self.iou_sum.sum() / total) if total else float("nan"),
            class_iou=class_iou,
            objects=self.objects.copy(),
        )

    def reset(self) -> None:
        """Forget all accumulated objects."""
        self.iou_sum[:] = 0.0
        self.objects[:] = 0
