"""Conditional flow matching with a locality term (seed 05).

The flow term is plain conditional flow matching on the straight path
``x_t = (1 - t) x0 + t x1`` with target velocity ``x1 - x0``. The locality term asks the
network for similar velocities at two related points of the same time ``t``:

- ``random`` (random perturbation): same target ``x1``, perturbed noise
  ``x0' = x0 + noise_scale * eps``; compares ``v(x_t)`` with ``v((1 - t) x0' + t x1)``.
- ``cluster`` (cluster neighbourhood): same noise ``x0``, a cluster-mate target ``x1[mate]``
  drawn from the batch; compares ``v(x_t)`` with ``v((1 - t) x0 + t x1[mate])``. Samples
  without a mate (invalid pairs) do not enter the loss.

Total loss = flow + ``weight`` * locality. Metrics are named as in the seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from clusterlens.flow.pairing import Pairing

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LOCALITY_MODES = ("none", "random", "cluster")
MODE_NAMES = {"none": "none", "random": "random_perturbation", "cluster": "cluster_neighborhood"}


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Point at time ``t`` (shape (B,)) on the straight path from ``x0`` to ``x1``."""
    t = t.reshape(-1, *([1] * (x0.dim() - 1)))
    return (1 - t) * x0 + t * x1


def per_sample_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared difference per sample: (B, ...) -> (B,)."""
    return (a - b).pow(2).reshape(len(a), -1).mean(dim=1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask``; zero (still differentiable) when nothing is valid."""
    weights = mask.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp(min=1.0)


@dataclass
class LossResult:
    """Total loss to back-propagate plus the logged metrics (floats, and the mode name)."""

    loss: torch.Tensor
    metrics: dict[str, float | str]


@dataclass
class LocalityFlowMatching:
    """Flow matching loss with an optional locality term.

    Args:
        mode: ``none``, ``random`` or ``cluster``.
        weight: Locality weight lambda (>= 0).
        noise_scale: Perturbation scale of ``random`` mode (> 0 there).

    Example:
        >>> loss_fn = LocalityFlowMatching("random", weight=1.0, noise_scale=0.1)
    """

    mode: str = "none"
    weight: float = 1.0
    noise_scale: float = 0.1

    def __post_init__(self) -> None:
        if self.mode not in LOCALITY_MODES:
            raise ValueError(
                f"unknown locality mode {self.mode!r}; accepted: {', '.join(LOCALITY_MODES)}"
            )
        if self.weight < 0:
            raise ValueError(f"locality weight must be >= 0, got {self.weight}")
        if self.mode == "random" and self.noise_scale <= 0:
            raise ValueError(f"random locality needs noise_scale > 0, got {self.noise_scale}")

    def __call__(
        self,
        velocity: Velocity,
        x0: torch.Tensor,
        x1: torch.Tensor,
        t: torch.Tensor,
        *,
        pairing: Pairing | None = None,
        perturbation: torch.Tensor | None = None,
    ) -> LossResult:
        """Compute the loss on one batch.

        Args:
            velocity: The network, ``velocity(x, t) -> v``.
            x0: (B, ...) source (noise) samples.
            x1: (B, ...) data samples.
            t: (B,) times in [0, 1].
            pairing: Cluster-mates of the batch (``cluster`` mode).
            perturbation: (B, ...) standard normal draws ``eps`` (``random`` mode).

        Returns:
            The :class:`LossResult`.
        """
        x_t = interpolate(x0, x1, t)
        target = x1 - x0
        if self.mode == "none":
            flow = per_sample_mse(velocity(x_t, t), target).mean()
            value = flow.item()
            return LossResult(
                flow, {"loss": value, "loss_flow": value, "locality_mode": MODE_NAMES["none"]}
            )
        if self.mode == "random":
            if perturbation is None:
                raise ValueError("random locality needs the perturbation draws")
            partner_x0 = x0 + self.noise_scale * perturbation
            partner_target = x1 - partner_x0
            partner_x_t = interpolate(partner_x0, x1, t)
            mask = torch.ones(len(x0), dtype=torch.bool, device=x0.device)
            extra: dict[str, float | str] = {}
        else:
            if pairing is None:
                raise ValueError("cluster locality needs the batch's cluster pairing")
            partner_x1 = x1[pairing.mate]
            partner_target = partner_x1 - x0
            partner_x_t = interpolate(x0, partner_x1, t)
            mask = pairing.valid
            extra = {"locality_n_unique_clusters": float(pairing.n_unique_clusters)}
        # One forward pass over both points: cheaper than two on small networks.
        both = velocity(torch.cat([x_t, partner_x_t]), torch.cat([t, t]))
        v, partner_v = both[: len(x0)], both[len(x0) :]
        flow = per_sample_mse(v, target).mean()
        locality = masked_mean(per_sample_mse(v, partner_v), mask)
        target_diff = masked_mean(per_sample_mse(target, partner_target), mask)
        total = flow + self.weight * locality
        metrics: dict[str, float | str] = {
            "loss": total.item(),
            "loss_flow": flow.item(),
            "loss_locality": locality.item(),
            "locality_target_diff": target_diff.item(),
            "locality_mode": MODE_NAMES[self.mode],
            "locality_valid_pairs": float(mask.sum()),
            "locality_valid_ratio": float(mask.float().mean()),
            **extra,
        }
        return LossResult(total, metrics)
