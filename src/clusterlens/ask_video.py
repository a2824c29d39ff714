"""Answer a question about a clip with a Qwen2-VL / Qwen2.5-VL / Qwen3-VL model that sees
only the video tokens the clip's allocation keeps.

clip -> frames (an even number: the models pack two frames into one temporal patch)
-> the processor's video tokens, one (rows, cols) grid per temporal patch (Qwen3-VL
writes each patch as its own block after a ``<t seconds>`` timestamp, from the source's
frame rate when the clip is a video file) ->
:func:`~clusterlens.video.select_video` on the first frame of every temporal patch, on
that token grid, so one kept cell is one kept token and the budget is exact -> the
video adapter drops the other tokens, each kept token keeping its (t, row, col) M-RoPE
position -> greedy answer, with prefill FLOPs against the whole clip.

It sits beside ``ask.py`` for the same reason: it composes capabilities (video,
allocation, VLMs). The command line is ``clusterlens ask VIDEO`` (``cli/ask.py``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from clusterlens.ask import AskResult

#: Frames given to the model by default: four temporal patches, a few seconds of video.
DEFAULT_FRAMES = 8
DEFAULT_VIDEO_STRATEGY = "temporal-cascade"
FRAMES_PER_PATCH = 2  # temporal_patch_size of Qwen2-VL, Qwen2.5-VL and Qwen3-VL


def answer_video_question(
    video: Any,
    question: str,
    vlm: str,
    strategy: str = DEFAULT_VIDEO_STRATEGY,
    budget: int | None = None,
    *,
    max_new_tokens: int = 32,
    relevance_model: str | None = None,
    frames: int = DEFAULT_FRAMES,
    frame_stride: int = 1,
    max_side: int | None = 1024,
    baseline: bool = False,
) -> AskResult:
    """Select (temporal patch, token) cells for ``question`` and answer on those only.

    Args:
        video: a video file, a folder of frames or a list of images.
        question: the question (also the relevance query).
        vlm: a Qwen2-VL, Qwen2.5-VL or Qwen3-VL folder, cached id or ``tiny:qwen2_vl``
            / ``tiny:qwen2_5_vl`` / ``tiny:qwen3_vl``.
        strategy: a video strategy (:data:`~clusterlens.video.VIDEO_STRATEGIES`).
        budget: video tokens to keep in all (default: a quarter of them).
        frames: frames given to the model (the first ones after ``frame_stride``);
            rounded down to an even number.
        max_side: frames are decoded with at most this longer side.
        baseline: also answer with every video token, for comparison.

    Raises:
        ValueError: a model family without video support, fewer than two frames, or a
            budget outside [1, video tokens].
    """
    from clusterlens.models.vlm import load_vlm, prefill_flops
    from clusterlens.models.vlm.qwen_video import (
        ASSUMED_FPS,
        VIDEO_MODEL_TYPES,
        QwenVideoAdapter,
        video_processor_kwargs,
    )
    from clusterlens.relevance.source import selection_flops
    from clusterlens.video import open_video

    started = time.perf_counter()
    stages: dict[str, float] = {}
    loaded = load_vlm(vlm)
    stages["load_vlm"] = time.perf_counter() - started
    model_type = getattr(loaded.model.config, "model_type", None)
    if model_type not in VIDEO_MODEL_TYPES:
        raise ValueError(
            f"ask on a video needs a {', '.join(VIDEO_MODEL_TYPES[:-1])} or "
            f"{VIDEO_MODEL_TYPES[-1]} model, got {model_type!r}"
        )
    notes = ["random weights (tiny model): the answer is nonsense"] if loaded.random_weights else []
    adapter = QwenVideoAdapter(loaded.model)
    clip = _even_frames(open_video(video, max_side=max_side, frame_stride=frame_stride,
                                   max_frames=frames))  # fmt: skip
    fps = _frame_rate(video)
    if fps is None and model_type != "qwen2_vl":  # Qwen2.5-VL and Qwen3-VL read time
        notes.append(f"no frame rate (not a video file): timestamps assume {ASSUMED_FPS:g} fps")
    batch = loaded.processor(
        videos=[np.stack(clip)],
        text=[video_prompt(loaded, question)],
        return_tensors="pt",
        # the frames are already the ones chosen; their times are the source's
        videos_kwargs=video_processor_kwargs(loaded.processor, len(clip), fps, frame_stride),
    )
    grids = adapter.token_grids(batch)
    rows, cols = grids[0]
    tokens_full = sum(r * c for r, c in grids)
    kept_budget = max(1, tokens_full // 4) if budget is None else budget
    if not 1 <= kept_budget <= tokens_full:
        raise ValueError(f"--budget must lie in [1, {tokens_full}] (the clip's video tokens)")
    mark = time.perf_counter()
    allocation = _select(clip, question, strategy, kept_budget, relevance_model, (rows, cols))
    stages["select"] = time.perf_counter() - mark
    notes += list(allocation.notes)
    masks = list(allocation.kept())  # one (rows, cols) mask per temporal patch
    prompt = adapter.prepare(batch, adapter.keep_from_grids(masks, batch))
    answer = adapter.generate(prompt, max_new_tokens, loaded.stop_token_ids())
    full_tokens = int(batch["input_ids"].shape[1])
    result = AskResult(
        answer=loaded.decode(answer.token_ids),
        image_tokens_kept=prompt.image_tokens_kept,
        image_tokens_full=tokens_full,
        tokens_kept=prompt.tokens_kept,
        tokens_full=full_tokens,
        token_grid=(rows, cols),
        flops_kept=answer.flops_kept,
        flops_full=prefill_flops(full_tokens, adapter.decoder_shape),
        prefill_s=answer.prefill_s,
        generate_s=answer.total_s,
        total_s=time.perf_counter() - started,
        stages_s=stages,
        notes=notes + [f"{len(clip)} frames, {len(grids)} temporal patches of {rows}x{cols}"],
        select_flops=selection_flops(allocation.cost),
    )
    if baseline:
        full = adapter.generate(adapter.prepare(batch), max_new_tokens, loaded.stop_token_ids())
        result.baseline = {
            "answer": loaded.decode(full.token_ids),
            "prefill_s": full.prefill_s,
            "generate_s": full.total_s,
        }
    return result


def video_prompt(loaded: Any, question: str) -> str:
    """The chat prompt for one video followed by ``question`` (the tiny models have no
    chat template and get the plain layout their tokenizer knows)."""
    if getattr(loaded.processor, "chat_template", None):
        content = [{"type": "video"}, {"type": "text", "text": question}]
        return loaded.processor.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
        )
    return f"user : <|vision_start|> <|video_pad|> <|vision_end|> {question} assistant :"


def _frame_rate(video: Any) -> float | None:
    """The frame rate a video file reports (None for folders, lists, or no rate)."""
    import cv2

    from clusterlens.video.frames import is_video_input

    if not isinstance(video, (str, os.PathLike)) or not Path(video).is_file():
        return None
    if not is_video_input(video):
        return None
    capture = cv2.VideoCapture(str(video))
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS))
    finally:
        capture.release()
    return fps if fps > 0 else None


def _even_frames(clip: Any) -> list[np.ndarray]:
    """The clip's frames as uint8, an even number of them (two per temporal patch)."""
    usable = len(clip) - len(clip) % FRAMES_PER_PATCH
    if usable < FRAMES_PER_PATCH:
        raise ValueError(
            f"the clip has {len(clip)} frame(s); a video question needs at least "
            f"{FRAMES_PER_PATCH} (ask an image question about a single frame)"
        )
    return [np.round(frame * 255).astype(np.uint8) for _, frame in clip.read(range(usable))]


def _select(clip, question, strategy, budget, relevance_model, grid) -> Any:
    """Allocate on the first frame of every temporal patch, on its token grid."""
    from clusterlens.video import select_video

    firsts = clip[::FRAMES_PER_PATCH]
    return select_video(
        firsts, question, strategy, budget, model=relevance_model, grid=grid, max_side=None
    )
