r"""A Gaussian baseline for telescoped log ratios.

Fit a Gaussian :math:`\hat p_k = \mathcal N(m_k, S_k)` to every distribution
of a bridge; the log ratio of each interval is then

.. math::
    R_k(x) = \log \hat p_k(x) - \log \hat p_{k-1}(x) + \int_{t_{k-1}}^{t_k} r(x, t)\,dt,

a quadratic in :math:`x` in closed form plus what a network :math:`r`
learns on top. The quadratics telescope to :math:`\log \hat p_K / \hat p_0`,
the log ratio between the Gaussians fitted to P and to Q. They carry the
part of the ratio that a network of smooth activations cannot: its
quadratic growth away from the training rows, at full rank, with the
curvature of the data. The network only corrects it where the laws are not
Gaussian.

Covariances are shrunk towards a multiple of the identity by the
Ledoit-Wolf rule, so that the baseline stays finite with fewer rows than
features and is almost untouched with many more.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["GaussianBaselineRatio", "fit_interval_quadratics", "weighted_gaussian"]

# Rows a part contributes to the Ledoit-Wolf intensity: it is a scalar, and
# a few thousand rows estimate it well; every row enters the covariance.
_SHRINKAGE_ROWS = 4096
_MIN_SHRINKAGE = 1e-6


def weighted_gaussian(
    parts: Sequence[tuple[torch.Tensor, np.ndarray | None]],
    shrink: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Mean and Ledoit-Wolf covariance of an equal mixture of weighted samples.

    Parameters
    ----------
    parts : sequence of (Tensor of shape ``[n_j, d]``, ndarray of shape ``(n_j,)`` or None)
        Samples, each with its row weights (None: equal); each part carries
        an equal share of the mixture's mass.
    shrink : bool, default=True
        False: the weighted covariance itself, with only the floor of the
        shrinkage (1e-6) that keeps it invertible.

    Returns
    -------
    mean : ndarray of shape ``(d,)``
    covariance : ndarray of shape ``(d, d)``
        :math:`(1 - s) S + s \mu I`, for the weighted covariance ``S``,
        :math:`\mu = \operatorname{tr} S / d` and the Ledoit-Wolf (2004)
        intensity ``s``, in which every row counts by its weight.
    """
    rows, weights = [], []
    for Z, w in parts:
        Z = Z.detach().to(torch.float64)
        w = (
            torch.full((len(Z),), 1.0, dtype=torch.float64, device=Z.device)
            if w is None
            else torch.as_tensor(w, dtype=torch.float64, device=Z.device)
        )
        rows.append(Z)
        weights.append(w / (w.sum() * len(parts)))
    mean = sum((w[:, None] * Z).sum(0) for Z, w in zip(rows, weights))
    centred = [Z - mean for Z in rows]
    cov = sum((w[:, None] * Z).T @ Z for Z, w in zip(centred, weights))
    d = cov.shape[0]
    mu = torch.trace(cov) / d
    eye = torch.eye(d, dtype=cov.dtype, device=cov.device)
    s = _ledoit_wolf_intensity(cov, mu * eye, centred, weights) if shrink else 0.0
    # Rows on a subspace with no spread about it (two rows, say) give s = 0
    # and a singular covariance: a floor keeps it invertible.
    s = max(s, _MIN_SHRINKAGE)
    shrunk = (1 - s) * cov + s * mu * eye
    if not mu > 0:  # every row the same: a unit Gaussian keeps the ratio finite
        shrunk = eye
    return mean.cpu().numpy(), shrunk.cpu().numpy()


