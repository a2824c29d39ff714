"""``clusterlens catalog issues`` and ``catalog select``: what is wrong, what to keep.

- ``catalog issues --db FILE [--model M] [--top N] [--duplicate-signals LIST] [--json]``:
  ranked sections -- label-error candidates, near-duplicates, hard images, outliers --
  each item with a one-line reason. A section the catalog cannot feed (no labels, no
  predictions, no distances) says why instead of failing the command.
  ``--duplicate-signals`` chooses the near-duplicate signals (``embedding,loss,pixels``
  by default; ``pixels`` reads every image file).
- ``catalog select --db FILE --budget N --strategy coverage|hard|balanced [--out FILE]
  [--force] [--json]``: a subset, one image path per line (stdout, or ``--out``
  written atomically; an existing file is kept unless ``--force``).

Both open the catalog read-only: the file keeps its bytes. The commands register on
:data:`clusterlens.cli.catalog.catalog_app` when this module is imported.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from clusterlens.atomic import write_text_atomically
from clusterlens.cli._common import print_json, user_errors
from clusterlens.cli.catalog import DbOption, JsonOption, _say, catalog_app, catalog_errors

ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="Model whose rows to use (default: the only YOLO model)."),
]
DuplicateSignalsOption = Annotated[
    str,
    typer.Option(
        "--duplicate-signals",
        help="Near-duplicate signals, comma-separated: embedding, loss, pixels "
        "(pixels reads every image file; leave it out to skip that).",
    ),
]
SECTIONS = ("label_errors", "near_duplicates", "hard_images", "outliers")
TITLES = {
    "label_errors": "label-error candidates",
    "near_duplicates": "near-duplicates",
    "hard_images": "hard images",
    "outliers": "outliers",
}


@catalog_app.command("issues")
@catalog_errors
@user_errors
def issues(
    db: DbOption,
    model: ModelOption = None,
    top: Annotated[int, typer.Option("--top", help="Items per section.")] = 10,
    duplicate_signals: DuplicateSignalsOption = "embedding,loss,pixels",
    as_json: JsonOption = False,
) -> None:
    """Rank label-error candidates, near-duplicates, hard images and outliers."""
    from clusterlens.catalog.curation import check_top, pick_model
    from clusterlens.catalog.near_duplicates import check_signals
    from clusterlens.catalog.store import CatalogStore

    check_top(top)
    signals = check_signals(duplicate_signals)  # a typo exits 2 before any ranking runs
    with CatalogStore(db, readonly=True) as store:
        model = pick_model(store, model)
        sections = {name: _section(name, store, model, top, signals) for name in SECTIONS}
    if as_json:
        print_json(
            {
                "db": str(db),
                "model": model,
                "top": top,
                "duplicate_signals": list(signals),
                "sections": sections,
            }
        )
        return
    out = Console()
    for name, section in sections.items():
        _print_section(out, name, section)
    _say(f"{db}: issues of {model} (top {top} per section)")


def _section(
    name: str, store: Any, model: str, top: int, signals: tuple[str, ...]
) -> dict[str, Any]:
    """``{"items": [...], "note": str | None}``; a section that cannot run says why."""
    runner = _SECTION_RUNNERS[name]
    if name == "near_duplicates":  # the only section with a choice of signals
        runner = partial(_near_duplicates, signals=signals)
    try:
        items, note = runner(store, model, top)
    except ValueError as err:  # this section lacks its data; the others still run
        return {"items": [], "note": str(err)}
    return {"items": [item.to_json() for item in items], "note": note}


def _label_errors(store: Any, model: str, top: int) -> tuple[list, str | None]:
    try:
        from clusterlens.catalog.label_errors import rank_label_errors
    except ImportError as err:
        return [], f"label-error ranking unavailable in this installation ({err})"
    return rank_label_errors(store, model, top=top), None


def _near_duplicates(
    store: Any, model: str, top: int, *, signals: tuple[str, ...]
) -> tuple[list, str | None]:
    from clusterlens.catalog.near_duplicates import loss_signal_note, near_duplicates

    pairs = near_duplicates(store, model, top=top, signals=signals)
    # a loss signal left out by choice needs no excuse; one asked for but missing does
    return pairs, loss_signal_note(store, model) if "loss" in signals else None


def _hard_images(store: Any, model: str, top: int) -> tuple[list, str | None]:
    from clusterlens.catalog.curation import hard_images

    return hard_images(store, model, top=top), None


def _outliers(store: Any, model: str, top: int) -> tuple[list, str | None]:
    from clusterlens.catalog.curation import outliers

    return outliers(store, model, top=top), None


_SECTION_RUNNERS = {
    "label_errors": _label_errors,
    "near_duplicates": _near_duplicates,
    "hard_images": _hard_images,
    "outliers": _outliers,
}


def _print_section(out: Console, name: str, section: dict[str, Any]) -> None:
    table = Table(title=TITLES[name], title_justify="left")
    for column in ("#", "image", "score", "reason"):
        table.add_column(column, overflow="fold")
    for rank, item in enumerate(section["items"], start=1):
        table.add_row(str(rank), escape(_images_of(item)), f"{item['score']:.3g}",
                      escape(item["reason"]))  # fmt: skip
    if section["items"]:
        out.print(table)
    else:
        out.print(f"[bold]{TITLES[name]}[/]: none found", soft_wrap=True)
    if section["note"]:
        out.print(f"note: {escape(section['note'])}", soft_wrap=True)


def _images_of(item: dict[str, Any]) -> str:
    if "path_a" in item:
        return f"{Path(item['path_a']).name} ~ {Path(item['path_b']).name}"
    return Path(item["path"]).name


@catalog_app.command("select")
@catalog_errors
@user_errors
def select(
    db: DbOption,
    budget: Annotated[int, typer.Option("--budget", help="Number of images to pick.")],
    strategy: Annotated[
        str, typer.Option("--strategy", help="coverage, hard or balanced.")
    ] = "coverage",
    model: ModelOption = None,
    group_by: Annotated[
        str, typer.Option("--group-by", help="balanced: auto, cluster or class.")
    ] = "auto",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the image paths here, one per line.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Pick a subset of images to label or train on next (deterministic)."""
    from clusterlens.catalog.curation import pick_model
    from clusterlens.catalog.selection import select_subset
    from clusterlens.catalog.store import CatalogStore

    if out is not None:
        _check_out(out, db, force)
    with CatalogStore(db, readonly=True) as store:
        model = pick_model(store, model)
        picked = select_subset(store, budget, strategy, model=model, group_by=group_by)
    lines = "".join(f"{item.path}\n" for item in picked)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(out, lines)
    if as_json:
        print_json(
            {
                "db": str(db),
                "model": model,
                "strategy": strategy,
                "budget": budget,
                "out": None if out is None else str(out),
                "selected": [item.to_json() for item in picked],
            }
        )
        return
    if out is None:
        typer.echo(lines, nl=False)
    where = f" -> {out}" if out is not None else ""
    _say(f"{strategy}: {len(picked)} of budget {budget} images picked from {db}{where}")


def _check_out(out: Path, db: Path, force: bool) -> None:
    """Refuse an --out that is a folder, the catalog itself, or (without --force) a file."""
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name, e.g. {out / 'subset.txt'}")
    if out.exists() and db.exists() and out.resolve() == db.resolve():
        raise ValueError(f"--out {out} is the catalog itself; give another file")
    if out.exists() and not force:
        raise ValueError(f"--out {out} already exists; pass --force to overwrite it")
