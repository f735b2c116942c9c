"""Log-densities by the change of variables: the divergence and its
integral along a path, then QFlowTransport.score_samples."""

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

import skot._qflow
from skot import QFlowTransport
from skot._log_density import divergence, end_and_log_det
from skot._ode import time_grid

A = torch.tensor([[0.3, -1.0, 0.2], [0.5, -0.4, 0.0], [0.1, 0.7, 0.6]])


def linear_field(x, t):
    return x @ A.T


def test_exact_divergence_of_a_linear_field_is_its_trace():
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    v, div = divergence(linear_field, x, 0.0)
    torch.testing.assert_close(v, linear_field(x, 0.0))
    torch.testing.assert_close(div, torch.full((5,), float(A.trace())))


def test_hutchinson_divergence_is_unbiased():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(20_000, 3, generator=gen)
    probes = 2.0 * torch.randint(0, 2, (1, *x.shape), generator=gen) - 1.0
    _, div = divergence(linear_field, x, 0.0, probes)
    # One Rademacher probe: the estimate's variance is the sum over i != j
    # of (A_ij + A_ji)^2 / 2, here 0.83, so the mean over 20,000 rows has sd
    # 0.0064.
    assert float(div.mean()) == pytest.approx(float(A.trace()), abs=0.04)
    assert float(div.std()) > 0.5  # it is an estimate, not the trace
    # Averaging 16 probes divides the variance by 16.
    probes = 2.0 * torch.randint(0, 2, (16, *x.shape), generator=gen) - 1.0
    _, div16 = divergence(linear_field, x, 0.0, probes)
    assert float(div16.std()) == pytest.approx(float(div.std()) / 4, rel=0.1)


def test_log_determinant_of_a_linear_flow():
    # x' = A x for one unit of time: x(1) = expm(A) x(0), log det = tr(A).
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    field = lambda x, t: x @ A.T.double()  # noqa: E731
    end, log_det = end_and_log_det(field, x, time_grid(4, dtype=torch.float64), 8, exact=True)
    torch.testing.assert_close(end, x @ torch.linalg.matrix_exp(A.double()).T)
    torch.testing.assert_close(log_det, torch.full((4,), float(A.trace()), dtype=torch.float64))


GAUSSIAN_MEAN = np.array([1.0, -2.0])
GAUSSIAN_FACTOR = np.array([[1.5, 0.0], [0.8, 0.5]])


@pytest.fixture(scope="module")
def gaussian_flow():
    rng = np.random.default_rng(30)
    X = rng.standard_normal((4000, 2)) @ GAUSSIAN_FACTOR.T + GAUSSIAN_MEAN
    flow = QFlowTransport(init_max_iter=1000, n_flips=0, random_state=0).fit(X)
    return flow


@pytest.mark.statistical
def test_score_samples_is_a_normalised_density(gaussian_flow):
    # Whatever the flow learnt, the change of variables gives a density
    # that integrates to 1: a wrong sign, a missing scaling or a lost
    # log-determinant breaks this.
    grid = np.linspace(-9, 9, 121)
    points = np.stack(np.meshgrid(grid + 1, grid - 2), -1).reshape(-1, 2)
    integral = np.exp(gaussian_flow.score_samples(points)).sum() * (grid[1] - grid[0]) ** 2
    assert integral == pytest.approx(1.0, abs=0.01)


@pytest.mark.statistical
def test_score_samples_matches_the_closed_form_density(gaussian_flow):
    truth = multivariate_normal(GAUSSIAN_MEAN, GAUSSIAN_FACTOR @ GAUSSIAN_FACTOR.T)
    X_test = truth.rvs(3000, random_state=31)
    log_density = gaussian_flow.score_samples(X_test)
    assert log_density.dtype == np.float64
    # 1000 flow-matching steps on 4000 rows: 0.052 nats measured (0.06 with
    # the former default schedule, 2000 steps at 1e-3; docs/qflow.md); a flow
    # that learnt nothing is off by more than a nat.
    assert np.abs(log_density - truth.logpdf(X_test)).mean() < 0.12


@pytest.mark.statistical
def test_hutchinson_log_density_agrees_with_the_exact_one(gaussian_flow, monkeypatch):
    X_test = np.random.default_rng(32).normal(size=(1000, 2)) + GAUSSIAN_MEAN
    exact = gaussian_flow.score_samples(X_test)
    monkeypatch.setattr(skot._qflow, "EXACT_DIVERGENCE_MAX_FEATURES", 0)
    estimate = gaussian_flow.score_samples(X_test)
    np.testing.assert_array_equal(estimate, gaussian_flow.score_samples(X_test))  # seeded
    error = estimate - exact
    # One probe per row gave a standard deviation of 1.2 nats; sixteen
    # divide it by four.
    assert abs(error.mean()) < 0.04  # unbiased: the mean of 1000 rows
    assert 0 < error.std() < 0.4


def test_score_samples_needs_a_flow_to_the_standard_normal():
    rng = np.random.default_rng(33)
    X, Y = rng.normal(size=(100, 2)), rng.normal(2.0, 1.0, size=(100, 2))
    flow = QFlowTransport(init_max_iter=5, n_flips=0, random_state=0).fit(X, Y)
    assert not hasattr(flow, "score_samples")
    with pytest.raises(AttributeError, match="score_samples") as error:
        flow.score_samples(X)
    assert "needs a flow to N(0, I)" in str(error.value.__cause__)
    flow.fit(X, np.zeros(100))  # labels, as a Pipeline passes: Q = N(0, I)
    assert flow.normalizing_flow_
    assert np.isfinite(flow.score_samples(X)).all()
