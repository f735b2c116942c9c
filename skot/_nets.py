"""Neural networks shared by the estimators: plain MLPs and time-conditioned
velocity fields.

Each network keeps the keyword arguments that built it in ``config``, so
that a model file (:mod:`skot.io`) can rebuild it from plain data and load
its weights, without pickling the class.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "ConditionedField",
    "NoisyMap",
    "ResidualMLP",
    "TimeMLP",
    "full_rank_width",
]

_INV_SQRT2 = 1 / math.sqrt(2)

ACTIVATIONS = {
    "silu": nn.SiLU,
    "softplus": lambda: nn.Softplus(beta=20.0),
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
}


# The "auto" widths of the estimators' networks: a network reads x only
# through its first layer, so the Hessian (or the Jacobian) of its output in x
# has rank at most that layer's width, and both the OT map between Gaussians
# and the log ratio between them are full-rank in x: past about 64 features
# a fixed 128 units falls short of them (docs/qflow.md, docs/telescoping.md).
_FULL_RANK_MIN_WIDTH = 128
_FULL_RANK_UNITS_PER_FEATURE = 2


def full_rank_width(n_features: int) -> int:
    """Units a layer needs to keep the rank of a map of ``n_features`` inputs:
    ``max(128, 2 * n_features)`` (128 up to 64 features)."""
    return max(_FULL_RANK_MIN_WIDTH, _FULL_RANK_UNITS_PER_FEATURE * n_features)


def _stack(sizes: list[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class MLP(nn.Module):
    """Multi-layer perceptron ``[batch, in_features] -> [batch, out_features]``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_layer_sizes: tuple[int, ...] = (128, 128),
        activation: str = "silu",
    ):
        super().__init__()
        self.config = dict(
            in_features=in_features,
            out_features=out_features,
            hidden_layer_sizes=tuple(hidden_layer_sizes),
            activation=activation,
        )
        self.net = _stack([in_features, *hidden_layer_sizes, out_features], activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TimeMLP(nn.Module):
    r"""Time-conditioned field :math:`f(x, t)`, ``[batch, d], t -> [batch, out]``.

    The time enters as :math:`t` together with a few Fourier features
    :math:`\sin(2\pi k t), \cos(2\pi k t)`, which lets a small network bend its
    field over :math:`[0, 1]` without spending width on it.

    With ``quadratic=True`` a quadratic form in :math:`x` whose coefficients
    vary with :math:`t` is added to each output :math:`o`,

    .. math::
        \frac{1}{\sqrt{d}} \sum_{j=1}^{d} c_{oj}(t)\, (w_j \cdot x)^2,

    with :math:`d` learnt directions :math:`w_j` and coefficients
    :math:`c(t)` linear in the time features. A network of smooth
    activations grows at most linearly away from its training rows, where a
    log density ratio between laws with Gaussian tails grows quadratically;
    the quadratic part carries that growth, and it is of full rank in
    :math:`x` whatever the width of the layers.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int | None = None,
        hidden_layer_sizes: tuple[int, ...] = (128, 128),
        activation: str = "silu",
        n_frequencies: int = 2,
        quadratic: bool = False,
    ):
        super().__init__()
        out_features = in_features if out_features is None else out_features
        self.config = dict(
            in_features=in_features,
            out_features=out_features,
            hidden_layer_sizes=tuple(hidden_layer_sizes),
            activation=activation,
            n_frequencies=n_frequencies,
        )
        if quadratic:  # only when set: model files of older networks rebuild unchanged
            self.config["quadratic"] = True
        self.n_frequencies = n_frequencies
        n_time = 1 + 2 * n_frequencies
        self.net = _stack([in_features + n_time, *hidden_layer_sizes, out_features], activation)
        self.directions = self.curvatures = None
        if quadratic:
            self.directions = nn.Linear(in_features, in_features, bias=False)
            self.curvatures = nn.Linear(n_time, out_features * in_features)

    def time_features(self, t: torch.Tensor, n: int, like: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
        t = t.reshape(-1, 1).expand(n, 1)
        if self.n_frequencies == 0:
            return t
        k = torch.arange(1, self.n_frequencies + 1, dtype=like.dtype, device=like.device)
        angle = 2 * math.pi * t * k
        return torch.cat([t, torch.sin(angle), torch.cos(angle)], dim=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        features = self.time_features(t, x.shape[0], x)
        out = self.net(torch.cat([x, features], dim=1))
        # getattr: a TimeMLP pickled before the quadratic part has no such attribute.
        if getattr(self, "directions", None) is None:
            return out
        squares = self.directions(x) ** 2  # [batch, d]
        curvatures = self.curvatures(features).view(x.shape[0], -1, x.shape[1])
        # 1/sqrt(d) keeps the form's scale at initialisation that of one
        # output unit whatever the dimension.
        return out + (curvatures * squares.unsqueeze(1)).sum(-1) / math.sqrt(x.shape[1])


class ConditionedField(nn.Module):
    r"""Velocity of a flow that carries each row's class along unchanged.

    The state is :math:`z = (x, e_c)`, a point and the one-hot code of its
    class; the velocity is :math:`(v(x, e_c, t), 0)`, with :math:`v` a
    :class:`TimeMLP` reading both. One network thus holds one flow per
    class, and the class columns stay put, so a flow integrated from a row
    of class :math:`c` stays in class :math:`c`.
    """

    def __init__(
        self,
        n_features: int,
        n_conditions: int,
        hidden_layer_sizes: tuple[int, ...] = (128, 128),
        activation: str = "silu",
        n_frequencies: int = 2,
    ):
        super().__init__()
        self.config = dict(
            n_features=n_features,
            n_conditions=n_conditions,
            hidden_layer_sizes=tuple(hidden_layer_sizes),
            activation=activation,
            n_frequencies=n_frequencies,
        )
        self.n_conditions = n_conditions
        self.field = TimeMLP(
            n_features + n_conditions, n_features, hidden_layer_sizes, activation, n_frequencies
        )

    def forward(self, z: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        v = self.field(z, t)
        return torch.cat([v, v.new_zeros(len(z), self.n_conditions)], dim=1)


class ResidualMLP(nn.Module):
    r"""Residual MLP ``[batch, in_features] -> [batch, out_features]``.

    A linear lift to ``width``, ``n_blocks`` residual blocks
    :math:`h \leftarrow (h + B(h)) / \sqrt 2` with :math:`B` two SiLU layers
    (the :math:`1/\sqrt 2` keeps the scale of ``h`` steady with depth), and a
    head of one SiLU layer and a linear output.
    """

    def __init__(self, in_features: int, out_features: int, width: int = 128, n_blocks: int = 3):
        super().__init__()
        self.config = dict(
            in_features=in_features, out_features=out_features, width=width, n_blocks=n_blocks
        )
        self.lift = nn.Linear(in_features, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU())
            for _ in range(n_blocks)
        )
        self.head = nn.Sequential(
            nn.Linear(width, width), nn.SiLU(), nn.Linear(width, out_features)
        )

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``[batch, width]`` before the head."""
        h = self.lift(x)
        for block in self.blocks:
            h = (h + block(h)) * _INV_SQRT2
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class NoisyMap(nn.Module):
    """Stochastic map ``T(x, z)``: ``[batch, d], [batch, n_noise] -> [batch, d]``.

    A :class:`ResidualMLP` on ``x`` whose features are shifted by an
    embedding of an auxiliary noise ``z`` before the head, so that one input
    point can be sent to a distribution of outputs (a transport plan rather
    than a map). With ``n_noise=0`` it is a deterministic map of ``x``.
    """

    def __init__(self, d: int, n_noise: int, width: int = 128, n_blocks: int = 3):
        super().__init__()
        self.config = dict(d=d, n_noise=n_noise, width=width, n_blocks=n_blocks)
        self.n_noise = n_noise
        self.net = ResidualMLP(d, d, width, n_blocks)
        if n_noise:
            self.embed = nn.Sequential(
                nn.Linear(n_noise, width), nn.SiLU(), nn.Linear(width, width)
            )

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        h = self.net.body(x)
        if self.n_noise:
            h = h + self.embed(z)
        return self.net.head(h)
