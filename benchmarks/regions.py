"""Region backends on BSDS500 val: quality vs. time, plus a 1024 x 1024 timing.

Measures, in one run and interleaved image by image (the machine is shared, so only
ratios measured side by side mean anything):

- every registered region method -- scikit-image SLIC (``slic``) and Felzenszwalb,
  our ``fast`` backend, and, where installed, OpenCV ximgproc SLIC/SLICO/SEEDS/LSC
  (``opencv-contrib-python-headless``) and ``fast-slic`` -- at each requested segment
  count: boundary recall (2 px), undersegmentation error, ASA, explained variation,
  compactness, regions found and backend milliseconds per image;
- a matched comparison: each method's scores next to scikit-image SLIC's interpolated
  at the *same number of regions found* (backends given the same ``n_segments``
  return different numbers of regions, and every score improves with more);
- the time to cluster 1024 x 1024 images (BSDS images resized) with ``fast`` vs.
  scikit-image SLIC, alternating the two.

Run (from the repository root)::

    .venv/bin/python benchmarks/regions.py --limit 100

Writes ``benchmarks/results/regions.json`` and ``benchmarks/results/regions.md``.
Libraries run single-threaded (``OMP_NUM_THREADS=1``): fast-slic's OpenMP threads
otherwise fight the other jobs on this 2-core machine.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from clusterlens.evaluate.bsds import bsds_ids, iter_bsds  # noqa: E402
from clusterlens.regions import list_methods  # noqa: E402
from clusterlens.regions.benchmark import benchmark_methods, interpolate_at  # noqa: E402
from clusterlens.regions.registry import get_method  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
REFERENCE = "slic"
SCORES = ("boundary_recall", "undersegmentation_error", "asa", "explained_variation", "compactness")


def main() -> None:
    args = _parse_args()
    methods = args.methods.split(",") if args.methods else _default_methods()
    segments = [int(value) for value in args.segments.split(",")]
    ids = bsds_ids(args.split, args.data)[: args.limit]
    print(f"{len(ids)} images, methods {methods}, segments {segments}", flush=True)
    started = time.time()
    done = []

    def progress(image_id: str) -> None:
        done.append(image_id)
        if len(done) % 10 == 0 or len(done) == len(ids):
            print(f"  {len(done)}/{len(ids)} images, {time.time() - started:.0f} s", flush=True)

    rows = benchmark_methods(
        iter_bsds(args.split, args.data, args.limit), methods, segments, progress
    )
    matched = _matched(rows, methods)
    large = _large_timing(args, methods)
    report = {
        "data": f"bsds500/{args.split}",
        "images": len(ids),
        "segments": segments,
        "methods": methods,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), OMP_NUM_THREADS="
        f"{os.environ['OMP_NUM_THREADS']}",
        "rows": rows,
        "matched_to_slic": matched,
        "large_image_timing": large,
        "seconds": round(time.time() - started, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "regions.json").write_text(json.dumps(report, indent=2))
    (RESULTS / "regions.md").write_text(_markdown(report))
    print(_markdown(report))


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="folder holding bsds500/ (default: auto)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int, default=100, help="number of images")
    parser.add_argument("--methods", default="", help="comma-separated (default: all present)")
    parser.add_argument("--segments", default="100,200,300,400,600,800")
    parser.add_argument("--large-size", type=int, default=1024)
    parser.add_argument("--large-images", type=int, default=5)
    parser.add_argument("--large-repeats", type=int, default=3)
    parser.add_argument("--large-segments", type=int, default=300)
    return parser.parse_args()


def _default_methods() -> list[str]:
    present = list_methods()
    order = ["slic", "fast", "felzenszwalb", "fast-slic", "opencv-slic", "opencv-slico"]
    order += ["opencv-seeds", "opencv-lsc"]
    return [name for name in order if name in present]


def _matched(rows: list[dict], methods: list[str]) -> list[dict]:
    """Each method's scores beside the reference's at the same number of regions found."""
    reference_ms = {
        row["n_segments"]: row["ms_per_image"] for row in rows if row["method"] == REFERENCE
    }
    matched = []
    for row in rows:
        if row["method"] == REFERENCE:
            continue
        entry = {"method": row["method"], "n_segments": row["n_segments"]}
        entry["segments_found"] = row["segments_found"]
        for key in SCORES:
            entry[key] = row[key]
            entry[f"slic_{key}"] = interpolate_at(rows, REFERENCE, key, row["segments_found"])
        entry["speedup_vs_slic"] = (
            reference_ms.get(row["n_segments"], float("nan")) / row["ms_per_image"]
        )
        matched.append(entry)
    return matched


def _large_timing(args: argparse.Namespace, methods: list[str]) -> dict:
    """Alternate the quick methods on large resized BSDS images (LSC, Felzenszwalb and
    OpenCV SLIC take seconds there and are left out)."""
    size, count = args.large_size, args.large_segments
    images = [
        cv2.resize(sample.image, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1)
        for sample in iter_bsds(args.split, args.data, args.large_images)
    ]
    names = [name for name in (REFERENCE, "fast", "fast-slic", "opencv-seeds") if name in methods]
    timings: dict[str, list[float]] = {name: [] for name in names}
    for name in names:
        get_method(name)(images[0], count)  # warm-up
    for _ in range(args.large_repeats):
        for image in images:
            for name in names:
                start = time.perf_counter()
                get_method(name)(image, count)
                timings[name].append((time.perf_counter() - start) * 1000)
    reference = statistics.median(timings[REFERENCE])
    per_method = {
        name: {
            "ms_median": round(statistics.median(values), 2),
            "ms_min": round(min(values), 2),
            "speedup_vs_slic": round(reference / statistics.median(values), 1),
        }
        for name, values in timings.items()
    }
    return {
        "size": [size, size],
        "n_segments": count,
        "runs": len(images) * args.large_repeats,
        "methods": per_method,
    }


def _markdown(report: dict) -> str:
    lines = [
        f"Region backends on {report['data']} ({report['images']} images, all annotators; "
        f"{report['machine']}). Boundary recall at 2 px; ms = backend time per image.",
        "",
        "| method | n_segments | found | boundary_recall | undersegmentation_error | asa "
        "| explained_variation | compactness | ms_per_image |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(
        report["rows"], key=lambda r: (r["method"] != REFERENCE, r["method"], r["n_segments"])
    ):
        lines.append(
            f"| {row['method']} | {row['n_segments']} | {row['segments_found']:.0f} "
            f"| {row['boundary_recall']:.4f} | {row['undersegmentation_error']:.4f} "
            f"| {row['asa']:.4f} | {row['explained_variation']:.4f} | {row['compactness']:.4f} "
            f"| {row['ms_per_image']:.1f} |"
        )
    lines += [
        "",
        "At matched region counts (scikit-image SLIC interpolated at the same number of regions "
        "found; `-` = outside SLIC's measured range). Speed-up = SLIC ms / method ms at the same "
        "requested n_segments, same run.",
        "",
        "| method | n_segments | found | BR (slic) | UE (slic) | ASA (slic) | EV (slic) "
        "| CO (slic) | speed-up |",
        "|---|---:|---:|---|---|---|---|---|---:|",
    ]
    for entry in sorted(report["matched_to_slic"], key=lambda e: (e["method"], e["n_segments"])):
        cells = [f"{entry[key]:.4f} ({_fmt(entry['slic_' + key])})" for key in SCORES]
        lines.append(
            f"| {entry['method']} | {entry['n_segments']} | {entry['segments_found']:.0f} | "
            + " | ".join(cells)
            + f" | {entry['speedup_vs_slic']:.1f}x |"
        )
    large = report["large_image_timing"]
    lines += [
        "",
        f"{large['size'][0]}x{large['size'][1]} images (BSDS val resized), "
        f"n_segments={large['n_segments']}, {large['runs']} runs per method, alternating:",
        "",
        "| method | ms median | ms min | speed-up vs slic |",
        "|---|---:|---:|---:|",
    ]
    for name, timing in large["methods"].items():
        speedup = timing["speedup_vs_slic"]
        lines.append(f"| {name} | {timing['ms_median']} | {timing['ms_min']} | {speedup}x |")
    lines.append("")
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return "-" if np.isnan(value) else f"{value:.4f}"


if __name__ == "__main__":
    main()
