"""Token pruning methods from the literature, beside clusterlens's own allocations.

Each method chooses which image tokens a VLM keeps, behind one interface
(:class:`TokenPruner`): ``answer(inputs, budget)`` prunes one prompt to ``budget``
image tokens and answers greedily; ``plan(inputs, budget)`` returns the choice alone.

- ``fastv`` (:class:`FastV`): attention of the last token at layer K (Chen et al. 2024).
- ``visionzip`` (:class:`VisionZip`): vision-tower attention + merged context
  (Yang et al. 2024).
- ``divprune`` (:class:`DivPrune`): greedy max-min diversity (Alvar et al., CVPR 2025).
- ``cdpruner`` (:class:`CDPruner`): conditional DPP, greedy MAP (Zhang et al. 2025).
- ``all`` (:class:`KeepAll`): every token, the reference.

Example:
    >>> from clusterlens.models.vlm.pruners import get_pruner, list_pruners
    >>> list_pruners()
    ['all', 'cdpruner', 'divprune', 'fastv', 'visionzip']
    >>> get_pruner("fastv", layer=3).layer
    3
"""

from __future__ import annotations

from typing import Any

from clusterlens.models.vlm.pruners._common import (
    KeepAll,
    PrunedAnswer,
    PruningInputs,
    PruningPlan,
    TokenPruner,
)
from clusterlens.models.vlm.pruners.cdpruner import CDPruner
from clusterlens.models.vlm.pruners.divprune import DivPrune
from clusterlens.models.vlm.pruners.fastv import FastV
from clusterlens.models.vlm.pruners.visionzip import VisionZip, vision_features_with_attention

PRUNERS: dict[str, type[TokenPruner]] = {
    cls.name: cls for cls in (KeepAll, CDPruner, DivPrune, FastV, VisionZip)
}


def list_pruners() -> list[str]:
    """Names :func:`get_pruner` accepts, sorted."""
    return sorted(PRUNERS)


def get_pruner(name: str, **options: Any) -> TokenPruner:
    """The pruner called ``name``, built with ``options`` (e.g. ``layer=2`` for FastV).

    Raises:
        ValueError: no pruner has that name.
    """
    if name not in PRUNERS:
        raise ValueError(f"unknown token pruner {name!r}; choose from {', '.join(list_pruners())}")
    return PRUNERS[name](**options)


__all__ = [
    "PRUNERS",
    "CDPruner",
    "DivPrune",
    "FastV",
    "KeepAll",
    "PrunedAnswer",
    "PruningInputs",
    "PruningPlan",
    "TokenPruner",
    "VisionZip",
    "get_pruner",
    "list_pruners",
    "vision_features_with_attention",
]
