"""Score region backends on annotated images: the loop behind ``clusters-bench``.

Every image is clustered by every method at every segment count before moving to
the next image, so all methods see the same machine load (timings on a shared
machine drift; interleaving keeps their *ratios* fair). Times cover the backend
call alone -- the same canonical float image goes to each -- not image decoding or
the ClusterMap table.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from clusterlens.evaluate.superpixel import superpixel_scores
from clusterlens.regions.cluster_map import relabel_consecutive
from clusterlens.regions.registry import get_method

ROW_KEYS = (
    "method",
    "n_segments",
    "boundary_recall",
    "undersegmentation_error",
    "asa",
    "explained_variation",
    "compactness",
    "ms_per_image",
    "segments_found",
    "images",
)
_SCORES = (
    "boundary_recall",
    "undersegmentation_error",
    "asa",
    "explained_variation",
    "compactness",
)


def benchmark_methods(
    samples: Iterable[Any],
    methods: Sequence[str],
    segments: Sequence[int],
    on_image: Callable[[str], None] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    tolerance: int = 2,
) -> list[dict[str, Any]]:
    """Mean quality and time per (method, n_segments) over ``samples``.

    Args:
        samples: objects with ``image_id``, ``image`` ((H, W, 3) float32) and
            ``segmentations`` (list of (H, W) label maps), e.g. from
            :func:`clusterlens.evaluate.bsds.iter_bsds`.
        methods: registered method names.
        segments: requested segment counts.
        on_image: called with each image id once it is done (progress bars).
        options: per-method backend options.
        tolerance: boundary-recall tolerance in pixels.

    Returns:
        One dict per (method, n_segments) with the keys of :data:`ROW_KEYS`;
        ``ms_per_image`` is the mean backend time, ``segments_found`` the mean number
        of regions actually produced.
    """
    backends = {name: get_method(name) for name in methods}
    options = options or {}
    totals: dict[tuple[str, int], dict[str, list[float]]] = {}
    warmed: set[str] = set()
    for sample in samples:
        for n_segments in segments:
            count = int(min(n_segments, sample.image.shape[0] * sample.image.shape[1]))
            for name, backend in backends.items():
                if name not in warmed:  # first calls pay one-off library set-up
                    backend(sample.image, count, **options.get(name, {}))
                    warmed.add(name)
                start = time.perf_counter()
                labels = backend(sample.image, count, **options.get(name, {}))
                seconds = time.perf_counter() - start
                labels = relabel_consecutive(np.asarray(labels))
                scores = superpixel_scores(labels, sample.segmentations, sample.image, tolerance)
                scores["ms_per_image"] = seconds * 1000
                scores["segments_found"] = scores.pop("n_segments")
                bucket = totals.setdefault((name, n_segments), {})
                for key, value in scores.items():
                    bucket.setdefault(key, []).append(value)
        if on_image is not None:
            on_image(sample.image_id)
    return [_row(name, n_segments, values) for (name, n_segments), values in totals.items()]


def _row(name: str, n_segments: int, values: dict[str, list[float]]) -> dict[str, Any]:
    row: dict[str, Any] = {"method": name, "n_segments": n_segments}
    for key in (*_SCORES, "ms_per_image", "segments_found"):
        row[key] = float(np.mean(values[key]))
    row["images"] = len(values["ms_per_image"])
    return row


def interpolate_at(
    rows: list[dict[str, Any]], method: str, key: str, segments_found: float
) -> float:
    """``method``'s ``key`` at a given number of regions, by linear interpolation.

    Used to compare methods at *matched* region counts: backends given the same
    ``n_segments`` return different numbers of regions, and every score improves
    with more regions. Returns NaN outside the measured range (no extrapolation).
    """
    points = sorted((row["segments_found"], row[key]) for row in rows if row["method"] == method)
    if not points or not points[0][0] <= segments_found <= points[-1][0]:
        return float("nan")
    found, values = zip(*points, strict=True)
    return float(np.interp(segments_found, found, values))
