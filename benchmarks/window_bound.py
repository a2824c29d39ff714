"""How much can a crop-based cascade save? A lower bound from the geometry of top-K.

A lazy cascade (``relevance/source.py``) runs a cheap coarse pass over the whole image,
then the model at its shipped settings only on windows around the cells it must
refine, each window with a context margin so its prediction matches the dense one.
Its encoder cost is therefore at least

    coarse pass + (area of the windows / working image) x dense pass.

This script measures the second term for an *oracle* that already knows the dense
top-K cells (no cascade can refine fewer cells than that), and for a realistic one
that refines the smallest coarse top-(m K) holding 95% of the dense top-K. Windows are
built exactly as ``CouplingSource.fine_cells`` builds them (stride-aligned boxes around
each cell's support, grown by the margin, merged where they touch). The shipped U-Net
needs a 32-48 pixel margin (module note of ``relevance/source.py``); 8 and 16 are what
a model with a bounded receptive field might need. ``support only`` is the cells'
support alone, aligned to one pixel: the bound for any window scheme whatever.

For every image of the split (``--stride`` apart) and every class present in its
labels, the query is that class, on the 32 x 32 grid ``select`` uses.

**Exact partial evaluation.** A U-Net need not be run on crops at all: its encoder can
run over the whole image and each decoder level only where the cells need it, which is
exact with far smaller margins (no window sees less context than the dense pass). The
second table bounds that scheme from below: the encoder's FLOPs in full, plus each
decoder level's FLOPs times the share of the image its output is needed on -- the
cells' support grown by ``4, 12, 28 ...`` working pixels for the levels above the
finest (two 3x3 convolutions and one bilinear upsampling per level:
:func:`decoder_margins`). FLOPs per stage are counted with ``FlopCounterMode``.

Run: ``.venv/bin/python benchmarks/window_bound.py [--split val] [--stride 3]``.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict

import numpy as np
import torch
from scipy import ndimage
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from _report import machine, markdown_table, publish
from clusterlens.allocate.grid import PatchGrid
from clusterlens.evaluate.camvid import list_pairs, load_pair
from clusterlens.models import load_model
from clusterlens.relevance.source import (
    CellSpans,
    CouplingSource,
    _operators,
    _support,
    _windows,
    count_gflops,
)

BUDGETS = (64, 144)
MARGINS = (0, 8, 16, 32, 48)  # 0: the support alone, aligned to one pixel
OVERSAMPLES = (1, 1.5, 2, 3, 4, 6, 8, 12)
GRID = 32


def spans_of(height: int, width: int) -> CellSpans:
    grid = PatchGrid.from_count(height, width, GRID)
    return CellSpans(*grid.spans(), height, width)


def window_share(cells: np.ndarray, spans: CellSpans, shape, stride: int, margin: int) -> float:
    """Share of the working image the windows around ``cells`` (flat indices) cover."""
    height, width = shape
    ops_y, ops_x = _operators(spans, height, width)
    rows, cols = np.unravel_index(cells, (len(spans.row_starts), len(spans.col_starts)))
    needed = _support(ops_y[rows], ops_x[cols], height, width)
    if margin == 0:
        return float(needed.mean())
    boxes = _windows(needed, stride, margin)
    return sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in boxes) / (height * width)


def decoder_margins(levels: int) -> list[int]:
    """Working pixels beyond the cells' support on which each decoder level's output is
    needed, finest level first: 0, 4, 12, 28, ...

    The finest level's output is needed on the support itself (the head is 1x1). Each
    level's input must then cover two 3x3 convolutions (1 pixel each at its own
    resolution, ``2 * 2**(l-1)`` working pixels) and the next coarser output one more
    source pixel for the bilinear upsampling (``2**l``): ``2**(l+1)`` per level.
    """
    margins = [0]
    for level in range(1, levels):
        margins.append(margins[-1] + 2 ** (level + 1))
    return margins


def stage_shares(network, shape: tuple[int, ...]) -> dict[str, float]:
    """Share of the network's FLOPs in its encoder, in each decoder level (finest first:
    ``decoder 0`` ...) and in the head, counted on fake tensors (no arithmetic)."""
    with FakeTensorMode(allow_non_fake_inputs=True), torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            network(torch.empty(shape))
    counts = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    total = counts["Global"]
    levels = len(network.decoders)
    shares = {"encoder": counts.get("UNet.encoders", 0) / total}
    if "UNet.encoders" not in counts:  # submodules are listed, the ModuleList is not
        shares["encoder"] = sum(counts[f"UNet.encoders.{i}"] for i in range(levels + 1)) / total
    for index in range(levels):  # decoders[0] is the coarsest level
        shares[f"decoder {levels - 1 - index}"] = counts[f"UNet.decoders.{index}"] / total
    shares["head"] = counts["UNet.head"] / total
    return shares


def needed_share(cells: np.ndarray, spans: CellSpans, shape, margin: int) -> float:
    """Share of the working image within ``margin`` pixels (any direction, as 3x3
    convolutions reach) of the cells' support: no box packing, so a lower bound."""
    ops_y, ops_x = _operators(spans, *shape)
    rows, cols = np.unravel_index(cells, (len(spans.row_starts), len(spans.col_starts)))
    needed = _support(ops_y[rows], ops_x[cols], *shape)
    if margin:
        needed = ndimage.binary_dilation(needed, np.ones((2 * margin + 1,) * 2, bool))
    return float(needed.mean())


