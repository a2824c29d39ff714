"""In-memory CamVid batches for training and evaluation of the offline model.

CamVid is small, so the whole split is decoded once into uint8 arrays and every
epoch samples random scaled, cropped and flipped views from memory. All randomness
comes from a NumPy generator passed in by the caller, which keeps runs reproducible
and lets a resumed run draw exactly the batches an uninterrupted one would.

Two options exist for generalising beyond the drives CamVid was filmed on (both off
by default, so the recipe of the first shipped model is reproduced bit for bit):

- ``photometric``: light and camera changes -- gamma, contrast, colour temperature,
  blur, sensor noise and JPEG compression (:func:`photometric_view`);
- ``batch_scales``: one scale per batch, drawn log-uniformly from a wide range, with
  the crop shrunk to the scaled frame. Small scales then cost little (a frame at an
  eighth of its side is 60x45 pixels, not a padded 192x256 crop), so the model can
  learn the coarse resolutions the allocator's first scan runs at.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
import torch

from clusterlens.evaluate.camvid import IGNORE_INDEX, NUM_CLASSES

# Channel statistics of ImageNet; BatchNorm absorbs any mismatch with CamVid.
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass(frozen=True)
class AugmentConfig:
    """How training views are drawn.

    Attributes:
        base_scale: Scale of the full 480x360 image the model mainly works at.
        scale_range: Multiplicative jitter of ``base_scale`` (uniform in this range).
        crop: ``(height, width)`` of each training view, after scaling.
        color_jitter: Maximum relative change of brightness and per-channel gain.
        photometric: Apply :func:`photometric_view` to every view.
        batch_scales: Draw one scale per batch, log-uniformly in ``scale_range``, and
            crop at most ``crop`` of the scaled frame (sides multiples of ``stride``);
            otherwise each view draws its own scale uniformly and is padded to ``crop``.
        stride: The network's stride (``batch_scales`` crops are multiples of it).
    """

    base_scale: float = 0.5
    scale_range: tuple[float, float] = (0.75, 1.5)
    crop: tuple[int, int] = (192, 256)
    color_jitter: float = 0.15
    photometric: bool = False
    batch_scales: bool = False
    stride: int = 16


def normalize(images_uint8: npt.NDArray[np.uint8]) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 -> ``(N, 3, H, W)`` normalized float tensor."""
    values = images_uint8.astype(np.float32) / 255.0
    values = (values - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(values.transpose(0, 3, 1, 2)))


