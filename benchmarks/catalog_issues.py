"""Finding injected label errors on CamVid: the catalog's ranking against cleanlab's.

CamVid's class maps become YOLO-seg instance labels
(:func:`~clusterlens.catalog.camvid_instances.derive_camvid_instances`). For each seed,
each split gets a corrupted twin: images are symbolic links, label files are copies, and
a seeded 10% of the images get one corruption, chosen uniformly among those the image
allows -- ``dropped`` (a label line removed), ``spurious`` (a rectangle of a random class,
sized like a real label of it, put where no label is), ``swapped`` (another class id) or
``shifted`` (moved by 45% of its size in a random direction). A catalog is built on each
twin with the detector (predictions do not depend on the labels; losses do), then:

- ours: :func:`clusterlens.catalog.label_errors.rank_label_errors`;
- cleanlab: ``cleanlab.object_detection.rank.get_label_quality_scores`` per image and its
  per-box ``overlooked`` (per prediction), ``badloc`` and ``swap`` (per label) scores, all
  from the *same* stored predictions (class-wise ``x1 y1 x2 y2 conf`` arrays) and labels.

Reported on **val**: AUROC and precision@k (k = number corrupted) for corrupted images and
for corrupted boxes. Box units are every label box of the corrupted files plus every
stored prediction; a dropped box is represented by the prediction that best covers it
(IoU >= 0.5), or, when none does, by a unit no method can score. Ours scores a label unit
with its issue's score, a prediction unit with its ``missing`` score; cleanlab a label
unit with ``1 - min(badloc, swap)``, a prediction with ``1 - overlooked``. Per kind: the
corrupted boxes of that kind against all clean units, cleanlab with the score meant for
that kind (overlooked / swap / badloc; spurious: min of badloc and swap).

Our settings (``min_confidence``, ``loss_weight``, ``z_floor``) are chosen on **train** with the
same corruption (a grid, the best mean of image and box AUROC over the seeds), never on
val. Caveat: the detector was trained on train's clean labels, so its train predictions
are in-sample.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/catalog_issues.py --weights PATH.pt``
(``--seeds 0 1 2``, ``--out outputs/catalog-issues``).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from _report import ROOT, machine, markdown_table, publish
from clusterlens.catalog import CatalogStore, build_catalog
from clusterlens.catalog.camvid_instances import INSTANCE_CLASSES, derive_camvid_instances
from clusterlens.catalog.label_errors import box_iou, load_images, rank_label_errors

KINDS = ("dropped", "spurious", "swapped", "shifted")
#: The ranking's kind for each injected corruption.
OUR_KIND = {
    "dropped": "missing",
    "spurious": "spurious",
    "swapped": "wrong_class",
    "shifted": "badly_placed",
}
RATE = 0.10
SHIFT = 0.45
GRID_MIN_CONFIDENCE = (0.1, 0.2, 0.3, 0.4, 0.5)
GRID_LOSS_WEIGHT = (0.0, 0.25, 0.5)
GRID_Z_FLOOR = (1.0, 3.0)
IMAGE = Path(ROOT / "docs" / "images" / "catalog-label-issues.png")


@dataclass
class Corruption:
    """One injected label error: the image, its kind, the box in pixels, and the
    label's index in the corrupted file (None for a dropped box)."""

    image: str
    kind: str
    box: tuple[float, float, float, float]
    label_index: int | None


# --------------------------------------------------------------------------- corruption


def _parse(line: str) -> tuple[int, np.ndarray]:
    values = line.split()
    return int(values[0]), np.array(values[1:], dtype=np.float64)


