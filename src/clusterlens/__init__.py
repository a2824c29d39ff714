"""clusterlens: cluster-first computer vision.

Group an image into clusters first, then spend compute only where the clusters say it
matters. The names below are the public API; everything else is an implementation
detail that may change.

Example:
    >>> import numpy as np
    >>> import clusterlens as cl
    >>> texture = cl.generate_texture(np.zeros((32, 32, 3)), "mvp13")
    >>> cl.MipPyramid.from_texture(texture).num_levels
    3
"""

from __future__ import annotations

from clusterlens.allocate import Allocation, allocate, list_strategies
from clusterlens.image import load_image, to_tensor
from clusterlens.texture import MipPyramid, TextureArray, generate_texture

__version__ = "0.1.0"

__all__ = [
    "Allocation",
    "MipPyramid",
    "TextureArray",
    "__version__",
    "allocate",
    "generate_texture",
    "list_strategies",
    "load_image",
    "to_tensor",
]
