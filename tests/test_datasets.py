import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.special import ndtri
from scipy.stats import multivariate_normal, multivariate_t

from skot.datasets import (
    TOY_2D,
    GaussianOT,
    make_2d,
    make_brenier_ot,
    make_correlated_gaussians,
    make_gaussian_ot,
    make_student_t_pair,
    make_transformed_gaussians,
)


@pytest.mark.parametrize("d", [1, 2, 10])
def test_gaussian_map_pushes_p_onto_q(d):
    _, _, problem = make_gaussian_ot(10, d, random_state=d)
    A = problem.matrix
    np.testing.assert_allclose(A, A.T, atol=1e-10)
    assert np.linalg.eigvalsh(A).min() > 0  # gradient of a convex function
    np.testing.assert_allclose(A @ problem.cov_p @ A.T, problem.cov_q, atol=1e-9)


def test_w2_matches_the_map_cost_and_one_dimensional_formula():
    _, _, problem = make_gaussian_ot(10, 5, random_state=0)
    # E||T(x) - x||^2 for x ~ P, computed in closed form
    A, S = problem.matrix, problem.cov_p
    I = np.eye(5)
    shift = problem.mean_q - problem.mean_p
    cost = shift @ shift + np.trace((A - I) @ S @ (A - I).T)
    assert problem.w2_squared == pytest.approx(cost, rel=1e-9)
    _, _, p1 = make_gaussian_ot(10, 1, random_state=0)
    s_p, s_q = np.sqrt(p1.cov_p[0, 0]), np.sqrt(p1.cov_q[0, 0])
    expected = (p1.mean_q[0] - p1.mean_p[0]) ** 2 + (s_p - s_q) ** 2
    assert p1.w2_squared == pytest.approx(expected, rel=1e-9)


def test_seeded_and_sized():
    X1, Y1, _ = make_gaussian_ot(7, 3, n_target_samples=5, random_state=0)
    X2, Y2, _ = make_gaussian_ot(7, 3, n_target_samples=5, random_state=0)
    assert X1.shape == (7, 3) and Y1.shape == (5, 3)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(Y1, Y2)


@pytest.mark.parametrize("name", sorted(TOY_2D))
def test_toy_distributions(name):
    a = make_2d(name, 500, random_state=0)
    assert a.shape == (500, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, make_2d(name, 500, random_state=0))
    assert np.abs(a).max() < 10


def test_moons_rows_are_shuffled():
    # a prefix of the rows must be a sample of the whole distribution
    head = make_2d("moons", 1000, random_state=0)[:100]
    assert 20 < (head[:, 1] > 0).sum() < 80


def test_25_gaussians_sit_on_the_grid():
    a = make_2d("25gaussians", 2000, random_state=0)
    nearest = np.round(a / 3) * 3
    assert np.abs(a - nearest).max() < 0.5
    assert len(np.unique(nearest, axis=0)) == 25


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown 2-D distribution 'blob'"):
        make_2d("blob")


# ------------------------------------------------------- make_brenier_ot


@pytest.mark.parametrize("source", ["mixture", "gaussian", "student_t"])
@pytest.mark.parametrize("d", [1, 3])
def test_brenier_map_is_the_gradient_of_a_convex_potential(source, d):
    X, _, problem = make_brenier_ot(50, d, source=source, random_state=7)
    eps = 1e-5
    steps = eps * np.eye(d)
    gradient = np.stack(
        [(problem.potential(X + e) - problem.potential(X - e)) / (2 * eps) for e in steps], 1
    )
    np.testing.assert_allclose(problem.transport(X), gradient, rtol=1e-5, atol=1e-5)
    jacobian = problem.jacobian(X)
    numeric = np.stack(
        [(problem.transport(X + e) - problem.transport(X - e)) / (2 * eps) for e in steps], 2
    )
    np.testing.assert_allclose(jacobian, numeric, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jacobian, jacobian.transpose(0, 2, 1), atol=1e-12)
    assert np.linalg.eigvalsh(jacobian).min() > 0


@pytest.mark.parametrize("source", ["mixture", "student_t"])
def test_brenier_map_is_optimal_between_a_sample_and_its_image(source):
    # A gradient of a convex function is cyclically monotone, so pairing each
    # row with its own image is the exact discrete OT plan between the two.
    X, _, problem = make_brenier_ot(300, 4, source=source, random_state=3)
    Y = problem.transport(X)
    cost = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    np.testing.assert_array_equal(cols[np.argsort(rows)], np.arange(len(X)))
    # ...and the map is far from the affine one that best fits it
    affine = np.c_[X, np.ones(len(X))]
    residual = Y - affine @ np.linalg.lstsq(affine, Y, rcond=None)[0]
    assert residual.var(0).sum() > 0.02 * Y.var(0).sum()


