"""Open-vocabulary segmentation: dense predictors and the MHQR pipeline (seed 04).

``MHQRSegmenter.offline().segment(image, class_names)`` runs with no download: the
bundled CamVid model gives dense class scores, the offline region proposer gives
coarse / medium / fine masks for prompts placed in confident regions, the masks are
merged into a label map, and the model's finer input scales redraw its boundaries.
Dense CLIP (SCLIP-style) and SAM / SAM2 proposers plug into the same pipeline.
"""

from __future__ import annotations

from clusterlens.segment.dense import (
    DenseOutput,
    DensePredictor,
    OfflineDensePredictor,
    load_dense_predictor,
)
from clusterlens.segment.merge import MergeResult, SemanticMaskMerger, paint_masks
from clusterlens.segment.mhqr import (
    MHQRConfig,
    MHQRSegmenter,
    SegmentationResult,
    granularity_for_scale,
)
from clusterlens.segment.proposers import (
    GRANULARITIES,
    MaskProposals,
    MaskProposer,
    OfflineRegionProposer,
    Sam2Proposer,
    SamProposer,
    load_proposer,
)
from clusterlens.segment.queries import DynamicQueryGenerator, QuerySet, grid_queries
from clusterlens.segment.refine import CoarseToFineRefiner, HierarchicalRefiner

__all__ = [
    "GRANULARITIES",
    "CoarseToFineRefiner",
    "DenseOutput",
    "DensePredictor",
    "DynamicQueryGenerator",
    "HierarchicalRefiner",
    "MHQRConfig",
    "MHQRSegmenter",
    "MaskProposals",
    "MaskProposer",
    "MergeResult",
    "OfflineDensePredictor",
    "OfflineRegionProposer",
    "QuerySet",
    "Sam2Proposer",
    "SamProposer",
    "SegmentationResult",
    "SemanticMaskMerger",
    "granularity_for_scale",
    "grid_queries",
    "load_dense_predictor",
    "load_proposer",
    "paint_masks",
]