def _pixel_box(coords: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pixel xyxy of a normalised polygon (or xywh box) line."""
    width, height = size
    if len(coords) == 4:
        cx, cy, w, h = coords
        coords = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    points = coords.reshape(-1, 2) * [width, height]
    return np.concatenate([points.min(0), points.max(0)])


def _format(class_id: int, coords: np.ndarray) -> str:
    return f"{class_id} " + " ".join(f"{v:.6f}" for v in np.clip(coords, 0.0, 1.0))


def corrupt_file(lines, kind, rng, size, label_pool) -> tuple[list[str], Corruption]:
    """Apply one corruption of ``kind`` to the label ``lines`` of an image of ``size``."""
    width, height = size
    if kind == "spurious":
        class_id, w, h = label_pool[int(rng.integers(len(label_pool)))]
        existing = np.array([_pixel_box(_parse(line)[1], size) for line in lines]).reshape(-1, 4)
        for _ in range(50):  # somewhere no label is
            x1, y1 = rng.uniform(0, width - w), rng.uniform(0, height - h)
            box = np.array([x1, y1, x1 + w, y1 + h])
            if not len(existing) or box_iou(box[None], existing).max() < 0.05:
                break
        x1, y1, x2, y2 = box / [width, height, width, height]
        line = _format(class_id, np.array([x1, y1, x2, y1, x2, y2, x1, y2]))
        return [*lines, line], Corruption("", kind, tuple(box), len(lines))
    index = int(rng.integers(len(lines)))
    class_id, coords = _parse(lines[index])
    box = _pixel_box(coords, size)
    out = list(lines)
    if kind == "dropped":
        del out[index]
        return out, Corruption("", kind, tuple(box), None)
    if kind == "swapped":
        other = [c for c in range(len(INSTANCE_CLASSES)) if c != class_id]
        out[index] = _format(int(rng.choice(other)), coords)
    else:  # shifted by SHIFT of the box's size in a random direction: IoU 0.30 to 0.38
        angle = rng.uniform(0, 2 * np.pi)
        w, h = (box[2:] - box[:2]) / [width, height]
        offset = SHIFT * np.array([np.cos(angle) * w, np.sin(angle) * h])
        shifted = (coords.reshape(-1, 2) + offset).ravel()
        out[index] = _format(class_id, shifted)
        box = _pixel_box(np.clip(shifted, 0, 1), size)
    return out, Corruption("", kind, tuple(box), index)


def make_twin(dataset: Path, split: str, twin: Path, seed: int) -> list[Corruption]:
    """Corrupted copy of ``dataset``'s ``split`` in ``twin``; returns what was done."""
    from PIL import Image

    if twin.exists():
        shutil.rmtree(twin)
    (twin / "images").mkdir(parents=True)
    (twin / "labels").mkdir(parents=True)
    shutil.copy(dataset / "data.yaml", twin / "data.yaml")  # class names for the ranking
    images = sorted((dataset / "images" / split).iterdir())
    files = {p.stem: (dataset / "labels" / split / f"{p.stem}.txt") for p in images}
    lines = {
        stem: [line for line in path.read_text().splitlines() if line.strip()]
        for stem, path in files.items()
    }
    with Image.open(images[0]) as first:
        size = first.size  # CamVid: every image is 480 x 360
    label_pool = [
        (c, *(_pixel_box(coords, size)[2:] - _pixel_box(coords, size)[:2]))
        for stem in lines
        for c, coords in map(_parse, lines[stem])
    ]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(images), size=round(RATE * len(images)), replace=False)
    chosen = set(chosen.tolist())
    corruptions = []
    for position, image in enumerate(images):
        os.symlink(image.resolve(), twin / "images" / image.name)
        text = lines[image.stem]
        if position in chosen:
            kind = str(rng.choice(KINDS if text else ("spurious",)))
            text, corruption = corrupt_file(text, kind, rng, size, label_pool)
            corruption.image = image.name
            corruptions.append(corruption)
        (twin / "labels" / f"{image.stem}.txt").write_text("".join(t + "\n" for t in text))
    return corruptions


# --------------------------------------------------------------------------- scores


@dataclass
class Units:
    """Box units of one catalog: keys, truth, and each method's score."""

    keys: list[tuple[str, str, int]]  # (image name, "label" | "pred", index / rank)
    truth: list[str | None]  # corruption kind or None


