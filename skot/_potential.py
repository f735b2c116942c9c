r"""OT-Flow's potential and its exact gradient and Laplacian in closed form.

The potential of a space-time point :math:`s = (x, t) \in \mathbb{R}^{d+1}` is

.. math::
    \Phi(s) = w^\top N(s) + \tfrac12 s^\top A^\top A s + b^\top s + c,

with :math:`A` of rank :math:`r = \min(10, d)` and :math:`N` a ResNet of width
:math:`m` with the log-cosh activation :math:`\sigma` (so that
:math:`\sigma' = \tanh` and :math:`\sigma'' = 1 - \tanh^2`):

.. math::
    u_0 = \sigma(K_0 s + b_0),\qquad
    u_i = u_{i-1} + h\,\sigma(K_i u_{i-1} + b_i),\quad i = 1..M.

One forward sweep stores the pre-activations; one backward sweep gives
:math:`g_i = \partial (w^\top u_M) / \partial u_i`, hence the gradient. The
Laplacian in :math:`x` is a sum over the nonlinear units of
(sensitivity) x :math:`\sigma''` x :math:`\|\nabla_x(\text{pre-activation})\|^2`;
the pre-activation gradients are carried forward as the Jacobians
:math:`J_i = \nabla_x u_i \in \mathbb{R}^{m \times d}` (cost :math:`O(m^2 d)`
per sample), or, when :math:`d > m`, as their Gram matrices
:math:`J_i J_i^\top \in \mathbb{R}^{m \times m}` (cost :math:`O(m^3)`, the
same whatever :math:`d`). No autograd trace, no Hutchinson noise. Because
every step is an ordinary tensor operation, autograd differentiates the
result with respect to the weights for training.

References
----------
D. Onken, S. Wu Fung, X. Li and L. Ruthotto, "OT-Flow: Fast and accurate
continuous normalizing flows via optimal transport", AAAI 2021.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["OTPotential", "log_cosh"]

# Bytes of per-sample temporaries held at once when evaluating the Laplacian
# without autograd (see OTPotential._in_chunks): a few L2 caches.
_CHUNK_BYTES = 2**21


def log_cosh(x: torch.Tensor) -> torch.Tensor:
    """``log(cosh(x))`` without overflow: ``|x| + softplus(-2|x|) - log 2``."""
    a = x.abs()
    return a + F.softplus(-2.0 * a) - math.log(2.0)


class OTPotential(nn.Module):
    """The potential :math:`\\Phi(x, t)` with closed-form derivatives.

    Parameters
    ----------
    n_features : int
        Spatial dimension ``d``.
    width : int
        Width ``m`` of the ResNet.
    n_layers : int
        Layers of the ResNet: the opening layer plus ``n_layers - 1``
        residual layers of step ``h = 1 / (n_layers - 1)``.
    rank : int or None
        Rank of ``A``; None gives ``min(10, d)``.
    """

    def __init__(self, n_features: int, width: int = 64, n_layers: int = 2, rank=None):
        super().__init__()
        # Kept for skot.io, which rebuilds the network from these.
        self.config = dict(n_features=n_features, width=width, n_layers=n_layers, rank=rank)
        d = n_features
        self.n_features = d
        self.opening = nn.Linear(d + 1, width)
        self.residual = nn.ModuleList(nn.Linear(width, width) for _ in range(n_layers - 1))
        self.step = 1.0 / max(n_layers - 1, 1)
        rank = min(10, d) if rank is None else rank
        self.w = nn.Parameter(torch.empty(width))
        self.A = nn.Parameter(torch.empty(rank, d + 1))
        self.b = nn.Parameter(torch.empty(d + 1))
        self.c = nn.Parameter(torch.empty(()))

    def init_parameters(self, gen: torch.Generator) -> None:
        """Initialise ``w, A, b, c`` (the Linear layers are initialised as torch's)."""
        # As the authors: w = 1, b = c = 0, A Xavier-uniform.
        nn.init.ones_(self.w)
        nn.init.xavier_uniform_(self.A, generator=gen)
        nn.init.zeros_(self.b)
        nn.init.zeros_(self.c)

    def _space_time(self, x: torch.Tensor, t) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1, 1)
        return torch.cat([x, t.expand(x.shape[0], 1)], dim=1)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        """:math:`\\Phi(x, t)`, shape ``[batch]``."""
        s = self._space_time(x, t)
        u = log_cosh(self.opening(s))
        for layer in self.residual:
            u = u + self.step * log_cosh(layer(u))
        quadratic = 0.5 * (s @ self.A.T).square().sum(1)
        return u @ self.w + quadratic + s @ self.b + self.c

    def gradient(self, x: torch.Tensor, t) -> torch.Tensor:
        """:math:`\\nabla_s \\Phi` for ``s = (x, t)``, shape ``[batch, d + 1]``;
        the last column is :math:`\\partial_t \\Phi`."""
        return self.gradient_and_laplacian(x, t, laplacian=False)[0]

    def gradient_and_laplacian(self, x: torch.Tensor, t, laplacian: bool = True):
        """:math:`\\nabla_s \\Phi` ``[batch, d + 1]`` and the spatial Laplacian
        :math:`\\operatorname{tr} \\nabla_x^2 \\Phi` ``[batch]`` (None when not asked)."""
        d, h = self.n_features, self.step
        s = self._space_time(x, t)

        # Forward sweep: keep the tanh of every pre-activation.
        pre = self.opening(s)
        tanhs = [torch.tanh(pre)]
        u = log_cosh(pre)
        for layer in self.residual:
            pre = layer(u)
            tanhs.append(torch.tanh(pre))
            u = u + h * log_cosh(pre)

        # Backward sweep: sens[i] = d(w^T u_M) / d u_i.
        g = self.w.expand(s.shape[0], -1)
        sens = [g] * (len(self.residual) + 1)
        for i in range(len(self.residual), 0, -1):
            sens[i] = g
            g = g + h * (tanhs[i] * g) @ self.residual[i - 1].weight
        sens[0] = g
        AtA = self.A.T @ self.A
        grad = (tanhs[0] * g) @ self.opening.weight + s @ AtA + self.b
        if not laplacian:
            return grad, None

        # Laplacian: each unit contributes sens * sigma'' * ||grad_x pre||^2.
        K0 = self.opening.weight[:, :d]
        lap = ((1 - tanhs[0].square()) * sens[0]) @ K0.square().sum(1)
        if self.residual:
            width = K0.shape[0]
            residual_terms = self._jacobian_terms if d <= width else self._gram_terms
            lap = lap + self._in_chunks(residual_terms, min(d, width) * width, K0, tanhs, sens)
        lap = lap + self.A[:, :d].square().sum()
        return grad, lap

    @staticmethod
    def _in_chunks(terms, per_row, K0, tanhs, sens):
        """``terms`` over slices of the batch when autograd keeps nothing.

        The residual terms hold a ``[d, m]`` or ``[m, m]`` temporary per
        sample: 8 MB for 256 rows at d = 64, m = 128. Allocating that afresh
        on every call costs the allocator's page faults, about as much again
        as the GEMM itself on CPU (``benchmarks/bench_otflow_trace.py``).
        Slices of about 2 MB are served from the heap and stay in cache:
        the whole call then takes half the time.
        Under autograd the temporaries are kept for backward anyway, so
        slicing would only add graph nodes.
        """
        n = tanhs[0].shape[0]
        rows = max(1, _CHUNK_BYTES // (per_row * tanhs[0].element_size()))
        keeps_graph = torch.is_grad_enabled() and any(t.requires_grad for t in (*tanhs, *sens))
        if n <= rows or keeps_graph:
            return terms(K0, tanhs, sens)
        return torch.cat(
            [
                terms(K0, [t[a : a + rows] for t in tanhs], [g[a : a + rows] for g in sens])
                for a in range(0, n, rows)
            ]
        )

    def _jacobian_terms(self, K0, tanhs, sens):
        """Residual layers' Laplacian terms by carrying J_i = grad_x u_i:
        O(m^2 d) per sample, the cheaper path when d <= m."""
        h = self.step
        lap = 0.0
        # Stored transposed, [batch, d, m], so that K J is one plain GEMM
        # (batch * d rows times K^T) with no copies.
        J = tanhs[0].unsqueeze(1) * K0.T
        last = len(self.residual)
        for i, layer in enumerate(self.residual, start=1):
            KJ = J @ layer.weight.T
            # Without a graph, the last product is squared in place: one
            # batch-sized temporary fewer for the allocator to hand back.
            squared = KJ.square_() if i == last and not KJ.requires_grad else KJ.square()
            lap = lap + h * ((1 - tanhs[i].square()) * sens[i] * squared.sum(1)).sum(1)
            if i < last:  # the last Jacobian is never used
                J = J + h * tanhs[i].unsqueeze(1) * KJ
        return lap

    def _gram_terms(self, K0, tanhs, sens):
        """The same terms by carrying S_i = J_i J_i^T, ``[batch, m, m]``:
        ||(K J)_j||^2 = (K S K^T)_jj, O(m^3) per sample whatever d, the
        cheaper path when d > m."""
        h = self.step
        lap = 0.0
        t0 = tanhs[0]
        S = (t0.unsqueeze(2) * t0.unsqueeze(1)) * (K0 @ K0.T)
        eye = torch.eye(K0.shape[0], dtype=K0.dtype, device=K0.device)
        for i, layer in enumerate(self.residual, start=1):
            K = layer.weight
            KS = K @ S
            lap = lap + h * ((1 - tanhs[i].square()) * sens[i] * (KS * K).sum(2)).sum(1)
            if i < len(self.residual):
                B = eye + h * tanhs[i].unsqueeze(2) * K
                S = B @ S @ B.transpose(1, 2)
        return lap
