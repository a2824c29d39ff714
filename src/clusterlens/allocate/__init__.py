"""Query-aware token allocation: which patches to keep, and how many tokens each gets."""

from __future__ import annotations

from clusterlens.allocate.allocation import Allocation
from clusterlens.allocate.budgets import variable_budgets
from clusterlens.allocate.grid import PatchGrid
from clusterlens.allocate.registry import STRATEGIES, allocate, list_strategies
from clusterlens.allocate.scorer import CellScorer, linear_combiner

__all__ = [
    "STRATEGIES",
    "Allocation",
    "CellScorer",
    "PatchGrid",
    "allocate",
    "linear_combiner",
    "list_strategies",
    "variable_budgets",
]
