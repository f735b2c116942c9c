"""sample_weight: what a weight must mean, for every estimator.

Closed-form answers come from one construction: two well-separated modes
holding half the rows each, the left rows weighted 3 and the right ones 1.
The weighted law puts 3/4 of its mass on the left mode, the unweighted one
1/2, so a fit that ignores the weights is off by a quarter of the mass.
"""

import re

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from skot import (
    OTFlowDensity,
    QFlowTransport,
    SJKOGenerator,
    TelescopingRatioEstimator,
    mutual_information,
)
from skot._weights import RowSampler
from skot.da import ImportanceWeightedEstimator

LEFT_WEIGHT = 3
LEFT_SHARE = LEFT_WEIGHT / (LEFT_WEIGHT + 1)  # of the weighted law's mass


def two_modes(n, seed):
    """Rows at -2 and +2 (std 0.5), half each, and which are the left ones."""
    rng = np.random.default_rng(seed)
    left = np.arange(n) < n // 2
    X = np.where(left[:, None], -2.0, 2.0) + 0.5 * rng.standard_normal((n, 1))
    return X, left


def left_share(S):
    return float(np.mean(S[:, 0] < 0))


# ------------------------------------------------------------ exact rules

SMALL_QFLOW = dict(
    init_max_iter=20,
    max_iter=3,
    n_flips=1,
    classifier_warmup=3,
    hidden_layer_sizes=(16,),
    classifier_hidden_layer_sizes=(16,),
    batch_size=32,
    random_state=0,
)


def _outputs(estimator, X, Y):
    """What a fitted estimator says about fixed rows, for exact comparisons."""
    probe = np.linspace(-3, 3, 40)[:, None].repeat(X.shape[1], axis=1)
    out = {}
    for method in ("transform", "score_samples"):
        if hasattr(estimator, method) and not isinstance(estimator, SJKOGenerator):
            out[method] = getattr(estimator, method)(probe)
    if hasattr(estimator, "sample"):
        out["sample"] = estimator.sample(50, random_state=0)
    return out


FIT_CASES = [
    ("QFlowTransport", QFlowTransport(**SMALL_QFLOW), True),
    (
        "QFlowTransport, early stopping",
        QFlowTransport(**SMALL_QFLOW, early_stopping=True, validation_fraction=0.2),
        True,
    ),
    ("OTFlowDensity", OTFlowDensity(max_iter=3, hidden_layer_sizes=(8, 8), random_state=0), False),
    (
        "SJKOGenerator",
        SJKOGenerator(
            n_phases=2,
            max_iter=3,
            batch_size=32,
            hidden_layer_sizes=(8,),
            potential_hidden_layer_sizes=(8,),
            random_state=0,
        ),
        False,
    ),
    (
        "TelescopingRatioEstimator",
        TelescopingRatioEstimator(
            transport=QFlowTransport(**SMALL_QFLOW), n_intervals=2, max_iter=5, random_state=0
        ),
        True,
    ),
]


@pytest.mark.parametrize(("name", "estimator", "two_samples"), FIT_CASES)
def test_zero_weights_are_dropped_rows(name, estimator, two_samples):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(120, 2)), rng.normal(1.0, 1.0, size=(90, 2))
    weights = np.ones(len(X))
    weights[::4] = 0
    args = (X, Y) if two_samples else (X,)
    weighted = clone(estimator).fit(*args, sample_weight=weights)
    dropped = clone(estimator).fit(X[weights > 0], *args[1:])
    for method, out in _outputs(weighted, X, Y).items():
        np.testing.assert_array_equal(out, _outputs(dropped, X, Y)[method], err_msg=method)
    if two_samples:
        target_weights = np.ones(len(Y))
        target_weights[1::3] = 0
        weighted = clone(estimator).fit(X, Y, target_sample_weight=target_weights)
        dropped = clone(estimator).fit(X, Y[target_weights > 0])
        for method, out in _outputs(weighted, X, Y).items():
            np.testing.assert_array_equal(out, _outputs(dropped, X, Y)[method], err_msg=method)


