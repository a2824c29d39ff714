"""End-to-end cost of query-aware selection: whole ``select_patches`` calls, side by side.

For every CamVid image of the split, at its own 480x360 size and resized to 1024x1024,
one query (the name of the rarest class present, e.g. "pole" or "car") is answered by
dense ``topk`` (the model run over the whole image, then the K best cells: the
reference), ``lazy-cascade`` and ``bound-cascade``, each a fresh call with a fresh
:class:`~clusterlens.context.ImageContext` (decoding and every model pass included;
the models are loaded once before timing). The three run interleaved, in rotating
order. Then a second query (the most common class present) is put to the context the
dense call made. Reported, as ratios of medians over images:

- total_ms and encoder_gflops of each cascade against dense topk's;
- the second query's total_ms against the first's;
- fidelity on every class present (one shared context per image): the share of dense
  top-K cells a cascade keeps (strict), and its precision (share of queried-class
  pixels in the kept patches) minus dense top-K's;
- which passes the lazy cascade ran (windows or a dense fallback).

Run: ``.venv/bin/python benchmarks/allocate_cost.py [--split val] [--stride N] [--limit N]``.
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter, defaultdict

import cv2
import numpy as np
from tqdm import tqdm

from _report import machine, markdown_table, publish
from clusterlens.context import ImageContext
from clusterlens.evaluate.camvid import list_pairs, load_pair
from clusterlens.models import load_model
from clusterlens.models.offline.segmenter import CAMVID_SYNONYMS
from clusterlens.pipeline import select_patches

BUDGETS = (64, 144)
CASCADES = ("lazy-cascade", "bound-cascade")
SIZES = ("480x360", "1024x1024")


def query_for(name: str) -> str:
    return CAMVID_SYNONYMS[name][0]


def resized(image: np.ndarray, labels: np.ndarray, size: str):
    if size == "480x360":
        return image, labels
    side = int(size.split("x")[0])
    return (
        cv2.resize(image, (side, side), interpolation=cv2.INTER_LINEAR),
        cv2.resize(labels, (side, side), interpolation=cv2.INTER_NEAREST),
    )


def present_classes(model, labels: np.ndarray) -> list[tuple[str, float]]:
    shares = [(name, float((labels == i).mean())) for i, name in enumerate(model.class_names)]
    return sorted([case for case in shares if case[1] > 0], key=lambda case: case[1])


def timed_call(image, query, strategy, budget):
    """One fresh call, as a user's first question about an image."""
    allocation = select_patches(image, query, strategy, budget, max_side=None).allocation
    cost = allocation.cost
    return {
        "total_ms": cost["total_ms"],
        "encoder_ms": cost["encoder_ms"],
        "encoder_gflops": cost["encoder_gflops"],
        "passes": cost["encoder_passes"],
    }


def cost_rows(image, model, labels, budget, turn):
    """First-query costs of dense topk and each cascade (rotating order), and a second
    query on the context dense topk's call built."""
    classes = present_classes(model, labels)
    first, second = query_for(classes[0][0]), query_for(classes[-1][0])
    order = ("topk", *CASCADES)
    order = order[turn % 3 :] + order[: turn % 3]
    rows = {strategy: timed_call(image, first, strategy, budget) for strategy in order}
    context = ImageContext.of(image, max_side=None)
    first_on_context = select_patches(context, first, "topk", budget).allocation.cost
    again = select_patches(context, second, "topk", budget).allocation.cost
    rows["second query"] = {
        "total_ms": again["total_ms"],
        "first_ms": first_on_context["total_ms"],
        "encoder_gflops": again["encoder_gflops"],
    }
    return rows


def fidelity_rows(image, model, labels, budget):
    """Every class present, on one context: each cascade against dense topk."""
    context = ImageContext.of(image, max_side=None)
    rows = []
    for name, share in present_classes(model, labels):
        index = model.class_names.index(name)
        query = query_for(name)
        reference = select_patches(context, query, "topk", budget).allocation
        if reference.meta["query_match"]["classes"] != [name]:
            continue  # the text matched another class too: not this class's case
        truth = reference.grid.cell_means((labels == index).astype(np.float32))[0]
        ref_cells = set(zip(reference.rows.tolist(), reference.cols.tolist(), strict=True))
        ref_precision = float(truth[reference.coverage_mask()].mean())
        for strategy in CASCADES:
            allocation = select_patches(context, query, strategy, budget).allocation
            cells = set(zip(allocation.rows.tolist(), allocation.cols.tolist(), strict=True))
            covered = allocation.coverage_mask()
            rows.append(
                {
                    "class": name,
                    "class_share": share,
                    "strategy": strategy,
                    "recovered": len(cells & ref_cells) / max(len(ref_cells), 1),
                    "precision_gap": float(truth[covered].mean()) - ref_precision,
                }
            )
    return rows


