"""clusterlens: cluster-first computer vision.

Group an image into clusters first, then spend compute only where the clusters say it
matters. The names below are the public API; everything else is an implementation
detail that may change.
"""

from __future__ import annotations

from clusterlens.image import load_image, to_tensor

__version__ = "0.1.0"

__all__ = ["__version__", "load_image", "to_tensor"]
