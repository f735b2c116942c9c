"""Criteria for transport maps and samples, and scorers for domain adaptation.

The first three compare a fitted map with a known optimal one (the Gaussian
problems of :mod:`skot.datasets`); the next three need only samples and
serve as held-out criteria and two-sample statistics. The scorers have
scikit-learn's signature, for ``GridSearchCV(..., scoring=...)`` on stacked
source and target rows.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from ._criteria import (
    displacement_cosine,
    empirical_w2_squared,
    energy_distance,
    l2_uvp,
    monge_gap,
    transport_score,
)
from ._domains import source_rows
from ._telescoping import TelescopingRatioEstimator

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


# --------------------------------------------- scorers for domain adaptation
#
# Scorers with scikit-learn's signature ``scorer(estimator, X, y)``, for
# ``GridSearchCV(..., scoring=...)`` on stacked source and target rows. Target
# rows are told by ``sample_domain`` when it is passed, else by the label -1
# (skada's convention), so the scorers work without metadata routing. None
# uses a target label.


def _target_rows(X, y, sample_domain):
    return ~source_rows(y, sample_domain, len(X))


def _around_adapting_step(estimator):
    """A fitted estimator split around its first step fitted with
    ``sample_domain``: (the Pipeline before it or None, that step, the
    Pipeline after it or None), by Pipeline's public slicing."""
    if isinstance(estimator, Pipeline):
        for i, step in enumerate(estimator.named_steps.values()):
            if getattr(step, "adapts_domains_", False):
                before = estimator[:i] if i else None
                after = estimator[i + 1 :] if i + 1 < len(estimator) else None
                return before, step, after
    elif getattr(estimator, "adapts_domains_", False):
        return None, estimator, None
    raise ValueError(
        "transport_scorer needs a QFlowTransport fitted with sample_domain, alone or "
        "as a step of a Pipeline."
    )


def _map_source_rows(flow, X):
    """Source rows through a flow fitted with sample_domain: mapped onto the
    target domain, where ``transform`` alone would let them through."""
    return flow.transform(X, sample_domain=np.zeros(len(X), dtype=int))


def _predict_source_rows(estimator, X):
    """Predictions for source rows: through the pipeline's adapting step as
    source rows, where ``predict`` alone would take them as target rows."""
    try:
        before, flow, after = _around_adapting_step(estimator)
    except ValueError:
        return estimator.predict(X)
    if before is not None:
        X = before.transform(X)
    return after.predict(_map_source_rows(flow, X))


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
    before, flow, _ = _around_adapting_step(estimator)
    target = _target_rows(X, y, sample_domain)
    if before is not None:
        X = before.transform(X)
    X = np.asarray(X)
    return transport_score(X[~target], _map_source_rows(flow, X[~target]), X[target])


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
    (Sugiyama, Krauledat and Mueller, JMLR 2007). The weights are
    ``predict_weights(X_source, normalize=True)`` with its safeguards: for
    :class:`~skot.TelescopingRatioEstimator`, the share of the target that
    lies beyond the source rows is given to every source row alike, so that
    share counts at the source accuracy. In a Pipeline with a
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
