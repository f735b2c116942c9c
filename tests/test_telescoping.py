"""TelescopingRatioEstimator: quadrature, bridges, accuracy against closed-form
log ratios, the transport parameter, model selection, bad input."""

import pickle

import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.base import clone
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from skot import (
    BRIDGE_SCHEDULE,
    QFlowTransport,
    TelescopingRatioEstimator,
    TrainingDivergedError,
)
from skot._bridges import DirectBridge, FlowBridge, LinearBridge
from skot._nets import TimeMLP
from skot._ratio import integrated_log_ratio
from skot._telescoping import safeguarded_log_weights
from skot.datasets import make_mixture_pair

FAST_QFLOW = dict(
    init_max_iter=60,
    max_iter=2,
    n_flips=1,
    classifier_warmup=2,
    classifier_steps=1,
    hidden_layer_sizes=(16,),
    classifier_hidden_layer_sizes=(16,),
    batch_size=64,
    random_state=0,
)
FAST = dict(n_intervals=2, hidden_layer_sizes=(32, 32), max_iter=30, batch_size=64, random_state=0)


@pytest.fixture(scope="module")
def shifted():
    rng = np.random.RandomState(0)
    return rng.normal(size=(300, 2)), rng.normal(1.0, 1.0, size=(200, 2))


@pytest.fixture(scope="module")
def fitted_qflow(shifted):
    return QFlowTransport(**FAST_QFLOW).fit(*shifted)


# --------------------------------------------------------- machinery


def test_quadrature_is_exact_for_cubics():
    def net(x, t):
        return t**3 - 2 * t + x.sum(1, keepdim=True) * t**2

    x = torch.randn(3, 5, 2, dtype=torch.float64)
    lo = torch.tensor([0.0, 0.2, 0.5], dtype=torch.float64)
    hi = torch.tensor([0.2, 0.5, 1.0], dtype=torch.float64)
    exact = (
        (hi**4 - lo**4)[:, None] / 4
        - (hi**2 - lo**2)[:, None]
        + x.sum(2) * (hi**3 - lo**3)[:, None] / 3
    )
    assert torch.allclose(integrated_log_ratio(net, x, lo, hi), exact, atol=1e-12)


def test_bridges_start_at_p_and_end_at_q():
    gen = torch.Generator().manual_seed(0)
    X, Y = torch.randn(50, 3), torch.randn(40, 3) + 5
    grid = torch.linspace(0, 1, 5)
    for bridge in (DirectBridge(X, Y), LinearBridge(X, Y, grid)):
        ix, iy = torch.arange(8), torch.arange(8) + 3
        states = bridge.states(ix, iy)
        assert len(states) == len(bridge.grid)
        assert torch.allclose(states[0], X[ix]) and torch.allclose(states[-1], Y[iy])

    forward = torch.randn(50, 5, 3)
    backward = torch.randn(40, 5, 3)
    states = FlowBridge(forward, backward, grid).draw(8, gen)
    assert len(states) == 5 and all(s.shape == (8, 3) for s in states)
    ix, iy = torch.arange(8), torch.arange(8)
    states = FlowBridge(forward, backward, grid).states(ix, iy)
    assert torch.equal(states[0], forward[:8, 0]) and torch.equal(states[-1], backward[:8, -1])
    # inner nodes: half P's rows carried forwards, half Q's carried backwards
    assert torch.equal(states[2][:4], forward[:4, 2])
    assert torch.equal(states[2][4:], backward[4:8, 2])


