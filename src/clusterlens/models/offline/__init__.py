"""Models trained by clusterlens itself and shipped inside the package (no download)."""

from __future__ import annotations
