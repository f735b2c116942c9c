"""Class-conditional transport: one flow that carries each class of P to the
same class of Q (skot._conditions and QFlowTransport's ``condition``)."""

import numpy as np
import pytest
import sklearn
import torch
from sklearn.pipeline import make_pipeline

from skot import QFlowTransport, TelescopingRatioEstimator
from skot._bridges import LinearBridge
from skot._conditions import (
    StratifiedRowSampler,
    class_counts,
    encode_conditions,
    minibatch_samplers,
    predict_codes,
    with_one_hot,
)
from skot._nets import ConditionedField
from skot._ode import integrate, time_grid
from skot._ot import ot_pair

FAST = dict(init_max_iter=400, max_iter=10, classifier_warmup=20, n_flips=1, random_state=0)


def swapped_classes(n=600, seed=5):
    """Two classes that trade sides: class "a" moves from x1 = -2 to x1 = +2
    and class "b" the other way, each by a translation (so the true map of
    each class is x -> x -+ (4, 0)). The unconditional OT map keeps every
    row on its own side instead."""
    rng = np.random.default_rng(seed)
    shift = np.array([2.0, 0.0])
    X = np.vstack([rng.normal(size=(n, 2)) * 0.5 - shift, rng.normal(size=(n, 2)) * 0.5 + shift])
    Y = np.vstack([rng.normal(size=(n, 2)) * 0.5 + shift, rng.normal(size=(n, 2)) * 0.5 - shift])
    labels = np.repeat(np.array(["a", "b"]), n)
    return X, Y, labels, labels.copy(), shift


# --- plumbing ----------------------------------------------------------------------


def test_class_counts_are_proportional_with_one_row_of_each_at_least():
    assert class_counts(10, np.array([0.5, 0.3, 0.2])) == [5, 3, 2]
    counts = class_counts(100, np.array([0.98, 0.01, 0.01]))
    assert counts == [98, 1, 1]
    assert class_counts(10, np.array([0.999, 0.0005, 0.0005])) == [8, 1, 1]
    with pytest.raises(ValueError, match="cannot hold one row of each of 3 classes"):
        class_counts(2, np.ones(3))


def test_stratified_draws_hold_each_class_in_its_count_interleaved_the_same_way():
    codes_x = np.array([0, 1, 1, 0, 1, 2, 2, 0])
    codes_y = np.array([2, 2, 1, 0, 0, 1])
    cpu, gen = torch.device("cpu"), torch.Generator().manual_seed(0)
    rows_x = StratifiedRowSampler(codes_x, None, [4, 2, 4], cpu).draw(10, gen).numpy()
    rows_y = StratifiedRowSampler(codes_y, None, [4, 2, 4], cpu).draw(10, gen).numpy()
    assert np.bincount(codes_x[rows_x]).tolist() == [4, 2, 4]
    # Row i of either minibatch is of the same class, and each half holds
    # every class in about its share.
    np.testing.assert_array_equal(codes_x[rows_x], codes_y[rows_y])
    assert sorted(codes_x[rows_x][:5]) == [0, 0, 1, 2, 2]


def test_stratified_draws_follow_the_weights_within_a_class():
    codes = np.array([0, 0, 1])
    weights = np.array([1.0, 3.0, 1.0])
    sampler = StratifiedRowSampler(codes, weights, [400, 1], torch.device("cpu"))
    rows = sampler.draw(401, torch.Generator().manual_seed(0)).numpy()
    rows = rows[codes[rows] == 0]
    assert len(rows) == 400 and np.mean(rows == 1) == pytest.approx(0.75, abs=0.06)


def test_class_shares_of_a_minibatch_are_those_of_p_on_both_sides():
    X = with_one_hot(torch.zeros(10, 1), np.array([0] * 8 + [1] * 2), 2)
    Y = with_one_hot(torch.zeros(10, 1), np.array([0] * 2 + [1] * 8), 2)
    (sx, sy), batch = minibatch_samplers((X, Y), (None, None), 2, 10)
    assert batch == 10 and sx.counts == sy.counts == [8, 2]


def test_ot_pairing_stays_within_classes():
    # Class 0 sits left in x0 and right in x1, class 1 the reverse: plain OT
    # pairs across classes, the conditional pairing may not.
    left, right = torch.full((4, 1), -1.0), torch.full((4, 1), 1.0)
    codes = np.array([0] * 4 + [1] * 4)
    x0 = with_one_hot(torch.cat([left, right]), codes, 2)
    x1 = with_one_hot(torch.cat([right, left]), codes, 2)
    paired = ot_pair(x0, x1, n_conditions=2)
    np.testing.assert_array_equal(paired[:, 1:].argmax(1).numpy(), codes)
    crossed = ot_pair(x0[:, :1], x1[:, :1])
    assert torch.equal(crossed, x0[:, :1])  # plain OT stays on its side


