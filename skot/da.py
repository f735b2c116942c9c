"""Domain adaptation in scikit-learn Pipelines, with skada's conventions.

One stacked ``X`` holds the rows of every domain, ``y`` their labels with
-1 on the (unlabelled) target rows, and ``sample_domain`` says which rows
are which: non-negative for source rows, negative for target rows.

- :class:`~skot.QFlowTransport` fitted with ``sample_domain`` maps the
  source rows onto the target domain and lets target rows through, so the
  final estimator learns on transported source rows and ``predict`` on new
  target rows needs no extra argument.
- :class:`FitOnSource` trains the final estimator on the labelled source
  rows only, never on the -1 placeholders.
- :class:`ImportanceWeightedEstimator` trains it on the source rows weighted
  by ``q(x) / p(x)`` from :class:`~skot.TelescopingRatioEstimator`.
- :class:`ConditionalTransportEstimator` pseudo-labels the target rows and
  trains on the source rows carried to the target within their classes.
- :func:`make_da_pipeline` puts this in one line.

Why the source is carried to the target, and not the target to the source:
predictions on new target rows then cost no flow integration, the final
estimator is trained once on transported rows, and skot's pipelines behave
like POT's and skada's mappings, so their scores compare one for one.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.pipeline import make_pipeline
from sklearn.utils import _safe_indexing, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from ._domains import source_rows
from ._qflow import QFlowTransport
from ._telescoping import TelescopingRatioEstimator
from ._weights import kish_effective_size, sample_weight_array
from .exceptions import LowOverlapWarning

__all__ = [
    "ConditionalTransportEstimator",
    "FitOnSource",
    "ImportanceWeightedEstimator",
    "make_da_pipeline",
]


def _inner_has(method):
    def check(self):
        fitted = getattr(self, "estimator_", None)
        return hasattr(fitted if fitted is not None else self.estimator, method)

    return check


class _SourceTrained(MetaEstimatorMixin, BaseEstimator):
    """Delegation shared by the meta-estimators: everything but ``fit`` goes
    to the fitted inner estimator, unchanged."""

    __metadata_request__fit = {"sample_domain": True}

    def _split(self, X, y, sample_domain):
        checked = validate_data(self, X, dtype=None, ensure_min_samples=2, ensure_all_finite=False)
        # A DataFrame is handed on as given, so that the inner estimators
        # keep its column names (they would otherwise warn at predict that
        # they were fitted without them); anything else as checked.
        X = X if hasattr(X, "columns") else checked
        if y is None:
            raise ValueError(f"{type(self).__name__} needs labels y (-1 on target rows).")
        y = np.asarray(y)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)} labels.")
        return X, y, source_rows(y, sample_domain, len(X))

    def _finish(self, estimator):
        self.estimator_ = estimator
        if hasattr(estimator, "classes_"):
            self.classes_ = estimator.classes_
        return self

    @available_if(_inner_has("predict"))
    def predict(self, X):
        """Predictions of the inner estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self.estimator_.predict(X)

    @available_if(_inner_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities from the inner estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self.estimator_.predict_proba(X)

    @available_if(_inner_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities from the inner estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self.estimator_.predict_log_proba(X)

    @available_if(_inner_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the inner estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray
        """
        check_is_fitted(self)
        return self.estimator_.decision_function(X)

    @available_if(_inner_has("score"))
    def score(self, X, y, sample_weight=None):
        """Score of the inner estimator on rows with known labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        check_is_fitted(self)
        return self.estimator_.score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        return tags


class FitOnSource(_SourceTrained):
    """Fit an estimator on the labelled source rows of a stacked X.

    The last step of a domain-adaptation Pipeline sees every row, target
    rows included, whose labels are the placeholder -1. This wrapper drops
    them before fitting, so the inner estimator never learns a class "-1";
    prediction and scoring go to the inner estimator unchanged.

    Parameters
    ----------
    estimator : estimator object
        Any scikit-learn estimator; cloned at fit.

    Attributes
    ----------
    estimator_ : estimator object
        The inner estimator fitted on the source rows.
    classes_ : ndarray
        The inner estimator's classes, for classifiers.
    n_features_in_ : int

    See Also
    --------
    make_da_pipeline : A Pipeline ending with this wrapper.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skot.da import FitOnSource
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0], [1.5], [2.5]])
    >>> y = np.array([0, 0, 1, 1, -1, -1])  # the last two rows are target rows
    >>> model = FitOnSource(LogisticRegression()).fit(X, y)
    >>> model.classes_
    array([0, 1])
    """

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y, sample_domain=None, **fit_params):
        """Fit the inner estimator on the source rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Stacked rows of every domain.
        y : array-like of shape (n_samples,)
            Labels, -1 on target rows.
        sample_domain : array-like of shape (n_samples,), default=None
            Non-negative on source rows, negative on target rows. When None,
            the source rows are those whose label is not -1.
        **fit_params : dict
            Passed to the inner ``fit``; arrays with one entry per row (such
            as ``sample_weight``) are restricted to the source rows.

        Returns
        -------
        self : FitOnSource
        """
        X, y, source = self._split(X, y, sample_domain)
        params = {
            key: np.asarray(value)[source] if np.ndim(value) and len(value) == len(X) else value
            for key, value in fit_params.items()
        }
        X_source = _safe_indexing(X, source)
        return self._finish(clone(self.estimator).fit(X_source, y[source], **params))


class ImportanceWeightedEstimator(_SourceTrained):
    """Fit an estimator on the source rows weighted by ``q(x) / p(x)``.

    Under covariate shift (the target changes the distribution of X, not of
    y given X) the source risk weighted by the density ratio of target to
    source is the target risk. The ratio is estimated from the source and
    target rows of X by :class:`~skot.TelescopingRatioEstimator` (or any
    estimator with ``fit(X_source, X_target)`` and
    ``predict_weights(X, normalize=True)``), and passed to the inner
    estimator as ``sample_weight``, rescaled to mean 1 on the source rows.

    Parameters
    ----------
    estimator : estimator object
        Its ``fit`` must accept ``sample_weight``. Cloned at fit.
    ratio_estimator : estimator object, default=None
        The density-ratio estimator; ``TelescopingRatioEstimator()`` when
        None. Cloned at fit.

    Attributes
    ----------
    estimator_ : estimator object
        The inner estimator, fitted on the weighted source rows.
    ratio_estimator_ : estimator object
        The fitted ratio estimator, source as P and target as Q.
    weights_ : ndarray of shape (n_source_samples,)
        The importance weights of the source rows, mean 1 (with the ratio
        estimator's default safeguards: for TelescopingRatioEstimator, no
        weight above sqrt(n) times the mean, and the share of the target
        that the source does not cover spread over every row alike). With
        ``sample_weight`` in :meth:`fit`, their mean (and the safeguards'
        means) are weighted by the source rows' sample weights, and the
        estimator gets their product.
    effective_sample_size_ : float
        Kish's effective sample size of the weights the estimator gets
        (``weights_``, times the source rows' sample weights if any):
        roughly how many source rows it learns from.
    covered_share_ : float or None
        The share of the target's mass that the ratio estimator puts where
        the source rows are (``ratio_estimator_.covered_share(X_source)``;
        None when the ratio estimator has no such method). Below 0.5 a
        :class:`~skot.exceptions.LowOverlapWarning` says that weighting
        cannot correct most of the shift.
    classes_ : ndarray
        The inner estimator's classes, for classifiers.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skot import TelescopingRatioEstimator
    >>> from skot.da import ImportanceWeightedEstimator
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 1, (200, 1)), rng.normal(1, 1, (100, 1))]
    >>> y = np.r_[(X[:200, 0] > 0.5).astype(int), -np.ones(100, int)]
    >>> ratio = TelescopingRatioEstimator(bridge="none", max_iter=200, random_state=0)
    >>> model = ImportanceWeightedEstimator(LogisticRegression(), ratio).fit(X, y)
    >>> model.weights_.shape
    (200,)
    """

    def __init__(self, estimator, ratio_estimator=None):
        self.estimator = estimator
        self.ratio_estimator = ratio_estimator

    def fit(self, X, y, sample_domain=None, sample_weight=None):
        """Fit the ratio on source against target rows, then the estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Stacked rows of every domain.
        y : array-like of shape (n_samples,)
            Labels, -1 on target rows.
        sample_domain : array-like of shape (n_samples,), default=None
            Non-negative on source rows, negative on target rows. When None,
            the target rows are those labelled -1.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows of both domains: the ratio is fitted between
            the weighted samples (as ``sample_weight`` and
            ``target_sample_weight``, which the ratio estimator's ``fit``
            must then accept, as its ``predict_weights`` must accept
            ``sample_weight``), and the inner estimator gets each source
            row's weight times its importance weight. ``weights_`` stays the
            importance weights alone.

        Returns
        -------
        self : ImportanceWeightedEstimator
        """
        X, y, source = self._split(X, y, sample_domain)
        if (~source).sum() < 2:
            raise ValueError("Importance weighting needs at least 2 target rows.")
        ratio = self.ratio_estimator
        ratio = clone(TelescopingRatioEstimator() if ratio is None else ratio)
        X_source = _safe_indexing(X, source)
        row_weights = {}
        if sample_weight is not None:
            sample_weight = sample_weight_array(sample_weight, X)
            row_weights = {
                "sample_weight": sample_weight[source],
                "target_sample_weight": sample_weight[~source],
            }
        ratio.fit(X_source, _safe_indexing(X, ~source), **row_weights)
        # Means over the source rows (the weights' normalisation, the covered
        # share) are over the weighted sample the ratio was fitted on.
        source_weights = {} if sample_weight is None else {"sample_weight": sample_weight[source]}
        weights = ratio.predict_weights(X_source, normalize=True, **source_weights)
        weights = np.asarray(weights, dtype=np.float64)
        if not np.all(np.isfinite(weights)):
            raise ValueError("The ratio estimator returned non-finite importance weights.")
        covered = None
        if hasattr(ratio, "covered_share"):
            covered = float(ratio.covered_share(X_source, **source_weights))
            if covered < 0.5:
                warnings.warn(
                    f"The ratio estimator puts {covered:.1%} of the target's mass where the "
                    "source rows are: no weighting of the source rows reaches the rest, "
                    "which the weights give to every source row alike (no adaptation "
                    "there). Carrying the source onto the target (QFlowTransport in "
                    "make_da_pipeline) does not need the domains to overlap.",
                    LowOverlapWarning,
                    stacklevel=2,
                )
        fit_weights = weights if sample_weight is None else weights * sample_weight[source]
        estimator = clone(self.estimator).fit(X_source, y[source], sample_weight=fit_weights)
        self.ratio_estimator_ = ratio
        self.weights_ = weights
        self.effective_sample_size_ = kish_effective_size(fit_weights)
        self.covered_share_ = covered
        return self._finish(estimator)


class ConditionalTransportEstimator(_SourceTrained):
    """Fit a classifier on the source rows carried, class by class, onto the target.

    An unconditional transport of the source onto the target moves mass
    to wherever the target's mass is nearest, and where the domains' class
    shares differ, or their classes lie close, it carries rows of one class
    onto another class's region: the classifier then learns wrong labels
    there. This meta-estimator labels the target rows with the classifier
    fitted on the source (pseudo-labels), fits a class-conditional
    :class:`~skot.QFlowTransport` from the source rows, labelled by ``y``,
    to the target rows, labelled by the pseudo-labels, and fits the
    classifier again on the source rows transported within their classes.

    Source rows of a class that no target row is pseudo-labelled with have
    nowhere to go within their class: they are kept as they are (the
    pseudo-labels may be wrong) and said in ``untransported_classes_``.

    Parameters
    ----------
    estimator : classifier
        Fitted twice: on the source rows (for the pseudo-labels), then on
        the transported source rows. Cloned at fit.
    transport : QFlowTransport, default=None
        The conditional transport; ``QFlowTransport()`` when None. Cloned
        at fit.

    Attributes
    ----------
    estimator_ : classifier
        The classifier fitted on the transported source rows.
    transport_ : QFlowTransport
        The conditional flow from the source to the target rows.
    pseudo_labels_ : ndarray of shape (n_target_samples,)
        The first classifier's labels of the target rows.
    untransported_classes_ : ndarray
        Source classes that no target row was pseudo-labelled with.
    classes_ : ndarray
    n_features_in_ : int

    See Also
    --------
    skot.QFlowTransport : ``condition`` and ``target_condition`` in ``fit``.
    """

    def __init__(self, estimator, transport=None):
        self.estimator = estimator
        self.transport = transport

    def fit(self, X, y, sample_domain=None):
        """Pseudo-label the target, transport within classes, fit on the result.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Stacked rows of every domain.
        y : array-like of shape (n_samples,)
            Labels, -1 on target rows.
        sample_domain : array-like of shape (n_samples,), default=None
            Non-negative on source rows, negative on target rows. When None,
            the target rows are those labelled -1.

        Returns
        -------
        self : ConditionalTransportEstimator
        """
        X, y, source = self._split(X, y, sample_domain)
        if (~source).sum() < 2:
            raise ValueError("A conditional transport needs at least 2 target rows.")
        X_source, X_target = _safe_indexing(X, source), _safe_indexing(X, ~source)
        y_source = y[source]
        first = clone(self.estimator).fit(X_source, y_source)
        pseudo = np.asarray(first.predict(X_target))
        moves = np.isin(y_source, pseudo)
        X_moving, labels = _safe_indexing(X_source, moves), y_source[moves]
        transport = clone(QFlowTransport() if self.transport is None else self.transport)
        transport.fit(X_moving, X_target, condition=labels, target_condition=pseudo)
        X_train = np.array(X_source, dtype=np.float64)  # float, in the source's row order
        X_train[moves] = transport.transform(X_moving, condition=labels)
        estimator = clone(self.estimator).fit(X_train, y_source)
        self.transport_ = transport
        self.pseudo_labels_ = pseudo
        self.untransported_classes_ = np.unique(y_source[~moves])
        return self._finish(estimator)


def make_da_pipeline(*steps, memory=None, verbose=False):
    """A Pipeline for domain adaptation whose last step fits on source rows.

    The same as :func:`sklearn.pipeline.make_pipeline`, except that the
    final estimator is wrapped in :class:`FitOnSource` (unless it already is
    one, an :class:`ImportanceWeightedEstimator` or a
    :class:`ConditionalTransportEstimator`), so that the -1 labels of target
    rows never reach it.

    Pass ``sample_domain`` to ``fit`` as routed metadata (with
    ``sklearn.set_config(enable_metadata_routing=True)``), or, without
    routing, to the adapting step by name (``qflowtransport__sample_domain``):
    the final step then tells source rows by their labels. ``predict`` on
    target rows needs nothing more.

    Parameters
    ----------
    *steps : estimators
        Transformers, then the final estimator.
    memory, verbose
        As in :func:`sklearn.pipeline.make_pipeline`.

    Returns
    -------
    sklearn.pipeline.Pipeline

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skot import QFlowTransport
    >>> from skot.da import make_da_pipeline
    >>> rng = np.random.RandomState(0)
    >>> Xs = rng.normal(size=(100, 2))
    >>> ys = (Xs[:, 0] > 0).astype(int)
    >>> Xt = Xs + [4.0, 0.0]  # the target is the source moved right
    >>> X, y = np.r_[Xs, Xt], np.r_[ys, -np.ones(100, int)]
    >>> domain = np.r_[np.ones(100, int), -np.ones(100, int)]
    >>> flow = QFlowTransport(max_iter=5, init_max_iter=200, classifier_warmup=20,
    ...                       random_state=0)
    >>> pipe = make_da_pipeline(flow, LogisticRegression())
    >>> pipe = pipe.fit(X, y, qflowtransport__sample_domain=domain)
    >>> float((pipe.predict(Xt) == ys).mean()) > 0.9
    True
    """
    if not steps:
        raise ValueError("make_da_pipeline needs at least a final estimator.")
    *transformers, final = steps
    if not isinstance(final, _SourceTrained):
        final = FitOnSource(final)
    return make_pipeline(*transformers, final, memory=memory, verbose=verbose)
