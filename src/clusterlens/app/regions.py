"""The regions tab's work: cluster the chosen image, merge small clusters, group them
into a coarser level, and score the result against a ground truth (no Gradio here)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from clusterlens.app.handlers import USER_ERRORS, open_image, shown, user_message
from clusterlens.app.session import AppSession, ImageSources

log = logging.getLogger(__name__)

#: Colour of the coarse level's boundaries (cyan), drawn over the fine ones (yellow).
COARSE_COLOUR = (0, 255, 255)
#: Metrics shown, in this order (``clusterlens.evaluate.superpixel.superpixel_scores``).
METRICS = (
    "boundary_recall",
    "undersegmentation_error",
    "asa",
    "explained_variation",
    "compactness",
    "n_segments",
)


def run_regions(
    session: AppSession | None,
    source: str,
    upload: str | None,
    method: str,
    segments: int,
    merge_percent: float = 0.0,
    groups: int = 0,
    truth: str | None = None,
    sources: ImageSources | None = None,
) -> tuple[AppSession, np.ndarray | None, list[list[Any]], str]:
    """Cluster the chosen image with ``method`` into about ``segments`` regions.

    Args:
        merge_percent: merge every cluster smaller than this share of the image (in %)
            into its most similar neighbour (0: no merging).
        groups: also group the clusters into at most this many coarse clusters (Ward,
            on colour and position; 0: no hierarchy), drawn in cyan over the fine ones.
        truth: a ground-truth file (a BSDS ``.mat``, every annotator; or a label image
            whose distinct values or colours are the segments) to score the clusters
            against.

    Returns:
        the session; the boundary overlay (uint8 RGB at display size, None on error);
        rows [metric, value] (empty without ``truth``); and a message that gives the
        number of regions (or what went wrong).
    """
    session = session or AppSession()
    try:
        with session.lock:
            context, _ = open_image(session, source, upload, sources or ImageSources())
        fine, coarse = cluster_levels(context.rgb, method, segments, merge_percent, groups)
        rows = score_against(fine, context.rgb, truth) if truth else []
    except USER_ERRORS as error:
        return session, None, [], f"⚠️ {user_message(error)}"
    except Exception as error:  # a bug: keep the server up, say so, keep the trace
        log.exception("regions failed")
        return session, None, [], f"⚠️ internal error ({type(error).__name__}: {error})"
    picture = _overlay(context.rgb, fine, coarse)
    note = f"{int(fine.max()) + 1} regions ({method})"
    if merge_percent > 0:
        note += f", clusters under {merge_percent:g}% merged"
    if coarse is not None:
        note += f"; {int(coarse.max()) + 1} coarse groups (cyan)"
    return session, picture, rows, note


def cluster_levels(
    rgb: np.ndarray, method: str, segments: int, merge_percent: float, groups: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """The fine label map (after merging) and the coarse one (None without groups)."""
    from clusterlens.regions import cluster_image, group_clusters, merge_small_clusters

    if not 0 <= merge_percent <= 100:
        raise ValueError(f"merge below must be a percentage in [0, 100], got {merge_percent}")
    clusters = cluster_image(rgb, method=method, n_segments=int(segments))
    if merge_percent > 0:
        clusters = merge_small_clusters(clusters, rgb, min_size_ratio=merge_percent / 100)
    coarse = None
    if groups > 0:
        coarse = group_clusters(clusters, rgb, max_clusters=int(groups)).coarse.labels
    return clusters.labels, coarse


def _overlay(rgb: np.ndarray, fine: np.ndarray, coarse: np.ndarray | None) -> np.ndarray:
    from clusterlens.viz.render import boundary_overlay

    picture = boundary_overlay(shown(rgb), shown(fine.astype(np.int32), nearest=True))
    if coarse is not None:
        labels = shown(coarse.astype(np.int32), nearest=True)
        picture = boundary_overlay(picture, labels, colour=COARSE_COLOUR)
    return picture


def read_truth(path: str | Path) -> list[np.ndarray]:
    """The ground-truth segmentations in ``path``: every annotator of a BSDS ``.mat``,
    or one label image (grey values, or RGB colours, each a segment).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a readable ground truth.
    """
    path = Path(path)
    if path.suffix.lower() == ".mat":
        from clusterlens.evaluate.bsds import read_ground_truth

        return read_ground_truth(path)[0]
    if not path.is_file():
        raise FileNotFoundError(f"ground truth not found: {path}")
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise ValueError(f"cannot read the ground truth {path.name}: not a label image or .mat")
    if array.ndim == 3:  # colours as ids
        flat = array.reshape(-1, array.shape[2])
        array = np.unique(flat, axis=0, return_inverse=True)[1].reshape(array.shape[:2])
    return [array.astype(np.int64)]


def score_against(labels: np.ndarray, rgb: np.ndarray, truth: str | Path) -> list[list[Any]]:
    """Rows [metric, value] of the superpixel metrics against every ground truth in
    ``truth``, at the ground truth's size (the labels are scaled to it, nearest).

    Raises:
        ValueError: the ground truth's aspect ratio is not the image's.
    """
    from clusterlens.evaluate.superpixel import superpixel_scores

    truths = read_truth(truth)
    height, width = truths[0].shape
    if abs(height / width - labels.shape[0] / labels.shape[1]) > 0.02:
        raise ValueError(
            f"ground truth of {width}x{height} does not fit an image of "
            f"{labels.shape[1]}x{labels.shape[0]} (another aspect ratio)"
        )
    sized = cv2.resize(labels.astype(np.int32), (width, height), interpolation=cv2.INTER_NEAREST)
    image = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    scores = superpixel_scores(sized, truths, image)
    return [[name, f"{scores[name]:.4g}"] for name in METRICS]
