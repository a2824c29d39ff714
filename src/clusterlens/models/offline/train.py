"""Train the offline CamVid U-Net behind ``offline:camvid``.

Reproduce the shipped checkpoint with::

    python -m clusterlens.models.offline.train --data ../shared/data \
        --out outputs/offline-camvid --seed 0

The run is deterministic for a given ``--seed`` on a given machine / torch build, and
resumable: after every epoch the full training state (weights, optimizer, schedule,
best score, history) is written to ``<out>/last.pt``; rerunning the same command
continues after the last finished epoch. Every epoch draws its batches from a
generator seeded by ``(seed, epoch)``, so a resumed run sees exactly the batches an
uninterrupted run would. An interrupted epoch is redone from its start.

When training ends, the chosen epoch (the best on the evaluation frames, or the last
one) is re-scored at a few working scales with and without flip test-time
augmentation, and exported as an fp16 state dict ``<out>/camvid_unet.pt`` plus
``camvid_unet.json``.

Which frames train and which judge:

- default (the first shipped recipe): train on ``train``, judge on ``val``;
- ``--holdout SEQUENCE``: train on train+val minus one drive (0001TP, 0006R0 or
  0016E5), judge on that drive -- one fold of the leave-one-sequence-out
  cross-validation in :mod:`clusterlens.models.offline.cv`;
- ``--splits train,val`` without ``--holdout``: train on everything, judge on nothing;
  the last epoch is exported at the scale and TTA given (chosen by cross-validation).

``--recipe v2`` selects the recipe meant to generalise (photometric augmentation,
log-uniform scales from an eighth to 0.8 of the frame, last epoch); see the model card.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from clusterlens.atomic import replace_atomically, write_text_atomically
from clusterlens.evaluate.camvid import (
    CLASS_NAMES,
    IGNORE_INDEX,
    NUM_CLASSES,
    list_pairs,
    load_split_uint8,
)
from clusterlens.models.checkpoints import load_checkpoint
from clusterlens.models.offline._data import (
    AugmentConfig,
    class_weights,
    steps_per_epoch,
    training_batches,
)
from clusterlens.models.offline._unet import UNet
from clusterlens.models.offline.evaluate import evaluate_arrays, scores_to_dict

CHECKPOINT_NAME = "camvid_unet"
#: The drives CamVid's train and val frames come from (a frame's name starts with one).
SEQUENCES = ("0001TP", "0006R0", "0016E5")
#: Scales every exported model is scored at: the allocator's coarse scan runs at a
#: quarter of the working scale, its windows and dense pass at the working scale.
REPORT_SCALES = (0.125, 0.25, 0.5, 1.0)


@dataclass(frozen=True)
class TrainConfig:
    """Every setting that changes the result; a resumed run must match it exactly."""

    seed: int = 0
    epochs: int = 30
    batch_size: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-4
    widths: tuple[int, ...] = (16, 32, 64, 128, 256)
    class_weight_power: float = 0.5
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    val_scale: float = 0.5
    final_scales: tuple[float, ...] = (0.5, 0.625, 0.75)
    limit_train: int | None = None
    limit_val: int | None = None
    splits: tuple[str, ...] = ("train",)
    holdout: str | None = None
    epoch_choice: str = "best"
    flip_tta: bool = True

    def to_json(self) -> dict:
        """Plain-JSON form (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Read the command line."""
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        description="Train the offline CamVid U-Net (offline:camvid).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", default=None, help="CamVid folder or its parent (data root)")
    parser.add_argument("--out", required=True, help="output folder; rerun to resume")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr, help="peak one-cycle LR")
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--widths", default=",".join(map(str, defaults.widths)))
    parser.add_argument("--class-weight-power", type=float, default=defaults.class_weight_power)
    parser.add_argument("--base-scale", type=float, default=defaults.augment.base_scale)
    parser.add_argument("--crop", default="x".join(map(str, defaults.augment.crop)), help="HxW")
    parser.add_argument(
        "--recipe", choices=sorted(RECIPES), default=None, help="preset (overrides the above)"
    )
    parser.add_argument("--splits", default="train", help="training splits, e.g. train,val")
    parser.add_argument("--holdout", choices=SEQUENCES, default=None, help="judge on this drive")
    parser.add_argument("--no-flip", action="store_true", help="export without flip TTA")
    parser.add_argument(
        "--export-scale",
        type=float,
        default=defaults.val_scale,
        help="working scale judged each epoch and shipped (v2: the one CV chose)",
    )
    parser.add_argument("--limit-train", type=int, default=None, help="smoke runs: N images")
    parser.add_argument("--limit-val", type=int, default=None, help="smoke runs: N images")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--export-only",
        action="store_true",
        help="export the best epoch so far without training further (time-limited runs)",
    )
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be positive")
    return args


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Build the :class:`TrainConfig` of a command line, validating the compound options."""
    try:
        widths = tuple(int(part) for part in args.widths.split(","))
        crop_h, crop_w = (int(part) for part in args.crop.lower().split("x"))
    except ValueError as err:
        raise ValueError(
            f"--widths must be comma-separated integers (got {args.widths!r}) and --crop "
            f"HxW (got {args.crop!r})"
        ) from err
    splits = tuple(part.strip() for part in args.splits.split(",") if part.strip())
    unknown = sorted(set(splits) - {"train", "val"})
    if unknown or not splits:
        raise ValueError(f"--splits takes train and/or val, comma-separated; got {args.splits!r}")
    config = TrainConfig(
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        widths=widths,
        class_weight_power=args.class_weight_power,
        augment=AugmentConfig(base_scale=args.base_scale, crop=(crop_h, crop_w)),
        limit_train=args.limit_train,
        limit_val=args.limit_val,
        splits=splits,
        holdout=args.holdout,
        flip_tta=not args.no_flip,
        val_scale=args.export_scale,
    )
    if args.recipe:
        config = RECIPES[args.recipe](config)
    return config


def recipe_v2(config: TrainConfig) -> TrainConfig:
    """The recipe meant to generalise (issue: offline model v2), applied to ``config``.

    Photometric augmentation; one scale per batch, log-uniform from an eighth of the
    frame (the allocator's coarse scan) to 0.8; the last epoch, so no held-out frame
    picks the weights; frames from every split given. Width, batch, learning rate and
    epochs are kept from ``config``.
    """
    augment = replace(config.augment, scale_range=(0.25, 1.6), photometric=True, batch_scales=True)
    return replace(config, augment=augment, epoch_choice="last", splits=("train", "val"))


def recipe_v1_last(config: TrainConfig) -> TrainConfig:
    """Recipe v1's views with v2's judging rules: the baseline for cross-validation.

    The same augmentation as the shipped v1 model, but the last epoch is exported and
    frames from every split are given, so leave-one-drive-out folds of v1 and v2 are
    judged alike and their CV means compare the recipes, not the epoch choice.
    """
    return replace(config, epoch_choice="last", splits=("train", "val"))


RECIPES = {"v1": lambda config: config, "v1-last": recipe_v1_last, "v2": recipe_v2}


def _atomic_save(obj: object, path: Path) -> None:
    """``torch.save`` so that an interrupt never leaves a half-written checkpoint."""
    replace_atomically(path, lambda temporary: torch.save(obj, temporary))


def _load_state(path: Path, keys: tuple[str, ...]) -> dict:
    """Load a checkpoint this recipe wrote, refusing anything that could run code.

    The files hold only tensors, numbers, strings and plain containers (the config is
    saved through :meth:`TrainConfig.to_json`, the schedule's state is plain), so
    ``weights_only=True`` needs no extra safe globals; any other object is refused.
    """
    saved = load_checkpoint(path, "offline-model checkpoint", "delete it or use another --out")
    missing = [key for key in keys if not isinstance(saved, dict) or key not in saved]
    if missing:
        raise ValueError(f"{path} is not a checkpoint of this recipe: it lacks {missing}")
    return saved


def _build(config: TrainConfig, total_steps: int):
    torch.manual_seed(config.seed)
    model = UNet(NUM_CLASSES, config.widths).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=total_steps + 1, pct_start=0.1
    )
    return model, optimizer, schedule


