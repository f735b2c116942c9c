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

import copy
import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from .exceptions import TrainingDivergedError

__all__ = ["FiniteGuard", "Monitor", "progress", "train_on_schedule"]


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


def train_on_schedule(
    module: nn.Module,
    loss_fn: Callable[[], tuple[torch.Tensor, Sequence[float]]],
    *,
    max_iter: int,
    learning_rate: float,
    tol: float,
    n_iter_no_change: int,
    validate: Callable[[], float] | None = None,
    check_every: int = 50,
    verbose: int = 0,
    desc: str = "training",
    hint: str = "",
) -> tuple[list[float], list[list[float]], list[float] | None, int]:
    """Adam on ``module`` with a cosine learning-rate schedule over ``max_iter``.

    ``loss_fn()`` draws a minibatch and returns the loss with a tuple of
    floats to log (its parts). Every ``check_every`` steps the averages of
    both are recorded and, when ``validate`` is given, the held-out loss it
    returns: the best parameters by that loss are restored at the end, and
    training stops when it stalls (``tol``, ``n_iter_no_change``). Without a
    held-out loss training runs the whole schedule. A non-finite loss raises
    :class:`TrainingDivergedError` with ``hint``.

    Returns
    -------
    curve : list of float
        Training loss averaged over each check's steps.
    parts : list of lists of float
        The same for each logged part, one list per part.
    validation_scores : list of float or None
    steps : int
        Steps taken.
    """
    module.requires_grad_(True).train()
    optimizer = torch.optim.Adam(module.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(max_iter, 1))
    guard = FiniteGuard(module, hint=hint)
    monitor = Monitor(tol, n_iter_no_change)
    curve: list[float] = []
    parts: list[list[float]] = []
    val_scores = [] if validate is not None else None
    best_state, best_val = None, math.inf
    running, parts_sum, since_check, step = 0.0, None, 0, 0
    for step in progress(range(1, max_iter + 1), verbose, desc):
        loss, logged = loss_fn()
        guard.step(loss, desc, optimizer, schedule)
        running += loss.item()
        logged = [float(v) for v in logged]
        parts_sum = logged if parts_sum is None else [a + b for a, b in zip(parts_sum, logged)]
        since_check += 1
        if step % check_every and step != max_iter:
            continue
        curve.append(running / since_check)
        if not parts:
            parts = [[] for _ in parts_sum]
        for record, total in zip(parts, parts_sum):
            record.append(total / since_check)
        running, parts_sum, since_check = 0.0, None, 0
        if validate is None:
            continue
        value = validate()
        val_scores.append(value)
        if value < best_val:
            best_val, best_state = value, copy.deepcopy(module.state_dict())
        if monitor.update(value):
            break
    if best_state is not None:
        module.load_state_dict(best_state)
    return curve, parts, val_scores, step
