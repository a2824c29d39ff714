"""Grey pixel thumbnails of a catalog's images: the ``pixels`` near-duplicate signal.

Each image file the catalog recorded is read (read-only), converted to grey and resized
as a whole to :data:`THUMBNAIL_SIZE` with ``cv2.INTER_AREA`` (an area average, so a
resized and re-compressed copy lands on almost the same thumbnail as its original). The
thumbnail is mean-subtracted and L2-normalised: the inner product of two thumbnails is
their normalised cross-correlation, and ``1 - correlation`` their pixel distance. A copy
scores a correlation near 1; the next frame of a moving camera is lower, because the
scene has moved across the grid.

Limits: the thumbnail ignores aspect ratio (a crop or a letterboxed copy is not found),
a mirrored copy is not found, and a uniform image (no variation) has a zero thumbnail:
correlation 0 with everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from clusterlens.catalog.curation import image_paths
from clusterlens.catalog.store import CatalogStore

#: (width, height) of a thumbnail: CamVid's 4:3 frames at 1/30 of their side.
THUMBNAIL_SIZE = (32, 24)


@dataclass(frozen=True)
class Thumbnails:
    """Image ids, their unit thumbnails (float32 rows) and a note per skipped image."""

    ids: np.ndarray
    vectors: np.ndarray
    notes: tuple[str, ...]

    def row_of(self) -> dict[int, int]:
        return {int(image_id): row for row, image_id in enumerate(self.ids)}


def thumbnail(path: str | Path, size: tuple[int, int] = THUMBNAIL_SIZE) -> np.ndarray:
    """The mean-subtracted, L2-normalised grey thumbnail of an image file (float32).

    The file is only read. Raises ``OSError`` when it cannot be read, ``ValueError``
    when it is not an image OpenCV can decode.
    """
    data = np.frombuffer(Path(path).read_bytes(), dtype=np.uint8)
    grey = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if grey is None:
        raise ValueError("not a readable image")
    small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    small -= small.mean()
    norm = float(np.linalg.norm(small))
    return small / norm if norm > 1e-6 else np.zeros_like(small)


def catalog_thumbnails(store: CatalogStore, size: tuple[int, int] = THUMBNAIL_SIZE) -> Thumbnails:
    """Thumbnails of every image whose recorded file reads; the others skipped with a note."""
    ids, vectors, notes = [], [], []
    for image_id, path in sorted(image_paths(store).items()):
        try:
            vectors.append(thumbnail(path, size))
        except (OSError, ValueError) as error:
            notes.append(f"{path}: skipped by the pixel signal ({error})")
            continue
        ids.append(image_id)
    stacked = np.stack(vectors) if vectors else np.zeros((0, size[0] * size[1]), np.float32)
    return Thumbnails(np.array(ids, dtype=np.int64), np.ascontiguousarray(stacked), tuple(notes))


def pixel_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``1 - normalised cross-correlation`` of two thumbnails (0: same up to brightness
    and contrast; 1: uncorrelated; 2: inverted)."""
    return max(0.0, 1.0 - float(a @ b))
