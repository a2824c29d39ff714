"""Mask proposers: point prompts -> three masks per point (coarse, medium, fine).

- :class:`SamProposer` -- segment-anything's ``SamPredictor`` with
  ``multimask_output=True``.
- :class:`Sam2Proposer` -- the real ``SAM2ImagePredictor`` likewise.
- :class:`OfflineRegionProposer` -- no weights at all: superpixels from the ``fast``
  region backend (fine) and two cuts of one Ward hierarchy over them
  (:func:`clusterlens.regions.group_clusters`: medium and coarse); each point gets the
  fine superpixel containing it and the connected medium / coarse regions containing
  it. It is what lets the whole MHQR pipeline run on a fresh machine.

SAM returns its three masks in no guaranteed order of size, so each point's masks are
sorted by area: largest = coarse, smallest = fine. SAM's predicted IoUs travel with
them as ``scores``.

Example:
    >>> import numpy as np
    >>> image = np.zeros((40, 40, 3), np.float32); image[:, 20:] = 1.0
    >>> proposer = OfflineRegionProposer(fine_segments=16, medium_segments=4, coarse_segments=2)
    >>> proposals = proposer.propose(image, np.array([[5.0, 5.0]]))
    >>> proposals.masks.shape
    (1, 3, 40, 40)
    >>> bool(proposals.masks[0, 0, 5, 30])  # the coarse mask stops at the colour edge
    False
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from skimage.measure import label as connected_regions

from clusterlens.image import ImageInput, load_image
from clusterlens.regions import cluster_image, group_clusters

GRANULARITIES = ("coarse", "medium", "fine")


@dataclass(frozen=True)
class MaskProposals:
    """Masks for N point prompts at three granularities.

    Attributes:
        masks: (N, 3, H, W) bool, axis 1 ordered as :data:`GRANULARITIES`.
        scores: (N, 3) float32 mask quality (SAM's predicted IoU), or None when the
            proposer has no quality estimate (the offline proposer).
        regions: (H, W) int32 fine partition of the image the masks are built from
            (superpixels), or None; the merger snaps contested boundaries to it.
    """

    masks: npt.NDArray[np.bool_]
    scores: npt.NDArray[np.float32] | None = None
    regions: npt.NDArray[np.int32] | None = None

    def __len__(self) -> int:
        return len(self.masks)


class MaskProposer(Protocol):
    """Turns an image and (N, 2) ``(x, y)`` pixel prompts into :class:`MaskProposals`."""

    name: str

    def propose(self, image: ImageInput, points: np.ndarray) -> MaskProposals:
        """Three masks per point."""
        ...


def _check_points(points: np.ndarray, shape: tuple[int, int]) -> npt.NDArray[np.float32]:
    array = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    height, width = shape
    if array.size and (
        array[:, 0].min() < 0
        or array[:, 1].min() < 0
        or array[:, 0].max() >= width
        or array[:, 1].max() >= height
    ):
        raise ValueError(
            f"points must be (x, y) pixel positions inside the {width}x{height} image, got "
            f"x in [{array[:, 0].min()}, {array[:, 0].max()}], y in "
            f"[{array[:, 1].min()}, {array[:, 1].max()}]"
        )
    return array


def _uint8(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray((np.clip(rgb, 0, 1) * 255).round().astype(np.uint8))


def _by_area(masks: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order each prompt's three masks from largest (coarse) to smallest (fine)."""
    order = np.argsort(-masks.reshape(*masks.shape[:2], -1).sum(axis=2), axis=1, kind="stable")
    rows = np.arange(len(masks))[:, None]
    return masks[rows, order], scores[rows, order]


class OfflineRegionProposer:
    """Superpixels and Ward groups of them: coarse / medium / fine masks with no weights.

    The defaults were chosen on 10 CamVid *train* images (a sweep of 400 / 600 / 1200
    superpixels, compactness 5 / 10 / 20): fewer, larger regions leak across class
    boundaries and cost mIoU.

    Args:
        fine_segments: target number of superpixels (the fine masks).
        medium_segments: regions of the medium cut of the hierarchy.
        coarse_segments: regions of the coarse cut.
        method: region backend for the superpixels (``fast`` by default).
        compactness: SLIC compactness of the superpixels.
        position_weight: weight of position against colour when grouping.
    """

    name = "offline"

    def __init__(
        self,
        fine_segments: int = 1200,
        medium_segments: int = 300,
        coarse_segments: int = 80,
        method: str = "fast",
        compactness: float = 5.0,
        position_weight: float = 1.0,
    ) -> None:
        if not 1 <= coarse_segments <= medium_segments <= fine_segments:
            raise ValueError(
                "need 1 <= coarse_segments <= medium_segments <= fine_segments, got "
                f"{coarse_segments}, {medium_segments}, {fine_segments}"
            )
        self.fine_segments = fine_segments
        self.medium_segments = medium_segments
        self.coarse_segments = coarse_segments
        self.method = method
        self.compactness = compactness
        self.position_weight = position_weight

    def partitions(self, image: ImageInput) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(coarse, medium, fine) label maps; coarse and medium regions are connected.

        The two groupings cut the same deterministic Ward tree, so fine regions nest in
        medium ones, which nest in coarse ones (before splitting into connected parts).
        """
        rgb = load_image(image)
        options = {"compactness": self.compactness} if self.method in {"fast", "slic"} else {}
        fine = cluster_image(rgb, method=self.method, n_segments=self.fine_segments, **options)
        maps = []
        for count in (self.coarse_segments, self.medium_segments):
            grouped = group_clusters(fine, max_clusters=count, position_weight=self.position_weight)
            # A Ward group may be split in space; a mask must be one connected piece.
            maps.append(connected_regions(grouped.coarse.labels, background=-1, connectivity=1))
        return maps[0], maps[1], fine.labels

    def propose(self, image: ImageInput, points: np.ndarray) -> MaskProposals:
        """The coarse, medium and fine regions containing each ``(x, y)`` point.

        Raises:
            ValueError: a point outside the image.
        """
        rgb = load_image(image)
        prompts = _check_points(points, rgb.shape[:2])
        partitions = self.partitions(rgb)
        cols = prompts[:, 0].astype(np.int64)
        rows = prompts[:, 1].astype(np.int64)
        masks = np.stack(
            [labels[None] == labels[rows, cols][:, None, None] for labels in partitions], axis=1
        )
        return MaskProposals(masks=masks, scores=None, regions=partitions[2].astype(np.int32))


class SamProposer:
    """segment-anything point prompts with multimask output.

    Args:
        model: a loaded ``segment_anything.modeling.Sam`` (``load_model("sam:/path")``).
        batch_size: prompts per forward pass.
    """

    name = "sam"

    def __init__(self, model: Any, batch_size: int = 64) -> None:
        from segment_anything import SamPredictor

        self.predictor = SamPredictor(model)
        self.batch_size = batch_size

    def propose(self, image: ImageInput, points: np.ndarray) -> MaskProposals:
        """Three SAM masks per point, sorted coarse -> fine, with predicted IoUs."""
        import torch

        rgb = load_image(image)
        prompts = _check_points(points, rgb.shape[:2])
        self.predictor.set_image(_uint8(rgb))
        masks, scores = [], []
        for start in range(0, len(prompts), self.batch_size):
            chunk = torch.from_numpy(prompts[start : start + self.batch_size, None, :])
            coords = self.predictor.transform.apply_coords_torch(chunk, rgb.shape[:2])
            labels = torch.ones(coords.shape[:2], dtype=torch.int64)
            with torch.no_grad():
                batch_masks, batch_scores, _ = self.predictor.predict_torch(
                    coords.to(self.predictor.device),
                    labels.to(self.predictor.device),
                    multimask_output=True,
                )
            masks.append(batch_masks.cpu().numpy().astype(bool))
            scores.append(batch_scores.cpu().numpy().astype(np.float32))
        return _assemble(masks, scores, rgb.shape[:2])


class Sam2Proposer:
    """SAM2 point prompts with multimask output (``SAM2ImagePredictor``).

    Args:
        model: a built SAM2 model (``load_model("sam2:/path")``).
        batch_size: prompts per forward pass.
    """

    name = "sam2"

    def __init__(self, model: Any, batch_size: int = 64) -> None:
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        self.predictor = SAM2ImagePredictor(model)
        self.batch_size = batch_size

    def propose(self, image: ImageInput, points: np.ndarray) -> MaskProposals:
        """Three SAM2 masks per point, sorted coarse -> fine, with predicted IoUs."""
        import torch

        rgb = load_image(image)
        height, width = rgb.shape[:2]
        prompts = _check_points(points, (height, width))
        with torch.no_grad():
            self.predictor.set_image(_uint8(rgb))
            masks, scores = [], []
            for start in range(0, len(prompts), self.batch_size):
                chunk = prompts[start : start + self.batch_size, None, :]
                batch_masks, batch_scores, _ = self.predictor.predict(
                    point_coords=chunk,
                    point_labels=np.ones(chunk.shape[:2], dtype=np.int64),
                    multimask_output=True,
                )
                # predict() squeezes a batch of one; restore (B, 3, H, W).
                masks.append(np.asarray(batch_masks).reshape(-1, 3, height, width) > 0)
                scores.append(np.asarray(batch_scores, dtype=np.float32).reshape(-1, 3))
        return _assemble(masks, scores, (height, width))


def _assemble(masks: list, scores: list, shape: tuple[int, int]) -> MaskProposals:
    if not masks:
        return MaskProposals(np.zeros((0, 3, *shape), bool), np.zeros((0, 3), np.float32))
    ordered_masks, ordered_scores = _by_area(np.concatenate(masks), np.concatenate(scores))
    return MaskProposals(masks=ordered_masks, scores=ordered_scores)


def load_proposer(name: str = "offline", device: str = "cpu", **options: Any) -> MaskProposer:
    """A proposer by name: ``offline``, ``sam:/path/to/sam_vit_b.pth`` or ``sam2:/path.pt``.

    Raises:
        ValueError: unknown name.
        FileNotFoundError: a SAM / SAM2 checkpoint that is not on disk.
    """
    if name == "offline":
        return OfflineRegionProposer(**options)
    source, _, spec = name.partition(":")
    if source in {"sam", "sam2"}:
        from clusterlens.models import load_model

        model = load_model(f"{source}:{spec}", device=device)
        return (SamProposer if source == "sam" else Sam2Proposer)(model, **options)
    raise ValueError(
        f"unknown proposer {name!r}; accepted: offline, sam:/path/to/sam_vit_b.pth, "
        "sam2:/path/to/sam2.1_hiera_tiny.pt"
    )
