"""Leave-one-drive-out cross-validation of an offline-model recipe.

CamVid's train and val frames come from three drives (0001TP, 0006R0, 0016E5), and
every val frame is from 0016E5, as are most train frames: a recipe tuned on val is
tuned on the drive it trains on. Here each fold trains on two drives and is judged
on the third, so every figure comes from frames of a drive the model never saw::

    python -m clusterlens.models.offline.cv --out outputs/offline-v2-cv \\
        --recipe v2 --epochs 40

Each fold is an ordinary training run in ``<out>/<drive>`` (resumable: rerun the same
command and finished folds are read back, an interrupted one continues). The report
(``<out>/cv.json`` and ``<out>/cv.md``) gives, for every scored setting (working
scale, flip test-time augmentation), the per-fold and mean mIoU and the mean per-class
IoU, and names the setting the shipped model should use: the best CV mean among
``--choose-scales``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from clusterlens.evaluate.camvid import CLASS_NAMES
from clusterlens.models.offline import train as recipe


def fold_argv(argv: list[str], drive: str, out: Path) -> list[str]:
    """The training command line of one fold: the shared options plus its drive."""
    return [*argv, "--holdout", drive, "--out", str(out / drive)]


def run_fold(argv: list[str], drive: str, out: Path) -> dict:
    """Train (or resume, or read back) one fold; return its exported metadata.

    Raises:
        ValueError: a recipe that picks its epoch by the score on the held-out drive
            (recipe v1): its CV mean would be judged on frames that chose the weights.
    """
    args = recipe.parse_args(fold_argv(argv, drive, out))
    config = recipe.config_from_args(args)
    if config.epoch_choice != "last":
        raise ValueError(
            "cross-validation needs a recipe that exports its last epoch (--recipe v2 or "
            "v1-last); recipe v1 picks the epoch by its score on the held-out drive"
        )
    finished = _finished_fold(out / drive / f"{recipe.CHECKPOINT_NAME}.json", config)
    if finished is not None:
        return finished
    torch.set_num_threads(args.threads)
    return recipe.train(config, args.data, Path(args.out))


def _finished_fold(path: Path, config: recipe.TrainConfig) -> dict | None:
    """The fold's metadata if it finished every epoch with this config, else None (an
    unreadable file, another config or an early export means: train or resume)."""
    try:
        metadata = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if metadata.get("config") != config.to_json():
        return None
    if metadata.get("epochs_completed") != config.epochs:
        return None
    return metadata


def summarize(folds: dict[str, dict], choose_scales: tuple[float, ...]) -> dict:
    """Per-setting fold and mean scores, and the setting chosen on the CV mean."""
    settings = set.intersection(*(set(meta["scores_by_setting"]) for meta in folds.values()))
    table = {}
    for setting in sorted(settings, key=_setting_order):
        per_fold = {drive: meta["scores_by_setting"][setting] for drive, meta in folds.items()}
        iou = np.mean([[s["iou"][name] for name in CLASS_NAMES] for s in per_fold.values()], 0)
        table[setting] = {
            "fold_miou": {drive: scores["miou"] for drive, scores in per_fold.items()},
            "mean_miou": round(float(np.mean([s["miou"] for s in per_fold.values()])), 4),
            "mean_iou": dict(zip(CLASS_NAMES, np.round(iou, 4).tolist(), strict=True)),
        }
    candidates = [key for key in table if _setting_order(key)[0] in choose_scales]
    if not candidates:
        raise ValueError(f"no scored setting at the scales {choose_scales}")
    chosen = max(candidates, key=lambda key: table[key]["mean_miou"])
    return {"settings": table, "chosen": chosen, "folds": sorted(folds)}


def _setting_order(key: str) -> tuple[float, bool]:
    scale, flip = key.split(" ")
    return float(scale), flip == "flip"


def markdown(summary: dict, folds: dict[str, dict]) -> str:
    """The report as Markdown: mIoU per setting and fold, then per-class IoU."""
    drives = summary["folds"]
    lines = [
        "| setting | " + " | ".join(f"held-out {d}" for d in drives) + " | CV mean |",
        "|---|" + "---|" * (len(drives) + 1),
    ]
    for key, row in summary["settings"].items():
        marker = " (chosen)" if key == summary["chosen"] else ""
        cells = " | ".join(f"{100 * row['fold_miou'][d]:.1f}" for d in drives)
        lines.append(f"| {key}{marker} | {cells} | **{100 * row['mean_miou']:.1f}** |")
    chosen = summary["settings"][summary["chosen"]]
    lines += ["", f"Per-class IoU at the chosen setting ({summary['chosen']}):", ""]
    lines += ["| class | " + " | ".join(drives) + " | mean |", "|---|" + "---|" * (len(drives) + 1)]
    for name in CLASS_NAMES:
        cells = " | ".join(
            f"{100 * folds[d]['scores_by_setting'][summary['chosen']]['iou'][name]:.1f}"
            for d in drives
        )
        lines.append(f"| {name} | {cells} | {100 * chosen['mean_iou'][name]:.1f} |")
    hours = sum(folds[d]["training_seconds"] for d in drives) / 3600
    lines += ["", f"Training time of the folds: {hours:.2f} h in all."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: run every fold, then write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder of the folds and the report")
    parser.add_argument("--folds", default=",".join(recipe.SEQUENCES), help="drives to hold out")
    parser.add_argument(
        "--choose-scales", default="0.5,0.625,0.75", help="scales the shipped setting may use"
    )
    known, rest = parser.parse_known_args(argv)
    if any(flag in rest for flag in ("--holdout", "--out")):
        parser.error("--holdout and --out are set per fold; pass the recipe's other options")
    drives = [d for d in known.folds.split(",") if d]
    unknown = sorted(set(drives) - set(recipe.SEQUENCES))
    if unknown:
        parser.error(f"unknown drives {unknown}; CamVid's are {', '.join(recipe.SEQUENCES)}")
    out = Path(known.out)
    folds = {drive: run_fold(rest, drive, out) for drive in drives}
    choose = tuple(float(s) for s in known.choose_scales.split(","))
    summary = summarize(folds, choose)
    (out / "cv.json").write_text(json.dumps(summary, indent=2))
    report = markdown(summary, folds)
    (out / "cv.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
