"""Accuracy against image tokens kept: one VQA set, several pruning strategies and budgets.

question set -> for each item: decode the image, run the vision tower once (the
vision time) -> for each strategy and budget: choose the kept tokens (the selection
time), prefill and answer greedily (the prefill time) -> score the answer (VQA soft
accuracy, exact match or ANLS, as the set says) -> one record per (strategy, budget,
item) -> a results JSON and an accuracy-vs-tokens plot.

Strategies are the token pruners of :mod:`clusterlens.models.vlm.pruners` (``fastv``,
``visionzip``, ``divprune``, ``cdpruner``, and ``all``: every token, once per item)
and clusterlens's allocation strategies (``mip-cascade``, ``cluster-cascade`` ...,
see :func:`clusterlens.allocate.list_strategies`), which pick patches on the model's
own token grid with the relevance model (``offline:camvid`` by default) exactly as
``clusterlens ask`` does.

Resumable: each finished record is appended to ``records.jsonl`` in the output
folder and fsync'ed before the next starts; a rerun skips the (strategy, budget,
item) triples already there, and a line cut short by a kill is dropped. Answers,
scores and token counts are deterministic, so a killed-and-resumed run reports the
same accuracies as an uninterrupted one; timings are measured where each record ran.

This module sits beside ``ask.py`` for the same reason: it composes capabilities
(the models, the allocation pipeline, the VQA metrics). The command line is
``clusterlens vlm-eval`` (``cli/vlm_eval.py``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clusterlens.atomic import write_text_atomically
from clusterlens.models.vlm.pruners import (
    PruningInputs,
    PruningPlan,
    TokenPruner,
    get_pruner,
    list_pruners,
)

RECORDS_FILE = "records.jsonl"
RESULTS_FILE = "results.json"
PLOT_FILE = "accuracy_vs_tokens.png"
MANIFEST_FILE = "manifest.json"
REFERENCE = "all"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEFAULT_STRATEGIES = ("all", "fastv", "visionzip", "divprune", "cdpruner", "mip-cascade")
#: record fields that do not depend on when or where the record ran
DETERMINISTIC_FIELDS = (
    "strategy",
    "budget",
    "item",
    "answer",
    "score",
    "metric",
    "image_tokens_kept",
    "image_tokens_full",
    "tokens_kept",
    "tokens_full",
    "flops_kept",
    "flops_full",
)


@dataclass
class EvalConfig:
    """What to evaluate and where to write it.

    Attributes:
        vlm: local model folder, cached Hugging Face id or ``tiny:<family>``.
        data: the question file (see :mod:`clusterlens.evaluate.vqa.readers`).
        strategies: pruner names and/or allocation strategy names.
        budgets: image tokens to keep (``all`` ignores them).
        out: output folder (records, results, plot).
        layout: question layout (None: detected), ``images``: image folder override.
        device, dtype: where and in what precision the model runs ("fp32", "bf16", "fp16").
        limit: evaluate the first ``limit`` items only.
        relevance_model: query model of the allocation strategies (None: offline:camvid).
        max_new_tokens: longest answer.
        max_side: images are decoded with at most this longer side (0: full size).
        seed: seed of the random allocation strategy.
        threads: CPU threads torch may use during the run (None: torch's default). Tiny
            models on a busy machine run several times faster with 1.
        pruner_options: per pruner, keyword arguments of its constructor
            (``{"fastv": {"layer": 3}, "cdpruner": {"theta": 0.5}}``).
    """

    vlm: str
    data: Path
    strategies: list[str]
    budgets: list[int]
    out: Path
    layout: str | None = None
    images: Path | None = None
    device: str = "cpu"
    dtype: str = "fp32"
    limit: int | None = None
    relevance_model: str | None = None
    max_new_tokens: int = 16
    max_side: int = 1024
    seed: int = 0
    threads: int | None = None
    pruner_options: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class EvalRun:
    """What :func:`run_vlm_eval` did: results, where they are, and what it skipped."""

    results: dict[str, Any]
    computed: int
    resumed: int
    notes: list[str] = field(default_factory=list)


class AllocationStrategy(TokenPruner):
    """A clusterlens allocation strategy as a token pruner: patches on the model's grid.

    Coarse patches (quadtree leaves) are pooled into one token each, as ``clusterlens
    ask`` does by default; LLaVA-NeXT keeps their tokens instead.
    """

    families = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava", "llava_next")
    query_aware = True

    def __init__(self, strategy: str, relevance_model: str | None = None, seed: int = 0) -> None:
        self.name = strategy
        self.relevance_model = relevance_model
        self.seed = seed

    def warm_up(self) -> None:
        """Load the relevance model once, untimed, so the first item's selection time
        is not the model's loading time."""
        from clusterlens.pipeline import select_patches

        noise = np.random.default_rng(0).random((96, 96, 3), dtype=np.float32)
        select_patches(noise, "warm up", self.name, 4, model=self.relevance_model, grid=(6, 6))

    def plan(self, inputs: PruningInputs, budget: int) -> PruningPlan:
        from clusterlens.models.vlm import LlavaNextAdapter
        from clusterlens.pipeline import select_patches
        from clusterlens.relevance.source import selection_flops

        if inputs.image is None:
            raise ValueError("allocation strategies need the decoded image in PruningInputs.image")
        adapter = inputs.adapter
        rows, cols = adapter.token_grids(inputs.batch)[0]
        selection = select_patches(
            inputs.image,
            inputs.question,
            self.name,
            min(budget, rows * cols),
            model=self.relevance_model,
            grid=(rows, cols),
            seed=self.seed,
        )
        allocation = selection.allocation
        spent = selection_flops(allocation.cost)
        has_coarse = bool((allocation.levels > 0).any())
        if has_coarse and not isinstance(adapter, LlavaNextAdapter):
            pool = adapter.pool_from_allocations([allocation], inputs.batch)
            return PruningPlan(pool=pool, selection_flops=spent)
        keep = adapter.keep_from_allocations([allocation], inputs.batch)
        return PruningPlan(keep=keep, selection_flops=spent)


def strategy_names() -> list[str]:
    """Every strategy name the harness accepts: the pruners, then the allocations."""
    from clusterlens.allocate import list_strategies

    return [*list_pruners(), *list_strategies()]


def parse_strategies(text: str) -> list[str]:
    """``"all,fastv,mip-cascade"`` -> a checked list (order kept, duplicates dropped).

    Example:
        >>> parse_strategies("fastv, all,fastv")
        ['fastv', 'all']
    """
    names = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    known = strategy_names()
    unknown = [name for name in names if name not in known]
    if not names or unknown:
        raise ValueError(f"unknown strategies {unknown or text!r}; choose from {', '.join(known)}")
    return names


def parse_budgets(text: str) -> list[int]:
    """``"64,128,192"`` -> [64, 128, 192] (positive integers, sorted, no duplicates).

    Example:
        >>> parse_budgets("192, 64,128,64")
        [64, 128, 192]
    """
    try:
        budgets = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError as err:
        raise ValueError(f"--budgets must be integers like 64,128,192, got {text!r}") from err
    if not budgets or budgets[0] < 1:
        raise ValueError(f"--budgets must be positive token counts like 64,128,192, got {text!r}")
    return budgets


def make_strategy(
    name: str, relevance_model: str | None, seed: int, options: dict[str, Any] | None = None
) -> TokenPruner:
    """The pruner (built with ``options``) or allocation strategy called ``name``."""
    if name in list_pruners():
        try:
            return get_pruner(name, **(options or {}))
        except TypeError as err:
            raise ValueError(f"bad options {options} for {name}: {err}") from err
    if options:
        raise ValueError(f"{name} is an allocation strategy; it takes no pruner options")
    return AllocationStrategy(name, relevance_model, seed)


def parse_pruner_options(pairs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["fastv.layer=3", "cdpruner.theta=0.5"]`` -> ``{"fastv": {"layer": 3}, ...}``.

    Example:
        >>> parse_pruner_options(["fastv.layer=3", "cdpruner.theta=0.5"])
        {'fastv': {'layer': 3}, 'cdpruner': {'theta': 0.5}}
    """
    options: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        target, sep, value = pair.partition("=")
        name, dot, key = target.partition(".")
        if not (sep and dot and name and key and value):
            raise ValueError(
                "--pruner-option must look like PRUNER.KEY=VALUE (e.g. fastv.layer=3), "
                f"got {pair!r}"
            )
        if name not in list_pruners():
            raise ValueError(
                f"--pruner-option names {name!r}; pruners: {', '.join(list_pruners())}"
            )
        options.setdefault(name, {})[key] = _number_or_text(value)
    return options


def _number_or_text(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


class RecordStore:
    """Append-only JSON lines, one finished (strategy, budget, item) record per line.

    Each append is flushed and fsync'ed, so a kill loses at most the record being
    written; a torn last line is cut off when the store opens.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[tuple[str, int | None, str], dict[str, Any]] = {}
        if path.exists():
            self._load()

    @staticmethod
    def key(strategy: str, budget: int | None, item: str) -> tuple[str, int | None, str]:
        return strategy, budget, item

    def _load(self) -> None:
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):  # killed mid-line: drop the torn record
            with self.path.open("r+b") as handle:
                handle.truncate(len(complete))
        for line in complete.decode("utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                self.records[self.key(record["strategy"], record["budget"], record["item"])] = (
                    record
                )

    def __contains__(self, key: tuple[str, int | None, str]) -> bool:
        return key in self.records

    def append(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.records[self.key(record["strategy"], record["budget"], record["item"])] = record


def run_vlm_eval(config: EvalConfig, progress: Callable[[int, int], None] | None = None) -> EvalRun:
    """Evaluate every (strategy, budget, item) not yet in ``config.out``; write the results.

    Args:
        config: see :class:`EvalConfig`.
        progress: called with (done, total) after each record (resumed ones included).

    Returns:
        the results (also in ``results.json``), and how many records were computed now.

    Raises:
        ValueError: bad options, or an output folder from a run of another model or set.
    """
    if config.threads is None:
        return _run(config, progress)
    if config.threads < 1:
        raise ValueError(f"threads must be at least 1, got {config.threads}")
    previous = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _run(config, progress)
    finally:
        torch.set_num_threads(previous)


def _run(config: EvalConfig, progress: Callable[[int, int], None] | None) -> EvalRun:
    from clusterlens.evaluate.vqa import read_questions

    items = read_questions(config.data, config.layout, config.images)
    items = items[: config.limit] if config.limit is not None else items
    if not items:
        raise ValueError(f"{config.data} has no questions to evaluate")
    _check_images(items)
    config.out.mkdir(parents=True, exist_ok=True)
    _check_manifest(config)
    loaded = _load_model(config)
    notes = []
    if loaded.random_weights:
        notes.append("random weights (tiny model): accuracies are a pipeline check")
    strategies, skipped = _supported(config, loaded.adapter)
    notes += skipped
    store = RecordStore(config.out / RECORDS_FILE)
    plan = [(name, budget) for name in strategies for budget in _budgets_of(name, config)]
    total = len(plan) * len(items)
    done = sum(RecordStore.key(n, b, item.id) in store for n, b in plan for item in items)
    computed = 0
    for item in items:
        pending = [(n, b) for n, b in plan if RecordStore.key(n, b, item.id) not in store]
        if not pending:
            continue
        inputs, vision_s = _item_inputs(loaded, item, config, strategies)
        for name, budget in pending:
            store.append(
                _evaluate(loaded, inputs, item, strategies[name], budget, vision_s, config)
            )
            computed, done = computed + 1, done + 1
            if progress is not None:
                progress(done, total)
    keys = {RecordStore.key(n, b, item.id) for n, b in plan for item in items}
    records = [store.records[key] for key in sorted(keys, key=_sort_key)]
    results = summarize(records, config, notes)
    _write_outputs(results, config.out)
    return EvalRun(results, computed, len(keys) - computed, notes)


def _check_images(items: Sequence[Any]) -> None:
    """Fail before the first record, not an hour in, when images are missing."""
    missing = [item for item in items if not Path(item.image).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(items)} images not found, e.g. {missing[0].image} "
            f"(question {missing[0].id}); point --images at the folder that holds them"
        )


def _budgets_of(name: str, config: EvalConfig) -> list[int | None]:
    return [None] if name == REFERENCE else list(config.budgets)


def _sort_key(key: tuple[str, int | None, str]) -> tuple[str, int, str]:
    strategy, budget, item = key
    return strategy, -1 if budget is None else budget, item


def _check_manifest(config: EvalConfig) -> None:
    """An output folder holds one model on one question set; refuse to mix runs."""
    path = config.out / MANIFEST_FILE
    manifest = {
        "vlm": config.vlm,
        "data": str(Path(config.data).resolve()),
        "dtype": config.dtype,
        "max_new_tokens": config.max_new_tokens,
        "max_side": config.max_side,
        "relevance_model": config.relevance_model,
        "pruner_options": config.pruner_options,
        "seed": config.seed,
        "layout": config.layout,
        "images": str(Path(config.images).resolve()) if config.images else None,
    }
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
        different = {key: stored.get(key) for key in manifest if stored.get(key) != manifest[key]}
        if different:
            raise ValueError(
                f"{config.out} holds a run with other settings {different}; "
                "use another --out folder (or delete it) to start over"
            )
        return
    write_text_atomically(path, json.dumps(manifest, indent=2))


def _load_model(config: EvalConfig) -> Any:
    from clusterlens.models.vlm import load_vlm

    if config.dtype not in DTYPES:
        raise ValueError(f"--dtype must be one of {', '.join(DTYPES)}, got {config.dtype!r}")
    loaded = load_vlm(config.vlm, device=config.device, dtype=DTYPES[config.dtype])
    # tiny models are built on the CPU in float32 whatever was asked
    loaded.model.to(device=config.device, dtype=DTYPES[config.dtype])
    return loaded


def _supported(config: EvalConfig, adapter: Any) -> tuple[dict[str, TokenPruner], list[str]]:
    """The strategies the model's family supports, and a note for each it does not."""
    strategies, notes = {}, []
    for name in config.strategies:
        options = config.pruner_options.get(name)
        strategy = make_strategy(name, config.relevance_model, config.seed, options)
        try:
            strategy.check_family(adapter)
        except ValueError as err:
            notes.append(f"skipped {name}: {err}")
            continue
        if isinstance(strategy, AllocationStrategy):
            strategy.warm_up()
        strategies[name] = strategy
    return strategies, notes


def _item_inputs(
    loaded: Any, item: Any, config: EvalConfig, strategies: dict[str, TokenPruner]
) -> tuple[PruningInputs, float]:
    """Decode the image, build the prompt, run the vision tower once (timed)."""
    from clusterlens.image import load_image
    from clusterlens.models.vlm.pruners import vision_features_with_attention

    rgb = load_image(item.image, max_side=config.max_side or None)
    pixels = np.round(rgb * 255).astype(np.uint8)  # processors rescale uint8 themselves
    batch = loaded.batch(pixels, item.question).to(config.device)
    if "pixel_values" in batch:
        batch["pixel_values"] = batch["pixel_values"].to(DTYPES[config.dtype])
    adapter = loaded.adapter
    _synchronize(config.device)
    started = time.perf_counter()
    attention = None
    with torch.inference_mode():
        if "visionzip" in strategies:  # record the tower's attention in the same pass
            features, attention = vision_features_with_attention(adapter, batch)
        else:
            features = adapter.vision_features(batch)
    _synchronize(config.device)
    vision_s = time.perf_counter() - started
    inputs = PruningInputs(
        adapter,
        batch,
        features,
        item.question,
        loaded.processor.tokenizer,
        attention,
        image=rgb,
    )
    return inputs, vision_s


def _evaluate(
    loaded: Any,
    inputs: PruningInputs,
    item: Any,
    strategy: TokenPruner,
    budget: int | None,
    vision_s: float,
    config: EvalConfig,
) -> dict[str, Any]:
    from clusterlens.evaluate.vqa import score

    cuda = config.device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats(config.device)
    answer = strategy.answer(
        inputs,
        inputs.image_tokens if budget is None else budget,
        config.max_new_tokens,
        loaded.stop_token_ids(),
    )
    text = loaded.decode(answer.token_ids)
    peak = torch.cuda.max_memory_allocated(config.device) / 2**20 if cuda else None
    return {
        "strategy": strategy.name,
        "budget": budget,
        "item": item.id,
        "answer": text,
        "metric": item.metric,
        "score": score(item.metric, text, item.answers),
        "image_tokens_kept": answer.image_tokens_kept,
        "image_tokens_full": answer.image_tokens_full,
        "tokens_kept": answer.tokens_kept,
        "tokens_full": answer.tokens_full,
        "flops_kept": answer.flops_kept,
        "flops_full": answer.flops_full,
        "select_flops": answer.select_flops,
        "vision_s": vision_s,
        "select_s": answer.select_s,
        "prefill_s": answer.prefill_s,
        "generate_s": answer.generate_s,
        "peak_memory_mib": peak,
    }


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def summarize(
    records: Sequence[dict[str, Any]], config: EvalConfig, notes: Sequence[str] = ()
) -> dict[str, Any]:
    """Per (strategy, budget): mean score, tokens, FLOPs ratio, timings, overhead share.

    ``selection_overhead`` is the mean selection time as a share of the prefill time
    the strategy saves against ``all`` on the same items (None without ``all`` or
    when nothing is saved).
    """
    groups: dict[tuple[str, int | None], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["strategy"], record["budget"]), []).append(record)
    reference = groups.get((REFERENCE, None))
    rows = [
        _summary_row(name, budget, group, reference) for (name, budget), group in groups.items()
    ]
    return {
        "vlm": config.vlm,
        "data": str(config.data),
        "items": len({record["item"] for record in records}),
        "strategies": list(config.strategies),
        "budgets": list(config.budgets),
        "device": config.device,
        "dtype": config.dtype,
        "notes": list(notes),
        "summary": rows,
        "records": list(records),
    }


