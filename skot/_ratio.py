r"""Log density ratios by logistic classification.

A network :math:`r` trained to minimise

.. math::
    \mathbb{E}_{x \sim p}\,\mathrm{softplus}(r(x)) +
    \mathbb{E}_{y \sim q}\,\mathrm{softplus}(-r(y))

attains its optimum at :math:`r = \log q / p` (the logistic loss of a
classifier telling q-samples, label 1, from p-samples, label 0, with equal
class weights). Q-flow uses it to estimate the KL term of its loss, and the
telescoping ratio estimator along every interval of a flow.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["integrated_log_ratio", "logistic_ratio_loss", "telescoping_loss"]


def logistic_ratio_loss(r_p: torch.Tensor, r_q: torch.Tensor) -> torch.Tensor:
    """Logistic loss whose minimiser is ``r = log q - log p``."""
    return F.softplus(r_p).mean() + F.softplus(-r_q).mean()


# Two-point Gauss-Legendre quadrature on [0, 1]: exact for cubics, like the
# authors' Simpson 3/8 rule, with half its evaluations.
_GAUSS_NODES = (0.5 - 0.5 / math.sqrt(3.0), 0.5 + 0.5 / math.sqrt(3.0))


def integrated_log_ratio(
    net: nn.Module, x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
) -> torch.Tensor:
    r"""Integrals :math:`\int_{lo_k}^{hi_k} r(x, t)\,dt` of a time-conditioned net.

    Parameters
    ----------
    net : nn.Module
        ``net(x, t)`` maps ``[N, d]`` and ``[N, 1]`` to ``[N, 1]``.
    x : Tensor of shape ``[K, n, d]``
        Points, one set per interval.
    lo, hi : Tensor of shape ``[K]``
        Interval ends.

    Returns
    -------
    Tensor of shape ``[K, n]``
        By two-point Gauss-Legendre quadrature; all ``2 K n`` evaluations in
        one call.
    """
    K, n, d = x.shape
    frac = torch.tensor(_GAUSS_NODES, dtype=x.dtype, device=x.device)
    h = (hi - lo).to(x.dtype)
    t = lo.to(x.dtype)[:, None] + h[:, None] * frac  # [K, 2]
    xs = x[:, None].expand(K, 2, n, d).reshape(-1, d)
    ts = t[:, :, None].expand(K, 2, n).reshape(-1, 1)
    r = net(xs, ts).reshape(K, 2, n)
    return 0.5 * h[:, None] * r.sum(1)


def telescoping_loss(
    net: nn.Module, states: list[torch.Tensor], grid: torch.Tensor
) -> torch.Tensor:
    r"""Sum over the intervals of a bridge of the logistic losses between
    neighbouring distributions.

    With ``states[k]`` a batch from :math:`p_k` (the bridge at ``grid[k]``),
    the minimiser of

    .. math::
        \sum_{k=1}^K \mathbb{E}_{p_{k-1}} \mathrm{softplus}(R_k)
        + \mathbb{E}_{p_k} \mathrm{softplus}(-R_k),
        \qquad R_k(x) = \int_{t_{k-1}}^{t_k} r(x, t)\, dt,

    has :math:`R_k = \log p_k / p_{k-1}`, so the :math:`R_k` telescope to
    :math:`\log p_K / p_0`.
    """
    b = states[0].shape[0]
    pairs = torch.stack(
        [torch.cat([states[k - 1], states[k]]) for k in range(1, len(states))]
    )  # [K, 2b, d]: rows of p_{k-1}, then rows of p_k
    R = integrated_log_ratio(net, pairs, grid[:-1], grid[1:])
    return F.softplus(R[:, :b]).mean(1).sum() + F.softplus(-R[:, b:]).mean(1).sum()