def class_weights(labels: npt.NDArray[np.uint8], power: float = 0.5) -> torch.Tensor:
    """Median-frequency class weights, softened by ``power`` (1 = SegNet's weighting).

    Rare classes (poles, signs, cyclists) get larger weights so they are not drowned
    by road and sky; the square root keeps the weights from over-predicting them.
    """
    counts = np.bincount(labels.reshape(-1), minlength=IGNORE_INDEX + 1)[:NUM_CLASSES]
    frequency = counts / max(counts.sum(), 1)
    frequency = np.where(frequency > 0, frequency, frequency[frequency > 0].min())
    weights = (np.median(frequency) / frequency) ** power
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def photometric_view(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uint8 RGB view under other light and another camera.

    Each change is drawn independently: gamma 0.6-1.6 (exposure curves, dusk), contrast
    0.6-1.4 around the mean, a colour temperature shift (red against blue gain, +-15%),
    Gaussian blur (focus, motion; 30%), sensor noise (30%) and JPEG compression at
    quality 25-90 (30%). The ranges are wide on purpose: the held-out drives differ in
    camera and time of day, and a frame that still reads as a street teaches the model
    the shapes, not the colours, of its classes.
    """
    values = image.astype(np.float32) / 255.0
    values = values ** rng.uniform(0.6, 1.6)
    mean = values.mean()
    values = (values - mean) * rng.uniform(0.6, 1.4) + mean
    warmth = rng.uniform(-0.15, 0.15)
    values *= np.array([1 + warmth, 1.0, 1 - warmth], np.float32)
    if rng.random() < 0.3:
        values = cv2.GaussianBlur(values, (0, 0), sigmaX=rng.uniform(0.4, 1.4))
    if rng.random() < 0.3:
        values += rng.normal(0.0, rng.uniform(0.01, 0.04), values.shape).astype(np.float32)
    view = np.clip(values * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        quality = int(rng.integers(25, 91))
        _, encoded = cv2.imencode(".jpg", view, [cv2.IMWRITE_JPEG_QUALITY, quality])
        view = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    return view


def batch_geometry(
    frame: tuple[int, int], config: AugmentConfig, rng: np.random.Generator
) -> tuple[float, tuple[int, int]]:
    """The scale and crop ``(h, w)`` shared by one batch (``batch_scales`` mode).

    The scale is log-uniform in ``base_scale * scale_range`` so every octave -- the
    coarse scan's eighth of a frame as much as the full working size -- gets the same
    share of batches; the crop is the scaled frame, capped at ``config.crop``.
    """
    low, high = (config.base_scale * bound for bound in config.scale_range)
    scale = float(np.exp(rng.uniform(np.log(low), np.log(high))))
    stride = config.stride
    sides = []
    for side, cap in zip(frame, config.crop, strict=True):
        scaled = max(stride, int(side * scale) // stride * stride)
        sides.append(min(scaled, cap))
    return scale, (sides[0], sides[1])


def _random_view(
    image: np.ndarray,
    label: np.ndarray,
    config: AugmentConfig,
    rng: np.random.Generator,
    geometry: tuple[float, tuple[int, int]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    if geometry is None:
        scale, (crop_h, crop_w) = config.base_scale * rng.uniform(*config.scale_range), config.crop
    else:
        scale, (crop_h, crop_w) = geometry
    height, width = label.shape
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    label = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST)
    pad_h, pad_w = max(0, crop_h - label.shape[0]), max(0, crop_w - label.shape[1])
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)))
        label = np.pad(label, ((0, pad_h), (0, pad_w)), constant_values=IGNORE_INDEX)
    top = int(rng.integers(0, label.shape[0] - crop_h + 1))
    left = int(rng.integers(0, label.shape[1] - crop_w + 1))
    image = image[top : top + crop_h, left : left + crop_w]
    label = label[top : top + crop_h, left : left + crop_w]
    if rng.random() < 0.5:
        image, label = image[:, ::-1], label[:, ::-1]
    gain = 1.0 + rng.uniform(-config.color_jitter, config.color_jitter, size=3)
    gain *= 1.0 + rng.uniform(-config.color_jitter, config.color_jitter)
    image = np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    if config.photometric:
        image = photometric_view(np.ascontiguousarray(image), rng)
    return image, np.ascontiguousarray(label)


def training_batches(
    images: npt.NDArray[np.uint8],
    labels: npt.NDArray[np.uint8],
    batch_size: int,
    config: AugmentConfig,
    rng: np.random.Generator,
):
    """Yield one epoch of ``(images, labels)`` tensors (last incomplete batch dropped)."""
    order = rng.permutation(len(images))
    frame = labels.shape[1:3]
    for start in range(0, len(order) - batch_size + 1, batch_size):
        geometry = batch_geometry(frame, config, rng) if config.batch_scales else None
        views = [
            _random_view(images[i], labels[i], config, rng, geometry)
            for i in order[start : start + batch_size]
        ]
        batch_images = normalize(np.stack([view[0] for view in views]))
        batch_labels = torch.from_numpy(np.stack([view[1] for view in views]).astype(np.int64))
        yield batch_images, batch_labels


def steps_per_epoch(num_images: int, batch_size: int) -> int:
    """Number of batches :func:`training_batches` yields per epoch."""
    return num_images // batch_size
