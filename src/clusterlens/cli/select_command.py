"""``clusterlens select``: which patches of an image matter for a question.

(Not named ``select.py``: that would shadow the standard library's ``select`` module
whenever this folder is on ``sys.path``.)
"""

from __future__ import annotations

from pathlib import Path

import typer

from clusterlens.allocate import list_strategies
from clusterlens.cli._common import console, parse_options, parse_point, user_errors
from clusterlens.pipeline import select_patches
from clusterlens.viz import save_allocation_picture


def select_command(
    image: Path = typer.Argument(..., help="Image file."),
    query: str = typer.Option("", "--query", "-q", help="What to look for ('' = no query)."),
    strategy: str = typer.Option(
        "cluster-cascade", "--strategy", "-s", help=f"One of: {', '.join(list_strategies())}."
    ),
    budget: int = typer.Option(144, "--budget", "-b", help="Patches to keep."),
    model: str | None = typer.Option(None, help="Query model (default: offline:camvid)."),
    grid: int = typer.Option(32, help="Grid cells per side (32 -> 1024 patches)."),
    gaze: str | None = typer.Option(None, help="Gaze point 'X,Y' (0..1) for foveated."),
    token_budget: int | None = typer.Option(
        None, help="Total tokens; budgets then vary with relevance in 64..400 per patch."
    ),
    balancer: str = typer.Option(
        "adaptive", help="adaptive (weights picked per image, trained) | fixed (0.1/0.1/0.8)."
    ),
    seed: int = typer.Option(0, help="Seed for the random strategy."),
    option: list[str] | None = typer.Option(
        None,
        "--option",
        help="Strategy option KEY=VALUE, repeatable (e.g. tolerance=0.01 for bound-cascade, "
        "oversample=3); see docs/allocate.md.",
    ),
    out: Path = typer.Option(Path("outputs/select"), "--out", "-o", help="Output folder."),
    json_file: Path | None = typer.Option(
        None, "--json", help="Also write the allocation JSON here."
    ),
) -> None:
    """Choose the patches of IMAGE that matter for --query; write a picture and JSON."""
    result = select_patches(
        image,
        query,
        strategy,
        budget,
        model=model,
        grid=grid,
        gaze=parse_point(gaze, "--gaze"),
        token_budget=token_budget,
        balancer=balancer,
        seed=seed,
        **parse_options(option, "--option"),
    )
    allocation = result.allocation
    stem = f"{image.stem}_{strategy}"
    picture = save_allocation_picture(
        result.image, allocation, result.relevance, out / f"{stem}.png"
    )
    written = [picture, allocation.save_json(json_file or out / f"{stem}.json")]
    report = allocation.to_json()["accounting"]
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(
        f"{image.name}: kept {report['patches_kept']}/{report['finest_cells']} patches, "
        f"scored {report['cells_scored']} ({report['scored_fraction']:.0%}), "
        f"tokens {report['tokens_kept']} vs {report['tokens_full_grid']} full"
    )
    for path in written:
        console.print(f"  wrote {path}")


def register(app: typer.Typer) -> None:
    app.command("select")(user_errors(select_command))