@pytest.mark.parametrize(("name", "estimator", "two_samples"), FIT_CASES[2:4])
def test_equal_weights_are_no_weights(name, estimator, two_samples):
    X = np.random.default_rng(1).normal(size=(100, 2))
    weighted = clone(estimator).fit(X, sample_weight=np.full(len(X), 2.5))
    plain = clone(estimator).fit(X)
    for method, out in _outputs(weighted, X, None).items():
        np.testing.assert_array_equal(out, _outputs(plain, X, None)[method], err_msg=method)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (lambda n: -np.ones(n), "Negative values"),
        (lambda n: np.r_[np.ones(n - 1), np.nan], "NaN"),
        (lambda n: np.ones(n - 3), "shape"),
        (lambda n: np.ones((n, 2)), "1D"),
        # scikit-learn 1.9 refuses all-zero weights itself; a version that
        # lets them through meets the count of rows left.
        (lambda n: np.zeros(n), "non-zero|at least 2 rows"),
        (lambda n: np.r_[1.0, np.zeros(n - 1)], "at least 2 rows"),
    ],
    ids=["negative", "nan", "short", "2-D", "all zero", "one row left"],
)
@pytest.mark.parametrize(("name", "estimator", "two_samples"), FIT_CASES[::2])
def test_bad_weights_are_clear_errors(name, estimator, two_samples, weights, message):
    X = np.random.default_rng(2).normal(size=(30, 2))
    args = (X, X + 1) if two_samples else (X,)
    fresh = clone(estimator)
    with pytest.raises(ValueError, match="sample_weight") as error:
        fresh.fit(*args, sample_weight=weights(len(X)))
    assert re.search(message, str(error.value))
    assert not hasattr(fresh, "n_iter_")  # nothing half-fitted


def test_target_weights_need_a_target_sample():
    X = np.random.default_rng(3).normal(size=(40, 2))
    with pytest.raises(ValueError, match="without one the target is N"):
        QFlowTransport(**SMALL_QFLOW).fit(X, target_sample_weight=np.ones(40))
    domain = np.r_[np.zeros(20, int), -np.ones(20, int)]
    with pytest.raises(ValueError, match="pass no target_sample_weight"):
        QFlowTransport(**SMALL_QFLOW).fit(
            X, sample_domain=domain, sample_weight=np.ones(40), target_sample_weight=np.ones(20)
        )
    with pytest.raises(ValueError, match=r"target_sample_weight: .*shape"):
        QFlowTransport(**SMALL_QFLOW).fit(X, X + 1, target_sample_weight=np.ones(7))


def test_row_sampler_draws_in_proportion_to_weights():
    import torch

    weights = np.array([0.0, 1.0, 2.0, 5.0])
    gen = torch.Generator().manual_seed(0)
    rows = RowSampler(4, weights, torch.device("cpu")).draw(80_000, gen).numpy()
    shares = np.bincount(rows, minlength=4) / len(rows)
    # Binomial standard errors are below 0.002: 0.01 is five of them.
    np.testing.assert_allclose(shares, weights / weights.sum(), atol=0.01)
    assert shares[0] == 0


class _RecordsWeights(ClassifierMixin, BaseEstimator):
    def fit(self, X, y, sample_weight=None):
        self.sample_weight_ = sample_weight
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


def test_importance_weighting_multiplies_row_weights_with_ratios():
    rng = np.random.default_rng(4)
    X = np.r_[rng.normal(0, 1, (60, 1)), rng.normal(1, 1, (40, 1))]
    y = np.r_[(X[:60, 0] > 0).astype(int), -np.ones(40, int)]
    row_weights = rng.integers(1, 4, size=100).astype(float)
    ratio = TelescopingRatioEstimator(bridge="none", max_iter=5, random_state=0)
    model = ImportanceWeightedEstimator(_RecordsWeights(), ratio).fit(
        X, y, sample_weight=row_weights
    )
    expected = model.weights_ * row_weights[:60]
    np.testing.assert_allclose(model.estimator_.sample_weight_, expected)
    # The ratio itself was fitted on the weighted samples: refitting it by
    # hand with those weights gives the same importance weights.
    by_hand = clone(ratio).fit(
        X[:60], X[60:], sample_weight=row_weights[:60], target_sample_weight=row_weights[60:]
    )
    np.testing.assert_allclose(
        model.weights_,
        by_hand.predict_weights(X[:60], normalize=True, sample_weight=row_weights[:60]),
    )
    # Their mean is 1 over the weighted source rows, and the covered share is
    # the weighted mean of the ratio.
    assert np.average(model.weights_, weights=row_weights[:60]) == pytest.approx(1.0)
    share = np.average(np.exp(by_hand.score_samples(X[:60])), weights=row_weights[:60])
    assert model.covered_share_ == pytest.approx(min(share, 1.0), rel=1e-5)
    # The effective sample size is that of the weights the estimator gets.
    kish = expected.sum() ** 2 / np.square(expected).sum()
    assert model.effective_sample_size_ == pytest.approx(kish)
    assert by_hand.effective_sample_size(X[:60], sample_weight=row_weights[:60]) == pytest.approx(
        kish, rel=1e-5
    )