def test_a_class_on_one_side_only_and_unknown_labels_are_errors():
    with pytest.raises(ValueError, match="Class 'c' has rows in X but none in y"):
        encode_conditions(np.array(["a", "c"]), np.array(["a", "a"]))
    classes, codes_x, _ = encode_conditions(np.array([2, 1, 2]), np.array([1, 2]))
    np.testing.assert_array_equal(classes, [1, 2])
    np.testing.assert_array_equal(codes_x, [1, 0, 1])
    with pytest.raises(ValueError, match="labels the fit did not see"):
        predict_codes(np.array([1, 3]), classes, 2)


def test_the_conditioned_field_never_moves_the_class_columns():
    torch.manual_seed(0)
    field = ConditionedField(2, 3, (16,))
    z = with_one_hot(torch.randn(5, 2), np.array([0, 1, 2, 1, 0]), 3)
    end = integrate(field, z, time_grid(4), 2)[-1]
    assert torch.equal(end[:, 2:], z[:, 2:])
    assert not torch.allclose(end[:, :2], z[:, :2])


def test_the_linear_bridge_mixes_rows_of_one_class_and_keeps_their_class_columns():
    codes = np.array([0] * 6 + [1] * 4)
    X = with_one_hot(torch.randn(10, 2), codes, 2)
    Y = with_one_hot(torch.randn(10, 2), codes[::-1].copy(), 2)
    bridge = LinearBridge(X, Y, time_grid(4), n_conditions=2)
    states = bridge.draw(10, torch.Generator().manual_seed(0))
    for state in states:
        assert set(state[:, 2:].sum(1).tolist()) == {1.0}  # still one-hot
    np.testing.assert_array_equal(states[0][:, 2:], states[-1][:, 2:])


# --- the estimator -----------------------------------------------------------------


def class_means(mapped, labels):
    return {c: mapped[labels == c].mean(0) for c in ("a", "b")}


def test_each_class_goes_to_its_own_class_and_an_unconditional_fit_does_not():
    X, Y, cx, cy, shift = swapped_classes()
    model = QFlowTransport(**FAST).fit(X, Y, condition=cx, target_condition=cy)
    means = class_means(model.transform(X, condition=cx), cx)
    # Exact maps: class a is translated by +2 shift, class b by -2 shift.
    np.testing.assert_allclose(means["a"], shift, atol=0.15)
    np.testing.assert_allclose(means["b"], -shift, atol=0.15)
    back = model.inverse_transform(Y, condition=cy)
    np.testing.assert_allclose(class_means(back, cy)["a"], -shift, atol=0.15)
    # The transport cost is that of the within-class maps, |4|^2 = 16 a row.
    assert model.transport_cost_ == pytest.approx(16.0, rel=0.1)

    plain = class_means(QFlowTransport(**FAST).fit(X, Y).transform(X), cx)
    assert np.linalg.norm(plain["a"] - shift) > 2.0  # it keeps class a on the left


def test_conditions_with_sample_domain_and_weights():
    X, Y, cx, cy, shift = swapped_classes(300)
    stacked = np.vstack([X, Y])
    domain = np.r_[np.ones(len(X)), -np.ones(len(Y))].astype(int)
    labels = np.r_[cx, cy]
    model = QFlowTransport(**FAST).fit(stacked, sample_domain=domain, condition=labels)
    out = model.transform(stacked, sample_domain=domain, condition=labels)
    np.testing.assert_array_equal(out[len(X) :], Y)  # target rows unchanged
    np.testing.assert_allclose(class_means(out[: len(X)], cx)["a"], shift, atol=0.2)
    # Rows of zero weight leave with their labels: class "b" then has no
    # rows in X, which the fit must say.
    weights = (cx == "a").astype(float)
    with pytest.raises(ValueError, match="Class 'b' has rows in y but none in X"):
        QFlowTransport(**FAST).fit(X, Y, condition=cx, target_condition=cy, sample_weight=weights)


def test_early_stopping_holds_out_rows_of_every_class():
    X, Y, cx, cy, shift = swapped_classes(300)
    model = QFlowTransport(**FAST, early_stopping=True, validation_fraction=0.2)
    model.fit(X, Y, condition=cx, target_condition=cy)
    # The held-out flow-matching loss pairs rows within classes, and the
    # refinement is scored after its phases.
    assert np.all(np.isfinite(model.init_validation_scores_))
    assert len(model.validation_scores_) == 3
    np.testing.assert_allclose(
        class_means(model.transform(X, condition=cx), cx)["a"], shift, atol=0.2
    )


