"""Mutual information through a density ratio between a joint law and the
product of its marginals."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from scipy import stats
from sklearn.base import clone
from sklearn.preprocessing import QuantileTransformer
from sklearn.utils import check_array, check_random_state

from ._telescoping import TelescopingRatioEstimator
from ._weights import check_sample_weight

__all__ = ["mutual_information"]

# n_shuffles="auto": enough shuffles for about this many product rows, and
# no more than _AUTO_MAX_SHUFFLES (measured in docs/telescoping.md).
_AUTO_PRODUCT_ROWS = 50_000
_AUTO_MAX_SHUFFLES = 10

# preprocessing="auto" chooses between these by a one-classifier ratio
# cross-fitted on at most _SELECTION_MAX_ROWS training rows (half on each
# side). The classifier is smaller and more impatient than the default
# estimator: it only has to rank two representations. On seven draws of
# docs/telescoping.md's Student t pair it took the raw rows on six, as the
# default-sized classifier did, in about half the time.
_AUTO_PREPROCESSINGS = ("normal_scores", None)
_SELECTION_MAX_ROWS = 20_000
_SELECTION_PARAMS = dict(
    bridge="none",
    hidden_layer_sizes=(64, 64),
    early_stopping=True,
    n_iter_no_change=5,
    max_iter=2_000,
)

# Gradient steps the default estimator may take. Early stopping decides when
# it stops; this cap sets the cosine schedule's length, and 2,000 (the
# estimator's own default) ended the schedule before a spiral dependence
# was learnt: 0.76-0.78 nats of 1.5 on 50,000 rows, 1.37-1.45 with this
# cap. Most fits stop early and take as long as before; one classifier at
# 320 features ran 79 s instead of 26 s (docs/telescoping.md).
DEFAULT_MAX_ITER = 10_000


def mutual_information(
    X,
    Y,
    *,
    estimator=None,
    preprocessing="auto",
    test_size=0.5,
    n_shuffles="auto",
    n_splits=None,
    return_std=False,
    return_interval=False,
    confidence_level=0.95,
    sample_weight=None,
    random_state=None,
):
    r"""Mutual information :math:`I(X; Y)` in nats, from paired samples.

    .. math::
        I(X; Y) = \mathbb{E}_{p(x, y)} \log \frac{p(x, y)}{p(x)\, p(y)}.

    A density-ratio estimator is fitted from the product of the marginals
    (rows of ``[X, Y]`` with Y's rows shuffled, ``n_shuffles`` times) to the
    joint law (rows of ``[X, Y]`` as paired) on one part of the rows, and
    its log ratio is averaged over the joint rows of the other part.

    Mutual information does not change when X alone, or Y alone, goes
    through an invertible map, so the columns may be mapped first
    (``preprocessing``) to whatever makes the dependence easiest for the
    ratio to learn. Normal scores of each column free the ratio from the
    marginal laws, whose heavy tails or bounded supports would otherwise
    decide what the classifiers fit; but they can also bend a dependence
    that was simple in the original coordinates (the shared scale of a
    Student t pair). ``"auto"`` lets held-out rows decide between the two.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x) or (n_samples,)
    Y : array-like of shape (n_samples, n_features_y) or (n_samples,)
        Paired with X row by row.
    estimator : estimator or None, default=None
        An unfitted density-ratio estimator whose ``score_samples`` returns
        :math:`\log q / p` after ``fit(P_rows, Q_rows)``; it is cloned. None
        means ``TelescopingRatioEstimator(early_stopping=True,
        max_iter=10_000, random_state=random_state)``: without early
        stopping the classifiers of a few thousand rows overfit, and the
        held-out average of their log ratio runs far above the truth (see
        the user guide). Early stopping ends training when the held-out
        score stalls; ``max_iter`` only caps it and sets the length of the
        learning rate's cosine schedule, which at the estimator's own 2,000
        steps ended before a spiral dependence was learnt (half the
        information on 50,000 rows).
    preprocessing : "auto", "normal_scores", transformer or None, default="auto"
        A map of each side, fitted on the training rows of X, and again on
        those of Y, and applied to all rows. ``"normal_scores"``: each
        column through its empirical distribution function and the standard
        normal quantile function (:class:`~sklearn.preprocessing.QuantileTransformer`
        with ``output_distribution="normal"``), which is monotone, so it
        leaves :math:`I(X; Y)` as it is. None: the rows as they are (the
        ratio estimators standardise them). ``"auto"``: normal scores or the
        rows as they are, whichever a small one-classifier ratio
        (``TelescopingRatioEstimator(bridge="none", hidden_layer_sizes=(64,
        64), early_stopping=True, n_iter_no_change=5)``) separates better
        from the shuffled rows, by the logistic loss on rows it was not
        fitted on: it is cross-fitted on two halves of the training rows (at
        most 20,000 of them), so the rows the estimate is averaged over play
        no part in the choice. The choice is made per split and costs four
        fits of that classifier, of at most 2,000 steps and no more than
        ``estimator.max_iter`` (6-17 s on problems of 5,000 to 10,000 rows
        with 2 CPU threads, where one classifier at the defaults takes 4-7
        s); it can go either way where the two are equally
        good (Gaussian data). With fewer than 4 training rows, normal
        scores. A transformer is cloned; it must be
        invertible for the estimate to be that of the original pair.
    test_size : float, default=0.5
        Share of the rows, in (0, 1), on which the log ratio is averaged.
    n_shuffles : int or "auto", default="auto"
        Shuffles of the training rows of Y against those of X, stacked into
        the rows of the product of the marginals. The product of ``n``
        paired rows has ``n**2`` rows, and one shuffle shows the ratio
        estimator ``n`` of them: with few rows in many dimensions its
        classifiers learn that shuffle's accidents and return a fraction of
        the information (stopped early, none; see the user guide).
        ``"auto"``: as many shuffles as give about 50,000 product rows,
        from 1 to 10 (10 up to 5,000 training rows, 1 from 50,000). 1 gives
        the results of versions before this parameter.
    n_splits : int or None, default=None
        Random splits of the rows, each with its own ratio fitted on one
        part and averaged over the other; the estimate is the mean of the
        splits' estimates. With two or more, the standard error and the
        interval include how the fitted ratio itself varies (see
        ``return_interval``). None: 1, or 5 with ``return_interval``. Each
        split fits a clone of ``estimator`` (a seed set on it is the same
        for every split; the default estimator draws a seed per split).
    return_std : bool, default=False
        Also return the standard error of the estimate. With one split, that
        of the average over the held-out rows alone: it says nothing about
        the ratio's own error. With ``n_splits >= 2``, the corrected
        resampled standard error of Nadeau and Bengio (2003):
        :math:`s \sqrt{1/J + n_\mathrm{test}/n_\mathrm{train}}` for the
        standard deviation ``s`` of the ``J`` splits' estimates, which allows
        for their sharing rows.
    return_interval : bool, default=False
        Also return a ``(low, high)`` interval of level ``confidence_level``:
        Student's t with ``J - 1`` degrees of freedom on the corrected
        standard error. It needs ``n_splits >= 2`` (J fits of the ratio).
        It covers what the estimator would return on average over splits of
        these rows; a bias of the ratio that every split shares (one fitted
        on half the rows, say) is not in it. docs/telescoping.md,
        "Intervals", gives its measured coverage.
    confidence_level : float, default=0.95
        In (0, 1).
    sample_weight : array-like of shape (n_samples,), default=None
        How much each pair of rows counts: the mutual information is that
        of the weighted empirical joint law. The ratio estimator is fitted
        with the joint rows weighted, and the shuffled rows ``(x_i, y_j)``
        weighted ``w_i w_j`` (the product of the weighted marginals); it
        must accept ``sample_weight`` and ``target_sample_weight``. The
        held-out log ratios are averaged with their weights. Rows of zero
        weight are dropped.
    random_state : int, RandomState instance or None, default=None
        Seeds the split, the shuffle, and a default estimator.

    Returns
    -------
    mi : float
    std : float
        Only with ``return_std``.
    interval : tuple of float
        Only with ``return_interval``: ``(low, high)``.

    References
    ----------
    C. Nadeau and Y. Bengio, "Inference for the generalization error",
    Machine Learning 52 (2003), 239-281.

    Examples
    --------
    >>> from skot import TelescopingRatioEstimator, mutual_information
    >>> from skot.datasets import make_correlated_gaussians
    >>> X, Y, truth = make_correlated_gaussians(2000, 4, random_state=0)
    >>> est = TelescopingRatioEstimator(bridge="none", max_iter=300, random_state=0)
    >>> mi = mutual_information(X, Y, estimator=est, random_state=0)
    >>> bool(abs(mi - truth) < 0.25), truth
    (True, 1.0)

    An interval from five refits on random splits:

    >>> mi, (low, high) = mutual_information(
    ...     X, Y, estimator=est, return_interval=True, random_state=0
    ... )
    >>> bool(low < truth < high)
    True
    """
    X = _as_2d(X, "X")
    Y = _as_2d(Y, "Y")
    if len(X) != len(Y):
        raise ValueError(f"X and Y must be paired row by row; got {len(X)} and {len(Y)} rows.")
    weights = None
    if sample_weight is not None:
        XY, weights = check_sample_weight(sample_weight, np.hstack([X, Y]))
        X, Y = XY[:, : X.shape[1]], XY[:, X.shape[1] :]
    if not isinstance(test_size, Real) or not 0 < test_size < 1:
        raise ValueError(f"test_size must be a float in (0, 1), got {test_size!r}.")
    n = len(X)
    n_test = round(test_size * n)
    if n_test < 2 or n - n_test < 2:
        raise ValueError(
            f"{n} rows cannot be split into two parts of at least 2 with test_size={test_size}."
        )
    _check_preprocessing(preprocessing)
    n_splits = _check_splits(n_splits, return_interval, confidence_level)
    n_shuffles = _check_shuffles(n_shuffles, n - n_test)
    rng = check_random_state(random_state)
    estimates, errors = [], []
    for _ in range(n_splits):
        if estimator is None:
            split_estimator = TelescopingRatioEstimator(
                early_stopping=True, max_iter=DEFAULT_MAX_ITER, random_state=rng.randint(2**31)
            )
        else:
            split_estimator = clone(estimator)
        mi, error = _one_split(
            X, Y, weights, split_estimator, preprocessing, n_test, n_shuffles, rng
        )
        estimates.append(mi)
        errors.append(error)
    mi = float(np.mean(estimates))
    if n_splits == 1:
        std = errors[0]
    else:
        # The splits share rows, so their spread understates the variance of
        # their mean; Nadeau and Bengio's correction adds n_test / n_train.
        std = float(np.std(estimates, ddof=1) * np.sqrt(1 / n_splits + n_test / (n - n_test)))
    out = (mi,)
    if return_std:
        out += (std,)
    if return_interval:
        half = float(stats.t.ppf(0.5 + confidence_level / 2, df=n_splits - 1)) * std
        out += ((mi - half, mi + half),)
    return out[0] if len(out) == 1 else out


def _check_splits(n_splits, return_interval, confidence_level) -> int:
    if return_interval and not (
        isinstance(confidence_level, Real)
        and not isinstance(confidence_level, bool)
        and 0 < confidence_level < 1
    ):
        raise ValueError(f"confidence_level must be in (0, 1); got {confidence_level!r}.")
    if n_splits is None:
        return 5 if return_interval else 1
    n_splits = _positive_integer(n_splits, "n_splits", "None")
    if return_interval and n_splits < 2:
        raise ValueError(
            "an interval needs n_splits >= 2 fits of the ratio (its spread is "
            f"what the interval measures); got n_splits={n_splits}."
        )
    return n_splits


def _positive_integer(value, name, alternative) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer or {alternative}; got {value!r}.")
    return int(value)


def _check_shuffles(n_shuffles, n_train) -> int:
    if isinstance(n_shuffles, str) and n_shuffles == "auto":
        return int(np.clip(np.ceil(_AUTO_PRODUCT_ROWS / n_train), 1, _AUTO_MAX_SHUFFLES))
    return _positive_integer(n_shuffles, "n_shuffles", "'auto'")


def _one_split(X, Y, weights, estimator, preprocessing, n_test, n_shuffles, rng):
    """The estimate and its held-out standard error from one random split:
    ``estimator`` fitted on one part, its log ratio averaged over the other."""
    perm = rng.permutation(len(X))
    test, train = perm[:n_test], perm[n_test:]
    if _is_auto(preprocessing) and len(train) < 4:
        # Too few rows for two halves of two, the fewest a classifier with
        # held-out rows of its own can be fitted on: the former default.
        X, Y = _map_sides("normal_scores", X, Y, train, rng)
    elif _is_auto(preprocessing):
        candidates = [_map_sides(c, X, Y, train, rng) for c in _AUTO_PREPROCESSINGS]
        # The small classifier never trains longer than the estimator it
        # chooses for: a quick estimator keeps a quick call.
        steps = getattr(estimator, "max_iter", None)
        steps = steps if isinstance(steps, Integral) and steps > 0 else None
        X, Y = _better_separated(candidates, weights, train, n_shuffles, rng, steps)
    else:
        X, Y = _map_sides(preprocessing, X, Y, train, rng)
    _fit_ratio(estimator, X, Y, weights, train, n_shuffles, rng)
    test_weights = None if weights is None else weights[test]
    log_ratio = np.asarray(estimator.score_samples(np.hstack([X[test], Y[test]])), np.float64)
    mi = float(np.average(log_ratio, weights=test_weights))  # the mean without weights
    return mi, _standard_error(log_ratio, test_weights)


def _product_rows(rows, n_shuffles, rng):
    """Indices ``(x_rows, y_rows)`` of the product of the marginals: each
    shuffle pairs every row's X with a random row's Y, each Y once."""
    return np.tile(rows, n_shuffles), np.concatenate(
        [rng.permutation(rows) for _ in range(n_shuffles)]
    )


def _fit_ratio(estimator, X, Y, weights, rows, n_shuffles, rng):
    """``estimator`` fitted from the product of the marginals of ``rows`` to
    their joint law, the product rows weighted ``w_i w_j``."""
    x_rows, y_rows = _product_rows(rows, n_shuffles, rng)
    joint = np.hstack([X[rows], Y[rows]])
    product = np.hstack([X[x_rows], Y[y_rows]])
    if weights is None:
        return estimator.fit(product, joint)
    return estimator.fit(
        product,
        joint,
        sample_weight=weights[x_rows] * weights[y_rows],
        target_sample_weight=weights[rows],
    )


def _better_separated(candidates, weights, train, n_shuffles, rng, max_iter=None):
    """The candidate ``(X, Y)`` on which a one-classifier ratio, cross-fitted
    on two halves of the training rows, has the lower held-out logistic loss.

    The loss is a proper scoring rule for the ratio (lowest at the true
    one), so it compares representations of the same rows on the same
    footing, and it stays finite where a ratio errs, unlike the averages of
    its exponential that normalised MI estimates need. Every candidate sees
    the same halves, shuffles and classifier seeds: the comparison is
    paired. ``max_iter`` caps the classifier's steps below its own 2,000."""
    params = dict(_SELECTION_PARAMS)
    if max_iter is not None:
        params["max_iter"] = min(params["max_iter"], int(max_iter))
    seed = rng.randint(2**31)
    losses = []
    for X, Y in candidates:
        local = np.random.RandomState(seed)
        rows = local.permutation(train)[:_SELECTION_MAX_ROWS]
        halves = np.array_split(rows, 2)
        loss = 0.0
        for fit_rows, held_out in (halves, halves[::-1]):
            proxy = TelescopingRatioEstimator(**params, random_state=local.randint(2**31))
            _fit_ratio(proxy, X, Y, weights, fit_rows, n_shuffles, local)
            loss += _logistic_loss(proxy, X, Y, weights, held_out, n_shuffles, local)
        losses.append(loss)
    return candidates[int(np.argmin(losses))]


