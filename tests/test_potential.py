"""The closed-form gradient, time derivative and Laplacian of OT-Flow's
potential against autograd, in float64."""

import pytest
import torch

from skot import _potential as potential_module
from skot._device import build_module
from skot._potential import OTPotential, log_cosh


def _potential(d, n_layers, width=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    phi = build_module(lambda: OTPotential(d, width, n_layers), torch.device("cpu"), gen)
    phi = phi.double()
    # Random weights everywhere, not the structured initial w = 1, b = c = 0.
    with torch.no_grad():
        for p in phi.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))
        phi.opening.weight.mul_(0.5)
    return phi


def _autograd(phi, x, t):
    x = x.clone().requires_grad_(True)
    t = t.clone().requires_grad_(True)
    value = phi(x, t.reshape(-1, 1)).sum()
    gx, gt = torch.autograd.grad(value, (x, t), create_graph=True)
    lap = sum(
        torch.autograd.grad(gx[:, i].sum(), x, retain_graph=True)[0][:, i]
        for i in range(x.shape[1])
    )
    return torch.cat([gx, gt.reshape(-1, 1)], 1), lap


def _relative(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("n_layers", [1, 2, 3, 5])
@pytest.mark.parametrize("d", [1, 2, 7, 50])
def test_gradient_and_laplacian_equal_autograd(d, n_layers):
    phi = _potential(d, n_layers)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(6, d, generator=gen, dtype=torch.float64)
    t = torch.rand(6, generator=gen, dtype=torch.float64)
    # One time per row goes through the same code as a scalar time.
    grad, lap = phi.gradient_and_laplacian(x, t.reshape(-1, 1))
    grad_ref, lap_ref = _autograd(phi, x, t)
    assert _relative(grad[:, :d], grad_ref[:, :d]) < 1e-8
    # The time derivative feeds the HJB residual.
    assert _relative(grad[:, d], grad_ref[:, d]) < 1e-8
    assert _relative(lap, lap_ref) < 1e-8


def test_scalar_time_broadcasts():
    phi = _potential(3, 2)
    x = torch.randn(4, 3, dtype=torch.float64)
    g_scalar, l_scalar = phi.gradient_and_laplacian(x, 0.3)
    g_rows, l_rows = phi.gradient_and_laplacian(x, torch.full((4, 1), 0.3, dtype=torch.float64))
    torch.testing.assert_close(g_scalar, g_rows)
    torch.testing.assert_close(l_scalar, l_rows)


@pytest.mark.parametrize("d", [7, 50])  # the Jacobian path and the Gram path
def test_sliced_batch_without_autograd_equals_the_whole_batch(d, monkeypatch):
    # Without autograd the residual terms run over slices of the batch; 8 KB
    # slices are 9 rows at d = 7 and 4 at d = 50 (width 16, float64), so
    # 201 rows end on a partial slice.
    monkeypatch.setattr(potential_module, "_CHUNK_BYTES", 2**13)
    phi = _potential(d, 3)
    x = torch.randn(201, d, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    grad_whole, lap_whole = phi.gradient_and_laplacian(x, 0.4)  # weights need grad: one pass
    assert lap_whole.requires_grad
    with torch.no_grad():
        grad_sliced, lap_sliced = phi.gradient_and_laplacian(x, 0.4)
    torch.testing.assert_close(grad_sliced, grad_whole.detach(), rtol=1e-12, atol=0)
    torch.testing.assert_close(lap_sliced, lap_whole.detach(), rtol=1e-12, atol=0)


def test_parameter_gradients_flow_through_the_closed_form():
    # Training differentiates the Laplacian with respect to the weights.
    phi = _potential(4, 3)
    x = torch.randn(5, 4, dtype=torch.float64)
    grad, lap = phi.gradient_and_laplacian(x, 0.5)
    (lap.sum() + grad.square().sum() + phi(x, 0.5).sum()).backward()
    for name, p in phi.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_log_cosh_is_stable_and_exact():
    x = torch.tensor([-1e4, -30.0, -1.0, 0.0, 0.5, 30.0, 1e4], dtype=torch.float64)
    expected = torch.log(torch.cosh(x.clamp(-300, 300)))
    expected[[0, -1]] = 1e4 - torch.log(torch.tensor(2.0, dtype=torch.float64))
    torch.testing.assert_close(log_cosh(x), expected)
