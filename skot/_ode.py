"""Integration of ``dx/dt = f(x, t)`` on a time grid.

Training differentiates through a fixed number of classical RK4 steps
(discretise-then-optimise): each interval of the time grid takes
``n_substeps`` steps, and the states at the grid nodes are returned because
Q-flow's transport cost and the telescoping ratio are sums over the grid.
Adaptive solvers from torchdiffeq serve at evaluation time when asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import torch
from torchdiffeq import odeint

from ._device import batches

__all__ = ["SOLVERS", "integrate", "integrate_in_batches", "rk4_step", "time_grid"]

# The fixed-grid RK4 of training, and torchdiffeq's adaptive methods. (Its
# fixed-grid ones would step on the output grid only, unless given a step.)
SOLVERS = ("rk4", "dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")

Field = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def time_grid(n_intervals: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Uniform grid ``0 = t_0 < ... < t_K = 1`` with ``K = n_intervals``."""
    return torch.linspace(0.0, 1.0, n_intervals + 1, device=device, dtype=dtype)


def rk4_step(f: Field, x: torch.Tensor, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """One classical (1/6, 1/3, 1/3, 1/6) Runge-Kutta step of size ``h``.

    Not torchdiffeq's fixed-grid ``'rk4'``, which is the 3/8 rule.
    """
    k1 = f(x, t)
    k2 = f(x + 0.5 * h * k1, t + 0.5 * h)
    k3 = f(x + 0.5 * h * k2, t + 0.5 * h)
    k4 = f(x + h * k3, t + h)
    return x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def integrate(
    f: Field,
    x: torch.Tensor,
    grid: torch.Tensor,
    n_substeps: int = 3,
    method: str = "rk4",
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> list[torch.Tensor]:
    """States of the ODE at every node of ``grid``, starting from ``x`` at ``grid[0]``.

    ``grid`` may decrease, which integrates backwards in time (the inverse
    flow). Returns a list of ``len(grid)`` tensors ``[batch, d]`` whose first
    element is ``x``.

    Parameters
    ----------
    f : callable
        Field ``f(x, t)`` with ``x`` of shape ``[batch, d]`` and scalar ``t``.
    x : Tensor of shape (batch, d)
        Initial state.
    grid : Tensor of shape (n_nodes,)
        Monotone time grid.
    n_substeps : int
        RK4 steps per interval of the grid (``method="rk4"`` only).
    method : str
        ``"rk4"`` for the fixed-step solver, or any torchdiffeq method name
        (``"dopri5"``, ...) for an adaptive solve that reports the same nodes.
    """
    if method == "rk4":
        states = [x]
        for a, b in pairwise(grid):
            h = (b - a) / n_substeps
            for s in range(n_substeps):
                x = rk4_step(f, x, a + s * h, h)
            states.append(x)
        return states
    out = odeint(lambda t, y: f(y, t), x, grid, method=method, rtol=rtol, atol=atol)
    return list(out.unbind(0))


def integrate_in_batches(
    f: Field, x: torch.Tensor, grid: torch.Tensor, n_substeps: int, batch_rows: int
) -> torch.Tensor:
    """End states at ``grid[-1]`` of the rows of ``x``, ``batch_rows`` at a time
    (RK4, ``n_substeps`` steps per interval)."""
    return torch.cat(
        [integrate(f, x[s], grid, n_substeps)[-1] for s in batches(len(x), batch_rows)]
    )
