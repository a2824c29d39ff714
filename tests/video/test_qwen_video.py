"""Qwen2-VL / Qwen2.5-VL video tokens: keep-all is the model; a kept token keeps its
(t, row, col) position."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clusterlens.models.vlm.qwen_video import QwenVideoAdapter, video_keep_masks
from clusterlens.models.vlm.tiny import tiny_qwen_vl

PROMPT = "user : <|vision_start|> <|video_pad|> <|vision_end|> what happens ? assistant :"


@pytest.fixture(params=["qwen2_vl", "qwen2_5_vl"], scope="module")
def video_case(request):
    bundle = tiny_qwen_vl(request.param)
    frames = (np.random.default_rng(0).random((4, 56, 84, 3)) * 255).astype(np.uint8)
    batch = bundle.processor(
        videos=[frames], text=[PROMPT], return_tensors="pt",
        videos_kwargs={"do_sample_frames": False},
    )  # fmt: skip
    return bundle, QwenVideoAdapter(bundle.model), batch


@pytest.mark.slow  # builds tiny transformers models
def test_keeping_every_video_token_reproduces_the_model_logits(video_case):
    bundle, adapter, batch = video_case
    assert adapter.token_grids(batch) == [(10, 14), (10, 14)]  # 4 frames: 2 temporal patches
    with torch.inference_mode():
        reference = bundle.model(**batch).logits
    logits, _ = adapter.prefill(adapter.prepare(batch))
    torch.testing.assert_close(logits, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # builds tiny transformers models
def test_kept_tokens_keep_their_time_row_col_positions(video_case):
    _, adapter, batch = video_case
    masks = [np.zeros((10, 14), bool), np.zeros((10, 14), bool)]
    masks[0][2, 3] = True
    masks[1][9, 13] = True
    prompt = adapter.prepare(batch, adapter.keep_from_grids(masks, batch))
    full = adapter.full_positions(batch)
    video_rows = torch.nonzero(batch["input_ids"][0] == adapter.image_token_id).squeeze(1)
    first, second = video_rows[2 * 14 + 3], video_rows[140 + 9 * 14 + 13]
    kept_positions = prompt.position_ids[:, 0]
    assert prompt.image_keep.sum() == 2
    assert torch.equal(kept_positions[:, 3], full[:, 0, first])  # after 3 text tokens
    assert torch.equal(kept_positions[:, 4], full[:, 0, second])
    # (the temporal index itself is the model's: Qwen2.5-VL scales it by seconds per
    # patch, which the tiny config's tokens_per_second rounds to the same value here)
    # text after the video continues where the full prompt's did
    assert torch.equal(kept_positions[:, -1], full[:, 0, -1])


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
        QwenVideoAdapter(tiny_qwen_vl("qwen3_vl").model)
    images = bundle.processor(images=[bundle.image], text=[bundle.prompt], return_tensors="pt")
    with pytest.raises(ValueError, match="has no video"):
        adapter.token_grids(images)
