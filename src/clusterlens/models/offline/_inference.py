"""Run the offline U-Net on images of any size: resize, pad, predict, upsample back."""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from clusterlens.models.offline._data import MEAN, STD

# The model was trained on CamVid's 480x360 frames scaled around this factor.
CAMVID_AREA = 480 * 360


def working_size(height: int, width: int, scale: float, stride: int) -> tuple[int, int]:
    """Size the network sees: CamVid's area times ``scale**2``, input aspect kept.

    Street scenes from other cameras show objects at roughly the same fraction of the
    frame, so matching the *area* the model was trained at (not the input pixel size)
    keeps objects at the scale it learned. Sides are rounded to multiples of ``stride``.
    """
    target_area = CAMVID_AREA * scale * scale
    factor = math.sqrt(target_area / (height * width))
    work_h = max(stride, round(height * factor / stride) * stride)
    work_w = max(stride, round(width * factor / stride) * stride)
    return work_h, work_w


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    image: npt.NDArray[np.float32],
    scale: float,
    flip: bool,
    stride: int,
) -> torch.Tensor:
    """Return ``(K, H, W)`` logits for one ``(H, W, 3)`` float image in ``[0, 1]``.

    Args:
        model: Network mapping ``(N, 3, h, w)`` to ``(N, K, h, w)``.
        image: RGB image as returned by :func:`clusterlens.image.load_image`.
        scale: Working scale relative to CamVid's 480x360 frame.
        flip: Average with the prediction on the mirrored image (test-time augmentation).
        stride: The working size is rounded to multiples of this.
    """
    height, width = image.shape[:2]
    work_h, work_w = working_size(height, width, scale, stride)
    shrinking = work_h * work_w < height * width
    resized = cv2.resize(
        image, (work_w, work_h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    )
    normalized = (resized - MEAN) / STD
    batch = torch.from_numpy(np.ascontiguousarray(normalized.transpose(2, 0, 1)))[None]
    if flip:
        batch = torch.cat([batch, batch.flip(-1)])
    logits = model(batch.contiguous(memory_format=torch.channels_last)).float()
    if flip:
        logits = (logits[:1] + logits[1:].flip(-1)) / 2
    logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
    return logits[0]
