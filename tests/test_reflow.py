"""Reflow: the initial flow straightened on its own coupling
(QFlowTransport(init_reflow_max_iter=...), on by default; skot._reflow)."""

import numpy as np
import pytest
import torch

from skot import QFlowTransport
from skot._flow_matching import FlowMatchingConfig
from skot._nets import TimeMLP
from skot._reflow import straight_line_pairs, train_reflow
from skot.datasets import make_gaussian_ot

# The initialisation alone, short enough for a test, long enough that its
# paths bend where OT-CFM's minibatch pairings cross.
INIT = dict(init_max_iter=300, init_ema_decay=0.0, n_flips=0, random_state=0)


def test_pairs_are_the_flow_s_images_forwards_and_backwards():
    # Under a constant velocity c the flow moves every row by c on [0, 1]:
    # X's rows end at X + c and Y's rows start from Y - c.
    c = torch.tensor([1.5, -0.5])

    def field(x, t):
        return c.expand_as(x)

    X, Y = torch.randn(7, 2), torch.randn(5, 2)
    (starts_x, starts_y), (ends_x, ends_y) = straight_line_pairs(field, X, Y, 4, 2)
    torch.testing.assert_close(starts_x, X)
    torch.testing.assert_close(ends_x, X + c)
    torch.testing.assert_close(starts_y, Y - c)
    torch.testing.assert_close(ends_y, Y)


def test_lines_are_drawn_from_both_samples():
    # X's lines lie left of the origin and go right; Y's lines lie right of
    # it and go left. A field trained on both learns each where it lies.
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(500, 1, generator=gen) * 0.3 - 4.0
    Y = torch.randn(500, 1, generator=gen) * 0.3 + 4.0
    pairs = ((X, Y + 1.0), (X + 1.0, Y))
    field = TimeMLP(1, 1, (32, 32), "silu")
    config = FlowMatchingConfig(max_iter=400, batch_size=128, learning_rate_init=1e-2)
    train_reflow(field, pairs, config, gen)
    with torch.no_grad():
        t = torch.full((1, 1), 0.5)
        left, right = field(torch.tensor([[-3.5]]), t), field(torch.tensor([[4.5]]), t)
    assert abs(left.item() - 1.0) < 0.1
    assert abs(right.item() + 1.0) < 0.1


@pytest.fixture(scope="module")
def gaussians():
    X, Y, problem = make_gaussian_ot(2000, 8, random_state=3)
    return X, Y, problem


def _path_excess(model, X):
    """How far the discretised path cost lies above the map's own cost."""
    mapped = model.transform(X)
    return model.transport_cost(X).mean() / np.square(mapped - X).sum(1).mean() - 1


def test_reflow_straightens_the_paths_and_keeps_the_map(gaussians):
    X, Y, problem = gaussians
    bent = QFlowTransport(**INIT, init_reflow_max_iter=0).fit(X, Y)
    # The default ("auto"): half the initialisation's steps.
    straight = QFlowTransport(**INIT).fit(X, Y)
    assert bent.init_reflow_n_iter_ == 0 and straight.init_reflow_n_iter_ == 150
    # Straight paths at constant speed cost what their end points cost.
    assert _path_excess(bent, X) > 0.005
    assert _path_excess(straight, X) < 0.25 * _path_excess(bent, X)
    # The coupling regressed on is the initial flow's own: the end points
    # move by a small part of the distance they travel.
    moved = np.square(straight.transform(X) - bent.transform(X)).sum(1).mean()
    assert moved < 0.002 * problem.w2_squared


def test_reflow_keeps_each_class_on_its_own_target():
    # A conditional flow's rows carry one-hot class columns that the flow
    # never moves: their images keep them, and each class still goes to
    # its own target.
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 300)
    X = rng.normal(size=(600, 2))
    Y = rng.normal(size=(600, 2)) + np.where(labels[:, None] == 0, 3.0, -3.0)
    model = QFlowTransport(**INIT, init_reflow_max_iter=200).fit(
        X, Y, condition=labels, target_condition=labels
    )
    mapped = model.transform(X, condition=labels)
    np.testing.assert_allclose(mapped[labels == 0].mean(0), [3.0, 3.0], atol=0.3)
    np.testing.assert_allclose(mapped[labels == 1].mean(0), [-3.0, -3.0], atol=0.3)


def test_reflow_with_early_stopping_stops_before_its_cap(gaussians):
    # The lines of the held-out rows score the reflow: it stops once that
    # score stalls, long before its cap.
    X, Y, _ = gaussians
    model = QFlowTransport(
        **INIT, init_reflow_max_iter=5000, early_stopping=True, n_iter_no_change=2
    ).fit(X, Y)
    assert 0 < model.init_reflow_n_iter_ < 5000


def test_a_negative_number_of_reflow_steps_is_refused(gaussians):
    X, Y, _ = gaussians
    with pytest.raises(ValueError, match="'init_reflow_max_iter' parameter of QFlowTransport"):
        QFlowTransport(init_reflow_max_iter=-1).fit(X, Y)