def test_inverse_trajectory_runs_backwards_from_q(fitted_qflow, shifted):
    _, Y = shifted
    path = fitted_qflow.trajectory(Y[:20], inverse=True)
    assert path.shape == (20, fitted_qflow.n_intervals + 1, 2)
    np.testing.assert_allclose(path[:, -1], Y[:20], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(path[:, 0], fitted_qflow.inverse_transform(Y[:20]), atol=1e-4)
    forward = fitted_qflow.trajectory(path[:, 0])
    np.testing.assert_allclose(forward, path, atol=1e-3)
    with pytest.raises(ValueError, match="end at 1"):
        fitted_qflow.trajectory(Y[:2], times=[0.0, 0.5], inverse=True)


# --------------------------------------------------------- accuracy


def test_log_ratio_of_two_gaussians_in_1d():
    # q = N(0, 1) (no target: Q is N(0, I)), p = N(0, 2^2): the log ratio is
    # a parabola known in closed form.
    X = np.random.RandomState(0).normal(0.0, 2.0, size=(4000, 1))
    est = TelescopingRatioEstimator(
        bridge="linear", n_intervals=2, hidden_layer_sizes=(64, 64), max_iter=800, random_state=0
    ).fit(X)
    grid = np.linspace(-2.5, 2.5, 201)[:, None]
    true = norm.logpdf(grid[:, 0]) - norm.logpdf(grid[:, 0], scale=2.0)
    assert np.abs(est.score_samples(grid) - true).mean() < 0.1


@pytest.mark.statistical
def test_mixture_log_ratio_beats_one_classifier():
    # Q-flow's density-ratio experiment: P has three components, Q two.
    # Measured (this test's settings, the bridge's schedule): MAE 0.193 with the Q-flow bridge
    # (0.192 with the flow trained on 3 RK4 steps per interval, the former
    # default), 0.217 for one classifier. The flow is refined for 20 steps, not the
    # default 100: the MAE is 0.191 after 100, in 30 s more.
    X, Y, (P, Q) = make_mixture_pair(10000, random_state=0)
    test = np.concatenate([P.sample(5000, random_state=1), Q.sample(5000, random_state=2)])
    true = Q.logpdf(test) - P.logpdf(test)
    common = dict(hidden_layer_sizes=(128, 128, 128), max_iter=2000, random_state=0)
    qflow = QFlowTransport(**BRIDGE_SCHEDULE, max_iter=20, random_state=0).fit(X, Y)
    telescoped = TelescopingRatioEstimator(qflow, n_intervals=4, **common).fit(X, Y)
    single = TelescopingRatioEstimator(bridge="none", **common).fit(X, Y)

    mae = np.abs(telescoped.score_samples(test) - true).mean()
    mae_single = np.abs(single.score_samples(test) - true).mean()
    assert mae < 0.25
    assert mae < mae_single


# --------------------------------------------------------- the transport


def test_fitted_transport_is_used_as_is(fitted_qflow, shifted):
    est = TelescopingRatioEstimator(fitted_qflow, **FAST).fit(*shifted)
    assert est.transport_ is fitted_qflow


def test_unfitted_transport_is_cloned_and_fitted(shifted):
    transport = QFlowTransport(**{**FAST_QFLOW, "random_state": None})
    est = TelescopingRatioEstimator(transport, **FAST).fit(*shifted)
    assert not hasattr(transport, "velocity_")  # the parameter is left alone
    assert est.transport_ is not transport and hasattr(est.transport_, "velocity_")
    # it was seeded from the estimator's random_state, so fits repeat
    again = TelescopingRatioEstimator(transport, **FAST).fit(*shifted)
    X = shifted[0][:10]
    np.testing.assert_array_equal(est.transport_.transform(X), again.transport_.transform(X))


def _default_bridge(monkeypatch, X, Y):
    """The QFlowTransport that a default estimator builds for (X, Y), caught
    as its fit starts (nothing is trained)."""

    class Built(Exception):
        pass

    def record(self, *args, **kwargs):
        raise Built(self)

    monkeypatch.setattr(QFlowTransport, "fit", record)
    with pytest.raises(Built) as built:
        TelescopingRatioEstimator(**FAST).fit(X, Y)
    return built.value.args[0]


def test_default_bridge_is_fitted_on_the_bridge_schedule(shifted, monkeypatch):
    # Without a transport, the bridge is a Q-flow on BRIDGE_SCHEDULE, not on
    # QFlowTransport's map defaults (a smoother flow; docs/qflow.md).
    params = _default_bridge(monkeypatch, *shifted).get_params()
    assert {key: params[key] for key in BRIDGE_SCHEDULE} == dict(BRIDGE_SCHEDULE)
    assert params["init_max_iter"] == 2000 and params["gamma"] == 0.01
    # Every ratio figure was measured on a bridge without the map's reflow.
    assert params["init_reflow_max_iter"] == 0
    with pytest.raises(TypeError):  # read-only: it is every default bridge's
        BRIDGE_SCHEDULE["gamma"] = 0.5


def test_default_bridge_widens_with_the_features(monkeypatch):
    # Past 64 features the default bridge's flow has 2 d units a layer, so
    # that its Jacobian can have full rank: with 128 units MI at d=160 came
    # out 19.5% short, with 320 6.6% (docs/telescoping.md).
    rng = np.random.default_rng(0)
    for d, width in ((10, 128), (70, 140)):
        X, Y = rng.normal(size=(50, d)), rng.normal(1.0, size=(50, d))
        bridge = _default_bridge(monkeypatch, X, Y)
        assert bridge._velocity_widths(d) == (width,) * 3


def _linear_widths(module):
    return [layer.out_features for layer in module.modules() if isinstance(layer, torch.nn.Linear)]


def test_ratio_network_alone_widens_its_first_layer_with_the_features():
    # The log ratio between Gaussians is a full-rank quadratic form, and the
    # network reads x through its first layer only: without the baseline
    # and the quadratic part, past 64 features that
    # layer has 2 d units (with 128, MI at d=200 came out 21% short; with
    # 400, within 1%; docs/telescoping.md). The class columns of a
    # conditional fit count as features.
    rng = np.random.default_rng(0)
    for d, labels, first in ((10, None, 128), (70, None, 140), (69, [0, 1] * 25, 142)):
        X, Y = rng.normal(size=(50, d)), rng.normal(1.0, size=(50, d))
        est = TelescopingRatioEstimator(
            bridge="none", baseline=None, quadratic=False, max_iter=1, random_state=0
        )
        est.fit(X, Y, condition=labels, target_condition=labels)
        assert _linear_widths(est.ratio_) == [first, 128, 128, 1]
        assert est.ratio_.directions is None


def test_ratio_network_without_baseline_takes_the_quadratic_part_past_64_features():
    # Without the Gaussian baseline, past 64 features (class columns
    # included) the quadratic part, of full rank itself, replaces the
    # widening: three layers of 128 units.
    rng = np.random.default_rng(0)
    for d, labels, quadratic in ((64, None, False), (65, None, True), (63, [0, 1] * 25, True)):
        X, Y = rng.normal(size=(50, d)), rng.normal(1.0, size=(50, d))
        est = TelescopingRatioEstimator(bridge="none", baseline=None, max_iter=1, random_state=0)
        est.fit(X, Y, condition=labels, target_condition=labels)
        n_inputs = d + (0 if labels is None else 2)
        assert (est.ratio_.directions is not None) is quadratic
        assert _linear_widths(est.ratio_.net) == [128, 128, 128, 1]
        if quadratic:
            assert est.ratio_.directions.weight.shape == (n_inputs, n_inputs)


@pytest.mark.parametrize("quadratic", [True, False])
def test_quadratic_part_extrapolates_a_gaussian_log_ratio_as_a_parabola(quadratic):
    # P = N(0, 1.5^2 I), Q = N(0, I) in 3-D: the true log ratio is a parabola
    # in the radius, so along a ray it grows 4 times more from r=40 to 80
    # than from 20 to 40. The quadratic part keeps that growth far from the
    # rows; a network of SiLU units alone grows linearly there (ratio 2).
    # This test's settings drawn with seeds 0-3 (a development run): medians
    # 2.95-3.86 with the part, 1.97-1.98 without. (Without the Gaussian
    # baseline, which would carry the parabola itself.)
    rng = np.random.RandomState(4)
    X, Y = rng.normal(0, 1.5, size=(2000, 3)), rng.normal(size=(2000, 3))
    est = TelescopingRatioEstimator(
        bridge="none",
        hidden_layer_sizes=(32, 32),
        baseline=None,
        quadratic=quadratic,
        max_iter=500,
        random_state=4,
    ).fit(X, Y)
    rays = rng.normal(size=(20, 3))
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    f = {r: est.score_samples(rays * r) for r in (20, 40, 80)}
    growth = np.median((f[80] - f[40]) / (f[40] - f[20]))
    if quadratic:
        assert growth > 2.5
    else:
        assert growth < 2.2


def test_a_network_pickled_before_the_quadratic_part_still_runs():
    # TimeMLPs pickled by earlier versions have no quadratic attributes.
    net = TimeMLP(3, 1, (8,))
    x = torch.randn(5, 3)
    expected = net(x, 0.5)
    del net.__dict__["directions"], net.__dict__["curvatures"]
    torch.testing.assert_close(net(x, 0.5), expected)


@pytest.mark.parametrize("bridge", ["linear", "none"])
def test_other_bridges_need_no_transport(shifted, bridge):
    est = TelescopingRatioEstimator(bridge=bridge, **FAST).fit(*shifted)
    assert est.transport_ is None
    assert len(est.grid_) == (2 if bridge == "none" else FAST["n_intervals"] + 1)


def test_transport_fitted_on_other_features_is_refused(fitted_qflow):
    X = np.random.RandomState(0).normal(size=(50, 3))
    with pytest.raises(ValueError, match="transport was fitted on 2 features"):
        TelescopingRatioEstimator(fitted_qflow, **FAST).fit(X, X + 1)


# --------------------------------------------------------- behaviour


@pytest.fixture(scope="module")
def fitted(shifted, fitted_qflow):
    return TelescopingRatioEstimator(fitted_qflow, **FAST).fit(*shifted)


def test_weights_are_exponentiated_log_ratios(fitted, shifted):
    X = shifted[0]
    np.testing.assert_allclose(
        fitted.predict_weights(X, max_weight=None, uncovered=None),
        np.exp(fitted.score_samples(X)),
        rtol=1e-6,
    )
    weights = fitted.predict_weights(X, normalize=True)
    assert weights.mean() == pytest.approx(1.0)
    assert weights.dtype == np.float64
    assert fitted.predict_weights(X.astype(np.float32)).dtype == np.float32


# --------------------------------------------------------- weight safeguards


def test_truncation_caps_each_weight_at_sqrt_n_times_the_mean():
    log_ratio = np.r_[np.log(1e6), np.zeros(99)]
    mean = (1e6 + 99) / 100
    capped = np.exp(safeguarded_log_weights(log_ratio))
    np.testing.assert_allclose(capped, np.r_[10 * mean, np.ones(99)], rtol=1e-12)
    fifty = np.exp(safeguarded_log_weights(log_ratio, max_weight=50))
    np.testing.assert_allclose(fifty[0], 50 * mean, rtol=1e-12)
    np.testing.assert_allclose(np.exp(safeguarded_log_weights(log_ratio, None)), np.exp(log_ratio))


def test_flattening_raises_the_weights_to_the_power():
    log_ratio = np.linspace(-3, 3, 7)
    flat = safeguarded_log_weights(log_ratio, max_weight=None, power=0.5)
    np.testing.assert_allclose(np.exp(flat), np.exp(log_ratio) ** 0.5)


def test_the_uncovered_share_is_spread_over_every_row():
    # Mean ratio c = 0.3: the weights are c w / mean(w) + (1 - c) = w + 0.7.
    log_ratio = np.log([0.1, 0.5, 0.3, 0.3])
    spread = np.exp(safeguarded_log_weights(log_ratio, max_weight=None))
    np.testing.assert_allclose(spread, np.exp(log_ratio) + 0.7, rtol=1e-12)
    # With a cap that binds, the covered share is still the ratio's mean
    # (0.5099), not the capped weights' (0.0609): truncation only moves
    # weight between the covered rows.
    log_ratio = np.log(np.r_[50.0, np.full(99, 0.01)])
    capped = np.r_[10 * 0.5099, np.full(99, 0.01)]
    expected = 0.5099 * capped / capped.mean() + (1 - 0.5099)
    np.testing.assert_allclose(np.exp(safeguarded_log_weights(log_ratio)), expected, rtol=1e-12)
    # A ratio whose mean is 1 or more covers Q: the weights are left alone.
    log_ratio = np.log([0.5, 2.0, 0.5, 1.5])
    np.testing.assert_allclose(
        safeguarded_log_weights(log_ratio), safeguarded_log_weights(log_ratio, uncovered=None)
    )


def test_row_weights_enter_the_safeguards_as_repeated_rows():
    # Integer row weights are repeated rows: the flattened, capped, spread
    # weights of the weighted rows are those of the repeated rows (the sqrt-n
    # cap counts rows, so the cap is given as a number here). Mean ratio over
    # the weighted rows (0.1 + 0.5 + 3 * 0.2 + 0.4) / 6 = 0.267, over the
    # plain rows 0.3.
    log_ratio = np.log([0.1, 0.5, 0.2, 0.4])
    counts = np.array([1, 1, 3, 1])
    repeated = np.repeat(log_ratio, counts)
    for max_weight, power in [(None, 1.0), (2.0, 0.5)]:
        weighted = safeguarded_log_weights(
            log_ratio, max_weight=max_weight, power=power, sample_weight=counts
        )
        by_rows = safeguarded_log_weights(repeated, max_weight=max_weight, power=power)
        np.testing.assert_allclose(np.repeat(weighted, counts), by_rows, rtol=1e-12)
    log_ratio = np.log([0.05, 0.05, 0.35, 0.05])
    counts = np.array([1, 1, 5, 1])  # weighted mean 0.2375, plain mean 0.125
    spread = np.exp(safeguarded_log_weights(log_ratio, max_weight=None, sample_weight=counts))
    np.testing.assert_allclose(spread, np.exp(log_ratio) + (1 - 0.2375), rtol=1e-12)
    # Rows of weight 0 count for nothing.
    with_zero = safeguarded_log_weights(
        np.r_[log_ratio, np.log(40.0)], max_weight=None, sample_weight=np.r_[counts, 0]
    )
    np.testing.assert_allclose(np.exp(with_zero[:4]), spread, rtol=1e-12)


def test_spread_weights_average_like_the_covered_target_plus_the_source():
    # P = N(0, 1); Q = 0.3 N(0.5, 1) + 0.7 N(30, 1), whose far component no
    # row of P reaches. With the exact ratio, E_P[q/p] = 0.3 is the covered
    # share, and the spread weights average x to 0.3 * 0.5 + 0.7 * 0 = 0.15
    # and x^2 to 0.3 * 1.25 + 0.7 * 1 = 1.075 (the covered part of Q, the
    # rest as P). Normalised without the spread, they average x to 0.5, the
    # covered component's mean, as if it were all of Q.
    x = np.random.RandomState(3).normal(size=20000)
    log_ratio = np.logaddexp(np.log(0.3) + 0.5 * x - 0.125, np.log(0.7) + 30 * x - 450)
    assert np.exp(np.logaddexp.reduce(log_ratio)) / len(x) == pytest.approx(0.3, abs=0.01)
    spread = np.exp(safeguarded_log_weights(log_ratio))
    assert spread.mean() == pytest.approx(1.0)
    assert np.average(x, weights=spread) == pytest.approx(0.15, abs=0.02)
    assert np.average(x**2, weights=spread) == pytest.approx(1.075, abs=0.04)
    alone = np.exp(safeguarded_log_weights(log_ratio, uncovered=None))
    assert np.average(x, weights=alone) == pytest.approx(0.5, abs=0.03)


def test_covered_share_is_the_mean_ratio_at_most_one(fitted, shifted, monkeypatch):
    X = shifted[0]
    share = float(np.mean(np.exp(fitted.score_samples(X).astype(np.float64))))
    assert fitted.covered_share(X) == pytest.approx(min(share, 1.0), rel=1e-6)

    def far(self, X, condition=None):
        return np.full(len(X), -40.0)  # Q's mass is all where no row of X is

    monkeypatch.setattr(type(fitted), "score_samples", far)
    assert fitted.covered_share(X) == pytest.approx(np.exp(-40.0))
    np.testing.assert_allclose(fitted.predict_weights(X), 1.0)
    assert fitted.effective_sample_size(X) == pytest.approx(len(X))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(power=0.0), "power must be"),
        (dict(power=1.5), "power must be"),
        (dict(max_weight=1.0), "max_weight must be"),
        (dict(max_weight="sqrt"), "max_weight must be"),
        (dict(uncovered="uniform"), "uncovered must be"),
        (dict(sample_weight=[1.0, 2.0]), "sample_weight: .*shape"),
        (dict(sample_weight="rows"), "sample_weight"),
        (dict(sample_weight=-1.0), "sample_weight: .*[Nn]egative"),
        (dict(sample_weight=0.0), "sample_weight: .*(all zero|non-zero)"),
    ],
)
def test_bad_safeguards_are_named(fitted, shifted, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fitted.predict_weights(shifted[0], **kwargs)


def test_effective_sample_size_is_kish_of_the_weights(fitted, shifted):
    X = shifted[0]
    for kwargs in ({}, dict(max_weight=None), dict(power=0.5)):
        w = fitted.predict_weights(X, **kwargs).astype(np.float64)
        expected = w.sum() ** 2 / np.square(w).sum()
        assert fitted.effective_sample_size(X, **kwargs) == pytest.approx(expected, rel=1e-9)
    assert fitted.effective_sample_size(X, power=0.5) > fitted.effective_sample_size(X)


def test_truncation_keeps_one_row_from_taking_the_weighting():
    # Shimodaira's cubic (as in test_da) with the seed where a few source
    # rows took the raw weights: measured (a one-off over seeds 0-4) the
    # truncated weights' target risk is 0.93 against 2.06 raw here, and
    # within 5% of raw on the other seeds.
    rng = np.random.RandomState(1)
    xs, xt = rng.normal(1.0, 0.5, 600), rng.normal(2.0, 0.3, 400)
    ys = -xs + xs**3 + rng.normal(0, 0.3, 600)
    x_test = rng.normal(2.0, 0.3, 2000)[:, None]
    ratio = TelescopingRatioEstimator(bridge="none", max_iter=500, random_state=0)
    ratio.fit(xs[:, None], xt[:, None])

    def risk(weights):
        line = LinearRegression().fit(xs[:, None], ys, sample_weight=weights)
        return np.mean((line.predict(x_test)[:] - (-x_test[:, 0] + x_test[:, 0] ** 3)) ** 2)

    raw = ratio.predict_weights(xs[:, None], normalize=True, max_weight=None)
    truncated = ratio.predict_weights(xs[:, None], normalize=True)
    assert risk(truncated) < 0.6 * risk(raw)
    assert ratio.effective_sample_size(xs[:, None]) > ratio.effective_sample_size(
        xs[:, None], max_weight=None
    )


def test_weights_that_overflow_raise(fitted, shifted, monkeypatch):
    def huge(self, X, condition=None):
        return np.full(len(X), 800.0)

    monkeypatch.setattr(type(fitted), "score_samples", huge)
    with pytest.raises(OverflowError, match="normalize=True"):
        fitted.predict_weights(shifted[0])
    assert np.isfinite(fitted.predict_weights(shifted[0], normalize=True)).all()


def test_score_prefers_a_trained_ratio(shifted):
    X, Y = shifted
    rng = np.random.RandomState(1)
    X_test, Y_test = rng.normal(size=(500, 2)), rng.normal(1.0, 1.0, size=(500, 2))
    trained = TelescopingRatioEstimator(bridge="none", **{**FAST, "max_iter": 300}).fit(X, Y)
    untrained = TelescopingRatioEstimator(bridge="none", **{**FAST, "max_iter": 1}).fit(X, Y)
    assert trained.score(X_test, Y_test) > untrained.score(X_test, Y_test)
    assert trained.score(X_test, Y_test) > -2 * np.log(2)  # better than a coin


def test_grid_search_and_cross_validation(shifted):
    X, Y = shifted
    X, Y = X[:200], Y[:200]  # GridSearchCV splits X and Y row by row
    cv = KFold(2, shuffle=True, random_state=0)
    # an untrained ratio against a trained one: the search must tell them apart
    base = TelescopingRatioEstimator(bridge="none", **{**FAST, "max_iter": 300})
    search = GridSearchCV(base, {"max_iter": [1, 300]}, cv=cv).fit(X, Y)
    assert search.best_params_["max_iter"] == 300
    scores = cross_val_score(TelescopingRatioEstimator(bridge="linear", **FAST), X, Y, cv=cv)
    assert np.all(scores > -2 * np.log(2)), scores  # each fold beats a coin


def test_same_seed_same_ratio(shifted, fitted_qflow):
    a = TelescopingRatioEstimator(fitted_qflow, **FAST).fit(*shifted)
    b = TelescopingRatioEstimator(fitted_qflow, **FAST).fit(*shifted)
    np.testing.assert_array_equal(a.score_samples(shifted[0]), b.score_samples(shifted[0]))


def test_pickle_round_trip(fitted, shifted):
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.score_samples(shifted[0]), fitted.score_samples(shifted[0]))