def test_bad_conditions_are_clear_errors():
    X, Y, cx, cy, _ = swapped_classes(50)
    cases = [
        (dict(condition=cx), "pass both condition"),
        (dict(target_condition=cy), "pass both condition"),
        (dict(condition=cx[:-1], target_condition=cy), r"one entry per row \(100\)"),
        (dict(condition=cx, target_condition=cy, init="otflow"), "init='otflow'"),
    ]
    for kwargs, message in cases:
        init = kwargs.pop("init", "ot-cfm")
        with pytest.raises(ValueError, match=message):
            QFlowTransport(init=init, **FAST).fit(X, Y, **kwargs)
    with pytest.raises(ValueError, match="without one the target is N"):
        QFlowTransport(**FAST).fit(X, condition=cx)
    domain = np.r_[np.ones(50), -np.ones(50)].astype(int)
    with pytest.raises(ValueError, match="pass no target_condition"):
        QFlowTransport(**FAST).fit(
            np.vstack([X[:50], Y[:50]]), sample_domain=domain, condition=cx, target_condition=cy
        )


def test_prediction_needs_labels_from_a_conditional_fit_and_refuses_them_otherwise():
    X, Y, cx, cy, _ = swapped_classes(100)
    fast = dict(FAST, init_max_iter=20, n_flips=0)
    conditional = QFlowTransport(**fast).fit(X, Y, condition=cx, target_condition=cy)
    with pytest.raises(ValueError, match="This QFlowTransport is conditional"):
        conditional.transform(X)
    with pytest.raises(ValueError, match="labels the fit did not see"):
        conditional.transform(X[:2], condition=["a", "z"])
    assert conditional.trajectory(X[:3], condition=cx[:3]).shape == (3, 5, 2)
    assert conditional.transport_cost(X[:3], condition=cx[:3]).shape == (3,)
    assert np.isfinite(conditional.score(X, Y, condition=cx, target_condition=cy))
    plain = QFlowTransport(**fast).fit(X, Y)
    with pytest.raises(ValueError, match="fitted without conditions"):
        plain.transform(X, condition=cx)


def test_conditions_are_routed_as_metadata_in_a_pipeline():
    X, Y, cx, cy, shift = swapped_classes(300)
    with sklearn.config_context(enable_metadata_routing=True):
        flow = QFlowTransport(**FAST)
        flow.set_fit_request(condition=True, target_condition=True)
        flow.set_transform_request(condition=True)
        pipe = make_pipeline(flow).fit(X, Y, condition=cx, target_condition=cy)
        out = pipe.transform(X, condition=cx)
    np.testing.assert_allclose(class_means(out, cx)["a"], shift, atol=0.2)


# --- the ratio built on it ---------------------------------------------------------


def opposite_shifts(n=2000, seed=6):
    """P = N(0, I) in both classes; Q moves class a by +1 along x1 and class
    b by -1, so log q(x|a)/p(x|a) = x1 - 1/2 and log q(x|b)/p(x|b) = -x1 - 1/2,
    while the classes pooled have nearly no ratio at all."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.array(["a", "b"]), n // 2)
    sign = np.where(labels == "a", 1.0, -1.0)
    X = rng.normal(size=(n, 2))
    Y = rng.normal(size=(n, 2)) + np.c_[sign, np.zeros(n)]
    return X, Y, labels, sign


@pytest.mark.parametrize("bridge", ["none", "linear"])
def test_the_conditional_ratio_is_each_class_own(bridge):
    X, Y, labels, sign = opposite_shifts()
    test = np.random.default_rng(1).normal(size=(2000, 2))
    truth = sign * test[:, 0] - 0.5
    fast = dict(bridge=bridge, n_intervals=2, max_iter=400, random_state=0)
    conditional = TelescopingRatioEstimator(**fast)
    conditional.fit(X, Y, condition=labels, target_condition=labels)
    error = np.abs(conditional.score_samples(test, condition=labels) - truth).mean()
    pooled = TelescopingRatioEstimator(**fast).fit(X, Y).score_samples(test)
    assert error < 0.15
    assert np.abs(pooled - truth).mean() > 0.5
    weights = conditional.predict_weights(test, condition=labels, uncovered=None)
    np.testing.assert_allclose(np.log(weights), conditional.score_samples(test, condition=labels))
    with pytest.raises(ValueError, match="This TelescopingRatioEstimator is conditional"):
        conditional.score_samples(test)


def test_the_conditional_ratio_runs_along_a_conditional_q_flow():
    X, Y, labels, _ = opposite_shifts(600)
    flow = QFlowTransport(init_max_iter=100, n_flips=0, random_state=0)
    ratio = TelescopingRatioEstimator(flow, n_intervals=2, max_iter=100, random_state=0)
    ratio.fit(X, Y, condition=labels, target_condition=labels)
    np.testing.assert_array_equal(ratio.transport_.conditions_, ["a", "b"])
    assert np.isfinite(ratio.score(X, Y, condition=labels, target_condition=labels))
    # A transport fitted without the classes cannot bridge them.
    plain = QFlowTransport(init_max_iter=20, n_flips=0, random_state=0).fit(X, Y)
    with pytest.raises(ValueError, match=r"transport was fitted with classes None"):
        TelescopingRatioEstimator(plain, max_iter=5).fit(
            X, Y, condition=labels, target_condition=labels
        )