def _summary_row(
    name: str,
    budget: int | None,
    group: list[dict[str, Any]],
    reference: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    def mean(key: str, rows: list[dict[str, Any]] = group) -> float:
        return float(np.mean([row[key] for row in rows]))

    peaks = [row["peak_memory_mib"] for row in group if row.get("peak_memory_mib") is not None]
    overhead = None
    if reference is not None and name != REFERENCE:
        items = {row["item"] for row in group}
        same = [row for row in reference if row["item"] in items]
        saved = mean("prefill_s", same) - mean("prefill_s") if same else 0.0
        overhead = mean("select_s") / saved if saved > 0 else None
    return {
        "strategy": name,
        "budget": budget,
        "items": len(group),
        "accuracy": round(mean("score"), 6),
        "image_tokens_kept": mean("image_tokens_kept"),
        "image_tokens_full": mean("image_tokens_full"),
        "flops_ratio": round(
            float(np.mean([row["flops_kept"] / max(row["flops_full"], 1) for row in group])), 6
        ),
        **_selection_flops(group),
        "vision_s": mean("vision_s"),
        "select_s": mean("select_s"),
        "prefill_s": mean("prefill_s"),
        "generate_s": mean("generate_s"),
        "peak_memory_mib": max(peaks) if peaks else None,
        "selection_overhead": overhead,
    }


def _selection_flops(group: list[dict[str, Any]]) -> dict[str, float | None]:
    """Mean selection GFLOPs, and the FLOPs ratio with them added to the kept prefill.

    None when any record of the group has no count (a method that does not report its
    choice's FLOPs, or records written before they were counted): a partial mean would
    read as a measured one.
    """
    spent = [row.get("select_flops") for row in group]
    if any(value is None for value in spent):
        return {"select_gflops": None, "flops_ratio_with_selection": None}
    ratios = [
        (row["flops_kept"] + cost) / max(row["flops_full"], 1)
        for row, cost in zip(group, spent, strict=True)
    ]
    return {
        "select_gflops": float(np.mean(spent)) / 1e9,
        "flops_ratio_with_selection": round(float(np.mean(ratios)), 6),
    }


def _write_outputs(results: dict[str, Any], out: Path) -> None:
    write_text_atomically(out / RESULTS_FILE, json.dumps(results, indent=2))
    plot_accuracy_vs_tokens(results["summary"], out / PLOT_FILE, title=results["vlm"])


def plot_accuracy_vs_tokens(summary: Sequence[dict[str, Any]], path: Path, title: str = "") -> Path:
    """One curve per strategy: mean accuracy against mean image tokens kept."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.4))
    for name in dict.fromkeys(row["strategy"] for row in summary):
        rows = sorted(
            (row for row in summary if row["strategy"] == name),
            key=lambda row: row["image_tokens_kept"],
        )
        tokens = [row["image_tokens_kept"] for row in rows]
        accuracy = [row["accuracy"] for row in rows]
        if name == REFERENCE:
            axes.axhline(
                accuracy[0], color="black", linestyle="--", linewidth=1, label="all tokens"
            )
            axes.plot(tokens, accuracy, "k*", markersize=10)
        else:
            axes.plot(tokens, accuracy, marker="o", label=name)
    axes.set_xlabel("image tokens kept (mean)")
    axes.set_ylabel("accuracy")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
