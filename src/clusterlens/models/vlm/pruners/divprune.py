"""DivPrune: keep the most diverse image tokens (greedy max-min diversity).

Alvar, Singh, Akbari and Zhang, "DivPrune: Diversity-based Visual Token Pruning for
Large Multimodal Models", CVPR 2025, arXiv:2503.02175.

The method treats pruning as a Max-Min Diversity Problem over the image tokens the
language model receives (after the projector): with cosine distance
``d(i, j) = 1 - cos(x_i, x_j)``, pick a subset whose smallest pairwise distance is
as large as possible. The paper solves it greedily, as here:

1. the first token is the one farthest from its nearest neighbour
   (``argmax_i min_{j != i} d(i, j)``);
2. each next token is the one farthest from the chosen set
   (``argmax_i min_{s in S} d(i, s)``).

It is query-free and needs only the vision features, so it works for every family
clusterlens prunes (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, LLaVA, LLaVA-NeXT -- whose
newline tokens are candidates like any other image row). Ties go to the earlier
token.
"""

from __future__ import annotations

import torch

from clusterlens.models.vlm.pruners._common import (
    PruningInputs,
    PruningPlan,
    TokenPruner,
    checked_budget,
    keep_indices,
)


def cosine_distances(features: torch.Tensor) -> torch.Tensor:
    """(N, N) ``1 - cos`` between the rows of ``features`` (N, d), in float32."""
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(f"features must be (N, d) with N >= 1, got {tuple(features.shape)}")
    unit = torch.nn.functional.normalize(features.detach().float().cpu(), dim=-1)
    return 1.0 - unit @ unit.T


def max_min_diverse(features: torch.Tensor, budget: int) -> torch.Tensor:
    """Indices (in choice order) of ``budget`` rows chosen by greedy max-min diversity.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [-1.0, 0.0]])
        >>> max_min_diverse(x, 2).tolist()
        [3, 0]
    """
    count = features.shape[0]
    budget = checked_budget(budget, count)
    distances = cosine_distances(features)
    if count == 1:
        return torch.zeros(1, dtype=torch.long)
    # a token's distance to its nearest *other* token: push the diagonal out of the min
    self_pairs = torch.eye(count, dtype=torch.bool)
    nearest = distances.masked_fill(self_pairs, float("inf")).min(dim=1).values
    first = int(torch.argmax(nearest))
    chosen = [first]
    to_chosen = distances[first].clone()
    to_chosen[first] = -float("inf")
    for _ in range(1, budget):
        best = int(torch.argmax(to_chosen))
        chosen.append(best)
        to_chosen = torch.minimum(to_chosen, distances[best])
        to_chosen[chosen] = -float("inf")
    return torch.tensor(chosen, dtype=torch.long)


class DivPrune(TokenPruner):
    """Greedy max-min diversity over the projected image tokens (see the module docstring).

    Example:
        >>> from clusterlens.models.vlm.pruners import get_pruner
        >>> get_pruner("divprune").query_aware
        False
    """

    name = "divprune"
    families = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava", "llava_next")

    def plan(self, inputs: PruningInputs, budget: int) -> PruningPlan:
        chosen = max_min_diverse(inputs.features.embeds, budget)
        return PruningPlan(keep=keep_indices(chosen, inputs.image_tokens))
