"""Relevance: the ways of knowing, and balancing them into one score per cell."""

from __future__ import annotations

from clusterlens.relevance.balance import NO_QUERY_WEIGHTS, QUERY_WEIGHTS, FixedBalancer
from clusterlens.relevance.ways import QUERY_FREE_WAYS, WAYS, ways_of_knowing

__all__ = [
    "NO_QUERY_WEIGHTS",
    "QUERY_FREE_WAYS",
    "QUERY_WEIGHTS",
    "WAYS",
    "FixedBalancer",
    "ways_of_knowing",
]
