"""A small learnable balancer: the weights of the ways of knowing depend on the image.

Seed 02's "adaptive tensions": a fixed weighting trusts the query model equally on
every image, but when the model's coupling map is weak or spread thin, information
and salience deserve more say, and less when it is sharp. The balancer reads a
context of nine numbers — the mean, standard deviation and max of each way — and a
two-layer MLP turns it into softmax weights. Weights stay non-negative and sum to
one, so it remains a convex combination (coarse max-summaries stay upper bounds) and
its weights can be reported with every result, like a fixed balancer's.

Training (:func:`fit_balancer`) minimises the binary cross-entropy between each
grid cell's balanced score and the share of the queried class's pixels in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from clusterlens.relevance.balance import FixedBalancer
from clusterlens.relevance.ways import WAYS

CONTEXT_SIZE = 3 * len(WAYS)
SHIPPED = "adaptive_balancer.pt"


def default_balancer_path() -> Path:
    """Where the balancer trained by ``train_balancer`` ships inside the package."""
    return Path(__file__).with_name(SHIPPED)


def context_of(ways: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Mean, standard deviation and max of each way: (9,)."""
    flat = np.asarray(ways, dtype=np.float32).reshape(len(WAYS), -1)
    return context_from_maps(list(flat))


def context_from_maps(maps: list[np.ndarray]) -> torch.Tensor:
    """:func:`context_of` for ways given at different resolutions (one map per way).

    NumPy, not torch: on a megapixel map torch's reductions took 12-24 ms each on this
    two-core machine under load against 0.1-2.4 ms for NumPy's, and a select call
    computes nine of them.
    """
    stats = []
    for values in maps:
        flat = np.asarray(values, dtype=np.float32).reshape(-1)
        stats.append([flat.mean(dtype=np.float64), flat.std(dtype=np.float64), flat.max()])
    return torch.tensor(np.asarray(stats, dtype=np.float64).T.reshape(-1), dtype=torch.float32)


class AdaptiveBalancer(nn.Module):
    """context (9,) -> softmax weights (3,) over information, salience, coupling."""

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(CONTEXT_SIZE, hidden), nn.Tanh(), nn.Linear(hidden, len(WAYS))
        )

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(context), dim=-1)

    @torch.no_grad()
    def for_image(self, ways: np.ndarray) -> FixedBalancer:
        """The weights this image gets, frozen into a balancer that reports them."""
        weights = self(context_of(ways)).tolist()
        return FixedBalancer(dict(zip(WAYS, weights, strict=True)))

    @torch.no_grad()
    def for_maps(self, maps: list[np.ndarray]) -> FixedBalancer:
        """Like :meth:`for_image`, with each way's map at its own resolution (e.g.
        information and salience of a thumbnail, coupling of a coarse pass)."""
        weights = self(context_from_maps(maps)).tolist()
        return FixedBalancer(dict(zip(WAYS, weights, strict=True)))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        torch.save({"hidden": self.net[0].out_features, "state": self.state_dict()}, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> AdaptiveBalancer:
        if not Path(path).is_file():
            raise FileNotFoundError(
                f"no adaptive balancer at {path}; train one with "
                "`python -m clusterlens.relevance.train_balancer --out PATH`"
            )
        saved = torch.load(path, map_location="cpu", weights_only=True)
        balancer = cls(saved["hidden"])
        balancer.load_state_dict(saved["state"])
        return balancer.eval()


@dataclass
class BalancerExample:
    """One training case: per-cell features (N, 3), per-cell truth (N,), image context (9,)."""

    features: torch.Tensor
    truth: torch.Tensor
    context: torch.Tensor


def fit_balancer(
    examples: Iterable[BalancerExample], epochs: int = 200, seed: int = 0, hidden: int = 16
) -> tuple[AdaptiveBalancer, list[float]]:
    """Full-batch Adam on the cell-level cross-entropy; returns the model and loss curve."""
    torch.manual_seed(seed)
    cases = list(examples)
    if not cases:
        raise ValueError("fit_balancer needs at least one example")
    if len({case.features.shape for case in cases}) != 1:
        raise ValueError("all examples must use the same grid (same number of cells)")
    model = AdaptiveBalancer(hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    contexts = torch.stack([case.context for case in cases])  # (B, 9)
    features = torch.stack([case.features for case in cases])  # (B, N, 3)
    truth = torch.stack([case.truth for case in cases])  # (B, N)
    losses = []
    for _ in range(epochs):
        optimizer.zero_grad()
        scores = torch.einsum("bnc,bc->bn", features, model(contexts)).clamp(1e-4, 1 - 1e-4)
        loss = nn.functional.binary_cross_entropy(scores, truth)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach().item())
    return model.eval(), losses
