"""Embedding channels: the first k principal components of a dense embedding.

A dense embedding (D, h, w) — patch tokens of a vision model, or any per-location
descriptor — is compressed to k channels by PCA fitted on that image's own
locations, then resized to the image. The fitted basis is returned in
``meta["embedding_basis"]`` so that a text query embedded in the same space can be
projected the same way (:meth:`EmbeddingBasis.project`).

Without an ``embedding`` option the channels hold *eigenpatches*: PCA of the 8x8
CIE LAB patches of the image itself (a classic, model-free local appearance
descriptor). ``meta["embedding_source"]`` says which one was used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from clusterlens.texture.registry import ChannelContext, register_group

DEFAULT_COMPONENTS = 16
PATCH = 8


@dataclass(frozen=True)
class EmbeddingBasis:
    """A PCA basis: ``channels = (x - mean) @ components.T / scale``."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (k, D); rows beyond the data's rank are zero
    scale: float

    def project(self, vectors: Any) -> np.ndarray:
        """Project (N, D) or (D,) vectors into the k embedding channels."""
        values = np.asarray(vectors, dtype=np.float32)
        if values.shape[-1] != self.mean.shape[0]:
            raise ValueError(
                f"vectors have dimension {values.shape[-1]}, the basis expects {self.mean.shape[0]}"
            )
        return (values - self.mean) @ self.components.T / self.scale


def fit_pca(features: np.ndarray, k: int) -> EmbeddingBasis:
    """Fit a k-component PCA basis to (N, D) features, with deterministic signs.

    Components are scaled together by the standard deviation along the first one, so
    their relative variances survive (the first has unit variance).
    """
    features = np.asarray(features, dtype=np.float32)
    mean = features.mean(axis=0)
    centred = torch.from_numpy(features - mean)
    _, singular, vt = torch.linalg.svd(centred, full_matrices=False)
    rank = int((singular > singular.max() * 1e-5).sum()) if singular.numel() else 0
    kept = min(k, rank)
    components = np.zeros((k, features.shape[1]), dtype=np.float32)
    basis = vt[:kept].numpy()
    # SVD signs are arbitrary; flip so each component's largest loading is positive.
    signs = np.sign(basis[np.arange(kept), np.abs(basis).argmax(axis=1)])
    components[:kept] = basis * signs[:, None]
    scale = float(singular[0]) / np.sqrt(max(len(features) - 1, 1)) if kept else 1.0
    return EmbeddingBasis(mean=mean, components=components, scale=max(scale, 1e-12))


def embedding_channels(
    embedding: Any, k: int, size: tuple[int, int]
) -> tuple[np.ndarray, EmbeddingBasis]:
    """PCA-compress a dense embedding (D, h, w) to (k, H, W) with ``size=(H, W)``."""
    grid = (
        embedding.detach().cpu().numpy()
        if isinstance(embedding, torch.Tensor)
        else np.asarray(embedding)
    )
    if grid.ndim != 3 or min(grid.shape) == 0:
        raise ValueError(f"embedding must be a non-empty (D, h, w) array, got shape {grid.shape}")
    if k < 1:
        raise ValueError(f"embedding_dim must be at least 1, got {k}")
    dim, rows, cols = grid.shape
    basis = fit_pca(grid.reshape(dim, -1).T, k)
    coarse = basis.project(grid.reshape(dim, -1).T).T.reshape(k, rows, cols)
    height, width = size
    resized = np.stack(
        [cv2.resize(plane, (width, height), interpolation=cv2.INTER_LINEAR) for plane in coarse]
    )
    return resized.reshape(k, height, width).astype(np.float32), basis


def eigenpatch_descriptors(rgb: np.ndarray) -> np.ndarray:
    """(192, ceil(H/8), ceil(W/8)) descriptors: the 8x8 LAB patch of each cell."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab) / np.array([100.0, 128.0, 128.0], np.float32)
    height, width = lab.shape[:2]
    pad_h, pad_w = -height % PATCH, -width % PATCH
    lab = np.pad(lab, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    rows, cols = lab.shape[0] // PATCH, lab.shape[1] // PATCH
    patches = lab.reshape(rows, PATCH, cols, PATCH, 3).transpose(1, 3, 4, 0, 2)
    return np.ascontiguousarray(patches.reshape(PATCH * PATCH * 3, rows, cols))


def _embedding_names(k: int) -> list[str]:
    return [f"embed_{i:02d}" for i in range(k)]


@register_group(
    "embedding",
    _embedding_names(DEFAULT_COMPONENTS),
    "first principal components of a dense embedding (default: eigenpatches of 8x8 LAB)",
)
def embedding_channel_group(ctx: ChannelContext) -> np.ndarray:
    given = ctx.options.get("embedding")
    if given is None:
        given = eigenpatch_descriptors(ctx.rgb)
        ctx.meta["embedding_source"] = "eigenpatches (PCA of 8x8 CIE LAB patches)"
    else:
        ctx.meta["embedding_source"] = "given"
    channels, basis = embedding_channels(given, DEFAULT_COMPONENTS, (ctx.height, ctx.width))
    ctx.meta["embedding_basis"] = basis
    return channels
