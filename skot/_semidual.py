r"""Losses of one JKO step written as a source-fixed unbalanced OT problem in
semi-dual form (Choi, Choi and Kang 2024).

The step :math:`\mu_{k+1} = \arg\min_\rho D_f(\rho \| \nu) + W_c(\mu_k, \rho)`
has the semi-dual

.. math::
    \sup_v \; \mathbb{E}_{x \sim \mu_k}\Big[\inf_y c(x, y) - v(y)\Big]
    - \mathbb{E}_{y \sim \nu}\big[f^*(-v(y))\big],

so a potential :math:`v` and a map :math:`T` (the inner infimum) are
trained adversarially: :math:`v` minimises
:math:`\mathbb{E}_\nu f^*(-v(y)) + \mathbb{E}_{\mu_k} v(T(x))`, and :math:`T`
minimises :math:`\mathbb{E}_{\mu_k}[c(x, T(x)) - v(T(x))]`. For the
Kullback-Leibler divergence :math:`f^*(s) = e^s - 1`; for Jensen-Shannon
the authors' softplus (GAN) form is used for both players.
"""

from __future__ import annotations

import torch
from torch.nn.functional import softplus

__all__ = ["DIVERGENCES", "map_loss", "potential_loss", "r1_penalty", "step_cost"]

DIVERGENCES = ("kl", "jsd")


def step_cost(x: torch.Tensor, y: torch.Tensor, step_size: float) -> torch.Tensor:
    r"""JKO transport cost :math:`\|x - y\|^2 / (2 d h)` per row, ``[batch]``.

    The squared distance is averaged over the ``d`` features (the authors'
    convention), so one ``step_size`` suits data of any dimension.
    """
    return (x - y).square().mean(1) / (2 * step_size)


def potential_loss(v_data: torch.Tensor, v_mapped: torch.Tensor, divergence: str) -> torch.Tensor:
    """Loss of the potential, from its values on data rows and on mapped rows."""
    if divergence == "kl":
        return torch.expm1(-v_data).mean() + v_mapped.mean()
    return softplus(-v_data).mean() + softplus(v_mapped).mean()


def map_loss(cost: torch.Tensor, v_mapped: torch.Tensor, divergence: str) -> torch.Tensor:
    """Loss of the map: transport cost minus the potential at its outputs."""
    if divergence == "kl":
        return (cost - v_mapped).mean()
    return (cost + softplus(-v_mapped)).mean()


def r1_penalty(v_data: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""R1 penalty :math:`\tfrac12 \mathbb{E}_\nu \|\nabla_y v(y)\|^2` on data rows.

    ``y`` must require grad and ``v_data`` be computed from it; the graph is
    kept so that the penalty trains the potential.
    """
    (grad,) = torch.autograd.grad(v_data.sum(), y, create_graph=True)
    return 0.5 * grad.square().sum(1).mean()