# ------------------------------------------------------------ statistical


@pytest.fixture(scope="module")
def weighted_modes():
    X, left = two_modes(2000, seed=11)
    weights = np.where(left, LEFT_WEIGHT, 1)
    return X, weights, np.repeat(X, weights, axis=0)


def _three_fits(weighted_modes, fit_and_sample):
    """Left shares of the samples of three fits: on the weighted rows, on
    the rows repeated as their weights say, on the rows unweighted."""
    X, weights, repeated = weighted_modes
    fits = {"weighted": (X, weights), "repeated": (repeated, None), "plain": (X, None)}
    return {label: left_share(fit_and_sample(*fit)) for label, fit in fits.items()}


@pytest.mark.statistical
def test_otflow_weights_count_as_repeated_rows(weighted_modes):
    X, weights, repeated = weighted_modes
    params = dict(max_iter=100, batch_size=256, n_steps=4, hidden_layer_sizes=(16, 16))
    shares = {}
    for label, data, w in (
        ("weighted", X, weights),
        ("repeated", repeated, None),
        ("plain", X, None),
    ):
        model = OTFlowDensity(random_state=0, **params).fit(data, sample_weight=w)
        shares[label] = left_share(model.sample(4000, random_state=1))
    # 4000 samples: a binomial standard error of 0.007; the rest is the fit's.
    assert abs(shares["weighted"] - LEFT_SHARE) < 0.04, shares
    assert abs(shares["weighted"] - shares["repeated"]) < 0.04, shares
    assert abs(shares["plain"] - 0.5) < 0.04, shares  # the weights did the work


@pytest.mark.statistical
def test_sjko_weights_count_as_repeated_rows(weighted_modes):
    X, weights, repeated = weighted_modes
    params = dict(
        n_phases=2, max_iter=200, hidden_layer_sizes=(32, 32), potential_hidden_layer_sizes=(32, 32)
    )
    shares = {}
    for label, data, w in (
        ("weighted", X, weights),
        ("repeated", repeated, None),
        ("plain", X, None),
    ):
        model = SJKOGenerator(random_state=0, **params).fit(data, sample_weight=w)
        shares[label] = left_share(model.sample(4000, random_state=1))
    assert abs(shares["weighted"] - LEFT_SHARE) < 0.05, shares
    assert abs(shares["weighted"] - shares["repeated"]) < 0.05, shares
    assert abs(shares["plain"] - 0.5) < 0.05, shares


@pytest.mark.statistical
def test_qflow_weights_on_either_sample_count_as_repeated_rows(weighted_modes):
    # A flow to N(0, I) pulled back from Gaussian rows samples the fitted
    # source law; a flow from Gaussian rows onto the modes samples the
    # fitted target law. Either way 3/4 of the mass must land on the left.
    X, weights, repeated = weighted_modes
    params = dict(
        init_max_iter=600,
        n_flips=1,
        max_iter=20,
        classifier_warmup=50,
        classifier_hidden_layer_sizes=(32, 32),
    )
    Z = np.random.default_rng(1).standard_normal((4000, 1))
    shares = {}
    for label, data, w in (
        ("weighted", X, weights),
        ("repeated", repeated, None),
        ("plain", X, None),
    ):
        model = QFlowTransport(random_state=0, **params).fit(data, sample_weight=w)
        shares[label] = left_share(model.inverse_transform(Z))
    target = QFlowTransport(random_state=0, **params).fit(Z[:2000], X, target_sample_weight=weights)
    shares["target weighted"] = left_share(target.transform(Z[2000:]))
    stacked = np.r_[Z[:2000], X]
    domain = np.r_[np.zeros(2000, int), -np.ones(len(X), int)]
    adapter = QFlowTransport(random_state=0, **params).fit(
        stacked, sample_domain=domain, sample_weight=np.r_[np.ones(2000), weights]
    )
    shares["domains weighted"] = left_share(
        adapter.transform(Z[2000:], sample_domain=np.zeros(2000, int))
    )
    for label in ("weighted", "target weighted", "domains weighted"):
        assert abs(shares[label] - LEFT_SHARE) < 0.04, shares
    assert abs(shares["weighted"] - shares["repeated"]) < 0.04, shares
    assert abs(shares["plain"] - 0.5) < 0.04, shares


