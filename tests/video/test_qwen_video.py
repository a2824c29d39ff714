"""Qwen2-VL / Qwen2.5-VL / Qwen3-VL video tokens: keep-all is the model; a kept token
keeps its position."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clusterlens.models.vlm.qwen_video import (
    QwenVideoAdapter,
    video_keep_masks,
    video_processor_kwargs,
)
from clusterlens.models.vlm.tiny import tiny_llava, tiny_qwen_vl

PROMPT = "user : <|vision_start|> <|video_pad|> <|vision_end|> what happens ? assistant :"
#: token grid of one temporal patch of the 56 x 84 frames, scaled up by the processors
#: to their minimum size: 28 px merged patches for Qwen2/2.5-VL, 32 px for Qwen3-VL
GRIDS = {"qwen2_vl": (10, 14), "qwen2_5_vl": (10, 14), "qwen3_vl": (5, 7)}


@pytest.fixture(params=list(GRIDS), scope="module")
def video_case(request):
    bundle = tiny_qwen_vl(request.param)
    frames = (np.random.default_rng(0).random((4, 56, 84, 3)) * 255).astype(np.uint8)
    batch = bundle.processor(
        videos=[frames], text=[PROMPT], return_tensors="pt",
        videos_kwargs=video_processor_kwargs(bundle.processor, len(frames)),
    )  # fmt: skip
    return bundle, QwenVideoAdapter(bundle.model), batch


@pytest.mark.slow  # builds tiny transformers models
def test_keeping_every_video_token_reproduces_the_model_logits(video_case):
    bundle, adapter, batch = video_case
    grid = GRIDS[bundle.family]
    assert adapter.token_grids(batch) == [grid, grid]  # 4 frames: 2 temporal patches
    with torch.inference_mode():
        reference = bundle.model(**batch).logits
    prompt = adapter.prepare(batch)
    if bundle.family == "qwen3_vl":  # DeepStack rows of the video tokens go along
        assert len(prompt.language_kwargs["deepstack_visual_embeds"]) == 1
        assert prompt.language_kwargs["visual_pos_masks"].sum() == 2 * grid[0] * grid[1]
    logits, _ = adapter.prefill(prompt)
    torch.testing.assert_close(logits, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # builds tiny transformers models
def test_kept_tokens_keep_their_time_row_col_positions(video_case):
    bundle, adapter, batch = video_case
    rows, cols = GRIDS[bundle.family]
    masks = [np.zeros((rows, cols), bool), np.zeros((rows, cols), bool)]
    masks[0][2, 3] = True
    masks[1][rows - 1, cols - 1] = True
    prompt = adapter.prepare(batch, adapter.keep_from_grids(masks, batch))
    full = adapter.full_positions(batch)[:, 0]
    video_rows = torch.nonzero(batch["input_ids"][0] == adapter.image_token_id).squeeze(1)
    starts = video_rows[0], video_rows[rows * cols]  # first token of each temporal patch
    first, second = video_rows[2 * cols + 3], video_rows[rows * cols + rows * cols - 1]
    assert prompt.image_keep.sum() == 2
    kept_positions = prompt.position_ids[:, 0]
    for row in (first, second):  # a kept token sits where it sat in the full prompt
        assert torch.equal(kept_positions[:, prompt.sequence_keep[:row].sum()], full[:, row])
    # ... at its (row, col) in its temporal patch's grid
    assert (full[1:, first] - full[1:, starts[0]]).tolist() == [2, 3]
    assert (full[1:, second] - full[1:, starts[1]]).tolist() == [rows - 1, cols - 1]
    if bundle.family == "qwen3_vl":
        # each temporal patch is its own (1, h, w) grid after its "<t seconds>" text:
        # temporal index 0, every axis offset by the text before it
        assert full[0, second] == full[1, starts[1]] == full[2, starts[1]]
        assert full[0, starts[1]] > full[0, first]
    elif bundle.family == "qwen2_vl":
        assert full[0, second] - full[0, first] == 1  # temporal patch 1 vs 0
    # (Qwen2.5-VL scales the temporal index by seconds per patch, which the tiny
    # config's tokens_per_second rounds to the same value for both patches here)
    # text after the video continues where the full prompt's did
    assert torch.equal(kept_positions[:, -1], full[:, -1])


@pytest.mark.slow  # builds tiny transformers models
def test_greedy_generation_on_kept_video_tokens(video_case):
    bundle, adapter, batch = video_case
    rows, cols = GRIDS[bundle.family]
    masks = [np.zeros((rows, cols), bool), np.ones((rows, cols), bool)]
    masks[0][:2] = True
    prompt = adapter.prepare(batch, adapter.keep_from_grids(masks, batch))
    kept = 2 * cols + rows * cols
    assert prompt.image_tokens_kept == kept
    assert prompt.tokens_full - prompt.tokens_kept == rows * cols - 2 * cols
    answer = adapter.generate(prompt, max_new_tokens=3)
    assert answer.token_ids.shape == (3,)
    assert answer.flops_kept < answer.flops_full
    # the first token is the argmax of the pruned prefill
    logits, _ = adapter.prefill(prompt)
    assert int(answer.token_ids[0]) == int(logits[0, -1].argmax())


@pytest.mark.slow  # builds tiny transformers models
def test_qwen3_timestamps_follow_the_source_frames():
    processor = tiny_qwen_vl("qwen3_vl").processor
    kwargs = video_processor_kwargs(processor, 4, fps=10.0, frame_stride=5)
    assert kwargs["video_metadata"]["frames_indices"] == [0, 5, 10, 15]
    assert kwargs["cap_pixels_per_frame"] is True
    frames = np.zeros((4, 56, 84, 3), np.uint8)
    videos = processor.video_processor(videos=[frames], return_metadata=True, **kwargs)
    placeholder = processor.replace_video_token(videos, 0)  # the text the prompt gets
    # frames 0 and 5 at 10 fps: 0.25 s; frames 10 and 15: 1.25 s
    assert placeholder.startswith("<0.2 seconds><|vision_start|><|video_pad|>")
    assert placeholder.count("<|video_pad|>") == 2 * 5 * 7
    assert "<|vision_end|><1.2 seconds><|vision_start|>" in placeholder
    assert video_processor_kwargs(object(), 4) == {  # a processor without the option
        "do_sample_frames": False,
        "video_metadata": {"total_num_frames": 4, "fps": 24.0, "frames_indices": [0, 1, 2, 3]},
    }


def test_keep_masks_from_kept_cells():
    kept = np.zeros((4, 4, 4), bool)
    kept[1, 0, 0] = True  # frame 1: in the first temporal patch (frames 0-1)
    kept[3, 3, 3] = True
    masks = video_keep_masks(kept, [(2, 2), (2, 2)], min_overlap=0.25)
    assert masks[0].tolist() == [[True, False], [False, False]]
    assert masks[1].tolist() == [[False, False], [False, True]]
    assert not video_keep_masks(kept, [(2, 2), (2, 2)], min_overlap=0.5)[0].any()
    with pytest.raises(ValueError, match="multiple of the 3 temporal patches"):
        video_keep_masks(kept, [(2, 2)] * 3)


@pytest.mark.slow  # builds tiny transformers models
def test_image_models_and_image_batches_are_refused(video_case):
    bundle, adapter, _ = video_case
    with pytest.raises(ValueError, match="takes"):
        QwenVideoAdapter(tiny_llava().model)
    images = bundle.processor(images=[bundle.image], text=[bundle.prompt], return_tensors="pt")
    with pytest.raises(ValueError, match="has no video"):
        adapter.token_grids(images)


def test_ask_reads_the_frame_rate_of_a_video_file(tmp_path):
    import cv2

    from clusterlens.ask_video import _frame_rate

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    for _ in range(4):
        writer.write(np.zeros((24, 32, 3), np.uint8))
    writer.release()
    assert _frame_rate(path) == pytest.approx(10.0)
    assert _frame_rate(str(path)) == pytest.approx(10.0)
    assert _frame_rate(tmp_path) is None  # a folder of frames has no rate
    assert _frame_rate([np.zeros((24, 32, 3))]) is None
