"""The losses of one JKO step in semi-dual form, against closed forms."""

import math

import pytest
import torch

from skot._semidual import map_loss, potential_loss, r1_penalty, step_cost


def test_kl_potential_loss_is_the_conjugate_term_plus_the_mapped_mean():
    # For KL, f*(s) = e^s - 1: loss = mean(e^{-v(data)} - 1) + mean(v(mapped)).
    v_data = torch.tensor([0.0, math.log(2.0)])
    v_mapped = torch.tensor([1.0, 3.0])
    expected = ((1.0 - 1.0) + (0.5 - 1.0)) / 2 + 2.0
    assert potential_loss(v_data, v_mapped, "kl").item() == pytest.approx(expected)


def test_jsd_losses_are_the_softplus_forms():
    v_data, v_mapped = torch.tensor([0.0]), torch.tensor([0.0])
    assert potential_loss(v_data, v_mapped, "jsd").item() == pytest.approx(2 * math.log(2.0))
    cost = torch.tensor([0.5])
    assert map_loss(cost, v_mapped, "jsd").item() == pytest.approx(0.5 + math.log(2.0))


def test_kl_map_loss_is_cost_minus_potential():
    cost, v = torch.tensor([1.0, 3.0]), torch.tensor([0.5, -0.5])
    assert map_loss(cost, v, "kl").item() == pytest.approx(2.0)


@pytest.mark.parametrize("divergence", ["kl", "jsd"])
def test_potential_optimum_is_the_log_density_ratio(divergence):
    # Two atoms: the data put weights (1/4, 3/4) on them, the mapped rows
    # (1/2, 1/2). The potential loss is stationary at v = log(nu / mu) on
    # the atoms, for KL as for the logistic (JSD) form.
    nu, mu = torch.tensor([0.25, 0.75]), torch.tensor([0.5, 0.5])
    v = torch.log(nu / mu).requires_grad_(True)
    v_data, v_mapped = v[[0, 1, 1, 1]], v[[0, 0, 1, 1]]
    (grad,) = torch.autograd.grad(potential_loss(v_data, v_mapped, divergence), v)
    assert torch.allclose(grad, torch.zeros(2), atol=1e-7)


def test_step_cost_averages_the_squared_distance_over_features():
    x, y = torch.zeros(1, 4), torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    # ||x - y||^2 / (2 d h) with d = 4, h = 0.5
    assert step_cost(x, y, 0.5).item() == pytest.approx(4.0 / (2 * 4 * 0.5))


def test_r1_penalty_of_a_linear_potential_is_half_its_squared_slope():
    a = torch.tensor([3.0, -4.0], requires_grad=True)
    y = torch.randn(7, 2).requires_grad_(True)
    penalty = r1_penalty(y @ a, y)
    assert penalty.item() == pytest.approx(0.5 * 25.0)
    # the graph is kept, so the penalty trains the potential: d/da |a|^2 / 2 = a
    (grad,) = torch.autograd.grad(penalty, a)
    assert torch.allclose(grad, a)
