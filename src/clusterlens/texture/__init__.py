"""Texture channels and mip pyramids: named per-pixel features at every scale.

Importing this package registers the built-in channel groups (colour, position,
structure, information, saliency, clusters, embedding).
"""

from __future__ import annotations

from clusterlens.texture import (  # noqa: F401  (imported to register their channel groups)
    clusters,
    color,
    embedding,
    information,
    position,
    saliency,
    structure,
)
from clusterlens.texture.array import TextureArray, generate_texture
from clusterlens.texture.clusters import cluster_channels
from clusterlens.texture.embedding import EmbeddingBasis
from clusterlens.texture.presets import FULL40, MVP13, PRESETS
from clusterlens.texture.pyramid import MipPyramid
from clusterlens.texture.registry import list_channels, list_groups, register_group

__all__ = [
    "FULL40",
    "MVP13",
    "PRESETS",
    "EmbeddingBasis",
    "MipPyramid",
    "TextureArray",
    "cluster_channels",
    "generate_texture",
    "list_channels",
    "list_groups",
    "register_group",
]