def _logistic_loss(ratio, X, Y, weights, rows, n_shuffles, rng):
    """Balanced logistic loss of the log ratio between the joint rows and
    shuffled ones: ``E_joint softplus(-r) + E_product softplus(r)``."""
    x_rows, y_rows = _product_rows(rows, n_shuffles, rng)
    on_joint = np.asarray(ratio.score_samples(np.hstack([X[rows], Y[rows]])), np.float64)
    on_product = np.asarray(ratio.score_samples(np.hstack([X[x_rows], Y[y_rows]])), np.float64)
    w_joint = w_product = None
    if weights is not None:
        w_joint, w_product = weights[rows], weights[x_rows] * weights[y_rows]
    return float(
        np.average(np.logaddexp(0.0, -on_joint), weights=w_joint)
        + np.average(np.logaddexp(0.0, on_product), weights=w_product)
    )


def _is_auto(preprocessing) -> bool:
    return isinstance(preprocessing, str) and preprocessing == "auto"


def _is_normal_scores(preprocessing) -> bool:
    return isinstance(preprocessing, str) and preprocessing == "normal_scores"


def _check_preprocessing(preprocessing):
    if preprocessing is None or _is_normal_scores(preprocessing) or _is_auto(preprocessing):
        return
    if isinstance(preprocessing, str) or not (
        hasattr(preprocessing, "fit") and hasattr(preprocessing, "transform")
    ):
        raise ValueError(
            "preprocessing must be 'auto', 'normal_scores', a transformer with "
            f"fit and transform, or None; got {preprocessing!r}."
        )