def partial_cost(cells, spans, shape, stages: dict[str, float], margins: list[int]) -> float:
    """Lower bound on exact partial evaluation's FLOPs, as a share of the dense pass."""
    cost = stages["encoder"] + stages["head"] * needed_share(cells, spans, shape, 0)
    for level, margin in enumerate(margins):
        cost += stages[f"decoder {level}"] * needed_share(cells, spans, shape, margin)
    return cost


def candidates_for(dense: np.ndarray, coarse: np.ndarray, budget: int) -> np.ndarray:
    """The smallest coarse top-(m K) holding 95% of the dense top-K (flat indices)."""
    truth = set(np.argsort(-dense.ravel(), kind="stable")[:budget].tolist())
    order = np.argsort(-coarse.ravel(), kind="stable")
    for oversample in OVERSAMPLES:
        chosen = order[: int(round(oversample * budget))]
        if len(truth & set(chosen.tolist())) >= 0.95 * budget:
            return chosen
    return order


def measure(model, pairs) -> tuple[dict, dict]:
    shares: dict[tuple, list[float]] = defaultdict(list)
    ratios = {}
    for image_path, label_path in tqdm(pairs, desc="images"):
        rgb, labels = load_pair(image_path, label_path)
        source = CouplingSource(model, rgb)
        spans = spans_of(*labels.shape)
        dense_input = source._input("dense")
        shape, stride = tuple(dense_input.shape[-2:]), model.stride
        dense_gflops = count_gflops(model, tuple(dense_input.shape), bool(model.flip))
        coarse_gflops = count_gflops(model, tuple(source._input("coarse").shape), False)
        ratios.setdefault("coarse / dense GFLOPs", []).append(coarse_gflops / dense_gflops)
        stages = stage_shares(model.network, (1, *dense_input.shape[1:]))
        margins = decoder_margins(len(model.network.decoders))
        ratios.setdefault("stages", stages)
        for index, name in enumerate(model.class_names):
            if not (labels == index).any():
                continue
            dense = source.dense_cells([name], spans)
            coarse = source.coarse_cells([name], spans)
            for budget in BUDGETS:
                oracle = np.argsort(-dense.ravel(), kind="stable")[:budget]
                realistic = candidates_for(dense, coarse, budget)
                shares[("realistic m", budget)].append(len(realistic) / budget)
                shares[("partial oracle", budget)].append(
                    partial_cost(oracle, spans, shape, stages, margins)
                )
                shares[("partial realistic", budget)].append(
                    coarse_gflops / dense_gflops
                    + partial_cost(realistic, spans, shape, stages, margins)
                )
                for margin in MARGINS:
                    step = 1 if margin == 0 else stride
                    shares[("oracle", budget, margin)].append(
                        window_share(oracle, spans, shape, step, margin)
                    )
                    shares[("realistic", budget, margin)].append(
                        window_share(realistic, spans, shape, step, margin)
                    )
    stages = ratios.pop("stages")
    summary = {key: statistics.median(values) for key, values in ratios.items()}
    return shares, {**summary, "stages": stages}