def test_brenier_w2_and_variance_match_the_gaussian_closed_form():
    # One piece and a Gaussian source: an affine map, so Q is Gaussian and
    # the Monte Carlo figures must agree with the closed forms.
    _, _, problem = make_brenier_ot(10, 3, source="gaussian", n_pieces=1, random_state=1)
    A, b, mu = problem.matrices[0], problem.shifts[0], problem.center
    cov_p = problem.source.covs[0]
    gaussian = GaussianOT(
        mean_p=np.zeros(3), cov_p=cov_p, mean_q=mu + b - A @ mu, cov_q=A @ cov_p @ A
    )
    np.testing.assert_allclose(problem.transport(np.zeros((1, 3)))[0], gaussian.mean_q)
    tolerance = 4 * problem.w2_squared_stderr
    assert problem.w2_squared == pytest.approx(gaussian.w2_squared, abs=tolerance)
    assert problem.target_variance == pytest.approx(gaussian.target_variance, rel=0.01)


def test_brenier_pair_is_seeded_sized_and_pushed_forward():
    X1, Y1, p1 = make_brenier_ot(40, 2, n_target_samples=30, random_state=0)
    X2, Y2, _ = make_brenier_ot(40, 2, n_target_samples=30, random_state=0)
    assert X1.shape == (40, 2) and Y1.shape == (30, 2)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(Y1, Y2)
    np.testing.assert_allclose(p1.sample_q(20, 5), p1.transport(p1.sample_p(20, 5)))
    # the mixture's weights are unequal (Dirichlet, not uniform)
    assert p1.source.weights.std() > 0
    assert p1.w2_squared > 0 and p1.w2_squared_stderr < 0.01 * p1.w2_squared
    # spread=0: every piece is the identity, and so is the map
    X0, _, p0 = make_brenier_ot(40, 3, spread=0.0, random_state=0)
    np.testing.assert_allclose(p0.transport(X0), X0, atol=1e-12)
    assert p0.sharpness == 1.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"source": "cauchy"}, "source must be"),
        ({"n_features": 0}, "n_features must be"),
        ({"n_pieces": 0}, "n_pieces must be"),
        ({"n_components": 0}, "n_components must be"),
        ({"spread": -1.0}, "spread must be"),
        ({"spread": float("nan")}, "spread must be"),
    ],
)
def test_brenier_bad_parameters_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_brenier_ot(10, **kwargs)


# --------------------------------------------------- mutual-information pairs


def _block_scale(k, rho, n_dependent):
    """The (2k, 2k) correlation matrix of [X, Y] with the first n_dependent
    blocks correlated by rho."""
    scale = np.eye(2 * k)
    for b in range(n_dependent):
        scale[b, k + b] = scale[k + b, b] = rho
    return scale


def _monte_carlo_mi(X, Y, joint, marginal_x, marginal_y):
    """Mean and standard error of log p(x, y) - log p(x) - log p(y)."""
    log_ratio = joint.logpdf(np.hstack([X, Y])) - marginal_x.logpdf(X) - marginal_y.logpdf(Y)
    return log_ratio.mean(), log_ratio.std() / np.sqrt(len(log_ratio))


@pytest.mark.parametrize(
    "n_features, rho, n_dependent", [(4, None, None), (20, 0.9, 2), (50, 0.3, None)]
)
def test_correlated_gaussian_mi_is_the_mean_log_ratio_of_its_rows(n_features, rho, n_dependent):
    # The closed form against a Monte Carlo average of the exact log ratio
    # over the rows themselves: a wrong formula, or rows drawn with other
    # correlations than the formula assumes, miss it.
    X, Y, mi = make_correlated_gaussians(
        200_000, n_features, rho=rho, n_dependent=n_dependent, random_state=1
    )
    k = n_features // 2
    r = np.sqrt(1 - np.exp(-1.0)) if rho is None else rho
    scale = _block_scale(k, r, k if n_dependent is None else n_dependent)
    estimate, stderr = _monte_carlo_mi(
        X,
        Y,
        multivariate_normal(np.zeros(2 * k), scale),
        multivariate_normal(np.zeros(k), np.eye(k)),
        multivariate_normal(np.zeros(k), np.eye(k)),
    )
    assert abs(estimate - mi) < 4 * stderr + 1e-3


@pytest.mark.parametrize(
    "n_features, df, rho, n_dependent", [(4, 1.0, 0.0, None), (6, 3.0, 0.6, 2), (2, 0.5, 0.3, None)]
)
def test_student_t_mi_is_the_mean_log_ratio_of_its_rows(n_features, df, rho, n_dependent):
    X, Y, mi = make_student_t_pair(
        200_000, n_features, df=df, rho=rho, n_dependent=n_dependent, random_state=2
    )
    k = n_features // 2
    scale = _block_scale(k, rho, k if n_dependent is None else n_dependent)
    estimate, stderr = _monte_carlo_mi(
        X,
        Y,
        multivariate_t(np.zeros(2 * k), scale, df=df),
        multivariate_t(np.zeros(k), np.eye(k), df=df),
        multivariate_t(np.zeros(k), np.eye(k), df=df),
    )
    assert abs(estimate - mi) < 4 * stderr + 1e-3


