"""Criteria for transport maps and samples: against a known map, or between
samples.

The first three compare a fitted map with a known optimal one (the Gaussian
problems of :mod:`skot.datasets`); the others need only samples and serve as
held-out criteria and two-sample statistics. The estimators score with them;
:mod:`skot.metrics` makes them public.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from ._ot import assignment

__all__ = [
    "displacement_cosine",
    "empirical_w2_squared",
    "energy_distance",
    "gaussian_mmd",
    "l2_uvp",
    "monge_gap",
    "transport_score",
]


def l2_uvp(mapped, true_mapped, target_variance: float) -> float:
    r"""Unexplained variance percentage of a map against the true OT map.

    .. math::
        \mathrm{L^2\text{-}UVP}(T) = 100\,
        \frac{\mathbb{E}\,\|T(x) - T^\star(x)\|^2}{\mathrm{Var}(Q)}

    Parameters
    ----------
    mapped : array-like of shape (n_samples, n_features)
        ``T(x)`` for source points ``x``.
    true_mapped : array-like of shape (n_samples, n_features)
        ``T*(x)`` for the same points.
    target_variance : float
        Total variance of the target, ``trace(Cov(Q))``.

    Returns
    -------
    float
        In percent; 0 for the true map.

    References
    ----------
    Korotin et al., "Do neural optimal transport solvers work? A continuous
    Wasserstein-2 benchmark", NeurIPS 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from skot.metrics import l2_uvp
    >>> l2_uvp(np.zeros((3, 2)), np.ones((3, 2)), target_variance=2.0)
    100.0
    """
    mapped = np.asarray(mapped, dtype=np.float64)
    true_mapped = np.asarray(true_mapped, dtype=np.float64)
    err = ((mapped - true_mapped) ** 2).sum(1).mean()
    return float(100.0 * err / target_variance)


def displacement_cosine(X, mapped, true_mapped) -> float:
    """Cosine similarity of the displacements ``T(x) - x`` and ``T*(x) - x``.

    1 for a map whose displacements point along the true ones on average.

    Examples
    --------
    >>> import numpy as np
    >>> from skot.metrics import displacement_cosine
    >>> X = np.zeros((2, 2))
    >>> displacement_cosine(X, np.ones((2, 2)), 2 * np.ones((2, 2)))
    1.0
    """
    X = np.asarray(X, dtype=np.float64)
    u = np.asarray(mapped, dtype=np.float64) - X
    v = np.asarray(true_mapped, dtype=np.float64) - X
    num = (u * v).sum(1).mean()
    den = np.sqrt((u * u).sum(1).mean() * (v * v).sum(1).mean())
    return float(num / den)


def _equal_sized(x: np.ndarray, y: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    n = min(len(x), len(y))
    if len(x) > n:
        x = x[rng.choice(len(x), n, replace=False)]
    if len(y) > n:
        y = y[rng.choice(len(y), n, replace=False)]
    return x, y


def empirical_w2_squared(x, y, random_state=0) -> float:
    """Exact squared W2 between two empirical measures.

    With different sizes the larger sample is subsampled (seeded by
    ``random_state``) to the smaller, so the problem stays an assignment.
    Cost is cubic in the number of rows: keep it to a few thousand.

    Examples
    --------
    >>> import numpy as np
    >>> from skot.metrics import empirical_w2_squared
    >>> empirical_w2_squared(np.array([[0.0], [1.0]]), np.array([[3.0], [2.0]]))
    4.0
    """
    rng = np.random.RandomState(random_state)
    x, y = _equal_sized(np.asarray(x, np.float64), np.asarray(y, np.float64), rng)
    perm = assignment(x, y)
    return float(((x - y[perm]) ** 2).sum(1).mean())


def monge_gap(X, mapped) -> float:
    r"""Empirical Monge gap of a map on a sample.

    .. math::
        \mathcal{M}(T) = \frac1n \sum_i \|x_i - T(x_i)\|^2
        - W_2^2\Big(\frac1n\sum_i \delta_{x_i}, \frac1n\sum_i \delta_{T(x_i)}\Big)

    Non-negative, and zero exactly when the map is optimal between the
    sample and its image (cyclically monotone on the sample).

    References
    ----------
    Uscidda and Cuturi, "The Monge gap: a regularizer to learn all transport
    maps", ICML 2023.

    Examples
    --------
    >>> import numpy as np
    >>> from skot.metrics import monge_gap
    >>> X = np.array([[0.0], [1.0]])
    >>> monge_gap(X, X[::-1])  # swapping two points is not optimal
    1.0
    """
    X = np.asarray(X, dtype=np.float64)
    mapped = np.asarray(mapped, dtype=np.float64)
    cost = ((X - mapped) ** 2).sum(1).mean()
    perm = assignment(X, mapped)
    optimal = ((X - mapped[perm]) ** 2).sum(1).mean()
    return float(max(cost - optimal, 0.0))


def transport_score(X, mapped, Y, random_state=0) -> float:
    r"""Held-out criterion of a transport map, higher is better.

    .. math::
        s(T) = -\frac{\mathcal{M}(T) + W_2^2(T_\# \hat P, \hat Q)}{\mathrm{Var}(\hat Q)}

    the Monge gap of the map on ``X`` (is it optimal for where it sends X?)
    plus the squared W2 distance between ``T(X)`` and ``Y`` (does it reach Q?),
    relative to the target's total variance. Both terms vanish only for an
    optimal map from P onto Q (up to sampling noise), and neither involves
    any regularisation weight, so it compares maps fitted with different
    ``gamma``.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    variance = Y.var(0).sum()
    gap = monge_gap(X, mapped)
    fit = empirical_w2_squared(mapped, Y, random_state=random_state)
    return float(-(gap + fit) / variance)


def energy_distance(x, y) -> float:
    r"""Squared energy distance between two samples (V-statistic).

    .. math::
        \mathcal{E}^2 = 2\,\mathbb{E}\|X - Y\| - \mathbb{E}\|X - X'\|
        - \mathbb{E}\|Y - Y'\|,

    zero only when the two distributions are equal. Cost is quadratic in the
    number of rows.

    Parameters
    ----------
    x : array-like of shape (n_samples_x, n_features)
    y : array-like of shape (n_samples_y, n_features)

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from skot.metrics import energy_distance
    >>> rng = np.random.RandomState(0)
    >>> round(energy_distance(rng.normal(size=(500, 2)), rng.normal(size=(500, 2)) + 3), 1)
    5.6
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float(2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean())


def gaussian_mmd(x, y, bandwidth: float) -> float:
    r"""Squared maximum mean discrepancy with a Gaussian kernel (V-statistic).

    .. math::
        \mathrm{MMD}^2 = \mathbb{E}\,k(X, X') + \mathbb{E}\,k(Y, Y')
        - 2\,\mathbb{E}\,k(X, Y),\quad
        k(u, v) = \exp\!\big(-\|u - v\|^2 / (2 \sigma^2)\big).

    Unlike the energy distance, whose kernel grows with the distance, it sees
    differences at the scale of ``bandwidth`` (sigma): how mass is shared
    between modes a few bandwidths apart. Cost is quadratic in the number of
    rows.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    scale = -0.5 / bandwidth**2

    def mean_kernel(a, b):
        return np.exp(scale * cdist(a, b, "sqeuclidean")).mean()

    return float(mean_kernel(x, x) + mean_kernel(y, y) - 2 * mean_kernel(x, y))
