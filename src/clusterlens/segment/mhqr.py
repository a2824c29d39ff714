"""The MHQR pipeline: dense scores -> prompts -> masks -> refinement -> merging -> labels.

Every stage is switchable (the seed's ablation flags), so each one's contribution can
be measured:

============================  ===========================================================
stage                         off
============================  ===========================================================
``dynamic_queries``           a blind ``grid_side x grid_side`` grid of prompts
``hierarchical``              each prompt keeps one proposer mask: the granularity its
                              scale asks for (scale <= 0.3 coarse, <= 0.7 medium, else
                              fine, the seed's mapping; grid prompts are fine), and the
                              label map is not refined coarse -> fine
``merging``                   :func:`~clusterlens.segment.merge.paint_masks` (masks vote
                              for their prompt's class)
============================  ===========================================================

Two refiners implement ``hierarchical``. The default
:class:`~clusterlens.segment.refine.CoarseToFineRefiner` runs *after* merging: the
merged label map is the coarse decision and the finer levels of the dense predictor's
probability pyramid redraw its boundaries. The seed's attention refiner
(:class:`~clusterlens.segment.refine.HierarchicalRefiner`) runs before merging, on
the per-prompt masks; on CamVid it does not help (docs/segment.md).

Baselines: ``dense_only`` is the dense predictor alone (arg-max at its shipped scale),
``dense_multiscale`` the average of its pyramid's probabilities (test-time
augmentation, no MHQR stage) and ``dense_refined`` the coarse-to-fine refinement of the
dense arg-max with no prompts, masks or merging.

Example:
    >>> from clusterlens.segment import MHQRSegmenter  # doctest: +SKIP
    >>> segmenter = MHQRSegmenter.offline()  # doctest: +SKIP
    >>> result = segmenter.segment("street.png", ["road", "car", "sky"])  # doctest: +SKIP
    >>> result.labels.shape  # doctest: +SKIP
    (360, 480)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from clusterlens.image import ImageInput, load_image
from clusterlens.segment.dense import DenseOutput, DensePredictor, load_dense_predictor
from clusterlens.segment.merge import MergeResult, SemanticMaskMerger, paint_masks
from clusterlens.segment.proposers import (
    GRANULARITIES,
    MaskProposals,
    MaskProposer,
    OfflineRegionProposer,
)
from clusterlens.segment.queries import DynamicQueryGenerator, QuerySet, grid_queries
from clusterlens.segment.refine import CoarseToFineRefiner, HierarchicalRefiner


@dataclass(frozen=True)
class MHQRConfig:
    """Which stages run, and the blind grid used when dynamic queries are off.

    Attributes:
        dynamic_queries: confident-region prompts (else a blind grid).
        hierarchical: coarse-to-fine refinement of the three granularities.
        merging: semantic mask merging (else plain painting).
        grid_side: prompts per side of the blind grid.
    """

    dynamic_queries: bool = True
    hierarchical: bool = True
    merging: bool = True
    grid_side: int = 8

    def describe(self) -> str:
        """Short name of the enabled stages, e.g. ``dynamic+hierarchical+merging``."""
        names = [
            name
            for name, on in (
                ("dynamic", self.dynamic_queries),
                ("hierarchical", self.hierarchical),
                ("merging", self.merging),
            )
            if on
        ]
        return "+".join(names) or "grid-masks"


@dataclass
class SegmentationResult:
    """One image's segmentation and how it was made.

    Attributes:
        labels: (H, W) int64 class index per pixel.
        class_names: the classes, index = label value.
        dense: the dense predictor's output.
        queries: the prompts (None for dense only).
        proposals: the proposer's masks (None for dense only).
        soft_masks: (N, H, W) per-prompt masks after refinement (None for dense only).
        merge: the merger's output when merging ran.
        seconds: time per stage.
    """

    labels: npt.NDArray[np.int64]
    class_names: tuple[str, ...]
    dense: DenseOutput
    queries: QuerySet | None = None
    proposals: MaskProposals | None = None
    soft_masks: npt.NDArray[np.float32] | None = None
    merge: MergeResult | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def masks_json(self) -> list[dict[str, Any]]:
        """The final masks (merged groups, or one per prompt) as JSON-ready dicts."""
        if self.merge is not None:
            masks, classes = self.merge.group_masks, self.merge.group_classes
            members = self.merge.groups
        elif self.soft_masks is not None and self.queries is not None:
            masks, classes = self.soft_masks > 0.5, self.queries.class_indices
            members = [[index] for index in range(len(masks))]
        else:
            return []
        rows = []
        for mask, k, group in zip(masks, classes, members, strict=True):
            ys, xs = np.nonzero(mask)
            box = (
                [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
                if len(xs)
                else None
            )
            rows.append(
                {
                    "class_index": int(k),
                    "class_name": self.class_names[int(k)],
                    "area": int(mask.sum()),
                    "bbox_xyxy": box,
                    "queries": [int(index) for index in group],
                }
            )
        return rows


def granularity_for_scale(scale: float) -> int:
    """Index into :data:`GRANULARITIES` for a prompt found at ``scale`` (seed mapping)."""
    if scale <= 0.3:
        return GRANULARITIES.index("coarse")
    if scale <= 0.7:
        return GRANULARITIES.index("medium")
    return GRANULARITIES.index("fine")


class MHQRSegmenter:
    """Open-vocabulary segmentation with multi-scale hierarchical query refinement.

    Args:
        predictor: dense predictor (:mod:`clusterlens.segment.dense`).
        proposer: mask proposer (:mod:`clusterlens.segment.proposers`).
        config: enabled stages.
        generator: dynamic query generator (defaults when None).
        refiner: hierarchical refiner: :class:`CoarseToFineRefiner` (the default) or
            the attention :class:`HierarchicalRefiner`.
        merger: semantic merger (defaults when None); its ``mask_weight`` is also used
            by plain painting so the two differ only by the merger's own steps.
    """

    def __init__(
        self,
        predictor: DensePredictor,
        proposer: MaskProposer,
        config: MHQRConfig | None = None,
        generator: DynamicQueryGenerator | None = None,
        refiner: CoarseToFineRefiner | HierarchicalRefiner | None = None,
        merger: SemanticMaskMerger | None = None,
    ) -> None:
        self.predictor = predictor
        self.proposer = proposer
        self.config = config or MHQRConfig()
        self.generator = generator or DynamicQueryGenerator()
        self.refiner = refiner or CoarseToFineRefiner()
        self.merger = merger or SemanticMaskMerger()

    @classmethod
    def offline(cls, config: MHQRConfig | None = None, **proposer_options: Any) -> MHQRSegmenter:
        """The no-download pipeline: ``offline:camvid`` (with its default probability
        pyramid) + the offline region proposer."""
        return cls(
            load_dense_predictor("offline:camvid"),
            OfflineRegionProposer(**proposer_options),
            config,
        )

    def dense_only(self, image: ImageInput, class_names: Sequence[str]) -> SegmentationResult:
        """The dense predictor alone: arg-max of its probabilities at its shipped scale."""
        # The pyramid's extra forward passes would only inflate the baseline's time.
        single = getattr(self.predictor, "single_scale", None)
        predictor = single() if single is not None else self.predictor
        started = time.perf_counter()
        dense = predictor.predict(load_image(image), class_names)
        seconds = {"dense": time.perf_counter() - started}
        return SegmentationResult(dense.labels, dense.class_names, dense, seconds=seconds)

    def dense_multiscale(self, image: ImageInput, class_names: Sequence[str]) -> SegmentationResult:
        """Arg-max of the probabilities averaged over the dense pyramid's scales.

        Test-time augmentation with no MHQR stage: the baseline that tells how much of
        the pipeline's gain comes from merely running the model at several scales.

        Raises:
            ValueError: the predictor gives no probability pyramid.
        """
        started = time.perf_counter()
        dense = self.predictor.predict(load_image(image), class_names)
        levels = self._require_pyramid(dense)
        labels = np.mean(levels, axis=0).argmax(axis=0)
        seconds = {"dense": time.perf_counter() - started}
        return SegmentationResult(labels, dense.class_names, dense, seconds=seconds)

    def dense_refined(self, image: ImageInput, class_names: Sequence[str]) -> SegmentationResult:
        """The coarse-to-fine refinement applied to the dense arg-max alone (no prompts).

        Raises:
            ValueError: the refiner is not a :class:`CoarseToFineRefiner`, or the
                predictor gives no probability pyramid.
        """
        if not isinstance(self.refiner, CoarseToFineRefiner):
            raise ValueError("dense_refined needs a CoarseToFineRefiner")
        started = time.perf_counter()
        dense = self.predictor.predict(load_image(image), class_names)
        labels = self.refiner.refine(dense.labels, self._require_pyramid(dense)[1:])
        seconds = {"dense": time.perf_counter() - started}
        return SegmentationResult(labels, dense.class_names, dense, seconds=seconds)

    def _require_pyramid(self, dense: DenseOutput) -> tuple[np.ndarray, ...]:
        if not dense.probability_pyramid:
            raise ValueError(
                f"dense model {getattr(self.predictor, 'name', '?')!r} gives no probability "
                "pyramid (offline:camvid gives one; pass pyramid_scales)"
            )
        return dense.probability_pyramid

    def _finer_levels(self, dense: DenseOutput) -> tuple[np.ndarray, ...]:
        """Probability maps finer than the coarse decision; without a pyramid, the dense
        probabilities themselves (the merged map's boundaries snap back to the dense
        model's)."""
        if dense.probability_pyramid and len(dense.probability_pyramid) > 1:
            return dense.probability_pyramid[1:]
        return (dense.probabilities,)

    def segment(self, image: ImageInput, class_names: Sequence[str]) -> SegmentationResult:
        """Segment ``image`` into ``class_names`` with the enabled stages.

        Args:
            image: anything :func:`clusterlens.image.load_image` accepts.
            class_names: classes to find.

        Raises:
            ValueError: bad image or class names (from the dense predictor).
        """
        rgb = load_image(image)
        seconds: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            seconds[stage] = now - clock
            clock = now

        dense = self.predictor.predict(rgb, class_names)
        lap("dense")
        if self.config.dynamic_queries:
            queries = self.generator.generate(dense.probabilities)
        else:
            queries = grid_queries(dense.probabilities, self.config.grid_side)
        lap("queries")
        proposals = self.proposer.propose(rgb, queries.points)
        lap("proposals")
        attention = self.config.hierarchical and isinstance(self.refiner, HierarchicalRefiner)
        if attention:
            features = dense.feature_pyramid or dense.features
            soft = self.refiner.refine(proposals.masks, features, rgb)
        else:
            chosen = [granularity_for_scale(scale) for scale in queries.scales]
            soft = proposals.masks[np.arange(len(chosen)), chosen].astype(np.float32)
        lap("refinement")
        merged = None
        if self.config.merging:
            merged = self.merger.merge(
                soft, dense.probabilities, dense.class_embeddings, proposals.regions
            )
            labels = merged.labels
        else:
            labels = paint_masks(
                soft, queries.class_indices, dense.probabilities, self.merger.mask_weight
            )
        lap("merging")
        if self.config.hierarchical and not attention:
            # Coarse to fine: the merged map is the coarse decision, finer levels redraw
            # its boundaries (the refinement needs the merger's labels, hence this order).
            started = time.perf_counter()
            labels = self.refiner.refine(labels, self._finer_levels(dense))
            seconds["refinement"] += time.perf_counter() - started
        return SegmentationResult(
            labels=labels,
            class_names=dense.class_names,
            dense=dense,
            queries=queries,
            proposals=proposals,
            soft_masks=soft,
            merge=merged,
            seconds=seconds,
        )