def box_units(images, corruptions: list[Corruption]) -> tuple[Units, int]:
    """All label and prediction units; positives per corruption; unfindable drops."""
    by_image = {c.image: c for c in corruptions}
    keys, truth, lost = [], [], 0
    for image in images:
        name = Path(image.path).name
        corruption = by_image.get(name)
        drop_rank = None
        if corruption is not None and corruption.kind == "dropped" and len(image.pred_boxes):
            iou = box_iou(np.array([corruption.box]), image.pred_boxes)[0]
            if iou.max() >= 0.5:
                drop_rank = int(image.pred_ranks[int(iou.argmax())])
        if corruption is not None and corruption.kind == "dropped" and drop_rank is None:
            lost += 1
        for index in range(len(image.label_classes)):
            keys.append((name, "label", index))
            hit = corruption is not None and corruption.label_index == index
            truth.append(corruption.kind if hit else None)
        for rank in image.pred_ranks.tolist():
            keys.append((name, "pred", rank))
            truth.append("dropped" if rank == drop_rank else None)
    return Units(keys, truth), lost


def our_scores(issues, units: Units) -> np.ndarray:
    found = {}
    for issue in issues:
        name = Path(issue.path).name
        for box in issue.boxes:
            key = (
                (name, "pred", box.prediction_rank)
                if box.kind == "missing"
                else (name, "label", box.label_index)
            )
            found[key] = max(found.get(key, 0.0), box.score)
    return np.array([found.get(key, 0.0) for key in units.keys])


def cleanlab_inputs(images, classes: int):
    """cleanlab's per-image label dicts and class-wise prediction arrays."""
    labels, predictions = [], []
    for image in images:
        labels.append(
            {"bboxes": image.label_boxes.astype(np.float32), "labels": image.label_classes}
        )
        rows = np.concatenate([image.pred_boxes, image.pred_conf[:, None]], axis=1)
        predictions.append(
            [
                rows[image.pred_classes == k].astype(np.float32).reshape(-1, 5)
                for k in range(classes)
            ]
        )
    return labels, predictions


def cleanlab_scores(images, classes: int, units: Units) -> tuple[np.ndarray, np.ndarray, dict]:
    """(image scores, box unit scores, per-family unit scores), higher = more suspect."""
    from cleanlab.object_detection import rank

    labels, predictions = cleanlab_inputs(images, classes)
    quality = rank.get_label_quality_scores(labels, predictions, verbose=False)
    overlooked = rank.compute_overlooked_box_scores(labels=labels, predictions=predictions)
    badloc = rank.compute_badloc_box_scores(labels=labels, predictions=predictions)
    swap = rank.compute_swap_box_scores(labels=labels, predictions=predictions)
    families: dict[tuple, dict[str, float]] = {}
    for image, over, bad, sw in zip(images, overlooked, badloc, swap, strict=True):
        name = Path(image.path).name
        for position, rank_ in enumerate(image.pred_ranks.tolist()):
            families[(name, "pred", rank_)] = {"overlooked": _suspect(over[position])}
        for index in range(len(image.label_classes)):
            families[(name, "label", index)] = {
                "badloc": _suspect(bad[index]),
                "swap": _suspect(sw[index]),
            }
    combined = np.array([max(families[key].values()) for key in units.keys])
    return 1.0 - np.asarray(quality), combined, families


def _suspect(quality: float) -> float:
    """cleanlab box quality (low = bad, NaN = not scored) as a suspicion in 0..1."""
    return 0.0 if np.isnan(quality) else float(1.0 - quality)


def family_for(kind: str, families: dict) -> float:
    if kind == "dropped":
        return families.get("overlooked", 0.0)
    if kind == "swapped":
        return families.get("swap", 0.0)
    if kind == "shifted":
        return families.get("badloc", 0.0)
    return max(families.get("badloc", 0.0), families.get("swap", 0.0))


# --------------------------------------------------------------------------- metrics


def auroc(truth: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(truth, scores)) if 0 < truth.sum() < len(truth) else float("nan")


