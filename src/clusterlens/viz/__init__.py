"""Pictures: texture contact sheets, mip chains, allocations."""

from __future__ import annotations

from clusterlens.viz.allocation import kept_overlay, save_allocation_picture
from clusterlens.viz.texture_sheet import mip_chain_image, save_texture_sheet

__all__ = ["kept_overlay", "mip_chain_image", "save_allocation_picture", "save_texture_sheet"]
