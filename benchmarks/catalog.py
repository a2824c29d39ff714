"""Catalog benchmarks: build throughput, SQLite write rate, batched loss distances.

Measures in one run on this CPU:

1. ``catalog build`` images/s with YOLOv8n-seg (``yolov8n-seg.yaml``: random init, the
   same network and FLOPs as the checkpoint) at input 320 and 640, the two sizes
   interleaved repeat by repeat; every repeat builds a fresh database (registration,
   hashing, extraction of features / predictions / losses / metrics, writes).
2. rows/s into SQLite: batches of realistic YOLO records (5 feature rows with a
   256 x 10 x 10 float16 bottleneck map, 10 predictions with PNG masks, losses,
   metrics, embedding) written with ``CatalogStore.write_batch`` (one transaction per
   batch of 8 images).
3. the N = 64 loss-distance matrix (4096 ordered pairs, 4 components) at input 320:
   batched over j (one forward pass per image i, loss passes over 16 targets at a time)
   against one pair at a time (a forward pass and a stock-criterion call per pair, the
   seed's loop), interleaved image row by image row, plus the largest difference between
   their values and the end-to-end ``catalog distances`` time. Goal: batched >= 10x.

The random-init model's detections all sit far below the usual 0.25 threshold, so the
builds keep the top ``max_det = 10`` detections (``conf = 0``): every image then has 10
targets, as a trained model on a busy image would.

Run (from the repository root)::

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/catalog.py

Writes ``benchmarks/results/catalog.json`` and the table in ``docs/catalog.md``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from _report import interleaved_medians, machine, markdown_table, replace_section  # noqa: E402
from clusterlens.catalog import CatalogStore, ImageRecord, build_catalog, compute_distances  # noqa: E402
from clusterlens.catalog.synthetic import make_shapes_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "catalog.md"
MODEL = "yolo:yolov8n-seg.yaml"
SETTINGS = {"conf": 0.0, "max_det": 10}


def bench_build(data: Path, work: Path, sizes: list[int], repeats: int, batch: int) -> dict:
    """images/s of a fresh build at each input size, sizes interleaved."""
    count = len(list((data / "images").iterdir()))
    runs = {}
    for size in sizes:

        def run(size: int = size) -> None:
            db = work / f"build_{size}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            report = build_catalog(
                data, MODEL, db, batch=batch, progress=False, imgsz=size, **SETTINGS
            )
            assert report.processed == count, report

        runs[f"imgsz_{size}"] = run
    medians = interleaved_medians(runs, repeats=repeats, warmup=1)
    return {
        name: {"images": count, "seconds": seconds, "images_per_s": count / seconds}
        for name, seconds in medians.items()
    }


def _records(count: int, rng: np.random.Generator) -> list[ImageRecord]:
    mask = np.zeros((480, 640), np.uint8)
    cv2.circle(mask, (320, 240), 80, 255, -1)
    png = cv2.imencode(".png", mask)[1].tobytes()
    records = []
    for image_id in range(1, count + 1):
        features = [
            ("model.9", "gap", rng.normal(size=256).astype(np.float32)),
            ("model.9", "map", rng.normal(size=(256, 10, 10)).astype(np.float16)),
            ("model.15", "gap", rng.normal(size=64).astype(np.float32)),
            ("model.18", "gap", rng.normal(size=128).astype(np.float32)),
            ("model.21", "gap", rng.normal(size=256).astype(np.float32)),
        ]
        predictions = [
            dict(x1=10.0 * r, y1=5.0, x2=10.0 * r + 50, y2=90.0, confidence=0.5, class_id=r,
                 class_name=str(r), mask_png=png)
            for r in range(10)
        ]  # fmt: skip
        records.append(
            ImageRecord(
                image_id,
                rng.normal(size=704).astype(np.float32),
                features,
                predictions,
                {"box": 1.0, "cls": 2.0, "dfl": 3.0, "seg": 4.0},
                {"n_predictions": 10, "n_labels": 3, "mean_iou": 0.5, "mean_conf": 0.5,
                 "hit_freq": 0.5, "dice": 0.5, "categories": {"0": 10}},
            )
        )  # fmt: skip
    return records


def bench_rows(work: Path, images: int, batch: int, repeats: int) -> dict:
    """Rows/s of ``write_batch`` (one transaction per ``batch`` images)."""
    records = _records(images, np.random.default_rng(0))
    rows_per_image = 1 + 5 + 10 + 1 + 1  # embedding, features, predictions, losses, metrics
    timings = []
    for repeat in range(repeats):
        db = work / f"rows_{repeat}.db"
        store = CatalogStore(db)
        store.register_images(
            [(work / f"{i}.png", 640, 480, f"{i:064x}", None) for i in range(images)]
        )
        run = store.start_run(MODEL, "yolo", {}, {})
        started = time.perf_counter()
        for start in range(0, images, batch):
            store.write_batch(MODEL, run, records[start : start + batch])
        timings.append(time.perf_counter() - started)
        assert store.counts()["predictions"] == images * 10
        store.close()
    seconds = float(np.median(timings))
    return {
        "images": images,
        "rows": images * rows_per_image,
        "batch": batch,
        "seconds": seconds,
        "rows_per_s": images * rows_per_image / seconds,
        "bytes_per_image": (work / "rows_0.db").stat().st_size / images,
    }


def bench_distances(data: Path, work: Path, imgsz: int, batch: int) -> dict:
    """Batched vs pair-by-pair N x N distances, interleaved image row by image row.

    For each image i, in alternating order: the batched path (one forward pass of i,
    then loss passes over chunks of ``batch`` targets j) and the pair-by-pair path (a
    forward pass and a stock-criterion call for every j). Compute only -- both would
    write the same rows. The end-to-end ``compute_distances`` (batched, with its SQLite
    writes) is timed too, after.
    """
    from clusterlens.catalog.dataset import load_rgb
    from clusterlens.catalog.distances import (
        _batched_losses,
        _image_forward,
        _pair_loss,
        _target_tuple,
        _targets,
    )
    from clusterlens.catalog.extractors import make_extractor

    db = work / "distances.db"
    build_catalog(data, MODEL, db, batch=8, progress=False, imgsz=imgsz, **SETTINGS)
    store = CatalogStore(db)
    extractor = make_extractor(MODEL, imgsz=imgsz, **SETTINGS)
    ids = [row[0] for row in store.query("SELECT image_id FROM embeddings ORDER BY image_id")]
    paths = dict(store.query("SELECT id, path FROM images"))
    cache: dict = {}
    for j in ids:  # decode every image's stored predictions once, outside the timing
        _targets(store, MODEL, j, cache)
    _image_forward(extractor, load_rgb(Path(paths[ids[0]])))  # warm-up pass
    seconds = {"batched": 0.0, "pairwise": 0.0}
    batched_rows, pairwise_rows = [], []
    for index, i in enumerate(ids):
        image = load_rgb(Path(paths[i]))

        def batched(image: np.ndarray = image) -> None:
            box, raw = _image_forward(extractor, image)
            targets = [_target_tuple(extractor, box, _targets(store, MODEL, j, cache)) for j in ids]
            rows = [
                _batched_losses(extractor, raw, targets[start : start + batch])
                for start in range(0, len(ids), batch)
            ]
            batched_rows.append(np.concatenate(rows))

        def pairwise(image: np.ndarray = image) -> None:
            _, (box,) = extractor.prepare([image])  # the letterbox of i, no forward pass
            targets = [_target_tuple(extractor, box, _targets(store, MODEL, j, cache)) for j in ids]
            pairwise_rows.append(np.stack([_pair_loss(extractor, image, t) for t in targets]))

        order = [("batched", batched), ("pairwise", pairwise)]
        for name, run in order if index % 2 == 0 else order[::-1]:
            started = time.perf_counter()
            run()
            seconds[name] += time.perf_counter() - started
        print(f"row {index + 1}/{len(ids)}: {seconds}", flush=True)
    store.close()
    end_to_end = compute_distances(db, pairs="all", batch=batch, progress=False)
    difference = np.abs(np.stack(batched_rows) - np.stack(pairwise_rows))
    scale = np.maximum(np.abs(np.stack(pairwise_rows)), 1e-6)
    return {
        "images": len(ids),
        "imgsz": imgsz,
        "batch": batch,
        "pairs": len(ids) ** 2,
        "batched_seconds": seconds["batched"],
        "pairwise_seconds": seconds["pairwise"],
        "speedup": seconds["pairwise"] / seconds["batched"],
        "end_to_end_batched_seconds": end_to_end.seconds,
        "max_abs_difference": float(difference.max()),
        "max_relative_difference": float((difference / scale).max()),
    }


def report_table(payload: dict) -> str:
    build, rows, dist = payload["build"], payload["rows"], payload["distances"]
    lines = []
    for name, entry in build.items():
        size = name.split("_")[1]
        lines.append([
            f"build, YOLOv8n-seg at {size} ({entry['images']} images, batch {payload['batch']})",
            f"{entry['images_per_s']:.2f} images/s",
            f"{entry['seconds']:.1f} s per build (median)",
        ])  # fmt: skip
    lines.append([
        f"SQLite writes ({rows['images']} YOLO images, {rows['batch']} per transaction)",
        f"{rows['rows_per_s']:.0f} rows/s",
        f"{rows['bytes_per_image'] / 1024:.1f} KiB per image",
    ])  # fmt: skip
    n, pairs = dist["images"], dist["pairs"]
    lines.append([
        f"distances N={n} ({pairs} pairs x 4 components, input {dist['imgsz']}), batched",
        f"{dist['batched_seconds']:.1f} s",
        f"{dist['speedup']:.5g}x faster than pair by pair (goal >= 10x: "
        f"{'met' if dist['speedup'] >= 10 else 'not met'}); end to end with "
        f"SQLite writes {dist['end_to_end_batched_seconds']:.1f} s",
    ])  # fmt: skip
    lines.append([
        f"distances N={n}, one pair at a time (forward + stock criterion per pair)",
        f"{dist['pairwise_seconds']:.1f} s",
        f"largest difference {dist['max_abs_difference']:.1e} "
        f"(relative {dist['max_relative_difference']:.1e})",
    ])  # fmt: skip
    return markdown_table(["measurement", "result", "notes"], lines)


def write_doc(table: str, payload: dict) -> None:
    facts = payload["machine"]
    section = (
        f"{table}\n\nMeasured {payload['date']} on {facts['cpus']} CPUs "
        f"({facts['processor']}, torch {facts['torch']}, {facts['torch_threads']} thread, load "
        f"average {facts['load_average']:.1f}) by `benchmarks/catalog.py`."
    )
    replace_section(DOC, "catalog-bench", section, "# Dataset catalog")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32, help="images per build")
    parser.add_argument("--sizes", default="320,640")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--distance-images", type=int, default=64)
    parser.add_argument("--distance-imgsz", type=int, default=320)
    parser.add_argument("--skip-pairwise", action="store_true")
    parser.add_argument("--out", default="catalog", help="results/<out>.json")
    parser.add_argument(
        "--table-only", action="store_true", help="re-render docs/catalog.md from the JSON"
    )
    args = parser.parse_args()
    if args.table_only:
        payload = json.loads((RESULTS / f"{args.out}.json").read_text())
        write_doc(report_table(payload), payload)
        print(report_table(payload))
        return
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    try:
        data = make_shapes_dataset(work / "shapes", count=args.images, size=(640, 480))
        distance_data = make_shapes_dataset(
            work / "shapes64", count=args.distance_images, size=(640, 480), seed=1
        )
        payload = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": machine(),
            "batch": args.batch,
            "build": bench_build(
                data, work, [int(s) for s in args.sizes.split(",")], args.repeats, args.batch
            ),
        }
        print(json.dumps(payload["build"], indent=2), flush=True)
        payload["rows"] = bench_rows(work, images=256, batch=8, repeats=args.repeats)
        print(json.dumps(payload["rows"], indent=2), flush=True)
        payload["distances"] = bench_distances(distance_data, work, args.distance_imgsz, batch=16)
        table = report_table(payload)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{args.out}.json").write_text(json.dumps(payload, indent=2) + "\n")
        write_doc(table, payload)
        print(table)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
