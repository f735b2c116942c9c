import pytest
import torch

from skot._ratio import RatioTrainer, logistic_ratio_loss
from skot._training import FiniteGuard, Monitor, train_on_schedule
from skot.exceptions import TrainingDivergedError


def test_monitor_stops_after_n_checks_without_improvement():
    monitor = Monitor(tol=0.1, n_iter_no_change=2)
    assert not monitor.update(1.0)
    assert not monitor.update(0.5)  # improves by more than tol
    assert not monitor.update(0.45)  # within tol: first strike
    assert monitor.update(0.44)  # second strike
    assert monitor.history == [1.0, 0.5, 0.45, 0.44]


def test_guard_restores_last_finite_parameters_and_raises():
    net = torch.nn.Linear(2, 1)
    guard = FiniteGuard(net, hint="Try something.")
    guard.check(torch.tensor(1.0), "test")
    good = [p.detach().clone() for p in net.parameters()]
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match=r"test loss became nan.*Try something"):
        guard.check(torch.tensor(float("nan")), "test")
    for p, q in zip(net.parameters(), good):
        assert torch.equal(p, q)


def test_logistic_loss_minimiser_is_the_log_ratio():
    # For p = N(0, 1), q = N(1, 1): log q/p = x - 1/2. A linear classifier
    # reaches it.
    gen = torch.Generator().manual_seed(0)
    xp = torch.randn(20000, 1, generator=gen)
    xq = torch.randn(20000, 1, generator=gen) + 1
    trainer = RatioTrainer(torch.nn.Linear(1, 1), lr=0.05)
    trainer.fit(xp, xq, n_steps=600, batch_size=2000, gen=gen)
    w, b = trainer.net.weight.item(), trainer.net.bias.item()
    assert w == pytest.approx(1.0, abs=0.08)
    assert b == pytest.approx(-0.5, abs=0.06)
    # and its value at the optimum is 2 log 2 - 2 JS(p, q) < 2 log 2
    loss = logistic_ratio_loss(trainer(xp), trainer(xq)).item()
    assert loss < 2 * torch.log(torch.tensor(2.0)).item()


def test_train_on_schedule_restores_the_best_validation_state():
    module = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        module.weight.fill_(0.0)

    def loss_fn():
        w = module.weight.sum()
        return (w - 3.0) ** 2, (w.item(),)

    # The held-out loss prefers w = 1, which the training loss passes on its way to 3.
    def validate():
        return abs(module.weight.item() - 1.0)

    curve, parts, val_scores, steps = train_on_schedule(
        module,
        loss_fn,
        max_iter=400,
        learning_rate=0.05,
        tol=0.0,
        n_iter_no_change=3,
        validate=validate,
        check_every=10,
    )
    assert len(curve) == len(val_scores) == len(parts[0])
    assert steps < 400  # stopped once the held-out loss stalled
    assert abs(module.weight.item() - 1.0) == pytest.approx(min(val_scores))


def test_train_on_schedule_without_validation_runs_the_schedule():
    module = torch.nn.Linear(1, 1, bias=False)
    curve, parts, val_scores, steps = train_on_schedule(
        module,
        lambda: ((module.weight.sum() - 1) ** 2, ()),
        max_iter=120,
        learning_rate=0.1,
        tol=1.0,
        n_iter_no_change=1,
        check_every=50,
    )
    assert steps == 120 and val_scores is None and parts == []
    assert len(curve) == 3  # checks at 50, 100 and the last step
    assert curve[-1] < curve[0]
