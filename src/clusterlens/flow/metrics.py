"""How close generated samples are to held-out data, and how straight the paths are.

- :func:`wasserstein2`: exact 2-Wasserstein distance between two empirical samples
  (POT's network-simplex solver, ``ot.emd2``), uniform weights.
- :func:`mmd`: unbiased squared maximum mean discrepancy with a sum of Gaussian kernels
  at several bandwidths around the median pairwise distance.
- :func:`straightness`: mean squared deviation of the step velocities from the straight
  displacement (Liu et al.'s rectified-flow straightness); 0 for perfectly straight paths.
"""

from __future__ import annotations

import numpy as np
import torch

from clusterlens.flow.sampling import Trajectory


def _flat(samples: torch.Tensor | np.ndarray) -> np.ndarray:
    array = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else samples
    return np.asarray(array, dtype=np.float64).reshape(len(array), -1)


def wasserstein2(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Exact W2 between the empirical distributions of ``a`` (N, ...) and ``b`` (M, ...).

    Args:
        a: Samples, e.g. generated.
        b: Samples, e.g. held-out data; same per-sample size as ``a``.

    Returns:
        W2 (square root of the optimal mean squared transport cost).
    """
    import ot

    x, y = _flat(a), _flat(b)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"samples differ in size: {x.shape[1]} vs {y.shape[1]} values each")
    cost = ot.dist(x, y, metric="sqeuclidean")
    weights_x, weights_y = np.full(len(x), 1.0 / len(x)), np.full(len(y), 1.0 / len(y))
    return float(np.sqrt(max(ot.emd2(weights_x, weights_y, cost, numItermax=10_000_000), 0.0)))


def mmd(
    a: torch.Tensor | np.ndarray,
    b: torch.Tensor | np.ndarray,
    scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0),
) -> float:
    """Unbiased MMD^2 with Gaussian kernels of bandwidth ``scale * median distance``.

    Args:
        a: (N, ...) samples.
        b: (M, ...) samples.
        scales: Bandwidth multipliers of the median pairwise distance of the pooled data.

    Returns:
        MMD^2 estimate (can be slightly negative when the two match).
    """
    x, y = torch.from_numpy(_flat(a)), torch.from_numpy(_flat(b))
    if len(x) < 2 or len(y) < 2:
        raise ValueError("MMD needs at least 2 samples on each side")
    pooled = torch.cat([x, y])
    distances = torch.cdist(pooled, pooled).pow(2)
    median = distances[distances > 0].median().clamp(min=1e-12)
    kernel = sum(torch.exp(-distances / (2 * scale**2 * median)) for scale in scales)
    n, m = len(x), len(y)
    k_xx, k_yy, k_xy = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    term_xx = (k_xx.sum() - k_xx.diagonal().sum()) / (n * (n - 1))
    term_yy = (k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return float(term_xx + term_yy - 2 * k_xy.mean())


def straightness(trajectory: Trajectory) -> float:
    """Mean over steps and samples of ``||v_step - (x_end - x_start)||^2``.

    With one step the path is a straight line by construction and this is 0.
    """
    displacement = trajectory.points[-1] - trajectory.points[0]
    deviation = trajectory.step_velocities - displacement.unsqueeze(0)
    return float(deviation.pow(2).reshape(*deviation.shape[:2], -1).sum(dim=2).mean())