def test_warm_start_continues(fitted, shifted):
    est = clone(fitted).set_params(bridge="linear", warm_start=True).fit(*shifted)
    grid = est.grid_.copy()
    first = est.score_samples(shifted[0])
    est.set_params(max_iter=10).fit(*shifted)
    assert est.n_iter_ == 10
    np.testing.assert_array_equal(est.grid_, grid)
    assert not np.array_equal(est.score_samples(shifted[0]), first)


def test_early_stopping_keeps_the_best_scoring_network(shifted):
    # tol=0 and two checks without improvement: training stops past its best
    # score, so the last network is not the best one.
    params = {**FAST, "max_iter": 1000, "tol": 0.0, "n_iter_no_change": 2}
    est = TelescopingRatioEstimator(bridge="linear", early_stopping=True, **params)
    est.fit(*shifted)
    scores = est.validation_scores_
    assert est.n_iter_ < 1000
    assert len(scores) == 1 + len(est.loss_curve_)  # the start, then every check
    assert est.best_validation_score_ == max(scores) > scores[-1]
    assert scores[0] == min(scores)  # higher is better: the untrained network is worst
    # A warm fit of no step scores the kept network on the same held-out
    # rows (same seed, same split): it is the best one, not the last.
    est.set_params(warm_start=True, max_iter=0).fit(*shifted)
    assert est.validation_scores_ == [max(scores)]


