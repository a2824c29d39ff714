"""``clusterlens vlm-eval``: accuracy against image tokens kept, several strategies and budgets.

question set -> every (strategy, budget, item) not already in --out -> answer with the
VLM on the kept tokens -> score -> ``records.jsonl`` (resumable), ``results.json`` and
``accuracy_vs_tokens.png`` in --out. See :mod:`clusterlens.vlm_eval`.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from clusterlens.cli._common import console, print_json, print_notes, user_errors
from clusterlens.vlm_eval import (
    DEFAULT_STRATEGIES,
    DTYPES,
    PLOT_FILE,
    RESULTS_FILE,
    EvalConfig,
    parse_budgets,
    parse_pruner_options,
    parse_strategies,
    run_vlm_eval,
)


def vlm_eval_command(
    vlm: str = typer.Option(
        ...,
        "--vlm",
        help="Local model folder, Hugging Face id in the local cache, or tiny:<family> "
        "(random weights, a pipeline check).",
    ),
    data: Path = typer.Option(..., "--data", help="Question file (JSONL or a benchmark's file)."),
    out: Path = typer.Option(..., "--out", help="Output folder; rerunning resumes it."),
    strategies: str = typer.Option(
        ",".join(DEFAULT_STRATEGIES),
        "--strategies",
        help="Comma-separated: all, fastv, visionzip, divprune, cdpruner and/or clusterlens "
        "allocation strategies (mip-cascade, cluster-cascade, ...).",
    ),
    budgets: str = typer.Option("64,128,192", "--budgets", help="Image tokens to keep."),
    layout: str | None = typer.Option(
        None, "--layout", help="jsonl, vqav2, textvqa, gqa, pope or docvqa (default: detected)."
    ),
    images: Path | None = typer.Option(
        None, "--images", help="Image folder (default: where the layout keeps them)."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1 ..."),
    dtype: str = typer.Option("fp32", "--dtype", help=f"One of: {', '.join(DTYPES)}."),
    limit: int | None = typer.Option(None, "--limit", help="Evaluate the first N items only."),
    model: str | None = typer.Option(
        None, "--model", help="Query model of the allocation strategies (default offline:camvid)."
    ),
    max_new_tokens: int = typer.Option(16, "--max-new-tokens", help="Longest answer, in tokens."),
    max_side: int = typer.Option(
        1024, "--max-side", help="Decode larger images with this longer side; 0: full size."
    ),
    seed: int = typer.Option(0, help="Seed for the random strategy."),
    pruner_option: list[str] | None = typer.Option(
        None,
        "--pruner-option",
        help="PRUNER.KEY=VALUE, repeatable: fastv.layer=3, cdpruner.theta=0.5.",
    ),
    threads: int | None = typer.Option(
        None, "--threads", help="CPU threads for torch (default: torch's; 1 suits tiny models)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Score a VQA set at several token budgets per strategy; plot accuracy vs tokens."""
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be a positive number of items, got {limit}")
    if max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be at least 1, got {max_new_tokens}")
    config = EvalConfig(
        vlm=vlm,
        data=data,
        strategies=parse_strategies(strategies),
        budgets=parse_budgets(budgets),
        out=out,
        layout=layout,
        images=images,
        device=device,
        dtype=dtype,
        limit=limit,
        relevance_model=model,
        max_new_tokens=max_new_tokens,
        max_side=max_side,
        seed=seed,
        threads=threads,
        pruner_options=parse_pruner_options(pruner_option or []),
    )
    started = time.perf_counter()
    with Progress(
        TextColumn("vlm-eval"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("records", total=None)
        run = run_vlm_eval(
            config, lambda done, total: bar.update(task, completed=done, total=total)
        )
    print_notes(run.notes)
    results = run.results
    if json_out:
        print_json({key: value for key, value in results.items() if key != "records"})
        return
    console.print(
        f"{results['items']} items, {run.computed} records computed, {run.resumed} resumed, "
        f"{time.perf_counter() - started:.1f} s"
    )
    for row in results["summary"]:
        budget = "all" if row["budget"] is None else row["budget"]
        console.print(
            f"  {row['strategy']:<16} budget {budget!s:>5}: accuracy {row['accuracy']:.3f}, "
            f"{row['image_tokens_kept']:.0f}/{row['image_tokens_full']:.0f} image tokens, "
            f"FLOPs x{row['flops_ratio']:.2f}"
        )
    console.print(f"wrote {out / RESULTS_FILE} and {out / PLOT_FILE}")


def register(app: typer.Typer) -> None:
    """Add ``clusterlens vlm-eval`` to ``app``."""
    app.command("vlm-eval")(user_errors(vlm_eval_command))
