"""The training engine: guard, players, phases, record, keep-best, early
stopping and the moving average."""

import pytest
import torch

from skot._engine import FiniteGuard, Player, Trainer, warm_ema
from skot.exceptions import TrainingDivergedError


def _scalar_module(value=0.0):
    module = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        module.weight.fill_(value)
    return module


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


def test_player_steps_adam_on_a_cosine_schedule_and_guards():
    module = _scalar_module()
    player = Player(module, 0.1, name="toy", hint="Lower it.", cosine_steps=4)
    rates, weights = [], []
    for _ in range(4):
        rates.append(player.optimizer.param_groups[0]["lr"])
        weights.append(module.weight.item())
        player.update((module.weight.sum() - 1.0) ** 2)
    # cosine from 0.1 to 0 over 4 updates: 0.1, 0.0854, 0.05, 0.0146
    assert rates == pytest.approx([0.1, 0.0853553, 0.05, 0.0146447], rel=1e-5)
    assert player.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    # Adam's first step moves the weight by the rate, towards the minimum.
    assert weights[1] == pytest.approx(0.1)
    with pytest.raises(TrainingDivergedError, match=r"toy loss became inf.*Lower it"):
        player.update(module.weight.sum() * float("inf"))
    # back to the parameters that gave the last finite loss
    assert module.weight.item() == weights[-1]


def test_record_has_one_entry_per_check_and_per_phase_end():
    module = _scalar_module()
    player = Player(module, 0.01, name="toy")
    losses = iter(range(1, 1000))

    def step():
        player.update(module.weight.sum() ** 2)
        return {"loss": float(next(losses)), "part": 2.0}

    trainer = Trainer(130, check_every=50)
    trainer.phase(step, 120, label="first")
    trainer.phase(step, 10, label="second")
    record = trainer.finish()
    # checks after 50, 100 and 120 steps of the first phase, then one for
    # the second: windows never straddle a phase
    assert record.loss_curve == [25.5, 75.5, 110.5, 125.5]
    assert record.history["part"] == [2.0] * 4
    assert record.labels == ["first", "first", "first", "second"]
    assert [p["steps"] for p in record.phases] == [120, 10]
    assert record.phases[1]["loss"] == 125.5
    assert record.n_iter == 130
    assert record.validation_scores is None and record.best_validation_score is None


def test_keeps_and_restores_the_best_scoring_parameters():
    # The training loss pulls w from 0 to 3; the held-out score prefers
    # w = 1, which training passes on its way.
    module = _scalar_module()
    player = Player(module, 0.05, name="toy")

    def step():
        loss = (module.weight.sum() - 3.0) ** 2
        player.update(loss)
        return {"loss": loss}

    def validate():
        return -abs(module.weight.item() - 1.0)

    trainer = Trainer(400, validate=validate, keep=[module], n_iter_no_change=3, check_every=10)
    trainer.phase(step, 400)
    before_restore = module.weight.item()
    record = trainer.finish()
    scores = record.validation_scores
    assert len(scores) == 1 + len(record.loss_curve)  # the start, then every check
    assert scores[0] == -1.0  # w = 0 at the start
    assert record.n_iter < 400  # stopped once the score stalled
    assert abs(before_restore - 1.0) > 0.1  # training had gone past the best
    assert -abs(module.weight.item() - 1.0) == record.best_validation_score == max(scores)


def test_starting_parameters_are_kept_when_training_only_harms():
    module = _scalar_module(1.0)
    player = Player(module, 0.1, name="toy")

    def step():
        loss = (module.weight.sum() - 5.0) ** 2
        player.update(loss)
        return {"loss": loss}

    trainer = Trainer(
        20, validate=lambda: -abs(module.weight.item() - 1.0), keep=[module], validate_at="phase"
    )
    trainer.phase(step, 10)
    trainer.phase(step, 10)
    record = trainer.finish()
    assert len(record.validation_scores) == 3  # the start and each phase's end
    assert record.best_validation_score == 0.0
    assert module.weight.item() == 1.0


def test_stops_after_n_validations_without_improvement_by_tol():
    # scikit-learn's rule: a score within tol of the best is no improvement.
    scores = iter([0.0, 1.0, 1.05, 1.08, 1.09, 5.0])
    trainer = Trainer(10, validate=lambda: next(scores), tol=0.1, n_iter_no_change=3, check_every=1)
    trainer.phase(lambda: {"loss": 0.0}, 10)
    record = trainer.finish()
    assert record.validation_scores == [0.0, 1.0, 1.05, 1.08, 1.09]
    assert record.n_iter == 4 and trainer.stopped


def test_phase_ends_at_a_mean_then_an_exponential_average():
    # With average=(module, decay), a phase ends at a plain mean of its
    # first 1 / (1 - decay) updates, an exponential average after.
    decay = 0.75
    module = _scalar_module()
    updates = iter([3.0, -1.0, 5.0, 2.0, 7.0, -4.0])

    def step():
        module.weight.data.fill_(next(updates))
        return {"loss": 0.0}

    Trainer(6).phase(step, 6, average=(module, decay))
    expected = (3.0 - 1.0 + 5.0 + 2.0) / 4
    for value in (7.0, -4.0):
        expected = decay * expected + (1 - decay) * value
    assert module.weight.item() == pytest.approx(expected)


def test_decay_zero_keeps_the_last_update():
    averaged = torch.optim.swa_utils.AveragedModel(_scalar_module(), avg_fn=warm_ema(0.0))
    for value in (3.0, -1.0, 5.0):
        averaged.update_parameters(_scalar_module(value))
    assert averaged.module.weight.item() == 5.0
