"""Near-duplicate detection on CamVid with injected, known copies: ours vs a perceptual hash.

For each split (train, val) a seeded subset of the CamVid frames is copied, resized by
a random factor in 0.5-0.9 and re-compressed as JPEG at a random quality in 30-80.
A catalog is built over originals + copies with the detector (``--model``), with loss
distances between each image and its ``--knn`` embedding neighbours. Detectors of
duplicate pairs, scored against the injected (original, copy) pairs:

- ``layout``: the near-duplicate ratio of :mod:`clusterlens.catalog.near_duplicates`
  on the detector's bottleneck map (its default for a YOLO model);
- ``pooled``: the same ratio on the catalog's pooled YOLO embedding;
- ``loss``: the symmetric (max) loss-distance ratio (pairs of the distances table only);
- ``pixels``: the module's pixel distance, ``1 -`` the correlation of 32 x 24 grey
  thumbnails (:mod:`clusterlens.catalog.thumbnails`), on the module's candidates;
- ``layout and loss``, ``pixels and layout``: both under their thresholds;
- ``phash``: Hamming distance of ``imagehash.phash`` (64 bits), over all pairs.

Recall counts every injected pair, also those a signal never scored (not among its
candidates).

Every threshold is chosen on **train** (best F1; ties to the stricter threshold) and
applied unchanged to **val**; the table reports val. CamVid frames are consecutive
video frames (val: one drive at 15 fps), so a false positive is often a real frame next
to another one: the report counts false positives whose source frames (a copy counts as
its original) are of the same drive at most ``GAP`` frames apart in the split's order,
and reports precision twice: as measured against the injected truth, and with those
consecutive-frame pairs left out of the count (they are genuine near-duplicates the
injected truth does not list).

Run: ``CLUSTERLENS_DATA=/work/shared/data .venv/bin/python benchmarks/catalog_duplicates.py
--model yolo:/abs/path/best.pt``. Data and catalogs go to ``outputs/catalog-duplicates``.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import time
from pathlib import Path

import cv2
import imagehash
import numpy as np
from PIL import Image
from tqdm import tqdm

from _report import ROOT, machine, markdown_table, publish
from clusterlens.catalog import build_catalog, compute_distances
from clusterlens.catalog.camvid_instances import derive_camvid_instances
from clusterlens.catalog.near_duplicates import REFERENCE_RANK, duplicate_candidates
from clusterlens.catalog.store import CatalogStore

SPLITS = ("train", "val")
SCALES = (0.5, 0.9)
QUALITIES = (30, 80)
GAP = 2  # source frames at most this many steps apart count as consecutive
SIGNALS = ("layout", "pooled", "loss", "pixels")
METHODS = ("layout", "pooled", "loss", "pixels", "layout and loss", "pixels and layout", "phash")


def make_split(derived: Path, split: str, out: Path, fraction: float, seed: int) -> dict:
    """originals (symlinks) + resized JPEG copies of a seeded subset, labels alongside.

    Returns ``{copy path: original path}``.
    """
    images, labels = out / "images", out / "labels"
    if out.exists():
        shutil.rmtree(out)
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    shutil.copyfile(derived / "data.yaml", out / "data.yaml")  # class names for the rankings
    originals = sorted((derived / "images" / split).glob("*.png"))
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(len(originals), round(fraction * len(originals)), replace=False))
    copies = {}
    for index, source in enumerate(originals):
        target = images / source.name
        target.symlink_to(source.resolve())
        label = derived / "labels" / split / f"{source.stem}.txt"
        shutil.copyfile(label, labels / label.name)
        if index not in chosen:
            continue
        copy = images / f"copy_{source.stem}.jpg"
        pixels = cv2.imread(str(source))
        scale = rng.uniform(*SCALES)
        size = (round(pixels.shape[1] * scale), round(pixels.shape[0] * scale))
        small = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        quality = int(rng.integers(QUALITIES[0], QUALITIES[1] + 1))
        cv2.imwrite(str(copy), small, [cv2.IMWRITE_JPEG_QUALITY, quality])
        shutil.copyfile(label, labels / f"copy_{source.stem}.txt")  # normalised: still valid
        copies[str(copy.absolute())] = str(target.absolute())
    return copies


def copies_in(folder: Path) -> dict[str, str]:
    """``{copy path: original path}`` of a folder made by :func:`make_split`."""
    images = folder / "images"
    return {
        # resolved: the catalog stores the file a symbolic link points to
        str(copy.resolve()): str((images / f"{copy.stem[len('copy_') :]}.png").resolve())
        for copy in sorted(images.glob("copy_*.jpg"))
    }


def source_frame(path: str) -> str:
    name = Path(path).stem
    return name[len("copy_") :] if name.startswith("copy_") else name


def frame_gap(a: str, b: str, order: dict[str, int]) -> int | None:
    """Steps between the source frames of two images in the split's sorted frame list,
    None when they are of different drives."""
    fa, fb = source_frame(a), source_frame(b)
    if fa.split("_")[0] != fb.split("_")[0]:
        return None
    return abs(order[fa] - order[fb])


def build(folder: Path, db: Path, model: str, imgsz: int, knn: int) -> None:
    if db.exists():
        db.unlink()
    build_catalog(folder, model, db, imgsz=imgsz)
    compute_distances(db, pairs=f"knn:{knn}")


def candidate_scores(db: Path, knn: int) -> dict[tuple[str, str], dict[str, float]]:
    """(path a, path b) sorted -> ratio per signal (inf: not a candidate of that signal).

    ``layout``: the bottleneck-map vector (the catalog's default for a YOLO model),
    ``pooled``: the model's pooled embedding row, ``loss``: the symmetric loss distance,
    ``pixels``: the thumbnail distance (read once, with the layout candidates).
    """
    scores: dict[tuple[str, str], dict[str, float]] = {}
    with CatalogStore(db, readonly=True) as store:
        for name, source in (("layout", "map"), ("pooled", "embedding")):
            for pair in duplicate_candidates(store, k=knn, source=source, pixels=name == "layout"):
                entry = scores.setdefault(tuple(sorted((pair.path_a, pair.path_b))), {})
                entry[name] = pair.embedding_ratio
                if pair.loss_ratio is not None:
                    entry["loss"] = pair.loss_ratio
                if pair.pixel_distance is not None:
                    entry["pixels"] = pair.pixel_distance
    return scores


def phash_scores(paths: list[str]) -> dict[tuple[str, str], float]:
    hashes = {path: imagehash.phash(Image.open(path)) for path in tqdm(paths, desc="phash")}
    return {
        tuple(sorted((a, b))): float(hashes[a] - hashes[b])
        for a, b in itertools.combinations(paths, 2)
    }


class PairScores:
    """Every pair of a split as arrays: embedding / loss ratios (inf: not a candidate),
    phash bits, and whether it is an injected (original, copy) pair."""

    def __init__(self, ours: dict, phash: dict, truth: set) -> None:
        self.keys = sorted(phash)
        self.values = {
            name: np.array([ours.get(k, {}).get(name, np.inf) for k in self.keys])
            for name in SIGNALS
        }
        self.values["phash"] = np.array([phash[k] for k in self.keys])
        self.truth = np.array([k in truth for k in self.keys])

    def flagged(self, method: str, thresholds: tuple[float, ...]) -> np.ndarray:
        signals = method.split(" and ")  # "a and b": both under their thresholds
        return np.logical_and.reduce(
            [self.values[name] <= t for name, t in zip(signals, thresholds, strict=True)]
        )


def f1_of(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    hits = int((flagged & truth).sum())
    precision = hits / int(flagged.sum()) if flagged.any() else 1.0
    recall = hits / int(truth.sum()) if truth.any() else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def choose_threshold(pairs: PairScores, method: str) -> tuple[float, ...]:
    """Best F1 on this split; ties go to the stricter (smaller) threshold.

    Candidate thresholds are the observed values at the small end (where duplicates
    are): the smallest 400 for one signal, a 60 x 60 grid for the pair of signals.
    """
    signals = method.split(" and ")
    if len(signals) == 2:
        options = list(itertools.product(*(smallest(pairs.values[s], 60) for s in signals)))
    else:
        options = [(t,) for t in smallest(pairs.values[method], 400)]
    if not options:  # the signal exists for no pair (e.g. a detector without predictions)
        return (float("nan"),) * len(signals)
    return max(options, key=lambda t: (f1_of(pairs.flagged(method, t), pairs.truth)[2], -sum(t)))


def smallest(values: np.ndarray, count: int) -> list[float]:
    finite = np.unique(values[np.isfinite(values)])
    return [float(v) for v in finite[:count]]


def evaluate(pairs: PairScores, order: dict, method: str, thresholds) -> dict:
    flagged = pairs.flagged(method, thresholds)
    precision, recall, f1 = f1_of(flagged, pairs.truth)
    false = [pairs.keys[i] for i in np.flatnonzero(flagged & ~pairs.truth)]
    gaps = [frame_gap(a, b, order) for a, b in false]
    consecutive = sum(1 for gap in gaps if gap is not None and gap <= GAP)
    signals = method.split(" and ")
    scored = np.logical_and.reduce([np.isfinite(pairs.values[name]) for name in signals])
    return {
        "thresholds": list(thresholds),
        "injected_pairs_scored": int((scored & pairs.truth).sum()),
        "injected_pairs": int(pairs.truth.sum()),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "flagged": int(flagged.sum()),
        "true_positives": int((flagged & pairs.truth).sum()),
        "false_positives": len(false),
        "false_positives_consecutive": consecutive,
        # a looser reading: a flagged pair of neighbouring frames counts as a duplicate too
        "precision_counting_consecutive": (int((flagged & pairs.truth).sum()) + consecutive)
        / int(flagged.sum())
        if flagged.any()
        else 1.0,
        # consecutive-frame pairs (not injected) left out of the count altogether
        "precision_consecutive_left_out": int((flagged & pairs.truth).sum())
        / (int(flagged.sum()) - consecutive)
        if int(flagged.sum()) > consecutive
        else 1.0,
        "false_positive_examples": [[Path(a).name, Path(b).name] for a, b in false[:10]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="yolo:/abs/path/weights.pt")
    parser.add_argument("--fraction", type=float, default=0.3, help="share of frames copied")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument(
        "--knn", type=int, default=20, help="neighbours per image (candidates, loss pairs)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "catalog-duplicates")
    parser.add_argument("--note", default="", help="what the model is (checkpoint, epoch)")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the folders and catalogs of a previous run"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    derived = derive_camvid_instances(args.out / "camvid-yolo").out
    results, scores, orders = {}, {}, {}
    for offset, split in enumerate(SPLITS):
        folder, db = args.out / split, args.out / f"{split}.db"
        if not (args.reuse and db.exists()):
            make_split(derived, split, folder, args.fraction, args.seed + offset)
            build(folder, db, args.model, args.imgsz, args.knn)
        copies = copies_in(folder)
        paths = sorted(str(p.resolve()) for p in (folder / "images").iterdir())
        truth = {tuple(sorted(pair)) for pair in copies.items()}
        scores[split] = PairScores(candidate_scores(db, args.knn), phash_scores(paths), truth)
        frames = sorted({source_frame(p) for p in paths})
        orders[split] = {frame: index for index, frame in enumerate(frames)}
        results[split] = {"images": len(paths), "copies": len(copies)}
    rows, methods = [], {}
    for method in METHODS:
        thresholds = choose_threshold(scores["train"], method)
        methods[method] = {
            split: evaluate(scores[split], orders[split], method, thresholds) for split in SPLITS
        }
        rows.append(table_row(method, methods[method]))
    seconds = time.perf_counter() - started
    payload = {
        "model": args.model,
        "note": args.note,
        "settings": {
            "fraction": args.fraction,
            "seed": args.seed,
            "imgsz": args.imgsz,
            "knn": args.knn,
            "scales": SCALES,
            "jpeg_qualities": QUALITIES,
            "reference_rank": REFERENCE_RANK,
            "consecutive_gap": GAP,
            "reused_catalogs": args.reuse,
        },
        "splits": results,
        "methods": methods,
        "seconds": seconds,
        "machine": machine(),
    }
    markdown = report_markdown(rows, payload)
    print(markdown)
    publish("catalog_duplicates", payload, markdown)


def table_row(method: str, result: dict) -> list[object]:
    val, train = result["val"], result["train"]
    if not np.isfinite(val["thresholds"]).all():
        return [method, "n/a: no pair has this signal", *["-"] * 7]
    thresholds = ", ".join(f"{t:.3g}" for t in val["thresholds"])
    consecutive = (
        f"{val['false_positives_consecutive']} of {val['false_positives']}"
        if val["false_positives"]
        else "-"
    )
    return [
        method,
        thresholds,
        f"{train['precision']:.3f} / {train['recall']:.3f}",
        f"{val['precision']:.3f}" if val["flagged"] else "- (none flagged)",
        f"{val['recall']:.3f}",
        f"{val['true_positives']} / {val['flagged']}",
        f"{val['injected_pairs_scored']} / {val['injected_pairs']}",
        consecutive,
        f"{val['precision_consecutive_left_out']:.3f}",
    ]


def report_markdown(rows: list[list[object]], payload: dict) -> str:
    headers = [
        "method",
        "threshold (chosen on train)",
        "train P / R",
        "val precision",
        "val recall",
        "val true / flagged",
        "val injected pairs scored",
        "val false positives that are consecutive frames",
        "val precision, consecutive-frame pairs left out",
    ]
    splits = payload["splits"]
    info = payload["machine"]
    return (
        "## Near-duplicates in a catalog, CamVid val with injected copies "
        "(`benchmarks/catalog_duplicates.py`)\n\n"
        + markdown_table(headers, rows)
        + f"\n\nInjected copies: train {splits['train']['copies']} of "
        f"{splits['train']['images']} images, val {splits['val']['copies']} of "
        f"{splits['val']['images']} (resized {SCALES[0]}-{SCALES[1]}x, JPEG quality "
        f"{QUALITIES[0]}-{QUALITIES[1]}). Model `{payload['model']}` {payload['note']}, "
        f"imgsz {payload['settings']['imgsz']}, loss distances on knn:{payload['settings']['knn']}."
        f" Thresholds: layout / pooled / loss as ratios to the pair's local scale "
        "(`clusterlens.catalog.near_duplicates`), pixels as 1 - thumbnail correlation, "
        "phash in bits. "
        f"Consecutive: source frames of one drive at most {GAP} frames apart (a copy counts "
        "as its original); the last column leaves those pairs out of the count, the "
        "precision column counts them as false positives. "
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} in "
        f"{payload['seconds']:.0f} s"
        + (" (catalogs of an earlier run reused)" if payload["settings"]["reused_catalogs"] else "")
        + f" on {info['cpus']} CPUs (load average "
        f"{info['load_average']:.1f}) by `benchmarks/catalog_duplicates.py`."
    )


if __name__ == "__main__":
    main()
