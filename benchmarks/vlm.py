"""VLM prefill against image tokens kept: time, peak memory, and the FLOPs estimate.

For each model the image is encoded once; an allocation (``topk`` over a "redness"
relevance map, on the model's own token grid) keeps a fraction of the image tokens,
and the language model's prefill runs on the pruned prompt. Measured:

- prefill time (last-position logits only, as in generation): interleaved medians
  (``_report.interleaved_medians``) over the keep fractions of one model, so machine
  drift hits all alike; 1 torch thread;
- peak memory: bytes held by tensors torch allocates during one prefill, rebuilt
  from ``torch.profiler`` allocation and free events (weights excluded);
- FLOPs: the FastV estimate, per decoder layer ``4 n d^2 + 2 n^2 d + 2 n d m``;
  ``time/FLOPs`` compares the measured time ratio (kept/full) with the FLOPs ratio
  (1.0 = the estimate predicts time exactly).

Models: the tiny test configurations (hidden 32, 2 layers) and a larger random
configuration of the same architectures (hidden 512, FFN 2048, 4 layers), where the
arithmetic is big enough to dominate per-call overhead. Any supported VLM in the
local Hugging Face cache is measured too; none is skipped with a note.

Run: ``.venv/bin/python benchmarks/vlm.py [--repeats N]``; writes
``benchmarks/results/vlm.json`` and ``benchmarks/results/vlm.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from typing import Any

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from _report import RESULTS, interleaved_medians, machine, markdown_table
from clusterlens.allocate import allocate
from clusterlens.models.vlm import adapter_for, hf_cache_dir, list_cached_vlms, load_vlm
from clusterlens.models.vlm.tiny import sample_image, tiny_llava, tiny_llava_next, tiny_vlm

KEEP_FRACTIONS = (1.0, 0.5, 0.25, 0.1)
# Qwen2-VL: 24 x 32 = 768 tokens; Qwen3-VL: 21 x 28; LLaVA: 24 x 24; LLaVA-NeXT: 36 x 48 + base
IMAGE_SIZE = (672, 896)
LARGER = {
    "hidden_size": 512,
    "intermediate_size": 2048,
    "num_hidden_layers": 4,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
}
QUESTION = "what is in the image ?"


def models() -> list[tuple[str, str, Any, Any, str]]:
    """(family, configuration, model, processor, prompt) of every model measured."""
    built = []
    for config, text in (("tiny", None), ("larger", LARGER)):
        for family in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl"):
            if config == "larger" and family != "qwen2_vl":
                continue  # the larger configuration: one Qwen and LLaVA keep the run short
            bundle = tiny_vlm(family, text=text)
            built.append((family, config, bundle.model, bundle.processor, bundle.prompt))
        llava = tiny_llava(image_size=336, patch_size=14, text=text)  # LLaVA-1.5's 24 x 24
        built.append(("llava", config, llava.model, llava.processor, llava.prompt))
        if config == "tiny":  # LLaVA-NeXT's 336 px tiles, up to 2 x 2: ~2300 tokens
            nxt = tiny_llava_next(tile_size=336, patch_size=14)
            built.append(("llava_next", config, nxt.model, nxt.processor, nxt.prompt))
    return built


def redness(image: np.ndarray) -> np.ndarray:
    rgb = image.astype(np.float32) / 255
    return np.clip(rgb[..., 0] - rgb[..., 2], 0, 1) + 0.01 * rgb.mean(-1)


def measure(family: str, config: str, model: Any, batch: Any, image: np.ndarray, repeats: int):
    adapter = adapter_for(model)
    started = time.perf_counter()
    full = adapter.prepare(batch)
    vision_s = time.perf_counter() - started
    rows, cols = adapter.token_grids(batch)[0]
    prompts = {}
    for fraction in KEEP_FRACTIONS:
        budget = max(1, round(fraction * rows * cols))
        allocation = allocate(redness(image), "topk", budget, grid=(rows, cols))
        keep = adapter.keep_from_allocations([allocation], batch)
        prompts[fraction] = full if fraction == 1.0 else adapter.prepare(batch, keep)
    medians = interleaved_medians(
        {f: (lambda p=p: adapter.prefill(p, last_only=True)) for f, p in prompts.items()},
        repeats=repeats,
    )
    shape = adapter.decoder_shape
    results = []
    for fraction, prompt in prompts.items():
        flops = prompt_flops(prompt.tokens_kept, shape)
        flops_full = prompt_flops(prompt.tokens_full, shape)
        results.append(
            {
                "family": family,
                "config": config,
                "hidden": shape.hidden,
                "layers": shape.layers,
                "ffn": shape.ffn,
                "token_grid": [rows, cols],
                "keep_fraction": fraction,
                "image_tokens_kept": prompt.image_tokens_kept,
                "image_tokens_full": prompt.image_tokens_full,
                "tokens_kept": prompt.tokens_kept,
                "tokens_full": prompt.tokens_full,
                "flops": flops,
                "flops_ratio": flops / flops_full,
                "prefill_ms": medians[fraction] * 1000,
                "time_ratio": medians[fraction] / medians[1.0],
                "peak_bytes": peak_prefill_bytes(adapter, prompt),
                "vision_and_embed_ms": vision_s * 1000,
            }
        )
    full_peak = results[0]["peak_bytes"]
    for row in results:
        row["memory_ratio"] = row["peak_bytes"] / full_peak
        row["time_over_flops"] = row["time_ratio"] / row["flops_ratio"]
        row["gflops_per_s"] = row["flops"] / (row["prefill_ms"] / 1000) / 1e9
    return results


def prompt_flops(tokens: int, shape: Any) -> int:
    from clusterlens.models.vlm import prefill_flops

    return prefill_flops(tokens, shape)


def peak_prefill_bytes(adapter: Any, prompt: Any) -> int:
    """Peak bytes of tensors alive during one prefill, from the profiler's memory events.

    Operators report what they allocate (``self_cpu_memory_usage``) and ``[memory]``
    events report frees (negative) and stray allocations; their running sum in time
    order is the memory held, whose maximum is the peak.
    """
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        adapter.prefill(prompt, last_only=True)
    deltas = sorted(
        (event.time_range.start, _event_bytes(event))
        for event in prof.events()
        if _event_bytes(event)
    )
    return int(max(itertools.accumulate(delta for _, delta in deltas), default=0))


def _event_bytes(event: Any) -> int:
    return event.cpu_memory_usage if event.name == "[memory]" else event.self_cpu_memory_usage


def cached_models(repeats: int) -> tuple[list[dict], str]:
    names = list_cached_vlms()
    if not names:
        return [], f"no supported VLM in the local Hugging Face cache ({hf_cache_dir()}): skipped"
    rows = []
    image = sample_image(*IMAGE_SIZE)
    for name in names:
        loaded = load_vlm(name)
        rows += measure(
            loaded.model.config.model_type,
            name,
            loaded.model,
            loaded.batch(image, QUESTION),
            image,
            repeats,
        )
    return rows, f"measured cached VLMs: {', '.join(names)}"


def report(rows: list[dict], info: dict, note: str) -> str:
    headers = [
        "model", "config (d, layers, m)", "grid", "image tokens", "prompt tokens",
        "FLOPs (FastV)", "FLOPs ratio", "prefill ms", "time ratio", "time/FLOPs",
        "peak MiB", "mem ratio",
    ]  # fmt: skip
    table = markdown_table(
        headers,
        [
            [
                r["family"],
                f"{r['config']} ({r['hidden']}, {r['layers']}, {r['ffn']})",
                "x".join(map(str, r["token_grid"])),
                f"{r['image_tokens_kept']}/{r['image_tokens_full']}",
                f"{r['tokens_kept']}/{r['tokens_full']}",
                f"{r['flops']:.3g}",
                f"{r['flops_ratio']:.3f}",
                f"{r['prefill_ms']:.2f}",
                f"{r['time_ratio']:.3f}",
                f"{r['time_over_flops']:.2f}",
                f"{r['peak_bytes'] / 2**20:.2f}",
                f"{r['memory_ratio']:.3f}",
            ]
            for r in rows
        ],
    )
    return (
        "## VLM token pruning: prefill against image tokens kept\n\n"
        f"`benchmarks/vlm.py`, CPU ({info['cpus']} cores, torch {info['torch']}, "
        f"{info['torch_threads']} thread, load average {info['load_average']:.2f}); "
        f"image {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}, random weights. Prefill = the language "
        "model on the pruned prompt (the vision tower always encodes the full image). "
        "FLOPs: per layer 4nd^2 + 2n^2d + 2ndm, summed over layers. time/FLOPs = "
        "(time kept/full) / (FLOPs kept/full): 1 means the estimate predicts time.\n\n"
        f"{table}\n\nReal checkpoints: {note}.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    info = machine()
    image = sample_image(*IMAGE_SIZE)
    rows: list[dict] = []
    for family, config, model, processor, prompt in models():
        batch = processor(images=[image], text=[prompt], return_tensors="pt")
        rows += measure(family, config, model, batch, image, args.repeats)
        print(f"{family} {config}: done", flush=True)
    cached_rows, note = cached_models(args.repeats)
    rows += cached_rows
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"machine": info, "image_size": list(IMAGE_SIZE), "rows": rows, "cached": note}
    (RESULTS / "vlm.json").write_text(json.dumps(payload, indent=2) + "\n")
    markdown = report(rows, info, note)
    (RESULTS / "vlm.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
