"""Problems with closed-form answers, seeded by ``random_state``.

- :func:`make_gaussian_ot`: two Gaussians with their exact (linear) OT map and
  squared W2 distance.
- :func:`make_brenier_ot`: a non-Gaussian P (a mixture, a Student t) and
  its push-forward by the gradient of a convex potential, which by Brenier's
  theorem is the exact OT map, in any dimension.
- :func:`make_mixture_pair`: two Gaussian mixtures with closed-form densities,
  hence a closed-form log ratio.
- :func:`make_correlated_gaussians`: paired Gaussian vectors made of
  correlated 2x2 blocks, with closed-form mutual information (all blocks
  dependent, or only a few).
- :func:`make_transformed_gaussians` and :func:`make_student_t_pair`:
  non-Gaussian pairs with closed-form mutual information.
- :func:`make_2d`: the usual 2-D test distributions (moons, checkerboard,
  8 Gaussians, 25 Gaussians, two circles, rings, spirals).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
from scipy.linalg import sqrtm
from scipy.special import digamma, gammaln, logsumexp, ndtr, softmax
from scipy.stats import multivariate_normal
from sklearn.utils import check_random_state

__all__ = [
    "TOY_2D",
    "BrenierOT",
    "GaussianMixture",
    "GaussianOT",
    "make_2d",
    "make_brenier_ot",
    "make_correlated_gaussians",
    "make_gaussian_ot",
    "make_mixture_pair",
    "make_student_t_pair",
    "make_transformed_gaussians",
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
    n_samples: int = 1000,
    n_features: int = 10,
    *,
    rho=None,
    n_dependent=None,
    random_state=None,
):
    r"""Paired Gaussian vectors with closed-form mutual information.

    The mutual-information benchmark of TRE, DRE-infinity and Q-flow: a
    ``n_features``-dimensional standard Gaussian made of ``n_features / 2``
    independent 2x2 blocks with correlation ``rho``; X holds the first
    coordinate of each block and Y the second, so

    .. math::
        I(X; Y) = -\frac{d}{4} \log(1 - \rho^2),

    which is ``d / 4`` nats for the default :math:`\rho = \sqrt{1 - e^{-1}}`.
    With ``n_dependent`` blocks correlated and the others independent, the
    dependence is sparse and :math:`I = -\frac{m}{2} \log(1 - \rho^2)` for
    ``m = n_dependent``.

    Parameters
    ----------
    n_samples : int, default=1000
    n_features : int, default=10
        Total dimension ``d`` of the pair (even); X and Y have ``d / 2``
        columns each.
    rho : float or None, default=None
        Correlation within each dependent block, in (-1, 1); ``sqrt(1 - 1/e)``
        when None.
    n_dependent : int or None, default=None
        How many blocks are correlated, the first ones: between 0 and
        ``d / 2``; all of them when None.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    X : ndarray of shape (n_samples, n_features // 2)
    Y : ndarray of shape (n_samples, n_features // 2)
    mutual_information : float
        The exact :math:`I(X; Y)` in nats.

    See Also
    --------
    make_transformed_gaussians : The same pairs through invertible maps of X
        and of Y, which leave the mutual information as it is.
    make_student_t_pair : Heavy tails, dependent even when uncorrelated.

    Examples
    --------
    >>> from skot.datasets import make_correlated_gaussians
    >>> X, Y, mi = make_correlated_gaussians(100, 40, random_state=0)
    >>> X.shape, Y.shape, round(mi, 6)
    ((100, 20), (100, 20), 10.0)
    >>> X, Y, mi = make_correlated_gaussians(100, 50, n_dependent=2, random_state=0)
    >>> round(mi, 6)
    1.0
    """
    X, Y, correlations = _correlated_blocks(
        n_samples, n_features, rho, n_dependent, check_random_state(random_state)
    )
    return X, Y, _gaussian_mi(correlations)


def _correlated_blocks(n_samples, n_features, rho, n_dependent, rng):
    """X and Y of ``make_correlated_gaussians`` and each block's correlation."""
    if not isinstance(n_features, numbers.Integral) or n_features < 2 or n_features % 2:
        raise ValueError(f"n_features must be a positive even integer, got {n_features!r}.")
    rho = float(np.sqrt(1 - np.exp(-1.0))) if rho is None else float(rho)
    if not -1 < rho < 1:
        raise ValueError(f"rho must lie in (-1, 1), got {rho!r}.")
    k = n_features // 2
    if n_dependent is None:
        n_dependent = k
    if not isinstance(n_dependent, numbers.Integral) or not 0 <= n_dependent <= k:
        raise ValueError(
            f"n_dependent must be an integer between 0 and n_features / 2 = {k}, "
            f"got {n_dependent!r}."
        )
    correlations = np.zeros(k)
    correlations[:n_dependent] = rho
    X = rng.standard_normal((n_samples, k))
    Y = correlations * X + np.sqrt(1 - correlations**2) * rng.standard_normal((n_samples, k))
    return X, Y, correlations


def _gaussian_mi(correlations) -> float:
    return float(-0.5 * np.sum(np.log1p(-np.square(correlations))))


def _swirl(a: np.ndarray) -> np.ndarray:
    """Turn the first two coordinates by ``r**2`` radians, r their norm.

    The norm is kept, so turning by ``-r**2`` undoes it."""
    a = a.copy()
    angle = a[:, 0] ** 2 + a[:, 1] ** 2
    cos, sin = np.cos(angle), np.sin(angle)
    a[:, 0], a[:, 1] = cos * a[:, 0] - sin * a[:, 1], sin * a[:, 0] + cos * a[:, 1]
    return a


# Invertible maps of one side of the pair (the tests undo each with an
# inverse of their own and expect the Gaussian rows back).
_TRANSFORMS = {
    "identity": lambda a: a,
    "asinh": np.arcsinh,
    "cube": lambda a: a**3,
    "normal_cdf": ndtr,
    "swirl": _swirl,
}


def make_transformed_gaussians(
    n_samples: int = 1000,
    n_features: int = 10,
    *,
    transform="asinh",
    rho=None,
    n_dependent=None,
    random_state=None,
):
    r"""Non-Gaussian pairs with the mutual information of Gaussian ones.

    Mutual information does not change when X alone, or Y alone, goes
    through an invertible map. The pairs of :func:`make_correlated_gaussians`
    (same parameters, same seed, same rows) go through one, so that their
    laws are not Gaussian, their ratio is not quadratic, and
    :math:`I(X; Y)` is still known exactly:

    - ``"asinh"``: :math:`\operatorname{asinh}` of every coordinate (light,
      logarithmic tails);
    - ``"cube"``: every coordinate cubed (heavy tails, and a density that
      diverges at 0);
    - ``"normal_cdf"``: the normal CDF of every coordinate (uniform
      marginals on (0, 1), a ratio that blows up near the edges);
    - ``"swirl"``: the first two coordinates turned by :math:`r^2` radians
      about the origin, r their norm (a spiral; needs at least two columns
      per side);
    - ``"identity"``: none.

    Parameters
    ----------
    n_samples : int, default=1000
    n_features : int, default=10
        Total dimension of the pair (even), ``n_features / 2`` per side.
    transform : str or (str, str), default="asinh"
        The map of both sides, or of X and of Y.
    rho, n_dependent :
        As in :func:`make_correlated_gaussians`.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    X : ndarray of shape (n_samples, n_features // 2)
    Y : ndarray of shape (n_samples, n_features // 2)
    mutual_information : float
        The exact :math:`I(X; Y)` in nats.

    Examples
    --------
    >>> from skot.datasets import make_transformed_gaussians
    >>> X, Y, mi = make_transformed_gaussians(500, 4, transform=("swirl", "cube"),
    ...                                       random_state=0)
    >>> X.shape, round(mi, 6)
    ((500, 2), 1.0)
    """
    names = (transform, transform) if isinstance(transform, str) else tuple(transform)
    if len(names) != 2 or any(name not in _TRANSFORMS for name in names):
        raise ValueError(
            f"transform must be one of {sorted(_TRANSFORMS)} or a pair of them, got {transform!r}."
        )
    if "swirl" in names and n_features < 4:
        raise ValueError(
            f"transform='swirl' turns two columns of a side: n_features must be at "
            f"least 4, got {n_features!r}."
        )
    X, Y, correlations = _correlated_blocks(
        n_samples, n_features, rho, n_dependent, check_random_state(random_state)
    )
    map_x, map_y = (_TRANSFORMS[name] for name in names)
    return map_x(X), map_y(Y), _gaussian_mi(correlations)


def _student_t_entropy_term(df: float, d: int) -> float:
    """The part of a d-dimensional Student t's entropy that depends on df
    alone (besides the scale's log-determinant and ``d/2 log(df pi)``)."""
    half = (df + d) / 2
    return float(gammaln(df / 2) - gammaln(half) + half * (digamma(half) - digamma(df / 2)))


def make_student_t_pair(
    n_samples: int = 1000,
    n_features: int = 4,
    *,
    df: float = 1.0,
    rho: float = 0.0,
    n_dependent=None,
    random_state=None,
):
    r"""Paired Student t vectors with closed-form mutual information.

    A multivariate Student t with ``df`` degrees of freedom and the block
    scale matrix of :func:`make_correlated_gaussians` (X and Y the two
    halves): a Gaussian pair divided by one shared
    :math:`\sqrt{\chi^2_\nu / \nu}`. The shared scale makes X and Y
    dependent even when ``rho=0``, the more so the heavier the tails. With
    :math:`k` columns per side and :math:`\nu` = ``df``,

    .. math::
        I(X; Y) = -\frac12 \sum_{b} \log(1 - \rho_b^2)
        + g(k) + g(k) - g(2k), \qquad
        g(m) = \log\Gamma(\tfrac\nu2) - \log\Gamma(\tfrac{\nu+m}2)
        + \tfrac{\nu+m}2 \bigl[\psi(\tfrac{\nu+m}2) - \psi(\tfrac\nu2)\bigr],

    from the Student t's entropy (its marginals are Student t with the same
    :math:`\nu`); the sum runs over the dependent blocks.

    Parameters
    ----------
    n_samples : int, default=1000
    n_features : int, default=4
        Total dimension of the pair (even), ``n_features / 2`` per side.
    df : float, default=1.0
        Degrees of freedom, positive; 1 is the multivariate Cauchy.
    rho : float, default=0.0
        Correlation of the scale matrix within each dependent block.
    n_dependent : int or None, default=None
        As in :func:`make_correlated_gaussians`.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    X : ndarray of shape (n_samples, n_features // 2)
    Y : ndarray of shape (n_samples, n_features // 2)
    mutual_information : float
        The exact :math:`I(X; Y)` in nats.

    Examples
    --------
    >>> from skot.datasets import make_student_t_pair
    >>> X, Y, mi = make_student_t_pair(500, 4, df=1.0, random_state=0)
    >>> X.shape, round(mi, 3)
    ((500, 2), 0.432)
    """
    if not isinstance(df, numbers.Real) or not np.isfinite(df) or df <= 0:
        raise ValueError(f"df must be a positive number, got {df!r}.")
    rng = check_random_state(random_state)
    # The shared scale is drawn after the Gaussian rows, so that these are
    # the rows of make_correlated_gaussians with the same seed.
    X, Y, correlations = _correlated_blocks(n_samples, n_features, rho, n_dependent, rng)
    scale = np.sqrt(rng.chisquare(df, size=(n_samples, 1)) / df)
    k = X.shape[1]
    g = _student_t_entropy_term
    mi = _gaussian_mi(correlations) + 2 * g(df, k) - g(df, 2 * k)
    return X / scale, Y / scale, float(mi)


@dataclass(frozen=True)
class _StudentT:
    """A multivariate Student t: ``mean + scale_root @ z / sqrt(g / df)``."""

    mean: np.ndarray
    scale_root: np.ndarray
    df: float

    def sample(self, n_samples: int, random_state=None) -> np.ndarray:
        rng = check_random_state(random_state)
        z = rng.standard_normal((n_samples, len(self.mean))) @ self.scale_root.T
        return self.mean + z / np.sqrt(rng.chisquare(self.df, size=(n_samples, 1)) / self.df)


# Rows of P behind the Monte Carlo W2^2 and Var(Q) of a BrenierOT (relative
# standard errors under 0.5% on the default problems: w2_squared_stderr),
# pushed through the map in chunks that keep memory under 100 MB at d=256.
_MONTE_CARLO_ROWS = 2**18
_CHUNK_ROWS = 2**13


@dataclass(frozen=True)
class BrenierOT:
    r"""A source P and its push-forward Q by the gradient of a convex potential.

    The potential is a smooth maximum of m convex quadratics,

    .. math::
        \varphi(x) = \mu^\top x + \frac1k \log \sum_{j=1}^m
        e^{k f_j(x)}, \qquad
        f_j(x) = \tfrac12 z^\top A_j z + b_j^\top z + \beta_j, \quad
        z = x - \mu,

    with every :math:`A_j` symmetric positive definite, so :math:`\varphi`
    is strictly convex and, by Brenier's theorem, its gradient

    .. math::
        T^\star(x) = \mu + \sum_j \pi_j(x)\,(A_j z + b_j), \qquad
        \pi = \operatorname{softmax}(k f(x)),

    is the W2-optimal map from P to :math:`Q = T^\star_\# P`. Each piece
    moves its own region of space by its own affine map, and the regions'
    boundaries tear P apart: no linear map comes close (the best affine
    map's L2-UVP is 4.1-16.4% on the pairs of
    ``benchmarks/bench_known_map.py``, against 0 for Gaussian pairs). This is how
    the W2 benchmark of Korotin et al. (NeurIPS 2021) is built, with a
    closed-form potential in place of its pretrained input-convex networks.

    ``w2_squared`` and ``target_variance`` have no closed form: they are
    Monte Carlo averages over :math:`2^{18}` rows of P drawn with
    ``mc_seed``, and ``w2_squared_stderr`` is the standard error.
    """

    source: object
    center: np.ndarray
    matrices: np.ndarray
    shifts: np.ndarray
    levels: np.ndarray
    sharpness: float
    mc_seed: int

    def _pieces(self, X) -> tuple[np.ndarray, np.ndarray]:
        """The pieces' values ``k f_j(x)`` (n, m) and gradients (n, m, d)."""
        Z = np.asarray(X, np.float64) - self.center
        linear = np.einsum("jab,nb->nja", self.matrices, Z)  # A_j z
        values = 0.5 * np.einsum("na,nja->nj", Z, linear) + Z @ self.shifts.T + self.levels
        return self.sharpness * values, linear + self.shifts

    def potential(self, X) -> np.ndarray:
        """The convex potential at the rows of ``X``, shape ``(n_samples,)``."""
        values, _ = self._pieces(X)
        X = np.asarray(X, np.float64)
        return X @ self.center + logsumexp(values, axis=1) / self.sharpness

    def transport(self, X) -> np.ndarray:
        """The exact OT map, the gradient of :meth:`potential`, at the rows of ``X``."""
        values, grads = self._pieces(X)
        return self.center + np.einsum("nj,nja->na", softmax(values, axis=1), grads)

    def jacobian(self, X) -> np.ndarray:
        r"""The Jacobian of :meth:`transport` (the potential's Hessian), shape
        ``(n_samples, d, d)``: :math:`\sum_j \pi_j A_j + k\,
        \mathrm{Cov}_\pi(A_j z + b_j)`, symmetric positive definite."""
        values, grads = self._pieces(X)
        pi = softmax(values, axis=1)
        mean = np.einsum("nj,nja->na", pi, grads)
        centred = grads - mean[:, None, :]
        spread = np.einsum("nj,nja,njb->nab", pi, centred, centred)
        return np.einsum("nj,jab->nab", pi, self.matrices) + self.sharpness * spread

    def sample_p(self, n_samples: int, random_state=None) -> np.ndarray:
        return self.source.sample(n_samples, random_state)

    def sample_q(self, n_samples: int, random_state=None) -> np.ndarray:
        return self.transport(self.sample_p(n_samples, random_state))

    @cached_property
    def _monte_carlo(self) -> tuple[float, float, float]:
        X = self.sample_p(_MONTE_CARLO_ROWS, self.mc_seed)
        Y = np.concatenate(
            [self.transport(X[i : i + _CHUNK_ROWS]) for i in range(0, len(X), _CHUNK_ROWS)]
        )
        cost = ((Y - X) ** 2).sum(1)
        stderr = cost.std() / np.sqrt(len(cost))
        return float(cost.mean()), float(stderr), float(Y.var(0).sum())

    @property
    def w2_squared(self) -> float:
        r"""Squared W2 distance between P and Q, :math:`E_P \|T^\star(x) - x\|^2`
        by Monte Carlo (see ``w2_squared_stderr``)."""
        return self._monte_carlo[0]

    @property
    def w2_squared_stderr(self) -> float:
        """Standard error of the Monte Carlo ``w2_squared``."""
        return self._monte_carlo[1]

    @property
    def target_variance(self) -> float:
        """Total variance of Q, ``trace(Cov(Q))`` by Monte Carlo: the
        denominator of L2-UVP."""
        return self._monte_carlo[2]


def _brenier_source(kind: str, d: int, n_components: int, rng):
    if kind == "gaussian":
        return GaussianMixture(np.ones(1), np.zeros((1, d)), _random_covariance(d, rng, 0.5)[None])
    if kind == "student_t":
        root = _psd_sqrt(_random_covariance(d, rng, 0.5))
        return _StudentT(np.zeros(d), root, df=5.0)
    # Means 3 / sqrt(d) per coordinate, so about 4 apart in every dimension,
    # against component standard deviations of 0.55 to 0.9: modes with
    # clear gaps between them.
    return GaussianMixture(
        weights=rng.dirichlet(np.full(n_components, 2.0)),
        means=3.0 * rng.standard_normal((n_components, d)) / np.sqrt(d),
        covs=np.stack([0.5 * _random_covariance(d, rng, 0.5) for _ in range(n_components)]),
    )


def make_brenier_ot(
    n_samples: int = 1000,
    n_features: int = 2,
    *,
    n_target_samples: int | None = None,
    source: str = "mixture",
    n_components: int = 4,
    n_pieces: int = 4,
    spread: float = 1.0,
    random_state=None,
):
    """Samples of a non-Gaussian pair whose OT map is known exactly.

    P is a Gaussian mixture, a Gaussian or a Student t; Q is its image by
    the gradient of a strictly convex potential, a smooth maximum of
    quadratics (see :class:`BrenierOT`), which is the W2-optimal map from P
    to Q by Brenier's theorem. No linear map is optimal, so the pair tells
    a method that maps new points well from one that matches Gaussian
    moments, in any dimension.

    Parameters
    ----------
    n_samples : int, default=1000
        Rows drawn from P.
    n_features : int, default=2
        Dimension.
    n_target_samples : int, default=None
        Rows drawn from Q (images of fresh rows of P, independent of X);
        ``n_samples`` when None.
    source : {"mixture", "gaussian", "student_t"}, default="mixture"
        P: a mixture of ``n_components`` Gaussians with unequal weights
        (Dirichlet(2)) and means about 4 apart; one Gaussian; or a Student t
        with 5 degrees of freedom (heavy tails, finite fourth moments).
        Covariances have eigenvalues ``exp(U(-0.5, 0.5))`` (halved in the
        mixture) in random orthonormal bases.
    n_components : int, default=4
        Components of the mixture source.
    n_pieces : int, default=4
        Quadratic pieces of the potential: regions of space, each moved by
        its own affine map. With 1 the map is affine.
    spread : float, default=1.0
        The pieces' matrices have eigenvalues ``exp(U(-spread, spread))``
        in random orthonormal bases, and their shifts standard deviation
        ``spread`` times P's average coordinate standard deviation: 0 gives
        the identity map.
    random_state : int, RandomState instance or None, default=None
        Seeds the problem and the samples.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Sample of P.
    Y : ndarray of shape (n_target_samples, n_features)
        Sample of Q.
    problem : BrenierOT
        The pair, with ``transport`` (the exact map), ``potential``,
        ``jacobian``, ``w2_squared`` and ``target_variance``.

    Examples
    --------
    >>> from skot.datasets import make_brenier_ot
    >>> X, Y, problem = make_brenier_ot(500, 3, random_state=0)
    >>> X.shape, Y.shape, problem.transport(X).shape
    ((500, 3), (500, 3), (500, 3))
    """
    d = int(n_features)
    if d < 1:
        raise ValueError(f"n_features must be a positive integer, got {n_features!r}.")
    if source not in ("mixture", "gaussian", "student_t"):
        raise ValueError(f"source must be 'mixture', 'gaussian' or 'student_t', got {source!r}.")
    for name, value in (("n_components", n_components), ("n_pieces", n_pieces)):
        if int(value) < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if not np.isfinite(spread) or spread < 0:
        raise ValueError(f"spread must be a non-negative number, got {spread!r}.")
    rng = check_random_state(random_state)
    P = _brenier_source(source, d, int(n_components), rng)
    pilot = P.sample(4096, rng)
    scale = np.sqrt(pilot.var(0).mean())
    m = int(n_pieces)
    problem = BrenierOT(
        source=P,
        center=pilot.mean(0),
        matrices=np.stack([_random_covariance(d, rng, spread) for _ in range(m)]),
        shifts=spread * scale * rng.standard_normal((m, d)),
        levels=np.zeros(m),
        sharpness=1.0,
        mc_seed=int(rng.randint(2**31 - 1)),
    )
    # Levels and sharpness from the pilot: every piece wins about a share
    # of P, and the pieces hand over across a quarter of the spread of
    # their differences on P (a smooth but clear tear).
    values, _ = problem._pieces(pilot)
    gaps = [np.std(values[:, i] - values[:, j]) for i in range(m) for j in range(i + 1, m)]
    typical_gap = float(np.median(gaps)) if gaps else 0.0
    problem = replace(
        problem,
        levels=-values.mean(0),
        # identical pieces (one piece, or spread=0) need no hand-over
        sharpness=4.0 / typical_gap if typical_gap > 1e-12 else 1.0,
    )
    n_q = n_samples if n_target_samples is None else n_target_samples
    return problem.sample_p(n_samples, rng), problem.sample_q(n_q, rng), problem


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
