"""Training-free hierarchical refinement, coarse -> fine, in two forms.

- :class:`CoarseToFineRefiner` (the pipeline's default): a label map decided at a
  coarse input scale keeps its classes; finer scales of the dense predictor redraw its
  boundaries inside a narrow band (see the class docstring).
- :class:`HierarchicalRefiner` (the seed's form): masks attend to dense features.

The attention refiner, for each granularity level (coarse masks at 1/8 resolution,
medium at 1/4, fine at 1/2 by default; the seed's pyramid 0.25 / 0.5 / 1.0 is an
option, see :data:`DEFAULT_LEVELS`):

1. **Mask features**: each query's embedding is the mask-weighted mean of the pixel
   features -- the dense predictor's semantic features (cosine) and the pixel's CIELAB
   colour -- under that level's proposer mask.
2. **Cross-attention**: every pixel attends over the query embeddings (softmax over
   queries of ``semantic cosine / temperature - colour_weight * |Lab - Lab_q|^2 / (2
   sigma^2)``), so queries compete for pixels as Mask2Former queries do. Attention is
   *masked* (Mask2Former's masked attention): a query only reaches pixels inside its
   support, the dilated union of this level's proposer mask and the previous level's
   refined mask; pixels no query supports get zero.
3. **Residual blending**: ``m = (1 - residual) * attention + residual * proposer mask``
   (ResCLIP-style residual), then ``m = (1 - carry) * m + carry * upsampled previous
   level`` carries the coarse decision down to the finer level.

The result is one soft mask in [0, 1] per query at full resolution. No parameter is
learned; the temperature, colour scale and blending weights are the only knobs.

Example:
    >>> import numpy as np
    >>> masks = np.zeros((2, 3, 8, 8), bool)
    >>> masks[0, :, :, :4], masks[1, :, :, 4:] = True, True
    >>> features = np.zeros((2, 8, 8), np.float32)
    >>> features[0, :, :4], features[1, :, 4:] = 1.0, 1.0
    >>> soft = HierarchicalRefiner().refine(masks, features, np.zeros((8, 8, 3), np.float32))
    >>> soft.shape, bool(soft[0, 4, 1] > 0.9), bool(soft[0, 4, 6] < 0.1)
    ((2, 8, 8), True, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

#: Resolutions of the coarse / medium / fine levels. The seed's pyramid is 0.25 / 0.5 /
#: 1.0; at full resolution the fine level's N x H x W attention dominates the run time
#: (~4 s per CamVid frame with ~150 prompts on one core), so the default stops at half
#: resolution and upsamples; pass ``levels=(0.25, 0.5, 1.0)`` for the seed's pyramid.
DEFAULT_LEVELS = (0.125, 0.25, 0.5)


def _resize(stack: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Resize (N, H, W) to ``size``; area for shrinking masks, bilinear otherwise."""
    if tuple(stack.shape[-2:]) == size:
        return stack
    shrinking = size[0] * size[1] < stack.shape[-2] * stack.shape[-1]
    if mode == "area" and shrinking:
        return F.interpolate(stack[None], size=size, mode="area")[0]
    return F.interpolate(stack[None], size=size, mode="bilinear", align_corners=False)[0]


