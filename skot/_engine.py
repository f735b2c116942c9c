"""The training engine: every network skot trains is trained here.

Training is staged as in scikit-learn's MLP and skorch: a fit runs one or
more *phases* of *steps*. A method's step is a function of no arguments
that draws its minibatch, computes its losses, updates each network it
trains through that network's :class:`Player`, and returns the values to
log. Everything else is done here, the same way for every estimator:

- :class:`Player`: one network with its Adam optimiser, an optional cosine
  learning-rate schedule, and the guard that stops on a non-finite loss;
- :class:`Trainer`: the progress bar; the record (each logged value
  averaged over every ``check_every`` steps, and over the last steps of a
  phase); the held-out score (higher is better), keeping the best
  parameters and restoring them; early stopping; and the moving average of
  a network's parameters over a phase.

The meaning of the records is the same in every estimator: ``loss_curve_``
holds one entry per check, ``validation_scores_`` the held-out score before
training and at every validation, ``n_iter_`` the steps taken.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from .exceptions import TrainingDivergedError

__all__ = [
    "CHECK_EVERY",
    "FiniteGuard",
    "Player",
    "Trainer",
    "TrainingRecord",
    "train_network",
    "warm_ema",
]

CHECK_EVERY = 50  # steps averaged into one entry of the record

_ADAM_BETAS = (0.9, 0.999)  # torch's defaults


class FiniteGuard:
    """Keep the last parameters that gave a finite loss, and restore them.

    :meth:`check` each loss before ``backward``: a finite loss snapshots the
    current parameters (they produced it); a non-finite one restores the
    last snapshot and raises :class:`TrainingDivergedError` with ``hint``.
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


class Player:
    """One trained network: its Adam optimiser, schedule and finite-loss guard.

    Parameters
    ----------
    module : nn.Module
        Put in training mode, with every parameter trainable.
    learning_rate : float
        Adam's learning rate (the initial one with ``cosine_steps``).
    name : str
        Names the loss in the error raised when it stops being finite.
    hint : str
        What the user could change, appended to that error.
    betas : tuple of float
        Adam's betas.
    cosine_steps : int or None
        When given, the rate decays to zero along a cosine over that many
        updates (:class:`torch.optim.lr_scheduler.CosineAnnealingLR`).
    """

    def __init__(
        self,
        module: nn.Module,
        learning_rate: float,
        *,
        name: str,
        hint: str = "",
        betas: tuple[float, float] = _ADAM_BETAS,
        cosine_steps: int | None = None,
    ):
        module.requires_grad_(True).train()
        self.name = name
        self.optimizer = torch.optim.Adam(module.parameters(), lr=learning_rate, betas=betas)
        self.schedule = None
        if cosine_steps is not None:
            self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer, T_max=max(cosine_steps, 1)
            )
        self.guard = FiniteGuard(module, hint=hint)

    def update(self, loss: torch.Tensor) -> None:
        """Check that ``loss`` is finite, then one optimiser (and schedule) step on it."""
        self.guard.check(loss, self.name)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.schedule is not None:
            self.schedule.step()


def warm_ema(decay: float):
    """``avg_fn`` of an exponential moving average with a warm-up.

    The n-th update gets weight ``max(1 - decay, 1 / (n + 1))``: a plain mean
    of the updates while there are fewer than ``1 / (1 - decay)`` of them, an
    exponential average after. Unlike a bare exponential average, a short
    phase is then not held back towards its first update.
    """

    def update(averaged, current, n_averaged):
        weight = max(1.0 - decay, 1.0 / (float(n_averaged) + 1.0))
        return averaged.lerp(current, weight)

    return update


@dataclass
class TrainingRecord:
    """What a :class:`Trainer` saw, in the estimators' meanings.

    Attributes
    ----------
    loss_curve : list of float
        The ``"loss"`` a step returns, averaged over each check's steps.
    history : dict of lists of float
        Every logged value, averaged over each check's steps.
    labels : list
        The label of the phase each check belongs to.
    phases : list of dict
        Per phase: its label, every logged value averaged over the phase,
        ``"seconds"`` and ``"steps"``.
    validation_scores : list of float or None
        Held-out scores, higher is better: of the starting parameters, then
        at every validation. None without a held-out score.
    n_iter : int
        Steps taken, all phases together.
    """

    loss_curve: list[float] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=dict)
    labels: list = field(default_factory=list)
    phases: list[dict] = field(default_factory=list)
    validation_scores: list[float] | None = None
    n_iter: int = 0

    @property
    def best_validation_score(self) -> float | None:
        """The best held-out score: that of the parameters kept."""
        return max(self.validation_scores) if self.validation_scores else None


def _as_float(value) -> float:
    return value.item() if isinstance(value, torch.Tensor) else float(value)


