"""MHQR on CamVid: the dense predictor alone, each stage added, the full pipeline.

Everything runs with no download: the bundled ``offline:camvid`` U-Net as the dense
predictor and the offline region proposer (superpixels + Ward groups). For each
configuration, over the same images: mIoU (11 classes, label 11 ignored), boundary F1
(per-class mean, 2 px tolerance), small-object IoU (truth components under 1 % of the
image, 5 px margin), and seconds per image for the whole configuration (dense
prediction included) on one torch thread.

Run (from the repository root)::

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/segment.py --split val --num-samples 30

``--num-samples N`` takes N images evenly spaced over the split (not the first N, which
are consecutive video frames). Writes ``benchmarks/results/segment.json`` (or
``segment_<split>.json`` for another split) and, for val, the table between the
``segment:start`` / ``segment:end`` markers of ``docs/segment.md`` and of
``docs/benchmarks.md`` (there with the issue's goal and whether it is met).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402

import torch  # noqa: E402

from _report import RESULTS, ROOT, replace_section  # noqa: E402
from clusterlens.evaluate.seg_datasets import SegDataset, load_seg_dataset  # noqa: E402
from clusterlens.segment import (  # noqa: E402
    HierarchicalRefiner,
    MHQRConfig,
    MHQRSegmenter,
    OfflineDensePredictor,
)
from clusterlens.segment.evaluation import evaluate_segmenter  # noqa: E402

DOC = ROOT / "docs" / "segment.md"
BENCHMARKS_DOC = ROOT / "docs" / "benchmarks.md"

#: (label, config, pipeline); config: an MHQRConfig or a dense mode of
#: ``evaluate_segmenter``; pipeline: "default" (``MHQRSegmenter.offline()``, pyramid
#: 0.5 / 0.75 / 0.875), "tta2" (pyramid 0.5 / 0.75, the best plain average on train) or
#: "attention" (the seed's attention refiner instead of the coarse-to-fine one).
CONFIGS: list[tuple[str, MHQRConfig | str, str]] = [
    ("dense alone (shipped scale 0.5)", "dense", "default"),
    ("dense multi-scale average 0.5/0.75/0.875 (no MHQR stage)", "dense-multiscale", "default"),
    ("dense multi-scale average 0.5/0.75 (no MHQR stage)", "dense-multiscale", "tta2"),
    ("coarse-to-fine refinement of the dense map (no prompts)", "dense-refined", "default"),
    ("grid prompts + masks (all stages off)", MHQRConfig(False, False, False), "default"),
    ("+ dynamic queries", MHQRConfig(True, False, False), "default"),
    ("+ dynamic queries + hierarchical refinement", MHQRConfig(True, True, False), "default"),
    ("+ dynamic queries + semantic merging", MHQRConfig(True, False, True), "default"),
    ("full MHQR", MHQRConfig(True, True, True), "default"),
    ("full MHQR with grid prompts", MHQRConfig(False, True, True), "default"),
    ("full MHQR, attention refinement (previous)", MHQRConfig(True, True, True), "attention"),
]


def pipelines() -> dict[str, MHQRSegmenter]:
    """The segmenters the configurations run on (one model load, shared)."""
    default = MHQRSegmenter.offline()
    predictor = default.predictor
    return {
        "default": default,
        "tta2": MHQRSegmenter(
            OfflineDensePredictor(predictor.segmenter, pyramid_scales=(0.5, 0.75)),
            default.proposer,
        ),
        "attention": MHQRSegmenter(predictor, default.proposer, refiner=HierarchicalRefiner()),
    }


def evenly_spaced(dataset: SegDataset, count: int | None) -> SegDataset:
    """``count`` pairs spread over the split (all when None or too many)."""
    if count is None or count >= len(dataset):
        return dataset
    step = len(dataset) / count
    return replace(dataset, pairs=tuple(dataset.pairs[int(i * step)] for i in range(count)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=None, help="camvid folder or its parent (auto)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--num-samples", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = evenly_spaced(load_seg_dataset("camvid", args.root, args.split), args.num_samples)
    segmenters = pipelines()
    print(f"{len(dataset)} CamVid {args.split} images, {len(CONFIGS)} configurations", flush=True)
    rows = []
    started = time.time()
    for label, config, pipeline in CONFIGS:
        row = evaluate_segmenter(segmenters[pipeline], dataset, config)
        row["label"] = label
        rows.append(row)
        print(
            f"  {label:58s} mIoU {100 * row['miou']:.2f}  BF {100 * row['boundary_f1']:.2f}  "
            f"small {100 * row['small_object_iou']:.2f}  {row['seconds_per_image']:.2f} s/img  "
            f"({time.time() - started:.0f} s)",
            flush=True,
        )
    report = {
        "data": f"camvid/{args.split}",
        "images": len(dataset),
        "image_names": [pair[0].name for pair in dataset.pairs],
        "dense_model": "offline:camvid",
        "pyramid_scales": list(segmenters["default"].predictor.pyramid_scales),
        "refiner_radii": list(segmenters["default"].refiner.radii),
        "proposer": "offline (fast superpixels + Ward groups)",
        "metrics": {
            "miou": "11 classes, label 11 ignored, data-set confusion matrix",
            "boundary_f1": "mean over classes of per-class boundary F1, 2 px tolerance",
            "small_object_iou": "truth 8-connected components < 1% of the image, 5 px margin",
            "seconds_per_image": "whole configuration incl. dense prediction",
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), torch threads "
        f"{torch.get_num_threads()}",
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "segment.json" if args.split == "val" else f"segment_{args.split}.json"
    (RESULTS / name).write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(rows, report)
    print(table)
    print(goal_verdict(rows))
    if args.split == "val":
        publish_table(table, goal_verdict(rows))


def markdown(rows: list[dict], report: dict) -> str:
    """The results table, deltas against the dense predictor in points."""
    base = rows[0]
    lines = [
        f"CamVid {report['data'].split('/')[1]}, {report['images']} images; "
        f"{report['dense_model']} + {report['proposer']}; {report['machine']}.",
        "",
        "| configuration | mIoU | Δ | boundary F1 (2 px) | Δ | small-object IoU | Δ | s/image |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [row["label"]]
        for key in ("miou", "boundary_f1", "small_object_iou"):
            cells += [f"{100 * row[key]:.2f}", f"{100 * (row[key] - base[key]):+.2f}"]
        cells.append(f"{row['seconds_per_image']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: Issue 7's goal: full MHQR over the dense predictor alone, in points.
GOAL = {"miou": 3.0, "boundary_f1": 5.0}


def goal_verdict(rows: list[dict]) -> str:
    """Whether the full pipeline meets the goal, and what plain multi-scale averaging
    gives, from the measured rows."""
    base = rows[0]

    def gains(label: str) -> dict[str, float]:
        row = next(row for row in rows if row["label"] == label)
        return {key: 100 * (row[key] - base[key]) for key in GOAL}

    full = gains("full MHQR")
    met = all(full[key] >= GOAL[key] for key in GOAL)
    averages = [row["label"] for row in rows if row["label"].startswith("dense multi-scale")]
    tta = "; ".join(
        f"{label.removesuffix(' (no MHQR stage)')} alone: {gains(label)['miou']:+.2f} mIoU, "
        f"{gains(label)['boundary_f1']:+.2f} boundary F1"
        for label in averages
    )
    return (
        "Goal (full MHQR ≥ +3 mIoU and ≥ +5 boundary F1 over the dense predictor alone): "
        f"**{'met' if met else 'not met'}** ({full['miou']:+.2f} mIoU, "
        f"{full['boundary_f1']:+.2f} boundary F1). For comparison, {tta}."
    )


def publish_table(table: str, verdict: str) -> None:
    """Replace the segment sections of docs/segment.md and docs/benchmarks.md."""
    replace_section(DOC, "segment", table, "# Open-vocabulary segmentation (MHQR)")
    summary = "\n\n".join(
        [
            "## Open-vocabulary segmentation, MHQR stages on CamVid val (`benchmarks/segment.py`)",
            table,
            verdict + " How much is the model run at several scales and how much the MHQR "
            "stages, what was tuned (on train only) and what did not help: "
            "[segment.md](segment.md).",
        ]
    )
    replace_section(BENCHMARKS_DOC, "segment", summary, "# Benchmarks")


if __name__ == "__main__":
    main()
