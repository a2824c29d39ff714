"""The pixel signal of near-duplicates: grey thumbnails read from the catalog's files.

The curation catalog of ``test_curation`` gets real image files: each row a crop of one
smooth synthetic grey scene at its own offset, 12 pixels apart (a moving camera), row 5
a resized, JPEG re-compressed copy of row 2 (written under row 5's ``.png`` name),
row 22 a file that is not an image and row 23 no file at all.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from tests.catalog.test_curation import COPY, MODEL, write_curation_catalog

from clusterlens.catalog.near_duplicates import (
    PIXEL_DISTANCE,
    duplicate_candidates,
    near_duplicates,
)
from clusterlens.catalog.store import CatalogStore
from clusterlens.catalog.thumbnails import catalog_thumbnails, pixel_distance, thumbnail

WIDTH, HEIGHT = 960, 720  # CamVid's frame size
GARBAGE, MISSING = 22, 23


def scene(seed: int = 0) -> np.ndarray:
    """A smooth grey scene larger than a frame, so frames can be shifted crops of it."""
    noise = np.random.default_rng(seed).uniform(0, 255, (HEIGHT + 180, WIDTH + 340))
    blurred = cv2.GaussianBlur(noise, (0, 0), 30)
    contrast = (blurred - blurred.mean()) / blurred.std() * 60 + 128
    return np.clip(contrast, 0, 255).astype(np.uint8)


def frame(big: np.ndarray, offset: int) -> np.ndarray:
    return big[offset // 2 : offset // 2 + HEIGHT, offset : offset + WIDTH].copy()


def resized_jpeg(image: np.ndarray, scale: float = 0.5, quality: int = 30) -> bytes:
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def write_images(folder: Path) -> None:
    big = scene()
    for row in range(24):
        path = folder / f"img_{row:02d}.png"
        if row == COPY[1]:
            path.write_bytes(resized_jpeg(frame(big, 12 * COPY[0])))
        elif row == GARBAGE:
            path.write_text("not an image\n")
        elif row != MISSING:
            cv2.imwrite(str(path), frame(big, 12 * row))


@pytest.fixture
def catalog(tmp_path) -> Path:
    path = write_curation_catalog(tmp_path / "catalog.db")
    write_images(tmp_path)
    return path


def test_a_recompressed_copy_correlates_and_a_shifted_frame_does_not(tmp_path):
    big = scene()
    original, copy, shifted = (tmp_path / name for name in ("a.png", "copy.jpg", "b.png"))
    cv2.imwrite(str(original), frame(big, 0))
    copy.write_bytes(resized_jpeg(frame(big, 0)))
    cv2.imwrite(str(shifted), frame(big, 12))
    source = thumbnail(original)
    assert source.shape == (32 * 24,) and np.linalg.norm(source) == pytest.approx(1, abs=1e-5)
    assert pixel_distance(source, thumbnail(copy)) <= PIXEL_DISTANCE
    assert pixel_distance(source, thumbnail(shifted)) > PIXEL_DISTANCE
    flat = tmp_path / "flat.png"
    cv2.imwrite(str(flat), np.full((24, 32), 7, np.uint8))
    assert not thumbnail(flat).any()  # no variation: correlates with nothing


def test_unreadable_files_are_skipped_with_a_note(catalog):
    with CatalogStore(catalog, readonly=True) as store:
        thumbs = catalog_thumbnails(store)
    assert len(thumbs.ids) == 22 and thumbs.vectors.shape == (22, 32 * 24)
    assert GARBAGE + 1 not in thumbs.ids and MISSING + 1 not in thumbs.ids
    assert len(thumbs.notes) == 2
    assert all("skipped by the pixel signal" in note for note in thumbs.notes)


def test_near_duplicates_flags_the_copy_by_pixels_only(catalog, caplog):
    with CatalogStore(catalog, readonly=True) as store, caplog.at_level(logging.WARNING):
        pairs = duplicate_candidates(store, MODEL, k=5)
        off = near_duplicates(store, MODEL, top=50, pixels=False)
    by_pixels = [(p.image_a - 1, p.image_b - 1) for p in pairs if "pixels" in p.agree]
    assert by_pixels == [COPY]  # the neighbouring frames, 12 pixels off, are not flagged
    assert pairs[0].pixel_distance <= PIXEL_DISTANCE
    assert "pixel correlation" in pairs[0].reason
    assert "2 image(s) left out of the pixel signal" in caplog.text
    assert all(p.pixel_distance is None for p in off)


def test_without_the_pixel_signal_no_file_is_opened(catalog, monkeypatch):
    import clusterlens.catalog.thumbnails as thumbnails

    def unread(path, *args, **kwargs):
        raise AssertionError(f"{path} opened although the pixel signal is off")

    monkeypatch.setattr(thumbnails, "thumbnail", unread)
    with CatalogStore(catalog, readonly=True) as store:
        pairs = near_duplicates(store, MODEL, top=50, signals="embedding,loss")
    assert pairs and all(p.pixel_distance is None and "pixels" not in p.agree for p in pairs)


def test_the_pixel_signal_alone_flags_only_the_copy(catalog):
    with CatalogStore(catalog, readonly=True) as store:
        pairs = near_duplicates(store, MODEL, top=50, signals=["pixels"])
    assert [(p.image_a - 1, p.image_b - 1) for p in pairs] == [COPY]
    assert pairs[0].agree == ("pixels",) and pairs[0].embedding_ratio is None
    assert pairs[0].loss_ratio is None and "pixels flags it" in pairs[0].reason


def test_the_image_files_are_only_read(catalog):
    files = sorted(catalog.parent.glob("img_*.png"))
    before = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in files}
    with CatalogStore(catalog, readonly=True) as store:
        near_duplicates(store, MODEL, top=50)
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in files} == before
