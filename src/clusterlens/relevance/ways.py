"""The three ways of knowing (seed 02): information, salience, query coupling.

Each is a relevance map (H, W) in [0, 1]:

- ``information``: how much is going on locally — the texture's local entropy.
- ``salience``: what stands out regardless of the question — the mean of
  spectral-residual saliency and the edge magnitude (scaled by its 99th percentile,
  so one hard edge does not flatten the rest).
- ``coupling``: how much a place answers the query — given by a model (e.g. the
  offline model's probability of the classes the query names); zeros without one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clusterlens.texture import generate_texture

WAYS = ("information", "salience", "coupling")
#: The ways that do not depend on the query: computed once per image, shared by queries.
QUERY_FREE_WAYS = ("information", "salience")


def ways_of_knowing(image: Any, coupling: np.ndarray | None = None) -> np.ndarray:
    """Stack the three maps (3, H, W) for ``image`` in the order of :data:`WAYS`."""
    texture = generate_texture(image, ["entropy", "saliency", "sobel_mag"])
    height, width = texture.height, texture.width
    if coupling is None:
        coupling = np.zeros((height, width), np.float32)
    coupling = np.asarray(coupling, dtype=np.float32)
    if coupling.shape != (height, width):
        raise ValueError(
            f"coupling map {coupling.shape} does not match the image {(height, width)}"
        )
    edges = texture["sobel_mag"].numpy()
    scale = float(np.percentile(edges, 99)) or 1.0
    salience = 0.5 * texture["saliency"].numpy() + 0.5 * np.clip(edges / scale, 0, 1)
    return np.stack([texture["entropy"].numpy(), salience, np.clip(coupling, 0, 1)]).astype(
        np.float32
    )
