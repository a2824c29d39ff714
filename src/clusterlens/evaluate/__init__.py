"""Metrics shared by every capability, and access to the annotated data sets."""

from __future__ import annotations

from clusterlens.evaluate.bsds import BsdsSample, iter_bsds, load_bsds_sample
from clusterlens.evaluate.datasets import data_root, dataset_dir
from clusterlens.evaluate.segmentation import MeanIoU, confusion_matrix, mean_iou, per_class_iou
from clusterlens.evaluate.superpixel import (
    achievable_segmentation_accuracy,
    boundary_recall,
    compactness,
    explained_variation,
    superpixel_scores,
    undersegmentation_error,
    variance_summary,
)

__all__ = [
    "BsdsSample",
    "MeanIoU",
    "achievable_segmentation_accuracy",
    "boundary_recall",
    "compactness",
    "confusion_matrix",
    "data_root",
    "dataset_dir",
    "explained_variation",
    "iter_bsds",
    "load_bsds_sample",
    "mean_iou",
    "per_class_iou",
    "superpixel_scores",
    "undersegmentation_error",
    "variance_summary",
]