def precision_at_k(truth: np.ndarray, scores: np.ndarray, k: int | None = None) -> float:
    """Share of corrupted items among the k best scored (k = number corrupted); ties
    broken against the method (a clean item first), so a flat score earns nothing."""
    k = int(truth.sum()) if k is None else k
    order = np.lexsort((truth, -scores))  # by score, then clean before corrupted
    return float(truth[order[:k]].mean()) if k else float("nan")


def evaluate(run: dict, issues) -> dict:
    """Image and box metrics of ours and cleanlab's on one corrupted catalog."""
    images, corruptions = run["images"], run["corruptions"]
    names = [Path(image.path).name for image in images]
    corrupted = {c.image for c in corruptions}
    image_truth = np.array([name in corrupted for name in names], dtype=int)
    ours_image = {Path(i.path).name: i.score for i in issues}
    ours_img = np.array([ours_image.get(name, 0.0) for name in names])
    units, lost = box_units(images, corruptions)
    if "cleanlab" not in run:  # the same for every setting of ours: computed once
        run["cleanlab"] = cleanlab_scores(images, len(INSTANCE_CLASSES), units)
    clean_img, clean_box, families = run["cleanlab"]
    ours_box = our_scores(issues, units)
    # an unfindable dropped box: a positive unit that every method scores lowest
    box_truth = np.array([t is not None for t in units.truth] + [True] * lost, dtype=int)
    pad = np.full(lost, -1.0)
    result = {
        "images": len(images),
        "corrupted_images": int(image_truth.sum()),
        "corrupted_boxes": int(box_truth.sum()),
        "unfindable_drops": lost,
        "box_units": len(box_truth),
    }
    for method, img, box in (
        ("ours", ours_img, ours_box),
        ("cleanlab", clean_img, clean_box),
    ):
        box = np.concatenate([box, pad])
        result[method] = {
            "image_auroc": auroc(image_truth, img),
            "image_p_at_k": precision_at_k(image_truth, img),
            "box_auroc": auroc(box_truth, box),
            "box_p_at_k": precision_at_k(box_truth, box),
        }
    clean_units = np.array([t is None for t in units.truth])
    for kind in KINDS:
        mine = np.array([t == kind for t in units.truth])
        if not mine.any():
            continue
        keep = mine | clean_units
        truth = mine[keep].astype(int)
        result["ours"][f"auroc_{kind}"] = auroc(truth, ours_box[keep])
        family = np.array([family_for(kind, families[key]) for key in units.keys])
        result["cleanlab"][f"auroc_{kind}"] = auroc(truth, family[keep])
    result["ours_kind_hits"] = _kind_hits(issues, corruptions)
    return result


def _kind_hits(issues, corruptions) -> dict[str, int]:
    """How often the ranking names the injected corruption with the matching kind."""
    by_name = {Path(i.path).name: i for i in issues}
    hits = {}
    for c in corruptions:
        issue = by_name.get(c.image)
        named = issue is not None and any(
            b.kind == OUR_KIND[c.kind]
            and box_iou(np.array([b.box]), np.array([c.box]))[0, 0] >= 0.5
            for b in issue.boxes
        )
        hits[c.kind] = hits.get(c.kind, 0) + int(named)
    return hits


# --------------------------------------------------------------------------- runs


def build(twin: Path, model: str, args) -> Path:
    db = twin / "catalog.db"
    build_catalog(twin, model, db, batch=8, imgsz=args.imgsz, conf=args.conf, max_det=args.max_det)
    return db


def load(db: Path, model: str):
    with CatalogStore(db, readonly=True) as store:
        return load_images(store, model)


def run_split(dataset, split, seed, model, args) -> dict:
    """Corrupt, build and load one split for one seed (``--reuse``: what is on disk)."""
    twin = args.out / f"{split}-seed{seed}"
    record = twin / "corruptions.json"
    if args.reuse and record.is_file() and (twin / "catalog.db").is_file():
        corruptions = [Corruption(**c) for c in json.loads(record.read_text())]
        db = twin / "catalog.db"
    else:
        corruptions = make_twin(dataset, split, twin, seed)
        db = build(twin, model, args)
        record.write_text(json.dumps([c.__dict__ for c in corruptions], default=float))
    return {"db": db, "corruptions": corruptions, "images": load(db, model)}


