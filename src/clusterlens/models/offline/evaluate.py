"""Score the offline CamVid model on a split at full 480x360 resolution.

Run as a module to reproduce the figures of the model card::

    python -m clusterlens.models.offline.evaluate --split val

Predictions are made at the model's working scale and the logits are upsampled to
the full frame before the arg-max, so the score is the one at CamVid's native size.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from tqdm import tqdm

from clusterlens.evaluate.camvid import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES, load_split_uint8
from clusterlens.evaluate.segmentation import MeanIoU, SegmentationScores
from clusterlens.models.offline._inference import predict_logits


def evaluate_arrays(
    model: nn.Module,
    images: npt.NDArray[np.uint8],
    labels: npt.NDArray[np.uint8],
    *,
    scale: float,
    flip: bool,
    stride: int,
    progress: bool = False,
) -> SegmentationScores:
    """mIoU of ``model`` over preloaded ``(N, H, W, 3)`` uint8 images and their labels."""
    metric = MeanIoU(NUM_CLASSES, ignore_index=IGNORE_INDEX)
    model.eval()
    for image, label in tqdm(
        zip(images, labels, strict=True), total=len(images), disable=not progress, desc="eval"
    ):
        logits = predict_logits(model, image.astype(np.float32) / 255.0, scale, flip, stride)
        metric.update(logits.argmax(0).numpy(), label)
    return metric.compute()


def scores_to_dict(scores: SegmentationScores) -> dict:
    """JSON-friendly per-class IoU, mIoU and pixel accuracy (in [0, 1])."""
    return {
        "miou": round(scores.miou, 4),
        "pixel_accuracy": round(scores.pixel_accuracy, 4),
        "iou": {name: round(float(v), 4) for name, v in zip(CLASS_NAMES, scores.iou, strict=True)},
    }


def format_scores(scores: SegmentationScores) -> str:
    """A Markdown table of per-class IoU plus mIoU, in percent."""
    rows = ["| class | IoU (%) |", "|---|---:|"]
    rows += [f"| {name} | {100 * v:.1f} |" for name, v in zip(CLASS_NAMES, scores.iou, strict=True)]
    rows.append(f"| **mIoU** | **{100 * scores.miou:.1f}** |")
    rows.append(f"| pixel accuracy | {100 * scores.pixel_accuracy:.1f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints a Markdown table and optionally writes JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="CamVid folder or its parent")
    parser.add_argument("--split", default="val", choices=("train", "val", "test"))
    parser.add_argument("--model", default="offline:camvid", help="registry name or .pt path")
    parser.add_argument("--scale", type=float, default=None, help="override working scale")
    parser.add_argument("--no-flip", action="store_true", help="disable flip TTA")
    parser.add_argument("--json", default=None, help="write scores to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, os.cpu_count() or 1))

    from clusterlens.models import load_model

    segmenter = load_model(args.model)
    images, labels = load_split_uint8(args.split, args.data)
    scale = args.scale if args.scale is not None else segmenter.scale
    flip = not args.no_flip
    scores = evaluate_arrays(
        segmenter.network,
        images,
        labels,
        scale=scale,
        flip=flip,
        stride=segmenter.stride,
        progress=True,
    )
    print(f"{args.split}: {len(images)} images, scale {scale}, flip TTA {flip}")
    print(format_scores(scores))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {"split": args.split, "scale": scale, "flip": flip, **scores_to_dict(scores)},
                handle,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
