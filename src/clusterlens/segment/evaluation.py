"""Score a segmenter on a labelled data set: mIoU, boundary F1, small-object IoU, time.

Shared by ``clusterlens seg-bench`` and ``benchmarks/segment.py`` so both measure the
same thing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from clusterlens.evaluate.seg_datasets import SegDataset
from clusterlens.evaluate.segmentation import BoundaryF1, MeanIoU, SmallObjectIoU
from clusterlens.segment.mhqr import MHQRConfig, MHQRSegmenter, SegmentationResult

#: Defaults of the benchmark: 2 px boundary tolerance, objects under 1 % of the image.
BOUNDARY_TOLERANCE = 2.0
SMALL_OBJECT_FRACTION = 0.01

#: Configurations without prompts or masks, by name: the dense predictor alone, its
#: multi-scale average (test-time augmentation) and its coarse-to-fine refinement.
DENSE_MODES = ("dense", "dense-multiscale", "dense-refined")


def evaluate_segmenter(
    segmenter: MHQRSegmenter,
    dataset: SegDataset,
    config: MHQRConfig | str | None,
    tolerance: float = BOUNDARY_TOLERANCE,
    small_fraction: float = SMALL_OBJECT_FRACTION,
    on_image: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run one configuration over ``dataset`` and score it.

    Args:
        segmenter: the pipeline (its predictor and proposer are used as they are).
        dataset: labelled images; their class names are the vocabulary.
        config: the stages to run, or one of :data:`DENSE_MODES` (None = ``dense``).
        tolerance: boundary F1 tolerance in pixels.
        small_fraction: truth components below this share of the image are small objects.
        on_image: called with the image index after each image (progress).

    Raises:
        ValueError: an unknown dense mode.

    Returns:
        ``{"config", "images", "miou", "pixel_accuracy", "boundary_f1",
        "boundary_f1_pooled", "small_object_iou", "small_objects", "seconds_per_image",
        "iou"}`` (scores in [0, 1]; ``iou`` per class name).
    """
    classes, ignore = dataset.num_classes, dataset.ignore_index
    miou = MeanIoU(classes, ignore_index=ignore)
    boundary = BoundaryF1(classes, tolerance=tolerance, ignore_index=ignore)
    small = SmallObjectIoU(classes, area_fraction=small_fraction, ignore_index=ignore)
    run = _runner(segmenter, "dense" if config is None else config)
    seconds = 0.0
    for index, (image, label) in enumerate(dataset):
        started = time.perf_counter()
        result = run(image, dataset.class_names)
        seconds += time.perf_counter() - started
        for metric in (miou, boundary, small):
            metric.update(result.labels, label)
        if on_image is not None:
            on_image(index)
    scores, edges, objects = miou.compute(), boundary.compute(), small.compute()
    return {
        "config": config.describe() if isinstance(config, MHQRConfig) else config or "dense",
        "images": len(dataset),
        "miou": scores.miou,
        "pixel_accuracy": scores.pixel_accuracy,
        "boundary_f1": edges.mean_f1,
        "boundary_f1_pooled": edges.pooled_f1,
        "small_object_iou": objects.miou,
        "small_objects": int(objects.objects.sum()),
        "seconds_per_image": seconds / max(len(dataset), 1),
        "iou": {
            name: float(value) for name, value in zip(dataset.class_names, scores.iou, strict=True)
        },
    }


def _runner(
    segmenter: MHQRSegmenter, config: MHQRConfig | str
) -> Callable[..., SegmentationResult]:
    """The segmenter method that runs ``config``."""
    if isinstance(config, MHQRConfig):
        return _with_config(segmenter, config).segment
    methods = {
        "dense": segmenter.dense_only,
        "dense-multiscale": segmenter.dense_multiscale,
        "dense-refined": segmenter.dense_refined,
    }
    if config not in methods:
        raise ValueError(
            f"unknown configuration {config!r}; accepted: an MHQRConfig or "
            f"one of {', '.join(DENSE_MODES)}"
        )
    return methods[config]


def _with_config(segmenter: MHQRSegmenter, config: MHQRConfig) -> MHQRSegmenter:
    """The same components under another stage configuration."""
    if segmenter.config == config:
        return segmenter
    return MHQRSegmenter(
        segmenter.predictor,
        segmenter.proposer,
        config,
        segmenter.generator,
        segmenter.refiner,
        segmenter.merger,
    )