def _resume_state(out: Path, config: TrainConfig, model, optimizer, schedule) -> dict:
    """Load ``last.pt`` if present; return the bookkeeping (epoch, best, history)."""
    state = {"epoch": 0, "best_miou": -1.0, "best_epoch": 0, "history": []}
    last = out / "last.pt"
    if not last.exists():
        return state
    saved = _load_state(last, ("config", "model", "optimizer", "schedule", *state))
    if saved["config"] != config.to_json():
        raise ValueError(
            f"{last} was written with a different configuration; use another --out or the "
            f"same options.\nsaved:   {saved['config']}\ncurrent: {config.to_json()}"
        )
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    schedule.load_state_dict(saved["schedule"])
    for key in state:
        state[key] = saved[key]
    print(f"resuming from {last}: {state['epoch']} of {config.epochs} epochs done")
    return state


def _train_one_epoch(model, optimizer, schedule, data, weights, config, epoch) -> float:
    images, labels = data
    rng = np.random.default_rng([config.seed, epoch])
    torch.manual_seed(config.seed * 100_003 + epoch)
    model.train()
    batches = training_batches(images, labels, config.batch_size, config.augment, rng)
    total, count = 0.0, 0
    progress = tqdm(
        batches,
        total=steps_per_epoch(len(images), config.batch_size),
        desc=f"epoch {epoch}/{config.epochs}",
        leave=False,
        mininterval=5.0,
    )
    for batch_images, batch_labels in progress:
        logits = model(batch_images.contiguous(memory_format=torch.channels_last))
        loss = F.cross_entropy(logits, batch_labels, weight=weights, ignore_index=IGNORE_INDEX)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        total, count = total + loss.item(), count + 1
        progress.set_postfix(loss=f"{total / count:.3f}", lr=f"{schedule.get_last_lr()[0]:.2e}")
    return total / max(count, 1)


