"""``clusterlens ask``: answer a question about an image with a VLM fed only the kept patches.

image + question -> ``select_patches`` on the VLM's own token grid -> the adapter drops
the other image tokens (keeping the M-RoPE / 1D positions of the rest) -> greedy answer.
Prints the tokens kept and the FastV prefill FLOPs estimate against the full image:
per decoder layer ``4 n d^2 + 2 n^2 d + 2 n d m`` (n tokens, d hidden size, m FFN size),
summed over the layers.
"""

from __future__ import annotations

from pathlib import Path

import typer

from clusterlens.allocate import list_strategies
from clusterlens.ask import (
    ASK_MAX_SIDE,
    DEFAULT_STRATEGY,
    PRUNER_STRATEGIES,
    AskResult,
    answer_question,
)
from clusterlens.cli._common import console, print_json, user_errors
from clusterlens.video.frames import is_video_input


def ask_command(
    image: Path = typer.Argument(..., help="Image file."),
    query: str = typer.Option(..., "--query", "-q", help="The question to answer."),
    vlm: str = typer.Option(
        ...,
        "--vlm",
        help="Local model folder, Hugging Face id in the local cache, or tiny:<family> "
        "(random weights, a pipeline check).",
    ),
    strategy: str = typer.Option(
        DEFAULT_STRATEGY,
        "--strategy",
        "-s",
        help=f"One of: {', '.join([*list_strategies(), *PRUNER_STRATEGIES])} (the last "
        "four are token-pruning baselines, docs/vlm-pruning.md).",
    ),
    budget: int | None = typer.Option(
        None, "--budget", "-b", help="Image tokens to keep (default: a quarter of the grid)."
    ),
    max_new_tokens: int = typer.Option(32, help="Longest answer, in tokens."),
    model: str | None = typer.Option(
        None,
        help="Query model: offline:camvid (default), or open vocabulary with a CLIP: "
        "open_clip:ARCH/TAG, open_clip:ARCH//weights.bin, hf:<CLIP or SigLIP folder or id>.",
    ),
    min_match: float | None = typer.Option(
        None, "--min-match", help="Matcher threshold (default: the query model's)."
    ),
    baseline: bool = typer.Option(False, help="Also answer with every image token."),
    coarse: str = typer.Option(
        "pool",
        help="Coarse patches (quadtree leaves): pool (one mean token each) | cover (all tokens).",
    ),
    token_budget: int | None = typer.Option(
        None,
        help="Variable budgets (Qwen): total tokens for crops re-encoding the best patches.",
    ),
    token_range: str = typer.Option(
        "64,400", help="Tokens per patch 'LOW,HIGH' with --token-budget."
    ),
    seed: int = typer.Option(0, help="Seed for the random strategy."),
    max_side: int = typer.Option(
        ASK_MAX_SIDE,
        "--max-side",
        help="Decode larger images with this longer side (JPEGs at reduced size); 0: full size.",
    ),
    frames: int = typer.Option(
        8, "--frames", help="Video: frames given to the model (an even number is used)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Answer --query about IMAGE (or a VIDEO, Qwen2/2.5-VL) with a VLM that sees only the
    patches that matter."""
    if not image.exists():
        raise FileNotFoundError(f"image not found: {image}")
    if max_side < 0:
        raise ValueError(f"--max-side must be 0 (full size) or a positive side, got {max_side}")
    if is_video_input(image):
        result = _ask_video(image, query, vlm, strategy, budget, max_new_tokens, model, frames,
                            max_side, baseline)  # fmt: skip
    elif not image.is_file():
        raise FileNotFoundError(f"image not found: {image}")
    else:
        result = answer_question(
            image,
            query,
            vlm,
            strategy,
            budget,
            max_new_tokens=max_new_tokens,
            relevance_model=model,
            min_match=min_match,
            seed=seed,
            baseline=baseline,
            coarse=coarse,
            token_budget=token_budget,
            token_range=_parse_range(token_range),
            max_side=max_side or None,
        )
    if json_out:
        print_json(result.to_json())
        return
    _print_summary(result)


def _ask_video(image, query, vlm, strategy, budget, max_new_tokens, model, frames, max_side,
               baseline) -> AskResult:  # fmt: skip
    from clusterlens.ask_video import DEFAULT_VIDEO_STRATEGY, answer_video_question

    return answer_video_question(
        image,
        query,
        vlm,
        DEFAULT_VIDEO_STRATEGY if strategy == DEFAULT_STRATEGY else strategy,
        budget,
        max_new_tokens=max_new_tokens,
        relevance_model=model,
        frames=frames,
        max_side=max_side or None,
        baseline=baseline,
    )


def _parse_range(text: str) -> tuple[int, int]:
    try:
        low, high = (int(part) for part in text.split(","))
    except ValueError as err:
        raise ValueError(f"--token-range must be two integers 'LOW,HIGH', got {text!r}") from err
    return low, high


def _print_summary(result: AskResult) -> None:
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    rows, cols = result.token_grid
    console.print(
        f"image tokens kept {result.image_tokens_kept}/{result.image_tokens_full} "
        f"(grid {rows}x{cols}); prompt {result.tokens_kept}/{result.tokens_full} tokens"
    )
    console.print(
        f"prefill FLOPs (FastV, sum over layers of 4nd^2 + 2n^2d + 2ndm): "
        f"{result.flops_kept:.3e} vs {result.flops_full:.3e} full "
        f"({result.flops_kept / max(result.flops_full, 1):.1%})"
    )
    if result.select_flops:
        ratio = result.flops_ratio_with_selection
        share = f"{ratio:.1%} of" if ratio < 1 else f"{ratio:,.1f} times"
        console.print(
            f"selection FLOPs (relevance model passes): {result.select_flops:.3e}; kept "
            f"prefill plus selection: {share} the full prefill"
        )
    console.print(
        f"time: prefill {result.prefill_s * 1000:.1f} ms, generate {result.generate_s:.2f} s, "
        f"total {result.total_s:.2f} s (load {result.stages_s['load_vlm']:.2f} s, "
        f"select {result.stages_s['select']:.2f} s)"
    )
    if result.baseline:
        console.print(
            f"full image: prefill {result.baseline['prefill_s'] * 1000:.1f} ms, "
            f"answer: {result.baseline['answer']!r}"
        )
    typer.echo(result.answer)


def register(app: typer.Typer) -> None:
    """Add ``clusterlens ask`` to ``app``."""
    app.command("ask")(user_errors(ask_command))