def tune_on_train(train_runs, model) -> tuple[dict, list]:
    """The grid point with the best mean of image and box AUROC over the train seeds."""
    table = []
    grid = list(itertools.product(GRID_MIN_CONFIDENCE, GRID_LOSS_WEIGHT, GRID_Z_FLOOR))
    for min_conf, weight, floor in tqdm(grid, desc="choosing settings on train"):
        if weight == 0 and floor != grid[0][2]:
            continue  # the floor only matters when the loss counts
        values = []
        for run in train_runs:
            issues = rank_label_errors(
                run["db"], model, min_confidence=min_conf, loss_weight=weight, z_floor=floor
            )
            metrics = evaluate(run, issues)
            values.append((metrics["ours"]["image_auroc"] + metrics["ours"]["box_auroc"]) / 2)
        table.append(
            {
                "min_confidence": min_conf,
                "loss_weight": weight,
                "z_floor": floor,
                "objective": statistics.mean(values),
            }
        )
    best = max(table, key=lambda row: row["objective"])
    return {key: best[key] for key in ("min_confidence", "loss_weight", "z_floor")}, table


def spread(values: list[float]) -> dict:
    values = [v for v in values if not np.isnan(v)]
    return {
        "mean": statistics.mean(values) if values else float("nan"),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


def summarise(per_seed: list[dict]) -> dict:
    keys = sorted({k for r in per_seed for k in r["ours"]})
    return {
        method: {key: spread([r[method].get(key, float("nan")) for r in per_seed]) for key in keys}
        for method in ("ours", "cleanlab")
    }


def _cell(entry: dict) -> str:
    if not entry["values"]:
        return "n/a"
    return f"{entry['mean']:.3f} ± {entry['std']:.3f}"


def report(summary, per_seed, chosen, info, detector, seeds) -> str:
    rows = [
        [
            "corrupted images: AUROC",
            _cell(summary["ours"]["image_auroc"]),
            _cell(summary["cleanlab"]["image_auroc"]),
        ],
        [
            "corrupted images: P@k",
            _cell(summary["ours"]["image_p_at_k"]),
            _cell(summary["cleanlab"]["image_p_at_k"]),
        ],
        [
            "corrupted boxes: AUROC",
            _cell(summary["ours"]["box_auroc"]),
            _cell(summary["cleanlab"]["box_auroc"]),
        ],
        [
            "corrupted boxes: P@k",
            _cell(summary["ours"]["box_p_at_k"]),
            _cell(summary["cleanlab"]["box_p_at_k"]),
        ],
    ]
    for kind in KINDS:
        key = f"auroc_{kind}"
        if key in summary["ours"]:
            rows.append(
                [
                    f"boxes, {kind}: AUROC",
                    _cell(summary["ours"][key]),
                    _cell(summary["cleanlab"][key]),
                ]
            )
    counts = ", ".join(
        f"seed {s}: {r['corrupted_images']} images, {r['corrupted_boxes']} boxes "
        f"({r['unfindable_drops']} dropped boxes no prediction covers)"
        for s, r in zip(seeds, per_seed, strict=True)
    )
    return "\n".join(
        [
            "## Catalog: finding injected label errors (CamVid val), ours vs cleanlab",
            "",
            f"CamVid val ({per_seed[0]['images']} images) with derived YOLO-seg instance labels; "
            f"per seed {RATE:.0%} of the images get one injected error (a dropped, spurious, "
            "class-swapped or shifted box). Both methods read the same catalog: the same "
            f"detector predictions ({detector['note']}; `--conf {detector['conf']} --max-det "
            f"{detector['max_det']} --imgsz {detector['imgsz']}`) and the same label files. "
            "Ours: `rank_label_errors` with min_confidence "
            f"{chosen['min_confidence']}, loss_weight {chosen['loss_weight']} and z_floor "
            f"{chosen['z_floor']}, **chosen on train** with the same corruption. cleanlab "
            "`object_detection.rank`: image scores `1 - get_label_quality_scores`, box scores "
            "`1 - overlooked` (predictions) / `1 - min(badloc, swap)` (labels); per kind, "
            "cleanlab's score for that kind. k = number corrupted. Mean ± standard deviation "
            f"over seeds {', '.join(map(str, seeds))}.",
            "",
            markdown_table(["measure", "ours", "cleanlab"], rows),
            "",
            f"Counts: {counts}. Box units: every label box and every stored prediction; a "
            "dropped box counts as found through the prediction that covers it (IoU >= 0.5).",
            "",
            f"Machine: {info['cpus']} CPUs, torch {info['torch']}, load average "
            f"{info['load_average']:.1f} at the start. Run: `{detector['command']}`.",
            "",
            "![top label-error candidates](images/catalog-label-issues.png)",
        ]
    )


def contact_sheet(run, model, chosen) -> None:
    from clusterlens.viz.label_issues import save_label_issue_sheet

    issues = rank_label_errors(run["db"], model, top=8, **chosen)
    images = {image.image_id: image for image in run["images"]}
    injected = {c.image: c.kind for c in run["corruptions"]}
    titles = {
        issue.image_id: f"#{n + 1} {Path(issue.path).stem}, score {issue.score:.2f}, "
        + _injected_note(injected.get(Path(issue.path).name))
        for n, issue in enumerate(issues)
    }
    save_label_issue_sheet(
        issues, IMAGE, images=images, titles=titles, min_confidence=chosen["min_confidence"]
    )


def _injected_note(kind: str | None) -> str:
    return f"injected: {kind}" if kind else "nothing injected"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True, help="the detector's .pt")
    parser.add_argument("--note", default="", help="which checkpoint (e.g. 'best.pt, 50 epochs')")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "catalog-issues")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--conf", type=float, default=0.05)
    parser.add_argument("--max-det", type=int, default=50)
    parser.add_argument("--data", default=None, help="the CamVid folder or its parent")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse corrupted twins and catalogs on disk"
    )
    args = parser.parse_args()
    started = time.time()
    info = machine()
    model = f"yolo:{args.weights.resolve()}"
    dataset = args.out / "camvid-yolo"
    derive_camvid_instances(dataset, data=args.data, splits=("train", "val"))
    runs = {"train": [], "val": []}
    for seed in tqdm(args.seeds, desc="seeds"):
        for split in ("train", "val"):
            runs[split].append(run_split(dataset, split, seed, model, args))
    chosen, grid = tune_on_train(runs["train"], model)
    print("chosen on train:", chosen)
    per_seed = []
    for run in runs["val"]:
        issues = rank_label_errors(run["db"], model, **chosen)
        per_seed.append(evaluate(run, issues))
    summary = summarise(per_seed)
    command = (
        "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/catalog_issues.py --weights "
        f"{args.weights} --seeds {' '.join(map(str, args.seeds))} --imgsz {args.imgsz} "
        f"--conf {args.conf} --max-det {args.max_det}"
    )
    detector = {
        "weights": str(args.weights),
        "sha256": sha256(args.weights),
        "note": args.note or args.weights.name,
        "imgsz": args.imgsz,
        "conf": args.conf,
        "max_det": args.max_det,
        "command": command,
    }
    contact_sheet(runs["val"][0], model, chosen)
    payload = {
        "split": "val",
        "tuned_on": "train",
        "seeds": args.seeds,
        "rate": RATE,
        "detector": detector,
        "chosen": chosen,
        "train_grid": grid,
        "per_seed": per_seed,
        "summary": summary,
        "corruptions": {
            split: [[c.__dict__ for c in run["corruptions"]] for run in runs[split]]
            for split in runs
        },
        "machine": info,
        "seconds": time.time() - started,
    }
    markdown = report(summary, per_seed, chosen, info, detector, args.seeds)
    publish("catalog_issues", json.loads(json.dumps(payload, default=float)), markdown)
    print(markdown)


if __name__ == "__main__":
    main()
