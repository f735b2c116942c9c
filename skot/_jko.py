r"""The phases of S-JKO: each a JKO step of a Wasserstein gradient flow,
solved as a semi-dual unbalanced OT problem by a potential and a map
trained adversarially (the losses are in :mod:`skot._semidual`).

One map network is trained through all the phases. In phase k its cost is
measured against a frozen copy of itself from the end of phase k - 1 (the
identity in the first phase), which already sends the prior to
:math:`\mu_{k}`; a phase therefore costs the same whatever its index, and
training is :math:`O(K)` in the number of phases.

References
----------
J. Choi, J. Choi and M. Kang, "Scalable Wasserstein gradient flow for
generative modeling through unbalanced optimal transport", ICML 2024.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._engine import Player, Trainer, TrainingRecord
from ._semidual import map_loss, potential_loss, r1_penalty, step_cost
from ._weights import RowSampler

__all__ = ["JKOConfig", "run_jko_phases"]

_ADAM_BETAS = (0.5, 0.9)  # the authors' setting for both players, as in GAN training
# Lazy R1 (Karras et al. 2020, StyleGAN2): the penalty, whose double
# backward costs a third of a step, is applied every fourth potential step
# with four times the weight.
_R1_EVERY = 4


@dataclass(frozen=True)
class JKOConfig:
    """Settings of the JKO phases (SJKOGenerator's parameters of the same names)."""

    n_phases: int
    step_size: float
    divergence: str
    max_iter: int
    batch_size: int
    learning_rate_init: float
    potential_learning_rate_init: float
    alpha_r1: float
    instance_noise: float
    ema_decay: float = 0.0
    verbose: int = 0


def run_jko_phases(
    map_: torch.nn.Module,
    potential: torch.nn.Module,
    data: torch.Tensor,
    config: JKOConfig,
    gen: torch.Generator,
    previous: torch.nn.Module | None = None,
    first_phase: int = 0,
    *,
    weights=None,
    validate: Callable[[], float] | None = None,
) -> TrainingRecord:
    """Train ``map_`` and ``potential`` in place through ``n_phases`` JKO steps.

    ``weights`` (positive, one per row of ``data``, or None) are the rows'
    sample weights: the potential's minibatches of data draw rows in
    proportion to them. ``validate`` (or None) scores the map, higher is
    better: it is called before the first phase and after each, every phase
    runs, and the map and potential of the best-scoring phase are kept.

    ``previous`` is the frozen map of the phase before the first (None: the
    identity), and ``first_phase`` that phase's index, which anneals the
    instance noise. The record's phases carry the mean ``"loss"`` (the
    map's), ``"potential_loss"`` and ``"transport_cost"``, and
    ``"map_evaluations"``: rows pushed through a map network, the frozen
    one included.
    """
    hint = "Try a smaller learning_rate_init or potential_learning_rate_init, or a larger alpha_r1."
    mapper = Player(map_, config.learning_rate_init, name="map", hint=hint, betas=_ADAM_BETAS)
    critic = Player(
        potential,
        config.potential_learning_rate_init,
        name="potential",
        hint=hint,
        betas=_ADAM_BETAS,
    )
    d, n_noise, batch = data.shape[1], map_.n_noise, config.batch_size
    evaluations = [0]
    sampler = RowSampler(len(data), weights, data.device)

    def prior(n):
        x = torch.randn(n, d, generator=gen, device=data.device)
        z = torch.randn(n, n_noise, generator=gen, device=data.device)
        return x, z

    def push(net, x, z):
        evaluations[0] += len(x)
        return x if net is None else net(x, z)

    def jko_step(index: int, noise_std: float, previous):
        # Potential step, on data rows (with instance noise) and on the
        # current map's outputs.
        potential.requires_grad_(True)
        rows = sampler.draw(batch, gen)
        y = data[rows]
        y = y + noise_std * torch.randn(y.shape, generator=gen, device=y.device)
        lazy_r1 = config.alpha_r1 > 0 and index % _R1_EVERY == 0
        y.requires_grad_(lazy_r1)
        with torch.no_grad():
            mapped = push(map_, *prior(batch))
        # One pass over both halves: half the layer calls of two.
        v_data, v_mapped = potential(torch.cat([y, mapped])).squeeze(1).split(batch)
        loss_potential = potential_loss(v_data, v_mapped, config.divergence)
        if lazy_r1:
            penalty = r1_penalty(v_data, y)
            loss_potential = loss_potential + _R1_EVERY * config.alpha_r1 * penalty
        critic.update(loss_potential)

        # Map step: the same prior point x goes through the frozen map with
        # one auxiliary noise and the trained map with another (the
        # authors' practice).
        potential.requires_grad_(False)
        x, z = prior(batch)
        with torch.no_grad():
            anchor = push(previous, x, torch.randn(z.shape, generator=gen, device=z.device))
        mapped = push(map_, x, z)
        cost = step_cost(mapped, anchor, config.step_size)
        loss_map = map_loss(cost, potential(mapped).squeeze(1), config.divergence)
        mapper.update(loss_map)
        return {"loss": loss_map, "potential_loss": loss_potential, "transport_cost": cost.mean()}

    trainer = Trainer(
        config.n_phases * config.max_iter,
        validate=validate,
        keep=(map_, potential),
        validate_at="phase",
        n_iter_no_change=config.n_phases + 1,  # never stops: a later phase may do better
        verbose=config.verbose,
        desc="S-JKO",
    )
    for phase in range(first_phase, first_phase + config.n_phases):
        noise_std = config.instance_noise / (phase + 1)
        evaluations[0] = 0
        steps = iter(range(config.max_iter))

        def step(steps=steps, noise_std=noise_std, previous=previous):
            return jko_step(next(steps), noise_std, previous)

        # With ema_decay the phase ends at the moving average of the map's
        # iterates, which is then the next phase's frozen map and start.
        average = (map_, config.ema_decay) if config.ema_decay > 0 else None
        summary = trainer.phase(step, config.max_iter, label=phase, average=average)
        summary["map_evaluations"] = evaluations[0]
        previous = copy.deepcopy(map_).requires_grad_(False).eval()
    return trainer.finish()
