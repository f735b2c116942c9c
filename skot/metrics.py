"""Criteria for transport maps, against a known map or against samples.

The first three compare a fitted map with a known optimal one (the Gaussian
problems of :mod:`skot.datasets`); the others need only samples and serve as
held-out criteria, two-sample statistics and scorers.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from ._ot import assignment

__all__ = [
    "ImportanceWeightedScorer",
    "displacement_cosine",
    "empirical_w2_squared",
    "energy_distance",
    "l2_uvp",
    "monge_gap",
    "prediction_entropy_scorer",
    "transport_score",
    "transport_scorer",
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


# --------------------------------------------- scorers for domain adaptation
#
# Scorers with scikit-learn's signature ``scorer(estimator, X, y)``, for
# ``GridSearchCV(..., scoring=...)`` on stacked source and target rows. Target
# rows are told by ``sample_domain`` when it is passed, else by the label -1
# (skada's convention), so the scorers work without metadata routing. None
# uses a target label.


def _target_rows(X, y, sample_domain):
    from ._domains import source_rows

    return ~source_rows(y, sample_domain, len(X))


def _adapting_step(estimator):
    """Split a fitted Pipeline around its first step fitted with
    sample_domain: (steps before, that step, steps after)."""
    steps = getattr(estimator, "steps", [(None, estimator)])
    for i, (_, step) in enumerate(steps):
        if getattr(step, "adapts_domains_", False):
            return steps[:i], step, steps[i + 1 :]
    raise ValueError(
        "transport_scorer needs a QFlowTransport fitted with sample_domain, alone or "
        "as a step of a Pipeline."
    )


def _predict_source_rows(estimator, X):
    """Predictions for source rows: through the pipeline's adapting step as
    source rows (mapped), where ``predict`` alone would take them as target
    rows and let them through."""
    try:
        before, flow, after = _adapting_step(estimator)
    except ValueError:
        return estimator.predict(X)
    for _, step in before:
        X = step.transform(X)
    X = flow.transform(X, sample_domain=np.zeros(len(X), dtype=int))
    for _, step in after[:-1]:
        X = step.transform(X)
    return after[-1][1].predict(X)


def transport_scorer(estimator, X, y=None, sample_domain=None) -> float:
    """Transport criterion of a domain-adaptation flow on held-out rows.

    Finds the :class:`~skot.QFlowTransport` fitted with ``sample_domain``
    (alone, or a step of a Pipeline, after the steps before it) and returns
    :func:`transport_score` of its map from the held-out source rows to the
    held-out target rows. It needs no label and does not depend on
    ``gamma``, so a grid search over ``gamma`` in a domain-adaptation
    Pipeline can use it.

    Parameters
    ----------
    estimator : QFlowTransport or Pipeline
    X : array-like of shape (n_samples, n_features)
        Stacked held-out rows of both domains.
    y : array-like of shape (n_samples,), default=None
        Labels, -1 on target rows (used when ``sample_domain`` is None).
    sample_domain : array-like of shape (n_samples,), default=None

    Returns
    -------
    float
        Higher is better; 0 for an optimal map onto the target.
    """
    before, flow, _ = _adapting_step(estimator)
    target = _target_rows(X, y, sample_domain)
    for _, step in before:
        X = step.transform(X)
    X = np.asarray(X)
    mapped = flow.transform(X[~target], sample_domain=np.zeros((~target).sum(), int))
    return transport_score(X[~target], mapped, X[target])


def prediction_entropy_scorer(estimator, X, y=None, sample_domain=None) -> float:
    """Minus the mean entropy of the predicted class probabilities on target rows.

    Confident predictions on the target domain score high (Morerio et al.,
    "Minimal-entropy correlation alignment", ICLR 2018). It is blind to
    confident mistakes: use it beside another criterion.

    Parameters
    ----------
    estimator : classifier with ``predict_proba``
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,), default=None
        Labels, -1 on target rows (used when ``sample_domain`` is None).
    sample_domain : array-like of shape (n_samples,), default=None

    Returns
    -------
    float
        In ``[-log(n_classes), 0]``; higher is better.
    """
    target = _target_rows(X, y, sample_domain)
    proba = np.clip(estimator.predict_proba(np.asarray(X)[target]), 1e-12, 1.0)
    return float((proba * np.log(proba)).sum(1).mean())


class ImportanceWeightedScorer:
    """Importance-weighted validation: source accuracy weighted by q(x)/p(x).

    On the held-out rows, a density-ratio estimator is fitted with the source
    rows as P and the target rows as Q, and the estimator's accuracy on the
    labelled source rows is averaged with the weights ``q(x) / p(x)``. Under
    covariate shift this estimates the target accuracy without target labels
    (Sugiyama, Krauledat and Mueller, JMLR 2007). In a Pipeline with a
    :class:`~skot.QFlowTransport` fitted with ``sample_domain``, the source
    rows are predicted as source rows: mapped onto the target domain first.

    Parameters
    ----------
    ratio_estimator : estimator, default=None
        Fitted as ``ratio_estimator.fit(X_source, X_target)``; must have
        ``predict_weights(X, normalize=True)``. ``None`` takes a
        :class:`~skot.TelescopingRatioEstimator` with a single classifier
        (``bridge="none"``), cheap enough to refit in every fold.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skot import TelescopingRatioEstimator
    >>> from skot.metrics import ImportanceWeightedScorer
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(300, 2))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> y[200:] = -1  # the last rows are target rows
    >>> clf = LogisticRegression().fit(X[:200], y[:200])
    >>> ratio = TelescopingRatioEstimator(bridge="none", max_iter=100, random_state=0)
    >>> score = ImportanceWeightedScorer(ratio)(clf, X, y)
    >>> bool(0.9 < score <= 1.0)
    True
    """

    def __init__(self, ratio_estimator=None):
        self.ratio_estimator = ratio_estimator

    def __call__(self, estimator, X, y, sample_domain=None) -> float:
        from sklearn.base import clone

        from ._telescoping import TelescopingRatioEstimator

        X, y = np.asarray(X), np.asarray(y)
        target = _target_rows(X, y, sample_domain)
        ratio = self.ratio_estimator
        if ratio is None:
            ratio = TelescopingRatioEstimator(bridge="none", max_iter=500, random_state=0)
        ratio = clone(ratio).fit(X[~target], X[target])
        weights = ratio.predict_weights(X[~target], normalize=True)
        correct = _predict_source_rows(estimator, X[~target]) == y[~target]
        return float(np.average(correct, weights=weights))

    def __repr__(self):
        return f"ImportanceWeightedScorer(ratio_estimator={self.ratio_estimator!r})"