def load_frames(config: TrainConfig, data_dir: str | None):
    """``(train, judge)`` arrays ``(images, labels)`` for ``config``; judge may be None.

    With ``holdout`` the frames of every split in ``splits`` are divided by drive (the
    file-name prefix), so no frame of the judged drive is ever trained on.
    """
    if config.holdout is None:
        splits = [load_split_uint8(s, data_dir, config.limit_train) for s in config.splits]
        if "val" in config.splits:
            return _stack(splits), None
        return _stack(splits), load_split_uint8("val", data_dir, config.limit_val)
    parts = []
    for split in config.splits:
        images, labels = load_split_uint8(split, data_dir)
        names = [pair[0].name for pair in list_pairs(split, data_dir)]
        held = np.array([name.startswith(config.holdout) for name in names])
        parts.append((images, labels, held))
    images, labels = _stack([(images, labels) for images, labels, _ in parts])
    held = np.concatenate([mask for _, _, mask in parts])
    if not held.any():
        raise ValueError(f"no frame of drive {config.holdout} in splits {config.splits}")
    train_data = (images[~held][: config.limit_train], labels[~held][: config.limit_train])
    judge = (images[held][: config.limit_val], labels[held][: config.limit_val])
    return train_data, judge


def _stack(parts):
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def train(
    config: TrainConfig, data_dir: str | None, out: Path, *, export_only: bool = False
) -> dict:
    """Train (or resume) into ``out``; return the final metadata written beside the weights.

    Args:
        config: The recipe.
        data_dir: CamVid folder or its parent; None looks in the default places.
        out: Output folder holding ``last.pt`` / ``best.pt`` / the exported weights.
        export_only: Skip training and export the chosen epoch so far (a run stopped
            early by a time limit); the metadata records how many epochs were done.
    """
    if config.epoch_choice not in ("best", "last"):
        raise ValueError(f"epoch_choice must be 'best' or 'last', got {config.epoch_choice!r}")
    out.mkdir(parents=True, exist_ok=True)
    train_data, judge = load_frames(config, data_dir)
    if config.epoch_choice == "best" and judge is None:
        raise ValueError("picking the best epoch needs frames to judge on: use --recipe v2")
    if len(train_data[0]) < config.batch_size:
        raise ValueError(
            f"{len(train_data[0])} training images is fewer than --batch-size {config.batch_size}"
        )
    weights = class_weights(train_data[1], config.class_weight_power)
    total_steps = config.epochs * steps_per_epoch(len(train_data[0]), config.batch_size)
    model, optimizer, schedule = _build(config, total_steps)
    state = _resume_state(out, config, model, optimizer, schedule)
    (out / "config.json").write_text(json.dumps(config.to_json(), indent=2))

    if export_only and state["epoch"] == 0:
        raise FileNotFoundError(f"nothing to export: no finished epoch in {out}")
    first_epoch = config.epochs + 1 if export_only else state["epoch"] + 1
    for epoch in range(first_epoch, config.epochs + 1):
        start = time.time()
        loss = _train_one_epoch(model, optimizer, schedule, train_data, weights, config, epoch)
        record = {"epoch": epoch, "loss": round(loss, 4)}
        if judge is not None and _judge_epoch(config, epoch):
            scores = evaluate_arrays(
                model, *judge, scale=config.val_scale, flip=False, stride=model.stride
            )
            record["val_miou"] = round(scores.miou, 4)
            if scores.miou > state["best_miou"]:
                state.update(best_miou=scores.miou, best_epoch=epoch)
                _atomic_save({"model": model.state_dict(), "epoch": epoch}, out / "best.pt")
        record["seconds"] = round(time.time() - start, 1)
        state["history"].append(record)
        state["epoch"] = epoch
        _atomic_save(
            {
                "config": config.to_json(),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                **state,
            },
            out / "last.pt",
        )
        print(json.dumps(record | {"best_miou": round(state["best_miou"], 4)}), flush=True)

    return export(config, model, judge, state, out)


