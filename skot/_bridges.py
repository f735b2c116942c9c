r"""Bridges of distributions from P to Q, for telescoping density ratios.

A bridge is a sequence :math:`p_0 = P, p_1, \dots, p_K = Q` of distributions
on a time grid :math:`0 = t_0 < \dots < t_K = 1`, sampled in minibatches.
Neighbouring distributions are close, so a classifier between each pair is
accurate where one classifier between P and Q is not (the density-chasm
problem of Rhodes et al.).

- :class:`FlowBridge`: the intermediate distributions of a transport flow
  (Q-flow), read off trajectories of P's rows; the last interval pairs the
  pushed rows with real rows of Q, so the bridge ends exactly at Q.
- :class:`LinearBridge`: TRE's linear waymarks
  :math:`x_k = \sqrt{1 - a_k^2}\, x_0 + a_k y` with :math:`a_k = t_k`.
- :class:`DirectBridge`: P and Q alone, one interval: a single classifier.

With ``n_conditions``, the rows end in the one-hot columns of their class
(:mod:`skot._conditions`): minibatches then hold the classes in the same
counts on both sides, the i-th rows of both of the same class, so the
bridge runs within each class, and the class columns are never mixed.
"""

from __future__ import annotations

import torch

from ._conditions import minibatch_samplers

__all__ = ["DirectBridge", "FlowBridge", "LinearBridge"]


class _Bridge:
    """Rows of P (``X``) and Q (``Y``), both ``[n, d]`` tensors (or
    trajectories, ``[n, K + 1, d]``), and their sample weights (None:
    equal), in proportion to which minibatches draw them."""

    def __init__(
        self,
        X: torch.Tensor,
        Y: torch.Tensor,
        grid: torch.Tensor,
        weights=(None, None),
        n_conditions: int = 0,
    ):
        self.X, self.Y, self.grid = X, Y, grid
        self.weights, self.n_conditions = weights, n_conditions
        self._samplers: dict = {}  # by minibatch size: the class counts depend on it

    def draw(self, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
        """One minibatch from each distribution of the bridge (``K + 1`` of
        them); with conditions, of the size the class counts round to."""
        if batch_size not in self._samplers:
            rows = [Z if Z.dim() == 2 else Z[:, 0] for Z in (self.X, self.Y)]
            self._samplers[batch_size] = minibatch_samplers(
                rows, self.weights, self.n_conditions, batch_size
            )
        (sampler_x, sampler_y), batch = self._samplers[batch_size]
        return self.states(sampler_x.draw(batch, gen), sampler_y.draw(batch, gen))

    def states(self, ix: torch.Tensor, iy: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def node_samples(self) -> list[list[tuple[torch.Tensor, object]]]:
        """Every distribution of the bridge as an equal mixture of weighted
        samples: per node, a list of (rows ``[n, d]`` without the class
        columns, their weights or None). For
        :func:`skot._gaussian_baseline.weighted_gaussian`."""
        raise NotImplementedError

    def _features(self, Z: torch.Tensor) -> torch.Tensor:
        return Z[..., : Z.shape[-1] - self.n_conditions]


class DirectBridge(_Bridge):
    """P and Q with nothing in between."""

    def __init__(self, X, Y, weights=(None, None), n_conditions=0):
        super().__init__(X, Y, torch.tensor([0.0, 1.0], device=X.device), weights, n_conditions)

    def states(self, ix, iy):
        return [self.X[ix], self.Y[iy]]

    def node_samples(self):
        (wx, wy), features = self.weights, self._features
        return [[(features(self.X), wx)], [(features(self.Y), wy)]]


class LinearBridge(_Bridge):
    r"""TRE's waymarks :math:`\sqrt{1 - t_k^2}\, x + t_k y`, x from P, y from Q
    drawn independently."""

    def states(self, ix, iy):
        x, y = self.X[ix], self.Y[iy]
        if not self.n_conditions:
            return [torch.sqrt(1 - a * a) * x + a * y for a in self.grid]
        # The i-th rows of x and y are of one class: mix their coordinates,
        # keep their class columns.
        d = x.shape[1] - self.n_conditions
        classes = x[:, d:]
        return [
            torch.cat([torch.sqrt(1 - a * a) * x[:, :d] + a * y[:, :d], classes], dim=1)
            for a in self.grid
        ]

    def node_samples(self):
        # Independent pairs (x, y), as minibatches draw them: every row of
        # the smaller sample, against as many rows of the other.
        (wx, wy), n = self.weights, min(len(self.X), len(self.Y))
        x, y = self._features(self.X[:n]), self._features(self.Y[:n])
        w = None
        if wx is not None or wy is not None:
            w = (1.0 if wx is None else wx[:n]) * (1.0 if wy is None else wy[:n])
        return [[(torch.sqrt(1 - a * a) * x + a * y, w)] for a in self.grid]


class FlowBridge(_Bridge):
    """Trajectories through a flow, of P's rows forwards and of Q's backwards.

    The bridge is :math:`p_0 = P`, :math:`p_k = (F_k \\# P + B_k \\# Q) / 2` at
    the inner nodes, :math:`p_K = Q`, with :math:`F_k` the flow from time 0
    to :math:`t_k` and :math:`B_k` the inverse flow from time 1 to
    :math:`t_k`. Telescoping holds for any inner distributions; these
    two-sided ones cover the regions of both samples at every node, whereas
    P's pushed rows alone leave a test point of P with no training point
    near it once its mode has moved on, and the ratios of the later
    intervals there unconstrained (measured on ``make_mixture_pair``: mean
    absolute error 0.30 one-sided, 0.19 two-sided, 0.22 for one classifier).

    Parameters
    ----------
    forward : Tensor of shape ``[n, K + 1, d]``
        Positions of P's rows at the nodes (the first is the row itself).
    backward : Tensor of shape ``[m, K + 1, d]``
        Positions of Q's rows carried back by the inverse flow (the last is
        the row itself).
    grid : Tensor of shape ``[K + 1]``
    weights : pair of ndarray or None
        The sample weights of P's rows and of Q's.
    n_conditions : int
        Trailing one-hot class columns of the positions (0: none).
    """

    def __init__(self, forward, backward, grid, weights=(None, None), n_conditions=0):
        super().__init__(forward, backward, grid, weights, n_conditions)

    def states(self, ix, iy):
        forward, backward = self.X[ix], self.Y[iy]
        half = len(ix) // 2
        inner = [
            torch.cat([forward[:half, k], backward[half:, k]]) for k in range(1, len(self.grid) - 1)
        ]
        return [forward[:, 0], *inner, backward[:, -1]]

    def node_samples(self):
        (wx, wy), features = self.weights, self._features
        forward, backward = features(self.X), features(self.Y)
        inner = [[(forward[:, k], wx), (backward[:, k], wy)] for k in range(1, len(self.grid) - 1)]
        return [[(forward[:, 0], wx)], *inner, [(backward[:, -1], wy)]]