def _ledoit_wolf_intensity(cov, target, centred, weights) -> float:
    """Ledoit and Wolf's (2004) shrinkage intensity of the weighted
    covariance ``cov`` of the ``centred`` rows towards ``target``."""
    target_gap = (cov - target).square().sum()
    # beta^2 = sum_i w_i^2 ||z_i z_i' - S||_F^2 (Ledoit and Wolf's b-bar^2
    # with weights), from a subsample of every part, scaled back up.
    beta = torch.zeros((), dtype=cov.dtype, device=cov.device)
    cov_norm = cov.square().sum()
    for Z, w in zip(centred, weights):
        step = max(1, len(Z) // _SHRINKAGE_ROWS)
        z, wz = Z[::step], w[::step]
        spread = z.square().sum(1).square() - 2 * ((z @ cov) * z).sum(1) + cov_norm
        beta = beta + (wz.square() * spread).sum() * (len(Z) / len(z))
    return 1.0 if target_gap <= 0 else float(min(beta, target_gap) / target_gap)


def fit_interval_quadratics(
    means: Sequence[np.ndarray], covariances: Sequence[np.ndarray]
) -> dict[str, np.ndarray]:
    r"""The log ratios :math:`\log \hat p_k / \hat p_{k-1}` of neighbouring
    Gaussians as quadratics :math:`x^\top A_k x + b_k^\top x + c_k`.

    Returns
    -------
    dict
        ``"quadratic"`` ``(K, d, d)``, ``"linear"`` ``(K, d)`` and
        ``"constant"`` ``(K,)``, float64.
    """
    precisions, log_dets = [], []
    for S in covariances:
        L = np.linalg.cholesky(np.asarray(S, dtype=np.float64))
        inv_L = np.linalg.inv(L)
        precisions.append(inv_L.T @ inv_L)
        log_dets.append(2.0 * np.log(np.diag(L)).sum())
    quadratic, linear, constant = [], [], []
    for k in range(1, len(means)):
        (P0, P1), (m0, m1) = precisions[k - 1 : k + 1], means[k - 1 : k + 1]
        quadratic.append(-0.5 * (P1 - P0))
        linear.append(P1 @ m1 - P0 @ m0)
        constant.append(
            -0.5 * (m1 @ P1 @ m1 - m0 @ P0 @ m0) - 0.5 * (log_dets[k] - log_dets[k - 1])
        )
    return {
        "quadratic": np.stack(quadratic),
        "linear": np.stack(linear),
        "constant": np.asarray(constant),
    }


class GaussianBaselineRatio(nn.Module):
    r"""A time-conditioned log-ratio network plus the interval quadratics.

    ``forward(x, t)`` is ``net(x, t)`` plus, for ``t`` in the k-th interval
    of ``grid``, :math:`(x^\top A_k x + b_k^\top x + c_k) / h_k`: constant
    over the interval, so that its integral over the interval is the
    quadratic itself (:func:`skot._ratio.integrated_log_ratio` integrates
    it exactly). Only the first ``d`` columns of ``x`` (those of the
    quadratics) enter them; class columns after them do not.
    """

    def __init__(self, net: nn.Module, quadratics: dict[str, np.ndarray], grid: torch.Tensor):
        super().__init__()
        self.net = net
        h = (grid[1:] - grid[:-1]).detach().to("cpu", torch.float64).numpy()
        device, dtype = grid.device, torch.float32

        def buffer(values, scale):
            return torch.as_tensor(values / scale, dtype=dtype, device=device)

        self.register_buffer("quadratic", buffer(quadratics["quadratic"], h[:, None, None]))
        self.register_buffer("linear", buffer(quadratics["linear"], h[:, None]))
        self.register_buffer("constant", buffer(quadratics["constant"], h))
        self.register_buffer("inner_nodes", grid[1:-1].detach().to(dtype))

    def forward(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        out = self.net(x, t)
        d = self.linear.shape[1]
        t = torch.as_tensor(t, dtype=self.inner_nodes.dtype, device=x.device)
        interval = torch.bucketize(t.reshape(-1), self.inner_nodes)
        interval = interval.expand(len(x)) if interval.numel() == 1 else interval
        base = torch.zeros(len(x), dtype=out.dtype, device=out.device)
        # Rows come in blocks of one interval (integrated_log_ratio stacks
        # them so): one matrix product per interval present.
        for k in torch.unique(interval).tolist():
            rows = interval == k
            z = x[rows, :d]
            quadratic = ((z @ self.quadratic[k]) * z).sum(1)
            base[rows] = quadratic + z @ self.linear[k] + self.constant[k]
        return out + base[:, None]