def report(shares: dict, ratios: dict, split: str, stride: int, images: int) -> str:
    coarse = ratios["coarse / dense GFLOPs"]
    rows = []
    for budget in BUDGETS:
        for margin in MARGINS:
            oracle = np.array(shares[("oracle", budget, margin)])
            realistic = np.array(shares[("realistic", budget, margin)])
            label = "support only" if margin == 0 else f"{margin} px"
            rows.append(
                [
                    f"K={budget}",
                    label,
                    f"{np.median(oracle):.2f}",
                    f"{np.percentile(oracle, 75):.2f}",
                    f"{np.median(realistic):.2f}",
                    f"{coarse + np.median(realistic):.2f}",
                ]
            )
    headers = [
        "K",
        "margin",
        "oracle windows (median)",
        "oracle (p75)",
        "realistic windows (median)",
        "realistic encoder GFLOPs bound",
    ]
    over = {b: statistics.median(shares[("realistic m", b)]) for b in BUDGETS}
    return (
        f"## How much a crop-based cascade can save (CamVid {split} --stride {stride})\n\n"
        f"{images} images, every class present as the query, 32 x 32 grid, {ratios['model']} "
        f"(working image {ratios['shape']}). Shares are of the working image, so of the dense "
        "pass's FLOPs. *Oracle*: windows around exactly the dense top-K cells. *Realistic*: "
        "around the smallest coarse top-(m K) holding 95% of the dense top-K (median m: "
        + ", ".join(f"{over[b]:g} at K={b}" for b in BUDGETS)
        + f"). The bound adds the coarse pass ({coarse:.3f} of the dense pass) to the "
        "realistic windows.\n\n"
        + markdown_table(headers, rows)
        + "\n\n"
        + reading(shares, coarse)
        + "\n"
        + partial_report(shares, ratios["stages"])
    )


def partial_report(shares: dict, stages: dict[str, float]) -> str:
    """The exact-partial-evaluation bound: stage FLOPs, then the bound per K."""
    levels = sum(name.startswith("decoder") for name in stages)
    margins = decoder_margins(levels)
    split = ", ".join(
        f"{name} {share:.1%}"
        + (
            f" (output needed on support + {margins[int(name[-1])]} px)"
            if name.startswith("decoder")
            else ""
        )
        for name, share in stages.items()
    )
    rows = [
        [
            f"K={budget}",
            f"{statistics.median(shares[('partial oracle', budget)]):.2f}",
            f"{statistics.median(shares[('partial realistic', budget)]):.2f}",
        ]
        for budget in BUDGETS
    ]
    headers = ["K", "oracle cells (median)", "realistic cells + coarse pass (median)"]
    return (
        "### Exact partial evaluation: encoder over the image, decoder levels where needed\n\n"
        f"FLOPs of the dense pass by stage: {split}. Lower bound on the encoder GFLOPs of "
        "such a cascade, as a share of dense top-K's:\n\n" + markdown_table(headers, rows) + "\n"
    )


def reading(shares: dict, coarse: float, goal: float = 0.30) -> str:
    """Which (K, margin) could meet the encoder goal, read from the measured medians."""
    lines = [f"Room under the goal (encoder GFLOPs <= {goal:.0%} of dense top-K):"]
    for budget in BUDGETS:
        fits = [
            "support only" if margin == 0 else f"{margin} px"
            for margin in MARGINS
            if coarse + statistics.median(shares[("oracle", budget, margin)]) <= goal
        ]
        where = ", ".join(fits) if fits else "no margin"
        lines.append(f"- K={budget}: even the oracle fits only with {where}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="val")
    parser.add_argument("--stride", type=int, default=3)
    parser.add_argument("--model", default="offline:camvid", help="offline:NAME or offline:PATH")
    parser.add_argument("--drive", default=None, help="only frames of this drive (e.g. 0006R0)")
    parser.add_argument("--name", default="window_bound", help="results name and docs marker")
    args = parser.parse_args()
    model = load_model(args.model)
    pairs = [p for p in list_pairs(args.split) if p[0].name.startswith(args.drive or "")]
    pairs = pairs[:: args.stride]
    shares, ratios = measure(model, pairs)
    first = CouplingSource(model, load_pair(*pairs[0])[0])._input("dense")
    ratios["shape"] = "x".join(str(side) for side in first.shape[-2:])
    ratios["model"] = args.model
    payload = {
        "split": args.split,
        "drive": args.drive,
        "stride": args.stride,
        "images": len(pairs),
        "ratios": ratios,
        "shares": {" ".join(map(str, key)): values for key, values in shares.items()},
        "machine": machine(),
    }
    where = args.split + (f" (drive {args.drive})" if args.drive else "")
    publish(args.name, payload, report(shares, ratios, where, args.stride, len(pairs)))


if __name__ == "__main__":
    main()
