"""Algorithm 1 alone, on a flow that reaches Q at too high a cost."""

import dataclasses
import math

import torch
from torch import nn

from skot._device import make_rngs
from skot._ode import integrate, time_grid
from skot._refinement import RefinementConfig, path_cost, refine


class LinearField(nn.Module):
    """``f(x, t) = A x``; with A skew-symmetric its flow is a rotation."""

    def __init__(self, angle):
        super().__init__()
        self.A = nn.Parameter(torch.tensor([[0.0, -angle], [angle, 0.0]]))

    def forward(self, x, t):
        return x @ self.A.T


CONFIG = RefinementConfig(
    gamma=0.1,
    n_intervals=2,
    n_substeps=2,
    n_flips=1,
    max_iter=60,
    batch_size=512,
    learning_rate_init=2e-2,
    ema_decay=0.9,
    classifier_hidden_layer_sizes=(32, 32),
    classifier_learning_rate_init=1e-2,
    classifier_warmup=100,
    classifier_steps=2,
)


def _cost(velocity, X):
    with torch.no_grad():
        states = integrate(velocity, X, time_grid(2), n_substeps=2)
    return path_cost(states, time_grid(2)).mean().item(), states[-1]


def test_refinement_removes_a_needless_rotation():
    # P = Q = N(0, I). A quarter turn pushes P exactly onto Q, at cost
    # (pi/2)^2 E|x|^2 = 4.93; the optimal flow stays put, at cost 0. The KL
    # term has nothing to gain, the transport term drives the rotation out.
    gen = torch.Generator().manual_seed(0)
    X, Y = torch.randn(4000, 2, generator=gen), torch.randn(4000, 2, generator=gen)
    velocity = LinearField(math.pi / 2)
    before, _ = _cost(velocity, X)
    _, gen = make_rngs(0, torch.device("cpu"))
    record = refine(velocity, X, Y, CONFIG, gen)
    after, pushed = _cost(velocity, X)
    assert before > 4.5 and after < 0.2 * before, (before, after)
    # ... and the flow still ends on Q
    assert torch.allclose(pushed.mean(0), torch.zeros(2), atol=0.1)
    assert torch.allclose(torch.cov(pushed.T), torch.eye(2), atol=0.15)
    assert record.n_iter == 2 * CONFIG.max_iter
    assert set(record.labels) == {"P->Q", "Q->P"}
    assert record.history["transport"][-1] < record.history["transport"][0]


class Drift(nn.Module):
    """``f(x, t) = b``: its flow translates every point by b."""

    def __init__(self):
        super().__init__()
        self.b = nn.Parameter(torch.zeros(2))

    def forward(self, x, t):
        return self.b.expand_as(x)


def test_refinement_moves_a_short_flow_to_the_closed_form_compromise():
    # P = N(0, I), Q = N(mu, I), starting from the identity. Among
    # translations by b, KL(N(b, I) || Q) + gamma |b|^2 is least at
    # b = mu / (1 + 2 gamma): the KL term pulls the flow onto Q, the
    # transport term holds it back by exactly that much.
    gamma, mu = 0.25, torch.tensor([2.0, 0.0])
    gen = torch.Generator().manual_seed(0)
    X, Y = torch.randn(4000, 2, generator=gen), torch.randn(4000, 2, generator=gen) + mu
    velocity = Drift()
    _, gen = make_rngs(0, torch.device("cpu"))
    refine(velocity, X, Y, dataclasses.replace(CONFIG, gamma=gamma, max_iter=100), gen)
    # measured: (1.330, 0.001) against (1.333, 0)
    assert torch.allclose(velocity.b.detach(), mu / (1 + 2 * gamma), atol=0.1), velocity.b


def test_refinement_keeps_the_starting_flow_when_it_scores_best():
    gen = torch.Generator().manual_seed(0)
    X, Y = torch.randn(1000, 2, generator=gen), torch.randn(1000, 2, generator=gen)
    velocity = LinearField(math.pi / 2)
    _, gen = make_rngs(0, torch.device("cpu"))

    start = velocity.A.detach().clone()

    def validate():  # a score that prefers the quarter turn
        return -(velocity.A - start).abs().sum().item()

    config = dataclasses.replace(CONFIG, max_iter=10, classifier_warmup=10)
    record = refine(velocity, X, Y, config, gen, validate)
    assert len(record.validation_scores) == 3  # the start, then each phase
    assert record.validation_scores[0] == 0.0 > max(record.validation_scores[1:])
    assert torch.equal(velocity.A, start)
