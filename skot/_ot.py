"""Discrete optimal transport between equal-sized samples, by exact assignment.

Between two uniform empirical measures with the same number of atoms the
optimal coupling is a permutation (Birkhoff), so exact OT is a linear
assignment problem, solved here by SciPy. It serves minibatch OT pairing in
flow matching and the held-out criteria of :mod:`skot.metrics`.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

__all__ = ["assignment", "ot_pair", "squared_distances"]


def squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Matrix of ``||x_i - y_j||^2`` in float64."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.maximum(d, 0.0)


def assignment(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Permutation ``perm`` minimising ``sum_i ||x_i - y_perm[i]||^2``."""
    if len(x) != len(y):
        raise ValueError(f"assignment needs equal sizes; got {len(x)} and {len(y)}.")
    _, perm = linear_sum_assignment(squared_distances(x, y))
    return perm


def ot_pair(x0: torch.Tensor, x1: torch.Tensor, n_conditions: int = 0) -> torch.Tensor:
    """Rows of ``x1`` reordered to the exact OT pairing with ``x0`` (a minibatch).

    With ``n_conditions``, the rows end in that many one-hot columns of
    their class, and rows pair only within their class (each class must
    have as many rows in ``x0`` as in ``x1``).
    """
    cost = torch.cdist(x0.detach().double(), x1.detach().double()).square()
    if n_conditions:
        classes = [z[:, -n_conditions:].argmax(1) for z in (x0, x1)]
        cost[classes[0][:, None] != classes[1][None, :]] = torch.inf
    _, perm = linear_sum_assignment(cost.cpu().numpy())
    return x1[torch.as_tensor(perm, device=x1.device)]