class Trainer:
    """Phases of steps with a shared record, validation and early stopping.

    Parameters
    ----------
    n_steps : int
        Steps planned in all, for the progress bar.
    validate : callable or None
        Returns the held-out score of the current parameters (higher is
        better). When given, the starting parameters are scored first, and
        then the parameters at every check (``validate_at="check"``) or at
        the end of every phase (``"phase"``); the best-scoring parameters of
        ``keep`` are restored by :meth:`finish`, and training stops once
        ``n_iter_no_change`` validations in a row have not improved on the
        best score by ``tol`` (scikit-learn's rule).
    keep : sequence of nn.Module
        The networks whose best parameters are kept.
    validate_at : {"check", "phase"}
    tol, n_iter_no_change : float, int
    check_every : int
        Steps averaged into one entry of the record; a phase's last steps
        make an entry of their own.
    verbose : int
        A progress bar when positive.
    desc : str
        The progress bar's label.
    """

    def __init__(
        self,
        n_steps: int,
        *,
        validate: Callable[[], float] | None = None,
        keep: Sequence[nn.Module] = (),
        validate_at: str = "check",
        tol: float = 0.0,
        n_iter_no_change: int = 10,
        check_every: int = CHECK_EVERY,
        verbose: int = 0,
        desc: str = "training",
    ):
        self.validate = validate
        self.keep = tuple(keep)
        self.validate_at = validate_at
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.check_every = check_every
        self.record = TrainingRecord(validation_scores=[] if validate is not None else None)
        self.stopped = False
        self._best_state = None
        self._no_improvement = 0
        self._bar = (
            tqdm(total=n_steps, desc=desc, leave=verbose > 1) if verbose and n_steps else None
        )

    def phase(
        self,
        step: Callable[[], dict],
        n_steps: int,
        *,
        label=None,
        average: tuple[nn.Module, float] | None = None,
    ) -> dict:
        """Run ``n_steps`` of ``step``, fewer if early stopping ends training.

        ``step()`` returns a dict of the values to log (tensors or floats),
        ``"loss"`` among them. With ``average=(module, decay)`` the phase
        ends at the moving average of ``module``'s parameters over its steps
        (:func:`warm_ema`). Returns the phase's entry of ``record.phases``.
        """
        if self.validate is not None and self.record.validation_scores == []:
            self._validate()  # the starting parameters are a candidate too
        averaged = None
        if average is not None:
            module, decay = average
            averaged = AveragedModel(module, avg_fn=warm_ema(decay))
        start = time.perf_counter()
        window: dict[str, float] = {}
        totals: dict[str, float] = {}
        since_check = taken = 0
        for i in range(1, n_steps + 1):
            logged = {key: _as_float(value) for key, value in step().items()}
            taken += 1
            self.record.n_iter += 1
            if self._bar is not None:
                self._bar.update()
            if averaged is not None:
                averaged.update_parameters(average[0])
            for key, value in logged.items():
                window[key] = window.get(key, 0.0) + value
                totals[key] = totals.get(key, 0.0) + value
            since_check += 1
            if i % self.check_every and i != n_steps:
                continue
            self._check(window, since_check, label)
            window, since_check = {}, 0
            if self.stopped:
                break
        if averaged is not None:
            average[0].load_state_dict(averaged.module.state_dict())
        if self.validate is not None and self.validate_at == "phase" and not self.stopped:
            self._validate()
        summary = {key: total / taken for key, total in totals.items()} if taken else {}
        summary.update(label=label, seconds=time.perf_counter() - start, steps=taken)
        self.record.phases.append(summary)
        return summary

    def finish(self) -> TrainingRecord:
        """Restore the best-scoring parameters of ``keep``; return the record."""
        if self._bar is not None:
            self._bar.close()
        if self._best_state is not None:
            for module, state in zip(self.keep, self._best_state):
                module.load_state_dict(state)
        return self.record

    def _check(self, window: dict[str, float], n: int, label) -> None:
        for key, total in window.items():
            self.record.history.setdefault(key, []).append(total / n)
        self.record.loss_curve.append(window["loss"] / n)
        self.record.labels.append(label)
        if self.validate is not None and self.validate_at == "check":
            self._validate()

    def _validate(self) -> None:
        score = float(self.validate())
        scores = self.record.validation_scores
        best = max(scores, default=-math.inf)
        if score > best:
            self._best_state = [copy.deepcopy(m.state_dict()) for m in self.keep]
        # scikit-learn's rule: a score that does not beat the best by tol
        # is a validation without improvement.
        if score < best + self.tol:
            self._no_improvement += 1
        else:
            self._no_improvement = 0
        scores.append(score)
        if self._no_improvement >= self.n_iter_no_change:
            self.stopped = True


def train_network(
    module: nn.Module,
    loss_fn: Callable[[], dict],
    *,
    max_iter: int,
    learning_rate_init: float,
    name: str,
    hint: str = "",
    validate: Callable[[], float] | None = None,
    tol: float = 0.0,
    n_iter_no_change: int = 10,
    verbose: int = 0,
    desc: str | None = None,
    ema_decay: float = 0.0,
) -> TrainingRecord:
    """One network trained in one phase: Adam on a cosine schedule over ``max_iter``.

    ``loss_fn()`` draws a minibatch and returns the values to log, the loss
    to minimise as ``"loss"``. With ``validate`` the best-scoring parameters
    are kept and training stops when the score stalls (:class:`Trainer`).
    With ``ema_decay > 0`` training ends at the moving average of the
    parameters (:func:`warm_ema`), unless a validated state replaces it.
    ``name`` labels the loss in errors, and the progress bar unless ``desc``
    is given.
    """
    player = Player(module, learning_rate_init, name=name, hint=hint, cosine_steps=max_iter)

    def step():
        logged = loss_fn()
        player.update(logged["loss"])
        return logged

    trainer = Trainer(
        max_iter,
        validate=validate,
        keep=[module],
        tol=tol,
        n_iter_no_change=n_iter_no_change,
        verbose=verbose,
        desc=desc or name,
    )
    trainer.phase(step, max_iter, average=(module, ema_decay) if ema_decay > 0 else None)
    return trainer.finish()
