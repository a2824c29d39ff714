"""Cluster-coupled flow matching vs torchcfm's I-CFM and OT-CFM (issue 8, seed 05).

Five methods share the network (velocity MLP), optimizer, batches, step count and seeds:
our flow matching with locality ``none``, ``random`` and ``cluster``, and torchcfm's
ConditionalFlowMatcher (I-CFM) and ExactOptimalTransportConditionalFlowMatcher (OT-CFM).
Tasks: 8 gaussians -> two moons, normal -> checkerboard, normal -> digits (64-d).
Each run is scored with the Euler sampler at NFE 1/2/4/8/32 (and midpoint at even NFE):
W2 to 1000 held-out samples (exact, POT) and straightness.

Run:  OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/flow.py
Writes benchmarks/results/flow.json, the table in docs/flow.md and docs/images/flow_*.png.
Until the script finishes, finished runs are kept in benchmarks/results/flow_partial.json
(and checkpoints under --work), so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import RESULTS, ROOT, machine, markdown_table, replace_section  # noqa: E402
from clusterlens.flow.clustering import encode_and_cluster  # noqa: E402
from clusterlens.flow.data import sample_source  # noqa: E402
from clusterlens.flow.evaluation import data_floor, evaluate_sweep  # noqa: E402
from clusterlens.flow.plots import (  # noqa: E402
    plot_image_grid,
    plot_metric_vs_nfe,
    plot_trajectories,
)
from clusterlens.flow.sampling import integrate  # noqa: E402
from clusterlens.flow.train import TrainConfig, Trainer, dataset_for, load_run  # noqa: E402

DOC = ROOT / "docs" / "flow.md"
IMAGES = ROOT / "docs" / "images"
NFES = (1, 2, 4, 8, 32)
ABLATION_WEIGHTS = (0.1, 1.0, 3.0, 10.0)
TASKS = {
    "moons": {
        "data": "moons",
        "source": "8gaussians",
        "n_clusters": 16,
        "label": "8gaussians→moons",
    },
    "checkerboard": {
        "data": "checkerboard",
        "source": "normal",
        "n_clusters": 16,
        "label": "normal→checkerboard",
    },
    "digits": {
        "data": "digits",
        "source": "normal",
        "n_clusters": 20,
        "label": "normal→digits (64-d)",
    },
}
METHODS = {
    "none": {"matcher": "ours", "locality": "none"},
    "random": {"matcher": "ours", "locality": "random"},
    "cluster": {"matcher": "ours", "locality": "cluster"},
    "I-CFM": {"matcher": "icfm", "locality": "none"},
    "OT-CFM": {"matcher": "otcfm", "locality": "none"},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--locality-weight", type=float, default=1.0)
    parser.add_argument("--noise-scale", type=float, default=0.1)
    parser.add_argument("--n-eval", type=int, default=1000)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--ablation", action="store_true", help="only the cluster-weight ablation on moons"
    )
    parser.add_argument("--fresh", action="store_true", help="ignore finished runs")
    parser.add_argument(
        "--work",
        default="/tmp/clusterlens-flow-bench",
        help="run folders (checkpoints), reused when resuming",
    )
    return parser.parse_args(argv)


def run_dir(work: Path, task: dict, method: dict, seed: int) -> Path:
    return work / f"{task['data']}_{method['matcher']}_{method['locality']}_{seed}"


def run_one(task: dict, method: dict, seed: int, clusters: Path, args, work: Path) -> dict:
    """Train one (task, method, seed), sweep NFE, return timings and rows."""
    config = TrainConfig(
        data=task["data"],
        source=task["source"],
        locality=method["locality"],
        matcher=method["matcher"],
        clusters=str(clusters),
        locality_weight=args.locality_weight,
        noise_scale=args.noise_scale,
        batch_size=args.batch_size,
        steps=args.steps,
        width=args.width,
        seed=seed,
        checkpoint_every=args.steps,
        log_every=100,
    )
    trainer = Trainer(config, run_dir(work, task, method, seed))
    started = time.perf_counter()
    summary = trainer.run(progress=False)
    seconds = time.perf_counter() - started
    model = trainer.model.eval()
    rows = evaluate_sweep(
        model,
        trainer.dataset,
        source=task["source"],
        nfes=NFES,
        solvers=("euler", "midpoint"),
        n_samples=args.n_eval,
        seed=seed,
        with_mmd=False,
    )
    return {"train_seconds": seconds, "last_log": summary["last"], "rows": rows, "model": model}


def untrained_w2(task: dict, seed: int, args) -> float:
    config = TrainConfig(data=task["data"], source=task["source"], width=args.width, seed=seed)
    torch.manual_seed(seed)
    from clusterlens.flow.networks import build_network

    dataset = dataset_for(config)
    model = build_network(dataset.sample_shape, width=args.width).eval()
    rows = evaluate_sweep(
        model,
        dataset,
        source=task["source"],
        nfes=(32,),
        n_samples=args.n_eval,
        seed=seed,
        with_mmd=False,
    )
    return rows[0]["w2"]


def aggregate(runs: dict, task_name: str, method: str, solver: str, nfe: int, key: str):
    values = [
        row[key]
        for run_key, run in runs.items()
        if run_key.startswith(f"{task_name}/{method}/")
        for row in run["rows"]
        if row["solver"] == solver and row["nfe"] == nfe
    ]
    if not values:
        return None
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.mean(values), spread, len(values)


def fmt(stat, digits: int = 3) -> str:
    return "–" if stat is None else f"{stat[0]:.{digits}f} ± {stat[1]:.{digits}f}"


def tables(runs: dict, task_names: list[str], floors: dict, untrained: dict) -> str:
    parts = []
    for name in task_names:
        task = TASKS[name]
        parts.append(
            f"#### {task['label']}\n\nW2 floor (train vs held-out samples): "
            f"{floors[name]:.3f}; untrained network at NFE 32: {untrained[name]:.3f}\n"
        )
        for key, label, digits in (("w2", "W2 (Euler)", 3), ("straightness", "straightness", 3)):
            headers = [label] + [f"NFE {n}" for n in NFES]
            rows = [
                [method]
                + [fmt(aggregate(runs, name, method, "euler", n, key), digits) for n in NFES]
                for method in METHODS
            ]
            parts.append(markdown_table(headers, rows) + "\n")
        headers = ["W2 (midpoint)"] + [f"NFE {n}" for n in NFES if n % 2 == 0]
        rows = [
            [method]
            + [fmt(aggregate(runs, name, method, "midpoint", n, "w2")) for n in NFES if n % 2 == 0]
            for method in METHODS
        ]
        parts.append(markdown_table(headers, rows) + "\n")
    return "\n".join(parts)


def write_doc_section(markdown: str, marker: str = "flow") -> None:
    replace_section(DOC, marker, markdown, "# Cluster-coupled flow matching")


def figures(name: str, task: dict, models: dict, runs: dict, args) -> None:
    dataset = dataset_for(TrainConfig(data=task["data"], source=task["source"]))
    reference = dataset.test[: args.n_eval]
    generator = torch.Generator().manual_seed(0)
    x0 = sample_source(task["source"], dataset.sample_shape, 400, generator)
    curves = {}
    for method in METHODS:
        stats = [aggregate(runs, name, method, "euler", n, "w2") for n in NFES]
        curves[method] = (list(NFES), [s[0] for s in stats], [s[1] for s in stats])
    plot_metric_vs_nfe(curves, IMAGES / f"flow_{name}_w2.png", title=task["label"])
    if not models:
        return
    if dataset.sample_shape == (2,):
        for nfe in (2, 32):
            trajectories = {m: integrate(model, x0, nfe=nfe) for m, model in models.items()}
            plot_trajectories(
                trajectories,
                reference,
                IMAGES / f"flow_{name}_nfe{nfe}.png",
                title=f"{task['label']} (seed 0)",
            )
    else:
        rows = {"held-out": reference}
        for nfe in (2, 32):
            rows |= {
                f"{m} NFE {nfe}": integrate(model, x0, nfe=nfe).samples
                for m, model in models.items()
            }
        plot_image_grid(rows, IMAGES / f"flow_{name}_samples.png", title=task["label"])


def ablation(args) -> None:
    """Cluster locality on 8gaussians->moons at several weights (is lambda = 1 just wrong?)."""
    task = TASKS["moons"]
    work = Path(args.work) / "ablation"
    dataset = dataset_for(TrainConfig(data=task["data"], source=task["source"]))
    clusters = work / "clusters"
    encode_and_cluster(dataset, "pixels", task["n_clusters"], clusters, seed=0)
    runs, started = {}, time.perf_counter()
    for weight in ABLATION_WEIGHTS:
        for seed in range(args.seeds):
            run_args = argparse.Namespace(**(vars(args) | {"locality_weight": weight}))
            spec = {"matcher": "ours", "locality": "cluster"}
            result = run_one(task, spec, seed, clusters, run_args, work / f"w{weight}")
            runs[f"moons/cluster-w{weight}/{seed}"] = {
                k: v for k, v in result.items() if k != "model"
            }
            print(
                f"cluster weight {weight} seed {seed}: {result['train_seconds']:.1f}s", flush=True
            )
    headers = ["cluster weight"] + [f"W2 NFE {n}" for n in NFES] + ["straightness NFE 32"]
    rows = []
    for weight in ABLATION_WEIGHTS:
        method = f"cluster-w{weight}"
        rows.append(
            [weight]
            + [fmt(aggregate(runs, "moons", method, "euler", n, "w2")) for n in NFES]
            + [fmt(aggregate(runs, "moons", method, "euler", 32, "straightness"))]
        )
    total = time.perf_counter() - started
    markdown = (
        f"8gaussians→moons, cluster locality, {args.steps} steps, {args.seeds} seeds "
        f"(mean ± std), total {total / 60:.1f} min.\n\n" + markdown_table(headers, rows)
    )
    payload = {
        "weights": list(ABLATION_WEIGHTS),
        "total_seconds": total,
        "runs": runs,
        "machine": machine(),
    }
    (RESULTS / "flow_ablation.json").write_text(json.dumps(payload, indent=2) + "\n")
    write_doc_section(markdown, "flow-ablation")
    print(markdown)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.ablation:
        ablation(args)
        return
    task_names = [name for name in args.tasks.split(",") if name]
    partial_path = RESULTS / "flow_partial.json"
    settings = {
        k: getattr(args, k)
        for k in ("steps", "width", "batch_size", "locality_weight", "noise_scale", "n_eval")
    }
    runs: dict = {}
    earlier_seconds = 0.0  # wall time of earlier, interrupted invocations
    if partial_path.exists() and not args.fresh:
        saved = json.loads(partial_path.read_text())
        if saved.get("settings") == settings:
            runs, earlier_seconds = saved["runs"], saved.get("elapsed_seconds", 0.0)
    floors, untrained, cluster_summaries = {}, {}, {}
    started = time.perf_counter()
    work = Path(args.work)
    if args.fresh:
        shutil.rmtree(work, ignore_errors=True)
    for name in task_names:
        task = TASKS[name]
        dataset = dataset_for(TrainConfig(data=task["data"], source=task["source"]))
        floors[name] = data_floor(dataset, args.n_eval)
        untrained[name] = statistics.mean(untrained_w2(task, s, args) for s in range(args.seeds))
        clusters = work / f"clusters_{name}"
        summary = encode_and_cluster(dataset, "pixels", task["n_clusters"], clusters, seed=0)
        cluster_summaries[name] = {
            k: summary[k] for k in ("n_clusters", "inertia", "cluster_sizes", "backend")
        }
        models = {}
        for seed in range(args.seeds):
            for method, spec in METHODS.items():
                key = f"{name}/{method}/{seed}"
                folder = run_dir(work, task, spec, seed)
                if key in runs and (seed > 0 or (folder / "checkpoint.pt").exists()):
                    if seed == 0:  # the figures need seed 0's networks
                        models[method] = load_run(folder)[0]
                    continue
                result = run_one(task, spec, seed, clusters, args, work)
                if seed == 0:
                    models[method] = result["model"]
                runs[key] = {k: v for k, v in result.items() if k != "model"}
                elapsed = earlier_seconds + time.perf_counter() - started
                partial = {"settings": settings, "runs": runs, "elapsed_seconds": elapsed}
                partial_path.write_text(json.dumps(partial))
                w2 = {r["nfe"]: round(r["w2"], 3) for r in result["rows"] if r["solver"] == "euler"}
                print(f"{key}: {result['train_seconds']:.1f}s W2 {w2}", flush=True)
        figures(name, task, models, runs, args)
    markdown = tables(runs, task_names, floors, untrained)
    total = earlier_seconds + time.perf_counter() - started
    payload = {
        "settings": settings
        | {
            "seeds": args.seeds,
            "threads": args.threads,
            "nfes": list(NFES),
            "n_clusters": {n: TASKS[n]["n_clusters"] for n in task_names},
        },
        "machine": machine(),
        "total_seconds": total,
        "w2_floor": floors,
        "untrained_w2_nfe32": untrained,
        "clusters": cluster_summaries,
        "runs": runs,
    }
    (RESULTS / "flow.json").write_text(json.dumps(payload, indent=2) + "\n")
    partial_path.unlink(missing_ok=True)  # everything is in flow.json now
    header = (
        f"Settings: {args.steps} steps, batch {args.batch_size}, MLP width {args.width} "
        f"x 3 hidden layers, Adam 1e-3, locality weight {args.locality_weight}, noise "
        f"scale {args.noise_scale}, {args.seeds} seeds (mean ± std), {args.threads} "
        f"thread(s); total {total / 60:.1f} min.\n\n"
    )
    write_doc_section(header + markdown)
    print(header + markdown)


if __name__ == "__main__":
    main()
