"""Pictures: texture contact sheets, mip chains (and, as capabilities land, more)."""

from __future__ import annotations

from clusterlens.viz.texture_sheet import mip_chain_image, save_texture_sheet

__all__ = ["mip_chain_image", "save_texture_sheet"]
