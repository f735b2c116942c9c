import math
from itertools import pairwise

import pytest
import torch

from skot._ode import integrate, rk4_step, time_grid

A = torch.tensor([[0.0, -1.0], [1.0, -0.1]], dtype=torch.float64)


def linear(x, t):
    return x @ A.T


def exact(x0, t):
    return x0 @ torch.linalg.matrix_exp(A * t).T


def test_rk4_is_fourth_order_on_a_linear_ode():
    x0 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    errors = []
    for n in (8, 16, 32):
        x = integrate(linear, x0, time_grid(1, dtype=torch.float64), n_substeps=n)[-1]
        errors.append((x - exact(x0, 1.0)).norm().item())
    for coarse, fine in pairwise(errors):
        assert math.log2(coarse / fine) == pytest.approx(4.0, abs=0.3)


def test_classical_weights_integrate_a_cubic_in_time_exactly():
    # dx/dt = 3 t^2 has x(1) = 1: Simpson's rule, hence RK4, is exact on cubics.
    x = rk4_step(lambda x, t: 3 * t**2 * torch.ones_like(x), torch.zeros(1, 1), 0.0, 1.0)
    assert x.item() == pytest.approx(1.0, abs=1e-7)


def test_states_at_every_node_and_backward_inverts():
    x0 = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    grid = time_grid(4, dtype=torch.float64)
    states = integrate(linear, x0, grid, n_substeps=5)
    assert len(states) == 5 and torch.equal(states[0], x0)
    for k, t in enumerate(grid):
        torch.testing.assert_close(states[k], exact(x0, t.item()), rtol=1e-6, atol=1e-7)
    back = integrate(linear, states[-1], grid.flip(0), n_substeps=5)[-1]
    torch.testing.assert_close(back, x0, rtol=1e-6, atol=1e-7)


def test_adaptive_solver_reports_the_same_nodes():
    x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    grid = time_grid(3, dtype=torch.float64)
    states = integrate(linear, x0, grid, method="dopri5", rtol=1e-9, atol=1e-10)
    assert len(states) == 4
    torch.testing.assert_close(states[-1], exact(x0, 1.0), rtol=1e-7, atol=1e-8)