def test_stacked_domains_give_the_same_ratio_as_two_samples(shifted):
    # skada's convention: one stacked X, sample_domain >= 0 on P's rows (the
    # source) and < 0 on Q's (the target); y holds labels and is ignored.
    X, Y = shifted
    stacked = np.concatenate([Y[:100], X, Y[100:]])
    domain = np.r_[-np.ones(100, int), np.zeros(len(X), int), -2 * np.ones(len(Y) - 100, int)]
    labels = np.where(domain >= 0, 1, -1)
    est = TelescopingRatioEstimator(bridge="none", **FAST)
    two = clone(est).fit(X, Y).score_samples(X)
    one = clone(est).fit(stacked, labels, sample_domain=domain).score_samples(X)
    np.testing.assert_array_equal(one, two)
    with pytest.raises(ValueError, match="either a target sample y"):
        clone(est).fit(stacked, stacked, sample_domain=domain)
    with pytest.raises(ValueError, match="at least 2 source rows"):
        clone(est).fit(stacked, labels, sample_domain=-np.ones(len(stacked), int))


def test_divergence_is_loud(shifted):
    est = TelescopingRatioEstimator(bridge="none", **{**FAST, "learning_rate_init": 1e12})
    with pytest.raises(TrainingDivergedError, match="learning_rate_init"):
        est.fit(*shifted)
    assert not hasattr(est, "ratio_")


def test_bad_input(shifted):
    X, Y = shifted
    est = TelescopingRatioEstimator(bridge="none", **FAST)
    with pytest.raises(ValueError, match="Y has 3 features"):
        est.fit(X, np.ones((10, 3)))
    with pytest.raises(ValueError, match="NaN"):
        est.fit(np.where(X > 2, np.nan, X), Y)
    with pytest.raises(ValueError, match="bridge"):
        TelescopingRatioEstimator(bridge="tre").fit(X, Y)
    est.fit(X, Y)
    with pytest.raises(ValueError, match="features"):
        est.score_samples(np.ones((3, 5)))
