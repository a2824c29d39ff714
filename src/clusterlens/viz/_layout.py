"""Figure sizes that stay bounded whatever the image's aspect ratio.

A panel's height used to follow the image (``width * height / width``), so a 1x10000
image asked matplotlib for a 60000-inch figure: at 100 dpi a canvas of billions of
pixels, and a MemoryError in ``tight_layout`` or ``savefig``. Panels keep the image's
aspect inside them (``imshow`` letterboxes), so only the box needs bounds.
"""

from __future__ import annotations

#: Every picture is drawn at this resolution.
DPI = 100
#: Tallest image panel, inches (at DPI: 1000 pixels).
MAX_PANEL_INCHES = 10.0
#: Shortest image panel, inches: a very wide strip still leaves room for its title.
MIN_PANEL_INCHES = 1.0


def panel_height(width: float, height_over_width: float) -> float:
    """Height (inches) of a panel ``width`` inches wide showing an image of that aspect.

    The image's own height when that lies within
    [:data:`MIN_PANEL_INCHES`, :data:`MAX_PANEL_INCHES`], else the nearer bound.

    Example:
        >>> panel_height(6.0, 0.75), panel_height(6.0, 10000.0), panel_height(6.0, 1e-4)
        (4.5, 10.0, 1.0)
    """
    if not height_over_width > 0:  # also catches NaN
        raise ValueError(f"aspect must be a positive number, got {height_over_width!r}")
    return min(max(width * height_over_width, MIN_PANEL_INCHES), MAX_PANEL_INCHES)