@pytest.mark.statistical
def test_qflow_refinement_moves_mass_by_the_weights(weighted_modes):
    # The refinement alone, warm-started from a flow fitted without
    # weights (half the mass on the left): with the weights it must carry
    # the flow to 3/4 (measured 0.731; 0.755 with the former initial rate
    # 1e-3 and no moving average); ignoring them it stays at 1/2.
    X, weights, _ = weighted_modes
    Z = np.random.default_rng(1).standard_normal((4000, 1))
    flow = QFlowTransport(init_max_iter=600, n_flips=0, random_state=0).fit(X)
    assert abs(left_share(flow.inverse_transform(Z)) - 0.5) < 0.04
    flow.set_params(
        warm_start=True,
        n_flips=1,
        max_iter=300,
        learning_rate_init=3e-4,
        classifier_warmup=100,
        classifier_hidden_layer_sizes=(32, 32),
    )
    flow.fit(X, sample_weight=weights)
    assert abs(left_share(flow.inverse_transform(Z)) - LEFT_SHARE) < 0.05


@pytest.mark.statistical
def test_ratio_of_weighted_samples_matches_closed_form(weighted_modes):
    # P: the modes weighted 3:1; Q: the same rows unweighted. The true log
    # ratio log q/p is log(1/2 / 3/4) on the left mode, log(1/2 / 1/4) on
    # the right one.
    X, weights, _ = weighted_modes
    model = TelescopingRatioEstimator(bridge="none", max_iter=300, random_state=0)
    model.fit(X, X, sample_weight=weights)
    X_test, left = two_modes(2000, seed=12)
    log_ratio = model.score_samples(X_test)
    assert log_ratio[left].mean() == pytest.approx(np.log(0.5 / LEFT_SHARE), abs=0.08)
    assert log_ratio[~left].mean() == pytest.approx(np.log(0.5 / (1 - LEFT_SHARE)), abs=0.08)


@pytest.mark.statistical
def test_mutual_information_of_weighted_pairs_matches_closed_form():
    # Signs a, b drawn independently (MI 0 unweighted); the pairs with
    # a = b = 1 weighted 9 make the weighted law of the signs P(1, 1) = 3/4
    # and 1/12 elsewhere, whose mutual information is in closed form. Both
    # marginals move too (P(a = 1) = 5/6), so product rows weighted by one
    # side only are wrong. The modes are 20 standard deviations apart: the
    # continuous pairs carry the signs' information and no more.
    rng = np.random.default_rng(13)
    a, b = rng.choice([-1, 1], 4000), rng.choice([-1, 1], 4000)
    X = 3 * a[:, None] + 0.3 * rng.standard_normal((4000, 1))
    Y = 3 * b[:, None] + 0.3 * rng.standard_normal((4000, 1))
    weights = np.where((a == 1) & (b == 1), 9.0, 1.0)
    joint = np.array([[9.0, 1.0], [1.0, 1.0]]) / 12  # rows a = 1, -1; columns b
    truth = float(np.sum(joint * np.log(joint / np.outer(joint.sum(1), joint.sum(0)))))
    estimator = TelescopingRatioEstimator(bridge="none", max_iter=300, random_state=0)
    mi, std = mutual_information(
        X, Y, estimator=estimator, sample_weight=weights, return_std=True, random_state=0
    )
    assert mi == pytest.approx(truth, abs=0.04)
    assert 0 < std < 0.03
    assert abs(mutual_information(X, Y, estimator=estimator, random_state=0)) < 0.03
