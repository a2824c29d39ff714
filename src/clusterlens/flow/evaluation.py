"""NFE sweep: sample a trained network at several step budgets and score each.

For every (solver, NFE) pair the same source draws are integrated, then compared with
the held-out split: W2 and MMD (distance to data) and straightness (path shape).
"""

from __future__ import annotations

import torch

from clusterlens.flow.data import FlowDataset, sample_source
from clusterlens.flow.losses import Velocity
from clusterlens.flow.metrics import mmd, straightness, wasserstein2
from clusterlens.flow.sampling import SOLVERS, integrate

DEFAULT_NFES = (1, 2, 4, 8, 32)


def parse_nfes(text: str) -> list[int]:
    """``"1,2,4"`` -> [1, 2, 4]; raises ValueError on anything but positive integers."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise ValueError(f"NFE list must be comma-separated integers, got {text!r}") from err
    if not values or min(values) < 1:
        raise ValueError(f"NFE list must hold positive integers, got {text!r}")
    return values


def held_out(dataset: FlowDataset, n_samples: int) -> torch.Tensor:
    """The first ``n_samples`` held-out samples (all of them if fewer)."""
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2, got {n_samples}")
    return dataset.test[:n_samples]


def evaluate_sweep(
    velocity: Velocity,
    dataset: FlowDataset,
    *,
    source: str = "normal",
    nfes: tuple[int, ...] | list[int] = DEFAULT_NFES,
    solvers: tuple[str, ...] | list[str] = ("euler",),
    n_samples: int = 1000,
    seed: int = 0,
    with_mmd: bool = True,
) -> list[dict]:
    """Score ``velocity`` at every (solver, NFE) it supports.

    Args:
        velocity: The trained network (``velocity(x, t)``), in eval mode.
        dataset: Gives the held-out samples and the sample shape.
        source: Source distribution the network was trained from.
        nfes: Network-evaluation budgets.
        solvers: Solvers to run; combinations a solver cannot do (odd NFE for midpoint or
            heun) are skipped, unknown solver names raise ValueError.
        n_samples: Generated samples, and held-out samples compared against.
        seed: Seed of the source draws (the same for every NFE and solver).
        with_mmd: Also compute MMD (costs an N x N kernel).

    Returns:
        One dict per run: ``solver``, ``nfe``, ``w2``, ``mmd``, ``straightness``.
    """
    unknown = [solver for solver in solvers if solver not in SOLVERS]
    if unknown:
        raise ValueError(f"unknown solver {unknown[0]!r}; accepted: {', '.join(SOLVERS)}")
    reference = held_out(dataset, n_samples)
    generator = torch.Generator().manual_seed(seed)
    x0 = sample_source(source, dataset.sample_shape, len(reference), generator)
    rows = []
    for solver in solvers:
        for nfe in nfes:
            if nfe % SOLVERS[solver]:
                continue  # e.g. midpoint at NFE 1: impossible, not an error in a sweep
            trajectory = integrate(velocity, x0, nfe=nfe, solver=solver)
            row = {
                "solver": solver,
                "nfe": nfe,
                "w2": wasserstein2(trajectory.samples, reference),
                "straightness": straightness(trajectory),
            }
            if with_mmd:
                row["mmd"] = mmd(trajectory.samples, reference)
            rows.append(row)
    return rows


def data_floor(dataset: FlowDataset, n_samples: int = 1000) -> float:
    """W2 between training and held-out samples: the best a perfect model can score."""
    reference = held_out(dataset, n_samples)
    return wasserstein2(dataset.train[: len(reference)], reference)