class HierarchicalRefiner:
    """Coarse-to-fine, training-free refinement of three-granularity masks.

    Args:
        levels: resolution of the coarse, medium and fine level (fractions of the image).
        temperature: softness of the semantic similarity (smaller = sharper).
        color_sigma: colour distance (CIELAB units) at which similarity falls by e^-0.5.
        color_weight: weight of the colour term against the semantic term (0 = semantic only).
        residual: weight of the proposer's own mask in the blend.
        carry: weight of the previous (coarser) level's refined mask.
        dilation: support grows by this many pixels of each level beyond the masks.

    Raises:
        ValueError: weights outside [0, 1], non-positive temperature / sigma, or not
            three levels.
    """

    def __init__(
        self,
        levels: Sequence[float] = DEFAULT_LEVELS,
        temperature: float = 0.05,
        color_sigma: float = 12.0,
        color_weight: float = 1.0,
        residual: float = 0.3,
        carry: float = 0.3,
        dilation: int = 2,
    ) -> None:
        if len(levels) != 3 or min(levels) <= 0:
            raise ValueError(f"levels must be three positive resolutions, got {levels!r}")
        if temperature <= 0 or color_sigma <= 0:
            raise ValueError("temperature and color_sigma must be positive")
        for name, value in (("residual", residual), ("carry", carry)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        if color_weight < 0 or dilation < 0:
            raise ValueError("color_weight and dilation must be >= 0")
        self.levels = tuple(float(level) for level in levels)
        self.temperature = temperature
        self.color_sigma = color_sigma
        self.color_weight = color_weight
        self.residual = residual
        self.carry = carry
        self.dilation = dilation

    @torch.no_grad()
    def refine(
        self, masks: np.ndarray, features: np.ndarray, image: np.ndarray
    ) -> npt.NDArray[np.float32]:
        """Soft (N, H, W) masks from (N, 3, H, W) coarse / medium / fine proposer masks.

        Args:
            masks: (N, 3, H, W) bool proposer masks, axis 1 coarse -> fine.
            features: (C, h, w) dense semantic features (any resolution), or three such
                maps, coarse to fine, one per level (a multi-scale feature pyramid).
            image: (H, W, 3) float32 RGB in [0, 1] (for the colour term).

        Raises:
            ValueError: shapes that do not fit together.
        """
        masks = np.asarray(masks)
        if masks.ndim != 4 or masks.shape[1] != 3:
            raise ValueError(f"masks must be (N, 3, H, W), got shape {masks.shape}")
        count, _, height, width = masks.shape
        pyramid = list(features) if isinstance(features, (list, tuple)) else [features] * 3
        if (
            image.shape[:2] != (height, width)
            or len(pyramid) != 3
            or any(np.ndim(level) != 3 for level in pyramid)
        ):
            raise ValueError(
                f"image {image.shape} must be (H, W, 3) matching the masks' {height}x{width}, "
                "and features one (C, h, w) map or three of them"
            )
        if count == 0:
            return np.zeros((0, height, width), np.float32)
        lab = cv2.cvtColor(np.ascontiguousarray(image, dtype=np.float32), cv2.COLOR_RGB2Lab)
        lab = torch.from_numpy(lab).permute(2, 0, 1)
        previous: torch.Tensor | None = None
        for level, resolution in enumerate(self.levels):
            size = (max(1, round(height * resolution)), max(1, round(width * resolution)))
            proposer = _resize(torch.from_numpy(masks[:, level]).float(), size, "area")
            semantic = torch.from_numpy(np.ascontiguousarray(pyramid[level], dtype=np.float32))
            carried = None if previous is None else _resize(previous, size, "bilinear")
            refined = self._level(proposer, carried, semantic, lab, size)
            if carried is not None:
                refined = (1 - self.carry) * refined + self.carry * carried
            previous = refined
        return _resize(previous, (height, width), "bilinear").clamp_(0, 1).numpy()

    def _level(
        self,
        proposer: torch.Tensor,
        carried: torch.Tensor | None,
        semantic: torch.Tensor,
        lab: torch.Tensor,
        size: tuple[int, int],
    ) -> torch.Tensor:
        count = proposer.shape[0]
        pixels_semantic = F.normalize(
            _resize(semantic, size, "bilinear").reshape(semantic.shape[0], -1), dim=0
        )
        pixels_lab = _resize(lab, size, "area").reshape(3, -1)
        weights = proposer.reshape(count, -1)
        total = weights.sum(dim=1, keepdim=True).clamp_min(1e-6)
        query_semantic = F.normalize(weights @ pixels_semantic.T / total, dim=1)
        query_lab = weights @ pixels_lab.T / total
        logits = query_semantic @ pixels_semantic / self.temperature
        if self.color_weight:
            distance = (
                (pixels_lab**2).sum(0, keepdim=True)
                - 2 * query_lab @ pixels_lab
                + (query_lab**2).sum(1, keepdim=True)
            ).clamp_min_(0)
            logits -= self.color_weight * distance / (2 * self.color_sigma**2)
        support = proposer > 0
        if carried is not None:  # the previous level, already at this level's size
            support |= carried > 0.5
        if self.dilation:
            kernel = 2 * self.dilation + 1
            support = (
                F.max_pool2d(support[None].float(), kernel, stride=1, padding=self.dilation)[0] > 0
            )
        logits = logits.masked_fill_(~support.reshape(count, -1), float("-inf"))
        attention = torch.softmax(logits, dim=0).nan_to_num_(0.0)  # unsupported pixels -> 0
        attention = attention.reshape(count, *size)
        return (1 - self.residual) * attention + self.residual * proposer


#: Band half-widths (pixels) of the coarse-to-fine refinement, one per finer level,
#: chosen on 12 CamVid *train* frames (see docs/segment.md).
DEFAULT_RADII = (3, 1)


def classes_nearby(labels: np.ndarray, classes: int, radius: int) -> npt.NDArray[np.bool_]:
    """(K, H, W) bool: class ``k`` occurs within ``radius`` pixels (square window) of each pixel.

    Example:
        >>> classes_nearby(np.array([[0, 0, 0, 1]]), 2, 1)[1].astype(int).tolist()
        [[0, 0, 1, 1]]
    """
    one_hot = F.one_hot(torch.from_numpy(np.asarray(labels, np.int64)), classes)
    one_hot = one_hot.permute(2, 0, 1).float()[None]
    if radius:
        one_hot = F.max_pool2d(one_hot, 2 * radius + 1, stride=1, padding=radius)
    return one_hot[0].numpy() > 0


class CoarseToFineRefiner:
    """Coarse semantics, fine boundaries: refine a label map level by level.

    A dense model run at a small input decides classes well but draws blurred, shifted
    boundaries; run at a larger input it draws sharper boundaries but confuses classes
    (less context per pixel). This refiner keeps the coarse decision and lets each finer
    level of the probability pyramid redraw only the boundaries:

    1. the *uncertain band* of the current label map is the set of pixels with more than
       one class within ``radius`` pixels (a band around every class boundary);
    2. inside it, each pixel takes the finer level's most probable class *among the
       classes present within the radius* -- the coarse level's decisions (its queries'
       and masks' classes) -- so the finer level can move a boundary by up to ``radius``
       pixels and recover thin parts of nearby objects, but never invents a class the
       coarse level did not place there;
    3. the result is the current map for the next, finer level (a narrower band).

    Everything is at full resolution, so thin objects (poles, signs) are not smoothed.

    Args:
        radii: band half-width in pixels for the first finer level, the second, ...;
            levels beyond the last radius reuse it.

    Raises:
        ValueError: no radius, or a negative one.

    Example:
        >>> coarse = np.zeros((1, 8), np.int64); coarse[0, 4:] = 1  # boundary at 4
        >>> fine = np.zeros((2, 1, 8), np.float32); fine[0, 0, :6] = 1; fine[1, 0, 6:] = 1
        >>> CoarseToFineRefiner(radii=(2,)).refine(coarse, [fine]).tolist()
        [[0, 0, 0, 0, 0, 0, 1, 1]]
    """

    def __init__(self, radii: Sequence[int] = DEFAULT_RADII) -> None:
        radii = tuple(int(radius) for radius in radii)
        if not radii or min(radii) < 0:
            raise ValueError(f"radii must be one or more pixel counts >= 0, got {radii!r}")
        self.radii = radii

    def refine(self, labels: np.ndarray, levels: Sequence[np.ndarray]) -> npt.NDArray[np.int64]:
        """Refine an (H, W) coarse label map with (K, H, W) probabilities, coarse to fine.

        Args:
            labels: (H, W) class index per pixel (the coarse decision).
            levels: finer probability maps, coarse to fine, each (K, H, W).

        Raises:
            ValueError: shapes that do not fit together, or labels outside 0..K-1.
        """
        current = np.asarray(labels, np.int64)
        for index, level in enumerate(levels):
            probabilities = np.asarray(level, np.float32)
            if probabilities.ndim != 3 or probabilities.shape[1:] != current.shape:
                raise ValueError(
                    f"levels must be (K, H, W) maps matching labels {current.shape}, got "
                    f"{probabilities.shape}"
                )
            if current.size and (current.min() < 0 or current.max() >= len(probabilities)):
                raise ValueError(f"labels must lie in 0..{len(probabilities) - 1}")
            radius = self.radii[min(index, len(self.radii) - 1)]
            nearby = classes_nearby(current, len(probabilities), radius)
            band = nearby.sum(axis=0) > 1
            redrawn = np.where(nearby, probabilities, -1.0).argmax(axis=0)
            current = np.where(band, redrawn, current)
        return current
