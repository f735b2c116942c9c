"""The Gaussian OT map's velocity: the closed-form map it integrates to, its
fit from samples, and QFlowTransport(baseline="gaussian") around it."""

import pickle

import numpy as np
import pytest
import torch

from skot import QFlowTransport
from skot._gaussian_flow import GaussianOTVelocity, fit_gaussian_ot
from skot._ode import integrate
from skot.datasets import make_gaussian_ot
from skot.metrics import l2_uvp


class _Zero(torch.nn.Module):
    """A field of zero velocity, so that the baseline alone moves the rows."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, z, t):
        return torch.zeros_like(z)


def _random_spd(rng, d):
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (Q * np.exp(rng.uniform(-1, 1, d))) @ Q.T


def _bures_map(Sp, Sq):
    """The closed form through scipy's matrix square root, independent of
    the module's eigendecompositions."""
    from scipy.linalg import sqrtm

    root = sqrtm(Sp).real
    inverse_root = np.linalg.inv(root)
    return inverse_root @ sqrtm(root @ Sq @ root).real @ inverse_root


def test_the_velocity_integrates_to_the_affine_map_between_the_gaussians():
    rng = np.random.default_rng(0)
    d = 5
    Sp, Sq = _random_spd(rng, d), _random_spd(rng, d)
    mp, mq = rng.normal(size=d), rng.normal(size=d)
    A = _bures_map(Sp, Sq)
    values, vectors = np.linalg.eigh(0.5 * (A + A.T))
    params = dict(mean_p=mp, mean_q=mq, eigenvectors=vectors, eigenvalues=values)
    field = GaussianOTVelocity(_Zero(), params).double()
    x = torch.as_tensor(rng.normal(size=(100, d)))
    grid = torch.linspace(0, 1, 5, dtype=torch.float64)
    end = integrate(field, x, grid, 8)[-1].numpy()
    expected = mq + (x.numpy() - mp) @ A.T
    np.testing.assert_allclose(end, expected, atol=1e-6)
    # The displacement interpolation: halfway, halfway between x and T(x).
    middle = integrate(field, x, grid[:3], 8)[-1].numpy()
    np.testing.assert_allclose(middle, 0.5 * (x.numpy() + expected), atol=1e-6)


def test_trailing_class_columns_get_no_velocity():
    rng = np.random.default_rng(1)
    params = fit_gaussian_ot(
        (torch.as_tensor(rng.normal(size=(500, 3))), None),
        (torch.as_tensor(2.0 + 0.5 * rng.normal(size=(500, 3))), None),
    )
    field = GaussianOTVelocity(_Zero(), params).double()
    z = torch.cat([torch.as_tensor(rng.normal(size=(10, 3))), torch.eye(2)[[0, 1] * 5]], 1)
    v = field(z, 0.3)
    assert torch.all(v[:, 3:] == 0)
    assert torch.all(v[:, :3].abs().sum(1) > 0)


def test_the_map_fitted_to_samples_is_the_closed_form_one():
    rng = np.random.default_rng(2)
    d = 4
    Sp, Sq = _random_spd(rng, d), _random_spd(rng, d)
    mp, mq = rng.normal(size=d), rng.normal(size=d)
    n = 200_000
    X = rng.multivariate_normal(mp, Sp, size=n)
    Y = rng.multivariate_normal(mq, Sq, size=n)
    params = fit_gaussian_ot((torch.as_tensor(X), None), (torch.as_tensor(Y), None))
    vectors, values = params["eigenvectors"], params["eigenvalues"]
    A = (vectors * values) @ vectors.T
    np.testing.assert_allclose(A, _bures_map(Sp, Sq), atol=0.02)
    np.testing.assert_allclose(params["mean_p"], mp, atol=0.02)
    np.testing.assert_allclose(params["mean_q"], mq, atol=0.02)


def test_the_plain_covariance_from_twice_as_many_rows_as_features():
    # The plug-in map, unshrunk, where the rows suffice; Ledoit-Wolf's
    # below, where the plain covariance would be near singular.
    rng = np.random.default_rng(3)
    d = 20

    def fitted_and_plug_in(n):
        X = rng.normal(size=(n, d))
        Y = 1.0 + rng.normal(size=(n, d)) @ _random_spd(rng, d)
        params = fit_gaussian_ot((torch.as_tensor(X), None), (torch.as_tensor(Y), None))
        A = (params["eigenvectors"] * params["eigenvalues"]) @ params["eigenvectors"].T
        return A, _bures_map(np.cov(X.T, bias=True), np.cov(Y.T, bias=True))

    A, plug_in = fitted_and_plug_in(2 * d)
    np.testing.assert_allclose(A, plug_in, atol=1e-4)
    A, plug_in = fitted_and_plug_in(2 * d - 1)
    assert np.abs(A - plug_in).max() > 0.1


def _gaussian_pair(d, seed):
    X, Y, problem = make_gaussian_ot(4000, d, random_state=seed)
    X_test = problem.sample_p(2000, random_state=seed + 1)
    return X, Y, problem, X_test