def test_student_t_pair_tends_to_its_gaussian_pair():
    # Heavy tails add dependence; with many degrees of freedom the shared
    # scale is near 1 and both the rows and the MI are the Gaussian ones.
    _, _, heavy = make_student_t_pair(10, 8, df=1.0, rho=0.5, random_state=0)
    Xt, Yt, light = make_student_t_pair(10, 8, df=1e8, rho=0.5, random_state=0)
    Xg, Yg, gaussian = make_correlated_gaussians(10, 8, rho=0.5, random_state=0)
    assert light == pytest.approx(gaussian, abs=1e-6)
    assert heavy > gaussian + 0.1
    np.testing.assert_allclose(Xt, Xg, rtol=1e-3)
    np.testing.assert_allclose(Yt, Yg, rtol=1e-3)


_INVERSES = {
    "identity": lambda a: a,
    "asinh": np.sinh,
    "cube": np.cbrt,
    "normal_cdf": ndtri,
}


def _unswirl(a):
    angle = -(a[:, 0] ** 2 + a[:, 1] ** 2)
    out = a.copy()
    out[:, 0] = np.cos(angle) * a[:, 0] - np.sin(angle) * a[:, 1]
    out[:, 1] = np.sin(angle) * a[:, 0] + np.cos(angle) * a[:, 1]
    return out


_INVERSES["swirl"] = _unswirl


@pytest.mark.parametrize(
    "transform", ["identity", "asinh", "cube", "normal_cdf", "swirl", ("swirl", "cube")]
)
def test_transformed_gaussians_are_invertible_maps_of_each_side(transform):
    # MI is invariant under an invertible map of X alone and of Y alone:
    # undoing each side's map must give back the Gaussian pair of the same
    # seed, whose MI is the one returned.
    X, Y, mi = make_transformed_gaussians(300, 6, transform=transform, rho=0.7, random_state=3)
    Xg, Yg, gaussian = make_correlated_gaussians(300, 6, rho=0.7, random_state=3)
    name_x, name_y = (transform, transform) if isinstance(transform, str) else transform
    np.testing.assert_allclose(_INVERSES[name_x](X), Xg, atol=1e-8)
    np.testing.assert_allclose(_INVERSES[name_y](Y), Yg, atol=1e-8)
    assert mi == gaussian
    if name_x != "identity":
        assert np.abs(X - Xg).max() > 0.1  # the law did change


def test_swirl_turns_by_the_squared_radius():
    X, _, _ = make_transformed_gaussians(200, 4, transform="swirl", random_state=4)
    Xg, _, _ = make_correlated_gaussians(200, 4, random_state=4)
    radius2 = (Xg**2).sum(axis=1)
    np.testing.assert_allclose((X**2).sum(axis=1), radius2)  # a rotation
    turned = np.angle(X[:, 0] + 1j * X[:, 1]) - np.angle(Xg[:, 0] + 1j * Xg[:, 1])
    np.testing.assert_allclose(np.angle(np.exp(1j * (turned - radius2))), 0, atol=1e-9)


def test_sparse_dependence_leaves_the_other_blocks_independent():
    X, Y, mi = make_correlated_gaussians(50_000, 10, rho=0.8, n_dependent=2, random_state=5)
    corr = np.corrcoef(X.T, Y.T)[:5, 5:]
    np.testing.assert_allclose(np.diag(corr)[:2], 0.8, atol=0.01)
    np.testing.assert_allclose(np.diag(corr)[2:], 0, atol=0.02)
    assert mi == pytest.approx(-np.log(1 - 0.64))


@pytest.mark.parametrize(
    "make, kwargs, message",
    [
        (make_correlated_gaussians, {"n_features": 5}, "n_features must be"),
        (make_correlated_gaussians, {"n_features": 4, "n_dependent": 3}, "n_dependent must be"),
        (make_correlated_gaussians, {"n_features": 4, "n_dependent": -1}, "n_dependent must be"),
        (make_correlated_gaussians, {"n_features": 4, "rho": 1.0}, "rho must lie"),
        (make_transformed_gaussians, {"transform": "log"}, "transform must be one of"),
        (make_transformed_gaussians, {"transform": ("cube",)}, "transform must be one of"),
        (make_transformed_gaussians, {"n_features": 2, "transform": "swirl"}, "at least 4"),
        (make_student_t_pair, {"df": 0.0}, "df must be"),
        (make_student_t_pair, {"df": float("inf")}, "df must be"),
        (make_student_t_pair, {"rho": -1.5}, "rho must lie"),
    ],
)
def test_mi_pairs_bad_parameters_are_clear_errors(make, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(10, **kwargs)
