"""Integrate the learned ODE ``dx/dt = v(x, t)`` from t = 0 (noise) to t = 1 (data).

Solvers, counted in network evaluations (NFE):

- ``euler``: one evaluation per step, so NFE steps;
- ``midpoint``: the velocity at the half step, two evaluations per step (NFE even);
- ``heun``: the average of the start velocity and the velocity at the Euler end point
  (trapezoid rule), two evaluations per step (NFE even).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from clusterlens.flow.losses import Velocity

SOLVERS = {"euler": 1, "midpoint": 2, "heun": 2}  # evaluations per step


@dataclass
class Trajectory:
    """Points visited and the velocity each step actually moved with.

    Attributes:
        points: (steps + 1, N, ...) states from the start noise to the final sample.
        step_velocities: (steps, N, ...) effective velocity of each step
            (``(points[k + 1] - points[k]) / dt``).
        nfe: Network evaluations used.
        solver: Solver name.
    """

    points: torch.Tensor
    step_velocities: torch.Tensor
    nfe: int
    solver: str

    @property
    def samples(self) -> torch.Tensor:
        """The final states (t = 1)."""
        return self.points[-1]


def steps_for(solver: str, nfe: int) -> int:
    """Number of steps a ``solver`` takes with ``nfe`` evaluations; raises if impossible."""
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; accepted: {', '.join(SOLVERS)}")
    per_step = SOLVERS[solver]
    if nfe < per_step or nfe % per_step:
        raise ValueError(
            f"{solver} uses {per_step} evaluations per step, so NFE must be a positive "
            f"multiple of {per_step}; got {nfe}"
        )
    return nfe // per_step


@torch.no_grad()
def integrate(
    velocity: Velocity, x0: torch.Tensor, *, nfe: int, solver: str = "euler"
) -> Trajectory:
    """Carry ``x0`` along the flow with ``nfe`` network evaluations.

    Args:
        velocity: ``velocity(x, t) -> v``.
        x0: (N, ...) source samples.
        nfe: Network evaluations (any positive integer for Euler, even for the others).
        solver: ``euler``, ``midpoint`` or ``heun``.

    Returns:
        The :class:`Trajectory`.

    Example:
        >>> trajectory = integrate(lambda x, t: torch.ones_like(x), torch.zeros(4, 2), nfe=2)
        >>> trajectory.samples[0].tolist()
        [1.0, 1.0]
    """
    steps = steps_for(solver, nfe)
    dt = 1.0 / steps
    x = x0
    points, step_velocities = [x0], []
    for k in range(steps):
        t = torch.full((len(x),), k * dt, dtype=x.dtype, device=x.device)
        v = velocity(x, t)
        if solver == "midpoint":
            v = velocity(x + 0.5 * dt * v, t + 0.5 * dt)
        elif solver == "heun":
            v = 0.5 * (v + velocity(x + dt * v, t + dt))
        x = x + dt * v
        points.append(x)
        step_velocities.append(v)
    return Trajectory(torch.stack(points), torch.stack(step_velocities), nfe, solver)