def test_with_no_training_the_flow_is_the_gaussian_map():
    # Zero steps of either stage: the fitted flow is the baseline's map,
    # which on a Gaussian pair is the OT map up to the sampling error of
    # 4,000 rows in 16 dimensions; without the baseline it barely moves.
    X, Y, problem, X_test = _gaussian_pair(16, seed=23)
    params = dict(init_max_iter=0, n_flips=0, random_state=0)
    truth = problem.transport(X_test), problem.target_variance
    with_baseline = QFlowTransport(baseline="gaussian", **params).fit(X, Y)
    without = QFlowTransport(**params).fit(X, Y)
    # Measured: 0.573 and 74.2.
    assert l2_uvp(with_baseline.transform(X_test), *truth) < 1.0
    assert l2_uvp(without.transform(X_test), *truth) > 50
    back = with_baseline.inverse_transform(with_baseline.transform(X_test))
    np.testing.assert_allclose(back, X_test, atol=1e-3)


@pytest.mark.statistical
def test_the_baseline_lowers_the_map_error_in_high_dimension():
    # A short initialisation in 64 dimensions: the network alone has not
    # learnt the full-rank affine map yet, and with the baseline it only
    # learns the (minibatch coupling's) departure from it.
    X, Y, problem, X_test = _gaussian_pair(64, seed=26)
    # One width for both, so that only the baseline differs ("auto" would
    # widen the field with the baseline).
    params = dict(init_max_iter=500, n_flips=0, hidden_layer_sizes=(128,) * 3, random_state=0)
    truth = problem.transport(X_test), problem.target_variance
    errors = [
        l2_uvp(QFlowTransport(baseline=b, **params).fit(X, Y).transform(X_test), *truth)
        for b in (None, "gaussian")
    ]
    # Measured: 4.32 without the baseline, 2.11 with it (4.33 and 2.09 on
    # the machine of 2026-12-03's first session; in 32 dimensions 1.77 and
    # 1.34).
    assert errors[1] < 0.7 * errors[0], errors


def test_a_warm_start_keeps_the_first_baseline_and_old_pickles_still_map():
    X, Y, _, X_test = _gaussian_pair(3, seed=24)
    est = QFlowTransport(
        baseline="gaussian", init_max_iter=20, max_iter=2, classifier_warmup=5, random_state=0
    ).fit(X, Y)
    first = {k: v.copy() for k, v in est.baseline_.items()}
    est.set_params(warm_start=True).fit(X[:1000] + 5.0, Y[:1000])
    for key, value in first.items():
        np.testing.assert_array_equal(est.baseline_[key], value)
    plain = QFlowTransport(init_max_iter=20, n_flips=0, random_state=0).fit(X, Y)
    old = pickle.loads(pickle.dumps(plain))
    del old.__dict__["baseline_"]
    np.testing.assert_array_equal(old.transform(X_test), plain.transform(X_test))


def test_the_baseline_needs_an_ot_cfm_initialisation():
    X, Y, _, _ = _gaussian_pair(2, seed=25)
    with pytest.raises(ValueError, match="init='ot-cfm' or baseline=None"):
        QFlowTransport(baseline="gaussian", init="otflow").fit(X, Y)


def _first_width(est):
    """Units of the fitted velocity network's first linear layer."""
    return next(m for m in est.velocity_.modules() if isinstance(m, torch.nn.Linear)).out_features


def test_auto_adds_the_baseline_and_widens_the_field_from_32_features():
    # Zero training steps: the fitted flow is whatever the baseline rule put
    # there. "auto" is "gaussian" from 32 features on, with a field of at
    # least 256 units, and None below 32 and with init="otflow".
    params = dict(init_max_iter=0, n_flips=0, random_state=0)
    for d, expected, width in ((31, False, 128), (32, True, 256)):
        X, Y, _, X_test = _gaussian_pair(d, seed=27)
        auto = QFlowTransport(**params).fit(X, Y)
        assert (auto.baseline_ is not None) is expected, d
        assert _first_width(auto) == width, d
        same = QFlowTransport(
            baseline="gaussian" if expected else None, hidden_layer_sizes=(width,) * 3, **params
        ).fit(X, Y)
        np.testing.assert_array_equal(auto.transform(X_test), same.transform(X_test))
    otflow = QFlowTransport(init="otflow", init_params={"max_iter": 1}, **params).fit(X, Y)
    assert otflow.baseline_ is None
    # Without the baseline the field keeps the full-rank width, 128 here.
    assert _first_width(QFlowTransport(baseline=None, **params).fit(X, Y)) == 128


def test_a_column_constant_in_one_sample_keeps_the_gain_bounded():
    # A constant column makes the source covariance singular, and the
    # plug-in map's gain along it unbounded: rows 0.01 off the constant
    # were sent 15.7 away. The map's eigenvalues are held within [1/30, 30].
    rng = np.random.RandomState(0)
    X, Y = rng.randn(1000, 8), 1.5 * rng.randn(1000, 8) + 1.0
    X[:, 3] = 0.0
    Y[:, 5] = 2.0  # and a column constant in the target
    est = QFlowTransport(baseline="gaussian", init_max_iter=0, n_flips=0, random_state=0)
    est.fit(X, Y)
    eigenvalues = est.baseline_["eigenvalues"]
    assert eigenvalues.min() >= 1 / 30 - 1e-12 and eigenvalues.max() <= 30 + 1e-12
    off = X[:20].copy()
    off[:, 3] = 0.01
    moved = np.abs(est.transform(off) - est.transform(X[:20])).max()
    # Measured: 0.30 (15.7 without the bound).
    assert moved < 0.5, moved
    assert np.isfinite(est.inverse_transform(Y[:20])).all()
