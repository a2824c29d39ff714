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