def _judge_epoch(config: TrainConfig, epoch: int) -> bool:
    """Whether to score this epoch: every one when it may be picked, else every fifth
    and the last (a learning curve, for the record only)."""
    return config.epoch_choice == "best" or epoch % 5 == 0 or epoch == config.epochs


def _chosen_epoch(config: TrainConfig, model: UNet, state: dict, out: Path) -> int:
    """Load the exported epoch into ``model``: the best on the judged frames, or the last."""
    if config.epoch_choice == "best":
        best = _load_state(out / "best.pt", ("model", "epoch"))
        model.load_state_dict(best["model"])
        return int(best["epoch"])
    last = _load_state(out / "last.pt", ("model", "epoch"))
    model.load_state_dict(last["model"])
    return int(last["epoch"])


def score_settings(model: UNet, judge, scales) -> dict[str, dict]:
    """Scores of ``model`` on ``judge`` at every scale, with and without flip TTA."""
    scored = {}
    for scale in scales:
        for flip in (False, True):
            scores = evaluate_arrays(model, *judge, scale=scale, flip=flip, stride=model.stride)
            scored[setting_key(scale, flip)] = scores_to_dict(scores)
            print(f"scale {scale}, flip {flip}: mIoU {100 * scores.miou:.2f}", flush=True)
    return scored


def setting_key(scale: float, flip: bool) -> str:
    """How a (scale, flip TTA) setting is named in the metadata, e.g. ``"0.5 flip"``."""
    return f"{scale} {'flip' if flip else 'no-flip'}"


def export(config: TrainConfig, model: UNet, judge, state: dict, out: Path) -> dict:
    """Score the chosen epoch at every setting and write fp16 weights plus metadata.

    The shipped scale is the best of ``final_scales`` with flip TTA on the judged
    frames when the epoch was picked on them too (the first recipe); otherwise the
    given ``val_scale`` / ``flip_tta``, which cross-validation chose.
    """
    epoch = _chosen_epoch(config, model, state, out)
    scored = {}
    if judge is not None:
        scales = sorted(set(REPORT_SCALES) | set(config.final_scales))
        scored = score_settings(model, judge, scales)
    scale, flip = config.val_scale, config.flip_tta
    if config.epoch_choice == "best":
        scale = max(config.final_scales, key=lambda s: scored[setting_key(s, True)]["miou"])
        flip = True
    half = {
        key: value.half() if value.is_floating_point() else value
        for key, value in model.state_dict().items()
    }
    weights_path = out / f"{CHECKPOINT_NAME}.pt"
    _atomic_save(half, weights_path)
    metadata = {
        "name": "offline:camvid",
        "architecture": "UNet",
        "widths": list(config.widths),
        "num_classes": NUM_CLASSES,
        "class_names": list(CLASS_NAMES),
        "scale": scale,
        "flip_tta": flip,
        "parameters": sum(p.numel() for p in model.parameters()),
        "best_epoch": epoch,
        "epochs": config.epochs,
        "epochs_completed": state["epoch"],
        "judged_on": _judged_on(config, judge),
        "val": (scored[setting_key(scale, flip)] | {"images": len(judge[0])}) if scored else None,
        "scores_by_setting": scored,
        "training_seconds": round(sum(r["seconds"] for r in state["history"]), 1),
        "config": config.to_json(),
        "history": state["history"],
        "torch": torch.__version__,
    }
    write_text_atomically(out / f"{CHECKPOINT_NAME}.json", json.dumps(metadata, indent=2))
    print(f"wrote {weights_path} ({weights_path.stat().st_size / 1e6:.2f} MB)")
    return metadata


def _judged_on(config: TrainConfig, judge) -> str | None:
    if judge is None:
        return None
    return f"drive {config.holdout}" if config.holdout else "val"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    config = config_from_args(args)
    train(config, args.data, Path(args.out), export_only=args.export_only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
