"""Qwen2-VL, Qwen2.5-VL and Qwen3-VL video inputs: keep only chosen video tokens,
M-RoPE kept.

A video reaches these models as ``pixel_values_videos`` with ``video_grid_thw`` =
(t, h, w) per video: ``t`` temporal patches (``temporal_patch_size`` frames each, 2
for all three), ``h x w`` patches per frame. Each temporal patch becomes ``h/merge *
w/merge`` tokens in row-major order, temporal patches one after the other. The
families differ in what surrounds them and in their rotary positions:

- Qwen2-VL / Qwen2.5-VL: one ``<|video_pad|>`` run for the whole video; each token's
  position is (t, row, col) offset by the text before the video, where Qwen2.5-VL
  scales ``t`` by the seconds per temporal patch (``second_per_grid_ts``).
- Qwen3-VL: the processor writes every temporal patch as its own block,
  ``<t seconds><|vision_start|>`` + tokens + ``<|vision_end|>`` (the mean time of its
  two frames, ``Qwen3VLProcessor.replace_video_token``), and ``get_rope_index`` splits
  ``video_grid_thw`` into one (1, h, w) grid per temporal patch
  (``modeling_qwen3_vl.py``, ``Qwen3VLModel.get_rope_index``): each patch's tokens sit
  at (s, s + row, s + col) with ``s`` the position after the text before it, so time
  is told by the timestamp text and the order, not by the temporal index. The vision
  tower also returns DeepStack features for video tokens; they are pruned with the
  same mask, as for images.

The adapter treats every temporal patch as one grid of the image adapters
(``token_grids`` lists them in order), so a keep mask per temporal patch -- e.g. from
a :class:`~clusterlens.video.allocation.VideoAllocation` -- selects video tokens, and
a kept token keeps the position the model gives it.

Keeping every token reproduces the model's own logits (tested with tiny random
configurations of the three families).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch

from clusterlens.models.vlm._base import VisionFeatures
from clusterlens.models.vlm.qwen import QwenVLAdapter

VIDEO_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")


class QwenVideoAdapter(QwenVLAdapter):
    """Pruning adapter for the video tokens of Qwen2-VL, Qwen2.5-VL and Qwen3-VL prompts."""

    def __init__(self, model: torch.nn.Module) -> None:
        model_type = getattr(model.config, "model_type", None)
        if model_type not in VIDEO_MODEL_TYPES:
            raise ValueError(
                f"QwenVideoAdapter takes {VIDEO_MODEL_TYPES} models, got {model_type!r}"
            )
        super().__init__(model)
        # the shared machinery finds "image" rows by this id: here they are video rows
        self.image_token_id = int(model.config.video_token_id)

    def token_grids(self, batch: dict[str, Any]) -> list[tuple[int, int]]:
        """One (rows, cols) grid per temporal patch, videos in order."""
        grids = []
        for t, h, w in _video_grid(batch).tolist():
            grids += [(int(h) // self.merge, int(w) // self.merge)] * int(t)
        return grids

    def vision_features(self, batch: dict[str, Any]) -> VisionFeatures:
        grid_thw = _video_grid(batch)
        output = self.model.model.get_video_features(
            batch["pixel_values_videos"], grid_thw, return_dict=True
        )
        embeds = torch.cat(output.pooler_output, dim=0)
        # Qwen3-VL: DeepStack features of the video tokens (none for Qwen2/2.5-VL), which
        # the inherited language_inputs prunes with the same mask
        deepstack = getattr(output, "deepstack_features", None) or []
        layers = [torch.cat(per_video, dim=0) for per_video in deepstack]
        return VisionFeatures(embeds, self.token_grids(batch), layer_inputs=layers)

    def full_positions(self, batch: dict[str, Any]) -> torch.Tensor:
        if "mm_token_type_ids" not in batch:
            raise ValueError(
                "the batch lacks mm_token_type_ids, which M-RoPE needs; build it with the "
                "model's processor (it returns them)"
            )
        extra = {}
        if "second_per_grid_ts" in batch:  # Qwen2.5-VL: temporal positions in seconds
            extra["second_per_grid_ts"] = batch["second_per_grid_ts"]
        positions, _ = self.model.model.get_rope_index(
            batch["input_ids"],
            mm_token_type_ids=batch["mm_token_type_ids"],
            video_grid_thw=_video_grid(batch),
            **extra,
        )
        return positions


#: Frame rate assumed when a clip has none (a folder of frames): transformers' default.
ASSUMED_FPS = 24.0


def video_processor_kwargs(
    processor: Any, frame_count: int, fps: float | None = None, frame_stride: int = 1
) -> dict[str, Any]:
    """The processor's ``videos_kwargs`` for frames the caller already chose.

    Frame sampling is off (``do_sample_frames=False``: the frames given are the ones
    the model sees), and the metadata says which frames of the source they are, so
    Qwen2.5-VL's seconds per temporal patch and Qwen3-VL's ``<t seconds>`` timestamps
    are the source's. A video processor that takes ``cap_pixels_per_frame`` (those of
    all three families in transformers 5.x) gets True: the reference (qwen-vl-utils)
    frame size, which transformers makes the default in v5.22 (it warns until then).

    Args:
        processor: the model's processor.
        frame_count: frames passed, the ``frame_stride``-th ones of the source from its
            first.
        fps: the source's frame rate (None: :data:`ASSUMED_FPS`).
        frame_stride: source frames per frame passed.
    """
    kwargs: dict[str, Any] = {
        "do_sample_frames": False,
        "video_metadata": {
            "total_num_frames": frame_count * frame_stride,
            "fps": ASSUMED_FPS if fps is None else float(fps),
            "frames_indices": [index * frame_stride for index in range(frame_count)],
        },
    }
    video_processor = getattr(processor, "video_processor", None)
    accepted = getattr(getattr(video_processor, "valid_kwargs", None), "__annotations__", {})
    if "cap_pixels_per_frame" in accepted:
        kwargs["cap_pixels_per_frame"] = True
    return kwargs


def video_keep_masks(
    kept: np.ndarray, grids: list[tuple[int, int]], min_overlap: float = 0.5
) -> list[np.ndarray]:
    """One (rows, cols) keep mask per temporal patch from a clip's kept cells.

    Args:
        kept: (frames, cell_rows, cell_cols) bool, e.g. ``VideoAllocation.kept()`` of the
            frames the processor was given.
        grids: the token grid of each temporal patch (``QwenVideoAdapter.token_grids``);
            the frames are split evenly between them (two frames each for the Qwen families).
        min_overlap: a token is kept when kept cells cover at least this share of it
            in any of its frames.
    """
    kept = np.asarray(kept, bool)
    if kept.ndim != 3 or not grids or len(kept) % len(grids):
        raise ValueError(
            f"need (frames, rows, cols) kept cells with frames a multiple of the "
            f"{len(grids)} temporal patches, got shape {kept.shape}"
        )
    per_patch = len(kept) // len(grids)
    masks = []
    for index, (rows, cols) in enumerate(grids):
        frames = kept[index * per_patch : (index + 1) * per_patch].astype(np.float32)
        # the share of each token's area that kept cells cover, frame by frame
        cover = [cv2.resize(frame, (cols, rows), interpolation=cv2.INTER_AREA) for frame in frames]
        masks.append(np.max(cover, axis=0) >= min_overlap - 1e-6)
    return masks


def _video_grid(batch: dict[str, Any]) -> torch.Tensor:
    if "video_grid_thw" not in batch or "pixel_values_videos" not in batch:
        raise ValueError(
            "the batch has no video (pixel_values_videos and video_grid_thw); pass videos "
            "to the processor"
        )
    if "pixel_values" in batch:
        raise ValueError("a prompt with images and videos is not supported; pass videos only")
    return torch.as_tensor(batch["video_grid_thw"])
