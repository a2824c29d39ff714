"""Does test-time BatchNorm adaptation (AdaBN) close the offline model's cross-drive gap?

For each fold model of a leave-one-drive-out run (``clusterlens.models.offline.cv``),
score its held-out drive (every second frame, scale 0.5, flip TTA), then recompute its
BatchNorm statistics on those frames' images (no labels; Li et al., "Revisiting Batch
Normalization For Practical Domain Adaptation", 2016) and score again. A diagnosis for
issue 17 (the figures are in docs/model-card-offline-camvid.md), not a shipped feature.

Run: ``.venv/bin/python benchmarks/offline_adabn.py outputs/offline-v2-cv``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from clusterlens.models import load_model
from clusterlens.models.offline._data import normalize
from clusterlens.models.offline._inference import working_size
from clusterlens.models.offline.evaluate import evaluate_arrays
from clusterlens.models.offline.train import SEQUENCES, TrainConfig, load_frames

SCALE = 0.5


def adapt_batchnorm(network: nn.Module, images: np.ndarray, stride: int) -> None:
    """Replace every BatchNorm's running statistics by those of ``images``."""
    for module in network.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average over every batch
    height, width = working_size(*images.shape[1:3], SCALE, stride)
    network.train()
    with torch.no_grad():
        for start in range(0, len(images), 8):
            batch = [cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
                     for image in images[start : start + 8]]  # fmt: skip
            network(normalize(np.stack(batch)))
    network.eval()


def held_out_miou(network: nn.Module, images, labels, stride: int) -> float:
    scores = evaluate_arrays(network, images, labels, scale=SCALE, flip=True, stride=stride)
    return round(100 * scores.miou, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folds", type=Path, help="a cv --out folder (one subfolder per drive)")
    parser.add_argument("--data", default=None, help="CamVid folder or its parent")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {}
    for drive in SEQUENCES:
        segmenter = load_model(f"offline:{(args.folds / drive / 'camvid_unet.pt').resolve()}")
        network = segmenter.network.float().eval()
        config = TrainConfig(splits=("train", "val"), holdout=drive)
        _, (images, labels) = load_frames(config, args.data)
        images, labels = images[::2], labels[::2]

        before = held_out_miou(network, images, labels, segmenter.stride)
        adapt_batchnorm(network, images, segmenter.stride)
        after = held_out_miou(network, images, labels, segmenter.stride)
        results[drive] = {"frames": len(images), "miou": before, "miou_adabn": after}
        print(drive, results[drive], flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
