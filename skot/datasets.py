"""Problems with closed-form answers, seeded by ``random_state``.

- :func:`make_gaussian_ot`: two Gaussians with their exact (linear) OT map and
  squared W2 distance.
- :func:`make_mixture_pair`: two Gaussian mixtures with closed-form densities,
  hence a closed-form log ratio.
- :func:`make_correlated_gaussians`: paired Gaussian vectors made of
  correlated 2x2 blocks, with closed-form mutual information.
- :func:`make_2d`: the usual 2-D test distributions (moons, checkerboard,
  8 Gaussians, 25 Gaussians, two circles, rings, spirals).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import sqrtm
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.utils import check_random_state

__all__ = [
    "TOY_2D",
    "GaussianMixture",
    "GaussianOT",
    "make_2d",
    "make_correlated_gaussians",
    "make_gaussian_ot",
    "make_mixture_pair",
]


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


@dataclass(frozen=True)
class GaussianOT:
    r"""Two Gaussians P = N(m_p, S_p), Q = N(m_q, S_q) and their OT solution.

    The optimal map for the squared Euclidean cost is affine,
    :math:`T^\star(x) = m_q + A (x - m_p)` with
    :math:`A = S_p^{-1/2} (S_p^{1/2} S_q S_p^{1/2})^{1/2} S_p^{-1/2}`, and

    .. math::
        W_2^2(P, Q) = \|m_p - m_q\|^2 + \operatorname{tr}\big(S_p + S_q
        - 2 (S_p^{1/2} S_q S_p^{1/2})^{1/2}\big).
    """

    mean_p: np.ndarray
    cov_p: np.ndarray
    mean_q: np.ndarray
    cov_q: np.ndarray

    @property
    def matrix(self) -> np.ndarray:
        """The linear part ``A`` of the OT map (symmetric positive definite)."""
        root = _psd_sqrt(self.cov_p)
        inv_root = np.linalg.inv(root)
        return inv_root @ _psd_sqrt(root @ self.cov_q @ root) @ inv_root

    def transport(self, X) -> np.ndarray:
        """The exact OT map applied to the rows of ``X``."""
        return self.mean_q + (np.asarray(X, np.float64) - self.mean_p) @ self.matrix.T

    @property
    def w2_squared(self) -> float:
        """Exact squared W2 distance between P and Q."""
        root = _psd_sqrt(self.cov_p)
        cross = np.real(sqrtm(root @ self.cov_q @ root))
        shift = ((self.mean_p - self.mean_q) ** 2).sum()
        return float(shift + np.trace(self.cov_p + self.cov_q - 2 * cross))

    @property
    def target_variance(self) -> float:
        """Total variance of Q, ``trace(S_q)``: the denominator of L2-UVP."""
        return float(np.trace(self.cov_q))

    def sample_p(self, n_samples: int, random_state=None) -> np.ndarray:
        return check_random_state(random_state).multivariate_normal(
            self.mean_p, self.cov_p, size=n_samples
        )

    def sample_q(self, n_samples: int, random_state=None) -> np.ndarray:
        return check_random_state(random_state).multivariate_normal(
            self.mean_q, self.cov_q, size=n_samples
        )


def _random_covariance(d: int, rng, spread: float) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    eig = np.exp(rng.uniform(-spread, spread, size=d))
    return (q * eig) @ q.T


def make_gaussian_ot(
    n_samples: int = 1000,
    n_features: int = 2,
    *,
    n_target_samples: int | None = None,
    shift: float = 1.0,
    spread: float = 1.0,
    random_state=None,
):
    """Samples of two anisotropic Gaussians and their exact OT solution.

    Parameters
    ----------
    n_samples : int, default=1000
        Rows drawn from P.
    n_features : int, default=2
        Dimension.
    n_target_samples : int, default=None
        Rows drawn from Q; ``n_samples`` when None.
    shift : float, default=1.0
        Standard deviation of each coordinate of the mean of Q (P is centred).
    spread : float, default=1.0
        Covariance eigenvalues are ``exp(U(-spread, spread))`` in random
        orthonormal bases, so condition numbers reach ``exp(2 * spread)``.
    random_state : int, RandomState instance or None, default=None
        Seeds the problem and the samples.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Sample of P.
    Y : ndarray of shape (n_target_samples, n_features)
        Sample of Q.
    problem : GaussianOT
        The two distributions, with ``transport``, ``w2_squared`` and
        ``target_variance``.

    Examples
    --------
    >>> from skot.datasets import make_gaussian_ot
    >>> X, Y, problem = make_gaussian_ot(500, 3, random_state=0)
    >>> X.shape, Y.shape, problem.transport(X).shape
    ((500, 3), (500, 3), (500, 3))
    """
    rng = check_random_state(random_state)
    d = int(n_features)
    problem = GaussianOT(
        mean_p=np.zeros(d),
        cov_p=_random_covariance(d, rng, spread),
        mean_q=shift * rng.standard_normal(d),
        cov_q=_random_covariance(d, rng, spread),
    )
    m = n_samples if n_target_samples is None else n_target_samples
    return problem.sample_p(n_samples, rng), problem.sample_q(m, rng), problem


@dataclass(frozen=True)
class GaussianMixture:
    """A Gaussian mixture with closed-form log-density."""

    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray

    def sample(self, n_samples: int, random_state=None) -> np.ndarray:
        rng = check_random_state(random_state)
        counts = rng.multinomial(n_samples, self.weights)
        parts = [
            rng.multivariate_normal(m, c, size=k)
            for m, c, k in zip(self.means, self.covs, counts, strict=True)
        ]
        return np.concatenate(parts)[rng.permutation(n_samples)]

    def logpdf(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        logs = [
            np.log(w) + multivariate_normal(m, c).logpdf(X).reshape(len(X))
            for w, m, c in zip(self.weights, self.means, self.covs, strict=True)
        ]
        return logsumexp(np.stack(logs), axis=0)


def make_mixture_pair(n_samples: int = 1000, *, n_target_samples=None, random_state=None):
    """Samples of two 2-D Gaussian mixtures, P with three components and Q with two.

    The setting of Q-flow's density-ratio experiment: the log ratio
    ``Q.logpdf(x) - P.logpdf(x)`` is known in closed form.

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
        Sample of P.
    Y : ndarray of shape (n_target_samples, 2)
        Sample of Q.
    (P, Q) : tuple of GaussianMixture

    Examples
    --------
    >>> from skot.datasets import make_mixture_pair
    >>> X, Y, (P, Q) = make_mixture_pair(100, random_state=0)
    >>> (Q.logpdf(X) - P.logpdf(X)).shape
    (100,)
    """
    rng = check_random_state(random_state)
    eye = np.eye(2)
    P = GaussianMixture(
        weights=np.full(3, 1 / 3),
        means=np.array([[-2.0, -1.0], [0.0, 2.0], [2.0, -1.0]]),
        covs=np.stack([0.5 * eye, np.diag([0.8, 0.3]), 0.5 * eye]),
    )
    Q = GaussianMixture(
        weights=np.array([0.5, 0.5]),
        means=np.array([[-1.0, 0.5], [1.5, 1.0]]),
        covs=np.stack([np.diag([0.4, 1.2]), np.array([[0.6, 0.3], [0.3, 0.6]])]),
    )
    m = n_samples if n_target_samples is None else n_target_samples
    return P.sample(n_samples, rng), Q.sample(m, rng), (P, Q)


def make_correlated_gaussians(
    n_samples: int = 1000, n_features: int = 10, *, rho=None, random_state=None
):
    r"""Paired Gaussian vectors with closed-form mutual information.

    The mutual-information benchmark of TRE, DRE-infinity and Q-flow: a
    ``n_features``-dimensional standard Gaussian made of ``n_features / 2``
    independent 2x2 blocks with correlation ``rho``; X holds the first
    coordinate of each block and Y the second, so

    .. math::
        I(X; Y) = -\frac{d}{4} \log(1 - \rho^2),

    which is ``d / 4`` nats for the default :math:`\rho = \sqrt{1 - e^{-1}}`.

    Parameters
    ----------
    n_samples : int, default=1000
    n_features : int, default=10
        Total dimension ``d`` of the pair (even); X and Y have ``d / 2``
        columns each.
    rho : float or None, default=None
        Correlation within each block, in (-1, 1); ``sqrt(1 - 1/e)`` when None.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    X : ndarray of shape (n_samples, n_features // 2)
    Y : ndarray of shape (n_samples, n_features // 2)
    mutual_information : float
        The exact :math:`I(X; Y)` in nats.

    Examples
    --------
    >>> from skot.datasets import make_correlated_gaussians
    >>> X, Y, mi = make_correlated_gaussians(100, 40, random_state=0)
    >>> X.shape, Y.shape, round(mi, 6)
    ((100, 20), (100, 20), 10.0)
    """
    if n_features < 2 or n_features % 2:
        raise ValueError(f"n_features must be a positive even integer, got {n_features!r}.")
    rho = float(np.sqrt(1 - np.exp(-1.0))) if rho is None else float(rho)
    if not -1 < rho < 1:
        raise ValueError(f"rho must lie in (-1, 1), got {rho!r}.")
    rng = check_random_state(random_state)
    k = n_features // 2
    X = rng.standard_normal((n_samples, k))
    Y = rho * X + np.sqrt(1 - rho**2) * rng.standard_normal((n_samples, k))
    return X, Y, float(-0.25 * n_features * np.log1p(-(rho**2)))


def _moons(n, rng):
    n1 = n // 2
    a = np.pi * rng.uniform(size=n1)
    b = np.pi * rng.uniform(size=n - n1)
    upper = np.c_[np.cos(a), np.sin(a)]
    lower = np.c_[1 - np.cos(b), 0.5 - np.sin(b)]
    x = np.r_[upper, lower] + 0.1 * rng.standard_normal((n, 2))
    return 2.0 * (x - [0.5, 0.25])[rng.permutation(n)]  # rows in random order


def _checkerboard(n, rng):
    x1 = 4 * rng.uniform(size=n) - 2
    x2 = rng.uniform(size=n) - 2 * rng.randint(0, 2, size=n) + np.floor(x1) % 2
    return 2.0 * np.c_[x1, x2 - 0.5]


def _gaussians8(n, rng):
    angles = 2 * np.pi * np.arange(8) / 8
    centers = 2 * np.sqrt(2) * np.c_[np.cos(angles), np.sin(angles)]
    return centers[rng.randint(0, 8, size=n)] + 0.35 * rng.standard_normal((n, 2))


def _gaussians25(n, rng):
    grid = np.array([-6.0, -3.0, 0.0, 3.0, 6.0])
    centers = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)
    return centers[rng.randint(0, 25, size=n)] + np.sqrt(0.005) * rng.standard_normal((n, 2))


def _circles(n, rng):
    radius = np.where(rng.uniform(size=n) < 0.5, 4.0, 8.0)
    angle = 2 * np.pi * rng.uniform(size=n)
    x = radius[:, None] * np.c_[np.cos(angle), np.sin(angle)]
    return x + 0.2 * rng.standard_normal((n, 2))


def _rings(n, rng):
    radius = rng.choice([1.0, 2.0, 3.0, 4.0], size=n)
    angle = 2 * np.pi * rng.uniform(size=n)
    x = radius[:, None] * np.c_[np.cos(angle), np.sin(angle)]
    return x + 0.08 * rng.standard_normal((n, 2))


def _spirals(n, rng):
    s = np.sqrt(rng.uniform(size=n)) * 540 * (2 * np.pi) / 360
    sign = np.where(rng.uniform(size=n) < 0.5, 1.0, -1.0)
    x = sign[:, None] * np.c_[-np.cos(s) * s, np.sin(s) * s]
    return x / 3 + 0.1 * rng.standard_normal((n, 2))


TOY_2D = {
    "moons": _moons,
    "checkerboard": _checkerboard,
    "8gaussians": _gaussians8,
    "25gaussians": _gaussians25,
    "circles": _circles,
    "rings": _rings,
    "spirals": _spirals,
}


def make_2d(name: str, n_samples: int = 1000, *, random_state=None) -> np.ndarray:
    """A sample of a named 2-D test distribution.

    Parameters
    ----------
    name : {"moons", "checkerboard", "8gaussians", "25gaussians", "circles", \
            "rings", "spirals"}
        ``"25gaussians"`` is the grid ``{-6, -3, 0, 3, 6}^2`` with covariance
        ``0.005 I``; ``"circles"`` has radii 4 and 8 with noise 0.2; the others
        fit in about ``[-4, 4]^2``.
    n_samples : int, default=1000
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    ndarray of shape (n_samples, 2)

    Examples
    --------
    >>> from skot.datasets import make_2d
    >>> make_2d("checkerboard", 5, random_state=0).shape
    (5, 2)
    """
    if name not in TOY_2D:
        raise ValueError(f"Unknown 2-D distribution {name!r}; choose one of {sorted(TOY_2D)}.")
    if int(n_samples) < 1:
        raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}.")
    return TOY_2D[name](int(n_samples), check_random_state(random_state))
