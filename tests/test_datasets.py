import numpy as np
import pytest

from skot.datasets import TOY_2D, make_2d, make_gaussian_ot


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