def summarise(costs, fidelity):
    summary = {}
    for (size, budget), rows in costs.items():
        dense_ms = statistics.median(r["topk"]["total_ms"] for r in rows)
        dense_gf = statistics.median(r["topk"]["encoder_gflops"] for r in rows)
        entry = {"images": len(rows), "topk_total_ms": dense_ms, "topk_gflops": dense_gf}
        for strategy in CASCADES:
            entry[strategy] = {
                "total_ratio": statistics.median(
                    r[strategy]["total_ms"] / r["topk"]["total_ms"] for r in rows
                ),
                "gflops_ratio": statistics.median(
                    r[strategy]["encoder_gflops"] / r["topk"]["encoder_gflops"] for r in rows
                ),
                "total_ms": statistics.median(r[strategy]["total_ms"] for r in rows),
            }
        entry["lazy_passes"] = dict(
            Counter(p.split(" ")[0] for r in rows for p in r["lazy-cascade"]["passes"])
        )
        entry["second_query_ratio"] = statistics.median(
            r["second query"]["total_ms"] / r["second query"]["first_ms"] for r in rows
        )
        entry["second_query_ms"] = statistics.median(r["second query"]["total_ms"] for r in rows)
        for strategy in CASCADES:
            cases = [f for f in fidelity[(size, budget)] if f["strategy"] == strategy]
            entry[strategy]["recovered"] = float(np.mean([c["recovered"] for c in cases]))
            entry[strategy]["precision_gap"] = float(np.mean([c["precision_gap"] for c in cases]))
            entry[strategy]["cases"] = len(cases)
        summary[f"{size} K={budget}"] = entry
    return summary


def report(summary, info, split, flags) -> str:
    rows = []
    for key, entry in summary.items():
        for strategy in CASCADES:
            s = entry[strategy]
            rows.append(
                [
                    key,
                    strategy,
                    f"{s['total_ratio']:.2f}",
                    f"{s['gflops_ratio']:.2f}",
                    f"{s['recovered']:.3f}",
                    f"{s['precision_gap']:+.3f}",
                    f"{entry['second_query_ratio']:.2f}",
                ]
            )
    lines = [
        f"## Allocation cost, end to end (CamVid {split}{flags})",
        "",
        "Whole `select_patches` calls, each a user's first question about an image (fresh "
        "context: decoding and every model pass counted; models loaded beforehand), "
        "interleaved with dense `topk` -- the model run over the whole image, then the K "
        "best cells. Ratios are medians over images of cascade / dense topk. Fidelity: "
        "every class present, strict share of dense top-K cells kept, and precision minus "
        "dense top-K's. Second query: another class asked of the context the first call "
        "built, / the first call.",
        "",
        markdown_table(
            [
                "size, K",
                "strategy",
                "total_ms ratio",
                "encoder GFLOPs ratio",
                "top-K recovered",
                "precision gap",
                "second query / first",
            ],
            rows,
        ),
        "",
        "Dense topk medians and the lazy cascade's passes:",
        "",
        markdown_table(
            ["size, K", "images", "topk total_ms", "topk GFLOPs", "second query ms", "lazy passes"],
            [
                [
                    key,
                    e["images"],
                    f"{e['topk_total_ms']:.0f}",
                    f"{e['topk_gflops']:.2f}",
                    f"{e['second_query_ms']:.0f}",
                    ", ".join(f"{k}: {v}" for k, v in sorted(e["lazy_passes"].items())),
                ]
                for key, e in summary.items()
            ],
        ),
        "",
        f"Machine: {info['cpus']} CPUs, torch {info['torch']} ({info['torch_threads']} "
        f"threads), load average {info['load_average']:.1f} at the start.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="folder holding camvid/")
    parser.add_argument("--split", default="val", choices=("val", "train", "test"))
    parser.add_argument("--stride", type=int, default=1, help="use every N-th image")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    args = parser.parse_args()
    if args.stride < 1:
        parser.error(f"--stride must be at least 1, got {args.stride}")
    info = machine()
    model = load_model("offline:camvid")
    pairs = list_pairs(args.split, args.data)[:: args.stride][: args.limit]
    warm_image = load_pair(*pairs[0])[0]
    for strategy in ("topk", *CASCADES):  # load the models and the balancer once
        select_patches(warm_image, "car", strategy, 64, max_side=None)
    costs, fidelity = defaultdict(list), defaultdict(list)
    for turn, (image_path, label_path) in enumerate(tqdm(pairs, desc=f"CamVid {args.split}")):
        image, labels = load_pair(image_path, label_path)
        for size in SIZES:
            sized, sized_labels = resized(image, labels, size)
            for budget in BUDGETS:
                costs[(size, budget)].append(cost_rows(sized, model, sized_labels, budget, turn))
                fidelity[(size, budget)] += fidelity_rows(sized, model, sized_labels, budget)
    summary = summarise(costs, fidelity)
    flags = (f" --stride {args.stride}" if args.stride > 1 else "") + (
        f" --limit {args.limit}" if args.limit else ""
    )
    name = "allocate_cost" if args.split == "val" else f"allocate_cost_{args.split}"
    publish(
        name,
        {"split": args.split, "stride": args.stride, "machine": info, "summary": summary},
        report(summary, info, args.split, flags),
    )
    for key, entry in summary.items():
        print(key, entry)


if __name__ == "__main__":
    main()
