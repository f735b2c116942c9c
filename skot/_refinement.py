r"""Algorithm 1 of Q-flow: refine a flow from P to Q towards the optimal one.

``n_flips`` rounds, each a P->Q phase and a Q->P phase of ``max_iter``
updates of the flow, minimising

.. math::
    \mathcal{L}^{P\to Q}(\theta) = -\frac1N \sum_i r_1(T_0^1(X_i))
    + \gamma \sum_{k=1}^K \frac{1}{h_k}\,\frac1N \sum_i
    \|X_i(t_k) - X_i(t_{k-1})\|^2,

where :math:`r_1 \approx \log q / p_1` is a classifier between pushed
source points and target points (so the first term estimates
:math:`\mathrm{KL}(p_1 \| q)`), refreshed ``classifier_steps`` times after
every update; the Q->P phase is the same with the flow run backwards from
Y towards X. The learning rates halve after every round, and each phase
ends at the moving average of its updates.

:func:`refine` takes any velocity field ``f(x, t)`` (a module), two
samples and a :class:`RefinementConfig`, so the algorithm runs and is
tested without an estimator around it.

References
----------
C. Xu, X. Cheng and Y. Xie, "Computing high-dimensional optimal transport
by flow neural networks", arXiv:2305.11857.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._conditions import minibatch_samplers
from ._device import build_module
from ._engine import Player, Trainer, TrainingRecord
from ._nets import MLP
from ._ode import integrate, integrate_in_batches, time_grid
from ._ratio import logistic_ratio_loss

__all__ = ["RefinementConfig", "inference_rows", "path_cost", "refine"]


@dataclass(frozen=True)
class RefinementConfig:
    """Settings of Algorithm 1 (QFlowTransport's parameters of the same names)."""

    gamma: float
    n_intervals: int
    n_substeps: int
    n_flips: int
    max_iter: int
    batch_size: int
    learning_rate_init: float
    ema_decay: float
    classifier_hidden_layer_sizes: tuple[int, ...]
    classifier_learning_rate_init: float
    classifier_warmup: int
    classifier_steps: int
    activation: str = "silu"
    tol: float = 1e-4
    n_iter_no_change: int = 10
    verbose: int = 0
    # Trailing one-hot class columns of the rows (skot._conditions): every
    # minibatch then holds the same rows of each class from both sides, so
    # the classifiers estimate the classes' KL terms, not their shares.
    n_conditions: int = 0


def inference_rows(batch_size: int) -> int:
    """Rows per batch when rows are pushed through the flow without autograd:
    no gradient is kept, so batches larger than training's fit in memory."""
    return max(batch_size, 1024)


def path_cost(states: list[torch.Tensor], grid: torch.Tensor) -> torch.Tensor:
    r"""Discretised transport cost per sample, ``sum_k ||x_k - x_{k-1}||^2 / h_k``."""
    cost = torch.zeros(states[0].shape[0], dtype=states[0].dtype, device=states[0].device)
    for k in range(1, len(states)):
        h = (grid[k] - grid[k - 1]).abs()
        cost = cost + (states[k] - states[k - 1]).square().sum(1) / h
    return cost


def refine(
    velocity: torch.nn.Module,
    X: torch.Tensor,
    Y: torch.Tensor,
    config: RefinementConfig,
    gen: torch.Generator,
    validate: Callable[[], float] | None = None,
    weights: tuple = (None, None),
) -> TrainingRecord:
    """Algorithm 1 on ``velocity``, in place, from the rows of X to those of Y.

    ``weights`` are the sample weights of the rows of X and of Y (None:
    equal): every minibatch of a sample, or of its rows pushed by the flow,
    draws rows in proportion to them.

    With ``validate`` (the held-out score of the current flow, higher is
    better) the flow is scored before refinement and after every phase,
    and the best-scoring flow, which may be the starting one, is kept.

    Returns
    -------
    TrainingRecord
        Per check: ``"loss"``, ``"kl"`` (estimated KL) and ``"transport"``
        (the transport cost), labelled with the phase's direction.
    """
    trainer = Trainer(
        2 * config.n_flips * config.max_iter,
        validate=validate,
        keep=[velocity],
        validate_at="phase",
        tol=config.tol,
        n_iter_no_change=config.n_iter_no_change,
        verbose=config.verbose,
        desc="Q-flow refinement",
    )
    (sampler_x, sampler_y), batch_size = minibatch_samplers(
        (X, Y), weights, config.n_conditions, min(config.batch_size, len(X), len(Y))
    )
    refinement = _Refinement(velocity, X, config, gen, trainer, batch_size)
    grid = time_grid(config.n_intervals, device=X.device)
    for flip in range(config.n_flips):
        # Fresh classifiers every flip. A classifier kept across flips
        # goes on learning the same training rows, and the flow learns
        # its overfit: at d=10 on 4000 rows, 400 steps per phase drifted
        # to L2-UVP 3.54 with kept classifiers and reached 0.62 with
        # fresh ones (docs/qflow.md).
        classifiers = [refinement.new_classifier() for _ in range(2)]
        phases = (
            ("P->Q", (X, sampler_x), (Y, sampler_y), grid),
            ("Q->P", (Y, sampler_y), (X, sampler_x), grid.flip(0)),
        )
        for (direction, source, target, nodes), net in zip(phases, classifiers):
            if trainer.stopped:
                break
            refinement.phase(direction, source, target, nodes, net, lr_scale=0.5**flip)
    return trainer.finish()


class _Refinement:
    """The phases of :func:`refine`, sharing its flow, samples and minibatch draws."""

    def __init__(self, velocity, X, config: RefinementConfig, gen, trainer: Trainer, batch: int):
        self.velocity, self.config, self.gen, self.trainer = velocity, config, gen, trainer
        self.d, self.device = X.shape[1], X.device
        self.batch = batch

    def draw(self, pool: torch.Tensor, sampler) -> torch.Tensor:
        """A minibatch drawn with replacement from the rows of ``pool``, by
        ``sampler`` (that of the sample whose rows, or pushed rows, they are)."""
        return pool[sampler.draw(self.batch, self.gen)]

    def new_classifier(self) -> torch.nn.Module:
        """An untrained log-ratio classifier ``[batch, d] -> [batch, 1]``."""
        d, sizes = self.d, tuple(self.config.classifier_hidden_layer_sizes)
        activation = self.config.activation
        return build_module(lambda: MLP(d, 1, sizes, activation), self.device, self.gen)

    def phase(self, direction, source, target, nodes, net, lr_scale) -> None:
        """One phase: the classifier's warm-up, then ``max_iter`` flow updates
        from ``source`` towards ``target`` along ``nodes``; each of these is
        a pair (rows, their RowSampler)."""
        config, velocity = self.config, self.velocity
        (source, source_rows), (target, target_rows) = source, target
        # A fresh optimiser per phase: Adam's moments of one direction's
        # objective would push the other phase the wrong way.
        flow = Player(
            velocity,
            config.learning_rate_init * lr_scale,
            name=f"Q-flow {direction}",
            hint="Try a smaller learning_rate_init or a larger gamma.",
        )
        classifier = Player(
            net,
            config.classifier_learning_rate_init * lr_scale,
            name=f"Q-flow {direction} classifier",
            hint="Try a smaller classifier_learning_rate_init.",
        )

        def classify(xp, xq):
            """One step of the classifier r ~ log q/p on a batch of each."""
            loss = logistic_ratio_loss(net(xp).squeeze(-1), net(xq).squeeze(-1))
            classifier.update(loss)
            return {"loss": loss}

        with torch.no_grad():
            pushed = integrate_in_batches(
                velocity, source, nodes, config.n_substeps, inference_rows(config.batch_size)
            )
        warmup = Trainer(config.classifier_warmup, desc="Q-flow classifier warm-up")
        warmup.phase(
            lambda: classify(self.draw(pushed, source_rows), self.draw(target, target_rows)),
            config.classifier_warmup,
        )

        def step():
            states = integrate(velocity, self.draw(source, source_rows), nodes, config.n_substeps)
            net.requires_grad_(False)
            kl = -net(states[-1]).squeeze(-1).mean()
            net.requires_grad_(True)
            cost = path_cost(states, nodes).mean()
            loss = kl + config.gamma * cost
            flow.update(loss)
            # Refresh the classifier on the points just pushed: the paper
            # stresses that a stale r breaks training.
            end = states[-1].detach()
            for _ in range(config.classifier_steps):
                classify(end, self.draw(target, target_rows))
            return {"loss": loss, "kl": kl, "transport": cost}

        # Each phase ends at the moving average of its own updates. (Not one
        # average across phases: the two directions pull the weights
        # different ways, and their average is a worse, shorter flow than
        # either.)
        self.trainer.phase(
            step, config.max_iter, label=direction, average=(velocity, config.ema_decay)
        )
