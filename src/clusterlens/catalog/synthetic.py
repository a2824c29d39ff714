"""A small generated YOLO-format data set: coloured shapes with box and polygon labels.

Used by the tests, the benchmark and the docs, so everything runs on a fresh machine.
Class 0 = rectangle (labelled with a box), 1 = ellipse (polygon), 2 = triangle (polygon).

Example:
    >>> import tempfile
    >>> root = make_shapes_dataset(tempfile.mkdtemp(), count=3, size=(64, 48))
    >>> sorted(path.name for path in (root / "images").iterdir())
    ['shape_000.png', 'shape_001.png', 'shape_002.png']
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SHAPE_NAMES = ("rectangle", "ellipse", "triangle")


def make_shapes_dataset(
    root: str | Path, count: int = 12, size: tuple[int, int] = (96, 72), seed: int = 0
) -> Path:
    """Write ``count`` images and label files under ``root/images`` and ``root/labels``.

    Args:
        root: output folder (created).
        count: number of images.
        size: (width, height) of every image.
        seed: random seed (same seed, same files).

    Returns:
        ``root`` as a Path.
    """
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width, height = size
    for index in range(count):
        image = np.full((height, width, 3), rng.integers(0, 80, 3), np.uint8)
        lines = []
        for _ in range(int(rng.integers(1, 4))):
            class_id = int(rng.integers(0, 3))
            colour = tuple(int(v) for v in rng.integers(120, 256, 3))
            cx, cy = rng.uniform(0.25, 0.75) * width, rng.uniform(0.25, 0.75) * height
            rx, ry = rng.uniform(0.1, 0.25) * width, rng.uniform(0.1, 0.25) * height
            lines.append(_draw(image, class_id, colour, cx, cy, rx, ry, width, height))
        cv2.imwrite(str(root / "images" / f"shape_{index:03d}.png"), image[..., ::-1])
        (root / "labels" / f"shape_{index:03d}.txt").write_text("\n".join(lines) + "\n")
    return root


def _draw(image, class_id, colour, cx, cy, rx, ry, width, height) -> str:
    """Draw one shape and return its YOLO label line."""
    if class_id == 0:
        cv2.rectangle(image, (int(cx - rx), int(cy - ry)), (int(cx + rx), int(cy + ry)), colour, -1)
        return f"0 {cx / width:.6f} {cy / height:.6f} {2 * rx / width:.6f} {2 * ry / height:.6f}"
    if class_id == 1:
        angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        points = np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], axis=1)
    else:
        points = np.array([[cx, cy - ry], [cx + rx, cy + ry], [cx - rx, cy + ry]])
    cv2.fillPoly(image, [np.round(points).astype(np.int32)], colour)
    normalised = (points / [width, height]).clip(0, 1).ravel()
    return f"{class_id} " + " ".join(f"{value:.6f}" for value in normalised)


def damage_table(db: str | Path, table: str = "embeddings") -> None:
    """Overwrite the root page of ``table`` in the SQLite file ``db`` with garbage.

    The file header stays valid, so SQLite opens the file and fails only when it reads
    that page ("database disk image is malformed", or a ``PRAGMA quick_check`` error):
    the damage a disk or a copy interrupted mid-page leaves. For tests of error paths.
    """
    import sqlite3

    connection = sqlite3.connect(db)
    try:
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        found = connection.execute(
            "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
    finally:
        connection.close()
    if found is None:
        raise ValueError(f"{db} has no table {table!r} to damage")
    with open(db, "r+b") as handle:
        handle.seek((found[0] - 1) * page_size)
        handle.write(b"\xab" * page_size)
