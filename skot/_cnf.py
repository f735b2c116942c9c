"""OT-Flow's dynamics: the flow of a potential, with the log-determinant,
the transport cost and the HJB residual integrated alongside.

The state ``(z, l, L, R)`` evolves by ``dz/dt = -grad_x Phi``,
``dl/dt = -Laplacian Phi`` (the log-determinant of the flow's Jacobian),
``dL/dt = 1/2 ||grad_x Phi||^2`` (transport cost) and
``dR/dt = |d_t Phi - 1/2 ||grad_x Phi||^2|`` (residual of the
Hamilton-Jacobi-Bellman equation an optimal potential satisfies).
"""

from __future__ import annotations

import math

import torch

from ._ode import integrate, time_grid
from ._potential import OTPotential

__all__ = ["LOG_2PI", "end_state", "negative_log_likelihood", "velocity_field"]

LOG_2PI = math.log(2 * math.pi)


def _augmented_field(potential: OTPotential, d: int, costs: bool):
    """Right-hand side of the state ``(z, l[, L, R])``."""

    def field(state, t):
        grad, lap = potential.gradient_and_laplacian(state[:, :d], t)
        gx = grad[:, :d]
        parts = [-gx, -lap.unsqueeze(1)]
        if costs:
            kinetic = 0.5 * gx.square().sum(1, keepdim=True)
            parts += [kinetic, (grad[:, d:] - kinetic).abs()]
        return torch.cat(parts, 1)

    return field


def velocity_field(potential: OTPotential, d: int):
    """The flow's velocity ``-grad_x Phi(z, t)`` alone, as a field ``f(z, t)``."""

    def field(z, t):
        return -potential.gradient(z, t)[:, :d]

    return field


def end_state(potential: OTPotential, x: torch.Tensor, n_steps: int, costs: bool) -> torch.Tensor:
    """State at t = 1 of the augmented ODE started from ``x`` at t = 0.

    ``[n, d + 1]``: ``z(1)`` and ``l(1)``; with ``costs``, ``[n, d + 3]``
    with ``L(1)`` and ``R(1)`` after them. ``n_steps`` RK4 steps.
    """
    d = x.shape[1]
    extra = 3 if costs else 1
    state = torch.cat([x, x.new_zeros(len(x), extra)], 1)
    grid = time_grid(1, device=x.device, dtype=x.dtype)
    return integrate(_augmented_field(potential, d, costs), state, grid, n_steps)[-1]


def negative_log_likelihood(end: torch.Tensor, d: int) -> torch.Tensor:
    """``-log N(z(1); 0, I) - l(1)`` per row: minus the log-density in latent units."""
    z, logdet = end[:, :d], end[:, d]
    return 0.5 * z.square().sum(1) + 0.5 * d * LOG_2PI - logdet
