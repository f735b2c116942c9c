"""The OT-CFM stage on a shift, whose OT map and velocity are known."""

import numpy as np
import torch

from skot._conditions import minibatch_samplers
from skot._device import build_module, make_rngs
from skot._flow_matching import (
    FlowMatchingConfig,
    _PairedMinibatches,
    _pairing_pool,
    train_ot_cfm,
)
from skot._nets import TimeMLP
from skot._ode import integrate, time_grid

SHIFT = torch.tensor([3.0, -1.0])


def _shifted_pair(n=2000, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=gen), torch.randn(n, 2, generator=gen) + SHIFT


def _velocity(seed=0, n_features=2):
    _, gen = make_rngs(seed, torch.device("cpu"))
    d = n_features
    return build_module(lambda: TimeMLP(d, d, (32, 32)), torch.device("cpu"), gen), gen


def test_ot_cfm_learns_the_shift():
    # Between N(0, I) and N(shift, I) the OT map is x + shift, so the
    # optimal velocity is the constant shift and every path a straight line.
    X, Y = _shifted_pair()
    velocity, gen = _velocity()
    config = FlowMatchingConfig(max_iter=400, batch_size=256, learning_rate_init=1e-2)
    record = train_ot_cfm(velocity, X, Y, config, gen)
    assert record.n_iter == 400 and len(record.loss_curve) == 8
    assert record.loss_curve[-1] < 0.2 * record.loss_curve[0]
    X_test = _shifted_pair(1000, seed=1)[0]
    with torch.no_grad():
        moved = integrate(velocity, X_test, time_grid(4), n_substeps=3)[-1] - X_test
    # each row moves by the shift, not just the sample as a whole
    assert torch.allclose(moved.mean(0), SHIFT, atol=0.1), moved.mean(0)
    assert (moved - SHIFT).norm(dim=1).mean() < 0.25


def test_held_out_score_stops_the_stage_and_keeps_the_best_field():
    X, Y = _shifted_pair()
    velocity, gen = _velocity()
    # tol larger than any gain: every check after the first counts as no
    # improvement, so two of them stop training
    config = FlowMatchingConfig(
        max_iter=400, batch_size=256, learning_rate_init=1e-2, tol=1e3, n_iter_no_change=2
    )
    record = train_ot_cfm(velocity, X[200:], Y[200:], config, gen, (X[:200], Y[:200]))
    scores = record.validation_scores
    assert record.n_iter == 100 and len(scores) == 3  # the start, then two checks
    assert scores[0] < scores[-1] < 0  # minus a loss, and training lowered it


def test_generator_is_left_where_a_plain_loop_leaves_it():
    # Minibatches are drawn and paired ahead of the step that uses them; when
    # training stops early the generator must still be where a loop drawing
    # one step at a time would leave it, so that what is drawn next (the
    # refinement's minibatches) does not depend on the look-ahead.
    X, Y = _shifted_pair()
    velocity, gen = _velocity()
    reference = torch.Generator().set_state(gen.get_state())
    config = FlowMatchingConfig(
        max_iter=400, batch_size=64, learning_rate_init=1e-2, tol=1e3, n_iter_no_change=2
    )
    record = train_ot_cfm(velocity, X[200:], Y[200:], config, gen, (X[:200], Y[:200]))
    assert record.n_iter == 100  # stopped early, with steps drawn ahead
    torch.rand(200, 1, generator=reference)  # the held-out times and noise
    torch.randn(200, 2, generator=reference)
    for _ in range(record.n_iter):  # each step: rows of X, rows of Y, times, noise
        torch.randint(1800, (64,), generator=reference)
        torch.randint(1800, (64,), generator=reference)
        torch.rand(64, 1, generator=reference)
        torch.randn(64, 2, generator=reference)
    assert torch.equal(gen.get_state(), reference.get_state())


