r"""The OT map between Gaussians as a baseline velocity for a transport flow.

Between :math:`\mathcal N(m_p, S_p)` and :math:`\mathcal N(m_q, S_q)` the
W2-optimal map is affine, :math:`T(x) = m_q + A (x - m_p)` with

.. math::
    A = S_p^{-1/2} \big(S_p^{1/2} S_q S_p^{1/2}\big)^{1/2} S_p^{-1/2},

symmetric positive definite. Its displacement interpolation
:math:`x_t = (1 - t) x + t T(x)` has, at a point :math:`z` and time
:math:`t`, the velocity

.. math::
    v(z, t) = m_q - m_p + (A - I) M_t^{-1} (z - m_t), \qquad
    M_t = (1 - t) I + t A, \quad m_t = (1 - t) m_p + t m_q,

in closed form through the eigenvectors :math:`U` and eigenvalues
:math:`\lambda` of :math:`A`: :math:`(A - I) M_t^{-1} = U \operatorname{diag}
\big((\lambda - 1) / (1 - t + t \lambda)\big) U^\top`. Added to a network's
field, it carries the full-rank affine part of a transport from the first
step, which a network of a few hundred units learns only roughly in high
dimension; the network learns the rest.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._gaussian_baseline import weighted_gaussian

__all__ = ["GaussianOTVelocity", "fit_gaussian_ot"]

_MAX_GAIN = 30.0  # bound on the Gaussian map's eigenvalues, and 1 / it below


def _symmetric_powers(S: np.ndarray, *powers: float) -> list[np.ndarray]:
    """``S`` to each power, from one eigendecomposition."""
    values, vectors = np.linalg.eigh(S)
    values = np.clip(values, 1e-12, None)
    return [(vectors * values**power) @ vectors.T for power in powers]


def fit_gaussian_ot(source, target) -> dict[str, np.ndarray]:
    r"""The OT map between Gaussians fitted to two weighted samples.

    Parameters
    ----------
    source, target : tuple of (Tensor of shape ``[n, d]``, ndarray of shape ``(n,)`` or None)
        Rows and their weights (None: equal). Weighted means and
        covariances (:func:`skot._gaussian_baseline.weighted_gaussian`):
        the plain covariance from twice as many rows as features, where
        the plug-in map is close to the truth (Ledoit-Wolf shrinkage there
        took the map at d=256 from 1.910% to 2.658% L2-UVP, docs/qflow.md),
        and Ledoit-Wolf's below, so that the map stays finite.
        The map's eigenvalues are held within [1/30, 30], so that a
        column constant in one sample cannot make its gain unbounded.

    Returns
    -------
    dict of float64 ndarrays
        ``mean_p`` and ``mean_q`` (``d``), ``eigenvectors`` (``d x d``, in
        columns) and ``eigenvalues`` (``d``) of :math:`A`.
    """
    (X, _), (Y, _) = source, target
    mean_p, cov_p = weighted_gaussian([source], shrink=len(X) < 2 * X.shape[1])
    mean_q, cov_q = weighted_gaussian([target], shrink=len(Y) < 2 * Y.shape[1])
    root, inverse_root = _symmetric_powers(cov_p, 0.5, -0.5)
    (middle,) = _symmetric_powers(root @ cov_q @ root, 0.5)
    A = inverse_root @ middle @ inverse_root
    eigenvalues, eigenvectors = np.linalg.eigh(0.5 * (A + A.T))
    # A column constant in one sample makes its covariance singular and the
    # plug-in map's gain along it unbounded (a source column of zeros sent
    # a row 0.01 off it 15.7 away). Any symmetric positive definite A is
    # still an OT map, so the gain is held within a variance ratio of
    # _MAX_GAIN^2 either way; the pairs measured lie within 0.4 to 5.3.
    eigenvalues = np.clip(eigenvalues, 1 / _MAX_GAIN, _MAX_GAIN)
    return {
        "mean_p": mean_p,
        "mean_q": mean_q,
        "eigenvectors": eigenvectors,
        "eigenvalues": eigenvalues,
    }


class GaussianOTVelocity(nn.Module):
    """``net(z, t)`` plus the Gaussian OT map's velocity on the first ``d``
    columns of ``z`` (trailing class columns, if any, get none of it).

    Parameters
    ----------
    net : nn.Module
        A time-conditioned field ``[batch, D], t -> [batch, D]``.
    gaussian_ot : dict of ndarray
        :func:`fit_gaussian_ot`'s output; kept as float32 buffers.
    """

    def __init__(self, net: nn.Module, gaussian_ot: dict[str, np.ndarray]):
        super().__init__()
        self.net = net
        param = next(net.parameters())
        for name, value in gaussian_ot.items():
            tensor = torch.as_tensor(value, dtype=param.dtype, device=param.device)
            self.register_buffer(name, tensor, persistent=False)
        self.d = len(gaussian_ot["mean_p"])

    def forward(self, z: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        out = self.net(z, t)
        t = torch.as_tensor(t, dtype=z.dtype, device=z.device).reshape(-1, 1)
        lam = self.eigenvalues
        shift = self.mean_q - self.mean_p
        gain = (lam - 1) / ((1 - t) + t * lam)  # [1 or batch, d]
        x = z[:, : self.d] - (self.mean_p + t * shift)
        affine = shift + ((x @ self.eigenvectors) * gain) @ self.eigenvectors.T
        if z.shape[1] == self.d:
            return out + affine
        return out + torch.cat([affine, affine.new_zeros(len(z), z.shape[1] - self.d)], 1)
