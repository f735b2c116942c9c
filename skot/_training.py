"""Pieces of a training loop: loss history with early stopping, progress
display, and a guard that stops on a non-finite loss.

An estimator's training loop reads as its algorithm; these objects carry the
bookkeeping. ``Monitor`` follows scikit-learn's ``MLPRegressor`` semantics for
``tol`` and ``n_iter_no_change``: training stops once the monitored value
(training loss, or validation loss with ``early_stopping``) has failed to
improve on its best by at least ``tol`` for ``n_iter_no_change`` consecutive
checks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from .exceptions import TrainingDivergedError

__all__ = ["FiniteGuard", "Monitor", "progress"]


def progress(iterable: Iterable, verbose: int, desc: str, total: int | None = None):
    """``iterable`` wrapped in a tqdm bar when ``verbose > 0``."""
    if not verbose:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=verbose > 1)


class Monitor:
    """History of a monitored loss and the early-stopping rule."""

    def __init__(self, tol: float, n_iter_no_change: int):
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.history: list[float] = []
        self.best = math.inf
        self._no_improvement = 0

    def update(self, value: float) -> bool:
        """Record ``value``; return True when training should stop."""
        self.history.append(float(value))
        if value > self.best - self.tol:
            self._no_improvement += 1
        else:
            self._no_improvement = 0
        self.best = min(self.best, value)
        return self._no_improvement >= self.n_iter_no_change


class FiniteGuard:
    """Keep the last parameters that gave a finite loss, and restore them.

    Call :meth:`check` with each loss before ``backward``: a finite loss
    snapshots the current parameters (they produced it); a non-finite one
    restores the last snapshot and raises :class:`TrainingDivergedError`.
    :meth:`step` checks and then takes the optimiser's step.
    """

    def __init__(self, *modules: nn.Module, hint: str = ""):
        self.params = [p for m in modules for p in m.parameters()]
        self.hint = hint
        with torch.no_grad():
            self.saved = [p.detach().clone() for p in self.params]

    def check(self, loss: torch.Tensor, where: str) -> None:
        if torch.isfinite(loss).all():
            with torch.no_grad():
                for s, p in zip(self.saved, self.params):
                    s.copy_(p)
            return
        with torch.no_grad():
            for s, p in zip(self.saved, self.params):
                p.copy_(s)
        raise TrainingDivergedError(
            f"Training diverged: the {where} loss became {loss.item()} . The "
            f"parameters were restored to their last finite values and nothing was "
            f"fitted. {self.hint}"
        )

    def step(self, loss: torch.Tensor, where: str, optimizer, schedule=None) -> None:
        """:meth:`check` ``loss``, then one optimiser (and schedule) step on it."""
        self.check(loss, where)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
