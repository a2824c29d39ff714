"""Balancing the ways of knowing into one relevance score.

A balancer turns the (N, 3) features of N cells into N scores and reports the
weights it used. :class:`FixedBalancer` is a weighted sum with non-negative
weights (so coarse max-summaries stay upper bounds, which the cascades rely on).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from clusterlens.relevance.ways import WAYS

# With a query, the question dominates; information and salience break ties and
# keep some context. Without a query they are all there is.
QUERY_WEIGHTS = {"information": 0.1, "salience": 0.1, "coupling": 0.8}
NO_QUERY_WEIGHTS = {"information": 0.5, "salience": 0.5, "coupling": 0.0}


@dataclass
class FixedBalancer:
    """score = sum of weight * way, weights non-negative and summing to 1."""

    weights: Mapping[str, float] = field(default_factory=lambda: dict(QUERY_WEIGHTS))

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(WAYS)
        if unknown:
            raise ValueError(f"unknown ways of knowing {sorted(unknown)}; known: {list(WAYS)}")
        values = [float(self.weights.get(way, 0.0)) for way in WAYS]
        if min(values) < 0 or sum(values) <= 0:
            raise ValueError(
                f"balancer weights must be non-negative and not all zero, got {dict(self.weights)}"
            )
        total = sum(values)
        self.weights = {way: value / total for way, value in zip(WAYS, values, strict=True)}
        self._vector = torch.tensor([self.weights[way] for way in WAYS])

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self._vector

    def report(self) -> dict[str, float]:
        return {way: round(weight, 4) for way, weight in self.weights.items()}
