"""Train the adaptive balancer on CamVid train with the offline model's coupling.

    python -m clusterlens.relevance.train_balancer [--data DIR] [--out FILE] [--limit N]

For every train image and every class covering at least 0.5% of it, the class name
is the query: the ways of knowing are averaged over a 32x32 grid, and each cell's
truth is the share of that class's pixels in it. Deterministic with ``--seed``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from clusterlens.allocate import CellScorer, PatchGrid
from clusterlens.relevance.adaptive import (
    BalancerExample,
    context_of,
    default_balancer_path,
    fit_balancer,
)
from clusterlens.relevance.ways import ways_of_knowing

DEFAULT_OUT = default_balancer_path()
MIN_SHARE = 0.005


def examples_from_camvid(split: str, data: str | None, limit: int | None) -> list[BalancerExample]:
    from clusterlens.evaluate.camvid import list_pairs, load_pair
    from clusterlens.models import load_model

    model = load_model("offline:camvid")
    examples = []
    for image_path, label_path in tqdm(list_pairs(split, data)[:limit], desc=f"CamVid {split}"):
        image, labels = load_pair(image_path, label_path)
        probabilities = model.predict_proba(image)
        base = ways_of_knowing(image)
        grid = PatchGrid.from_count(*labels.shape, 32)
        for index in range(len(model.class_names)):
            mask = labels == index
            if mask.mean() < MIN_SHARE:
                continue
            ways = base.copy()
            ways[2] = probabilities[index]
            cells = CellScorer.from_maps(ways, grid).mean_levels[0]  # (3, 32, 32)
            examples.append(
                BalancerExample(
                    features=cells.reshape(3, -1).T.contiguous(),
                    truth=torch.from_numpy(grid.cell_means(mask.astype(np.float32))[0].reshape(-1)),
                    context=context_of(ways),
                )
            )
    return examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=None, help="folder holding camvid/ (default: shared data)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    examples = examples_from_camvid("train", args.data, args.limit)
    model, losses = fit_balancer(examples, epochs=args.epochs, seed=args.seed)
    model.save(args.out)
    weights = model(torch.stack([e.context for e in examples])).detach()
    summary = {
        "cases": len(examples),
        "loss_first": round(losses[0], 5),
        "loss_last": round(losses[-1], 5),
        "mean_weights": dict(
            zip(
                ("information", "salience", "coupling"),
                [round(float(w), 4) for w in weights.mean(0)],
                strict=True,
            )
        ),
        "weight_range": [
            [round(float(a), 4), round(float(b), 4)]
            for a, b in zip(weights.min(0).values, weights.max(0).values, strict=True)
        ],
    }
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
