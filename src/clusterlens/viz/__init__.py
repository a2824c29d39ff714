"""Pictures: texture contact sheets, mip chains, allocations."""

from __future__ import annotations

from clusterlens.viz._layout import DPI, panel_height
from clusterlens.viz.allocation import kept_overlay, save_allocation_picture
from clusterlens.viz.texture_sheet import mip_chain_image, save_texture_sheet

__all__ = [
    "DPI",
    "kept_overlay",
    "mip_chain_image",
    "panel_height",
    "save_allocation_picture",
    "save_texture_sheet",
]