def _map_sides(preprocessing, X, Y, train, rng):
    """``(X, Y)``, each through its own map fitted on its training rows."""
    if preprocessing is None:
        return X, Y
    return _map_side(preprocessing, X, train, rng, "X"), _map_side(
        preprocessing, Y, train, rng, "Y"
    )


def _map_side(preprocessing, A, train, rng, name):
    """One side's rows through a map fitted on its training rows."""
    if _is_normal_scores(preprocessing):
        transformer = QuantileTransformer(
            output_distribution="normal",
            n_quantiles=min(10_000, len(train)),
            subsample=10**5,
            random_state=rng.randint(2**31),
        )
    else:
        transformer = clone(preprocessing)
    mapped = transformer.fit(A[train]).transform(A)
    mapped = check_array(mapped, dtype=[np.float64, np.float32], input_name=f"{name} preprocessed")
    if mapped.shape[0] != A.shape[0]:
        raise ValueError(
            f"preprocessing must map each row of {name} to one row; "
            f"{A.shape[0]} rows became {mapped.shape[0]}."
        )
    return mapped


def _standard_error(values, weights) -> float:
    """Standard error of the (weighted) mean of independent values: with
    weights, through Kish's effective sample size, which gives back the
    plain ``std(ddof=1) / sqrt(n)`` for equal weights."""
    if weights is None:
        return float(values.std(ddof=1) / np.sqrt(len(values)))
    p = weights / weights.sum()
    mean = p @ values
    n_effective = 1.0 / np.sum(p * p)  # Kish's effective sample size
    variance = (p @ np.square(values - mean)) * n_effective / (n_effective - 1)
    return float(np.sqrt(variance / n_effective))


def _as_2d(a, name):
    a = check_array(a, ensure_2d=False, dtype=[np.float64, np.float32], input_name=name)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D, got {a.ndim} dimensions.")
    return a