def test_moving_average_ends_the_stage_at_the_mean_of_its_iterates(optimizer_iterates):
    # With ema_decay, training is unchanged and the field ends at the average
    # of the iterates: their plain mean while there are fewer than
    # 1 / (1 - ema_decay) of them (warm_ema's warm-up).
    X, Y = _shifted_pair(512)
    velocity, gen = _velocity()
    config = FlowMatchingConfig(max_iter=20, batch_size=64, learning_rate_init=1e-2, ema_decay=0.99)
    train_ot_cfm(velocity, X, Y, config, gen)
    iterates = optimizer_iterates
    assert len(iterates) == 20
    mean = [torch.stack(group).mean(0) for group in zip(*iterates)]
    for averaged, expected, last in zip(velocity.parameters(), mean, iterates[-1]):
        torch.testing.assert_close(averaged.detach(), expected)
        assert not torch.allclose(averaged, last)  # not the last iterate


def _pooled_minibatches(X, Y, size, batch, n_steps, gen):
    samplers, batch = minibatch_samplers((X, Y), (None, None), 0, batch)
    pool = _pairing_pool(X, Y, (None, None), 0, size, batch)
    return _PairedMinibatches(X, Y, samplers, batch, n_steps, gen, pool=pool), pool[2]


def test_a_pool_pairs_its_rows_by_exact_ot_and_serves_eight_times_its_rows():
    # In one dimension the OT plan is monotone, so every pair drawn from one
    # pool, whatever its step, keeps the order of the pool's plan; pairing
    # each step's minibatch alone would not order the pairs across steps.
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(2000, 1, generator=gen)
    Y = 2 * torch.randn(2000, 1, generator=gen) + 1
    minibatches, steps = _pooled_minibatches(X, Y, size=128, batch=32, n_steps=3 * 32, gen=gen)
    assert steps == 32  # 8 x 128 rows drawn in minibatches of 32
    drawn = [minibatches.next() for _ in range(2 * steps)]
    minibatches.close()

    def pairs(block):
        x0 = torch.cat([step[0] for step in block])[:, 0]
        x1 = torch.cat([step[1] for step in block])[:, 0]
        return x0, x1

    def monotone(x0, x1):
        # Pools draw rows with replacement: a row twice in X's part is
        # paired with two rows of Y, so ties in x0 are ordered by x1.
        order = np.lexsort((x1.numpy(), x0.numpy()))
        return bool((x1[order].diff() >= 0).all())

    x0, x1 = pairs(drawn[:steps])
    assert monotone(x0, x1)  # one plan over the pool's 32 steps
    assert len(torch.unique(x0)) <= 128 < len(x0)
    x0_next, _ = pairs(drawn[steps:])
    assert not torch.isin(x0_next, x0).all()  # then a new pool
    # the last step of one pool and the first of the next: two plans
    assert not monotone(*pairs(drawn[steps - 1 : steps + 1]))


def test_generator_is_left_where_a_plain_loop_leaves_it_with_a_pool():
    X, Y = _shifted_pair()
    velocity, gen = _velocity()
    reference = torch.Generator().set_state(gen.get_state())
    config = FlowMatchingConfig(
        max_iter=400,
        batch_size=64,
        learning_rate_init=1e-2,
        tol=1e3,
        n_iter_no_change=2,
        pairing_size=128,
    )
    record = train_ot_cfm(velocity, X[200:], Y[200:], config, gen, (X[:200], Y[:200]))
    assert record.n_iter == 100  # stopped early, with steps drawn ahead
    torch.rand(200, 1, generator=reference)  # the held-out times and noise
    torch.randn(200, 2, generator=reference)
    for step in range(record.n_iter):
        if step % 16 == 0:  # a pool of 128 serves 8 x 128 / 64 steps: its rows of X, of Y
            torch.randint(1800, (128,), generator=reference)
            torch.randint(1800, (128,), generator=reference)
        torch.randint(128, (64,), generator=reference)  # each step: rows of the pool, times, noise
        torch.rand(64, 1, generator=reference)
        torch.randn(64, 2, generator=reference)
    assert torch.equal(gen.get_state(), reference.get_state())
