"""Where a default fit's time goes: every estimator's default fit, profiled
stage by stage, against a bare training workload timed in the same run.

Fits, each with the estimator's defaults and ``random_state=0``:

- ``QFlowTransport``: moons -> checkerboard, 2,000 + 2,000 rows; quality is
  W2^2 between the pushed held-out moons and held-out checkerboard rows
  (1,500 each), beside the sampling floor W2^2 between two checkerboard
  samples;
- ``OTFlowDensity``: 8 Gaussians, 5,000 rows; quality is the mean
  log-density of 5,000 held-out rows;
- ``SJKOGenerator``: 8 Gaussians, 5,000 rows; quality is the energy distance
  between 2,000 samples and 2,000 held-out rows;
- ``TelescopingRatioEstimator``: ``make_mixture_pair``, 4,000 + 4,000 rows;
  quality is the mean absolute error of the log ratio on 5,000 + 5,000
  held-out rows, against the closed form.

The *bare workload* is the issue's yardstick: 1,000 Adam steps of a
3 x 128 SiLU MLP on a batch of 256 rows of 2-D data, timed first.

Every step of every training stage (a ``Trainer`` of ``skot._engine``) is
timed, and split by wrapping the engine and the networks:

- ``forward``: calls of the trained networks (the velocity field, the
  classifiers, the ratio network, S-JKO's map and potential, OT-Flow's
  potential with its gradient and Laplacian);
- ``backward`` and ``optimiser`` (zero_grad, Adam step, schedule) of
  ``Player.update``; ``guard``: its finite-loss check and snapshot;
- ``assignment``: the wait for an OT-CFM minibatch and its exact OT pairing
  (computed ahead on worker threads);
- ``other``: the rest of the step (ODE bookkeeping between network calls,
  minibatch draws, loss assembly, Python).

``network`` is forward + backward + optimiser; ``step / network`` says how
much a step costs beyond its network work (the issue's goal: 1.3x).
``bare step`` is one forward, backward and Adam step of the same network on
a batch of the stage's size, so ``network / bare`` counts the network
evaluations a step makes. Time outside any step (validation, pushing rows
before a classifier warm-up, the transport cost at the end of the fit, data
handling) is listed per estimator.

Usage::

    python benchmarks/bench_fit_profile.py                 # 1 torch thread
    python benchmarks/bench_fit_profile.py --only qflow otflow --threads 2
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from contextlib import contextmanager

import numpy as np
import torch
from _report import command, machine, write

import skot._flow_matching as flow_matching
from skot import OTFlowDensity, QFlowTransport, SJKOGenerator, TelescopingRatioEstimator
from skot._device import build_module, make_rngs
from skot._engine import Player, Trainer
from skot._nets import MLP, NoisyMap, ResidualMLP, TimeMLP
from skot._potential import OTPotential
from skot.datasets import make_2d, make_mixture_pair
from skot.metrics import empirical_w2_squared, energy_distance

PARTS = ("forward", "backward", "optimiser", "guard", "assignment")


class Profile:
    """Seconds per stage and part, the stage being the running Trainer's."""

    def __init__(self):
        self.seconds = defaultdict(lambda: defaultdict(float))
        self.steps = defaultdict(int)
        self.stages: list[str] = []
        self.in_step = False

    def add(self, part: str, seconds: float) -> None:
        if self.in_step and self.stages:
            self.seconds[self.stages[-1]][part] += seconds

    @contextmanager
    def timed(self, part: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(part, time.perf_counter() - start)


PROFILE = Profile()


def _instrument():
    """Wrap the engine, the networks and the OT pairing to feed PROFILE."""
    trainer_init, phase, validate = Trainer.__init__, Trainer.phase, Trainer._validate
    player_init = Player.__init__

    def init(self, n_steps, *args, desc="training", **kwargs):
        trainer_init(self, n_steps, *args, desc=desc, **kwargs)
        self.profile_desc = desc

    def profiled_phase(self, step, n_steps, **kwargs):
        def timed_step():
            PROFILE.in_step = True
            start = time.perf_counter()
            try:
                return step()
            finally:
                PROFILE.add("step", time.perf_counter() - start)
                PROFILE.steps[self.profile_desc] += 1
                PROFILE.in_step = False

        PROFILE.stages.append(self.profile_desc)
        outer = PROFILE.in_step  # a warm-up run from inside no step
        try:
            return phase(self, timed_step, n_steps, **kwargs)
        finally:
            PROFILE.stages.pop()
            PROFILE.in_step = outer

    def profiled_validate(self):
        start = time.perf_counter()
        try:
            return validate(self)
        finally:
            PROFILE.seconds["(validation)"]["step"] += time.perf_counter() - start

    def update(self, loss):
        # Player.update, part by part.
        with PROFILE.timed("guard"):
            self.guard.check(loss, self.name)
        with PROFILE.timed("optimiser"):
            self.optimizer.zero_grad(set_to_none=True)
        with PROFILE.timed("backward"):
            loss.backward()
        with PROFILE.timed("optimiser"):
            self.optimizer.step()
            if self.schedule is not None:
                self.schedule.step()

    def profiled_player_init(self, module, *args, **kwargs):
        player_init(self, module, *args, **kwargs)
        if not getattr(module, "_profiled", False):
            starts = []
            module.register_forward_pre_hook(lambda m, a: starts.append(time.perf_counter()))
            module.register_forward_hook(
                lambda m, a, o: PROFILE.add("forward", time.perf_counter() - starts.pop())
            )
            module._profiled = True

    laplacian = OTPotential.gradient_and_laplacian

    def profiled_laplacian(self, *args, **kwargs):
        with PROFILE.timed("forward"):
            return laplacian(self, *args, **kwargs)

    paired_next = flow_matching._PairedMinibatches.next

    def profiled_next(self):
        # the wait for a minibatch and its pairing, computed ahead on workers
        with PROFILE.timed("assignment"):
            return paired_next(self)

    Trainer.__init__, Trainer.phase, Trainer._validate = init, profiled_phase, profiled_validate
    Player.__init__, Player.update = profiled_player_init, update
    OTPotential.gradient_and_laplacian = profiled_laplacian
    flow_matching._PairedMinibatches.next = profiled_next


def _bare_steps(factory, inputs, n_steps, gen):
    """Seconds per plain training step (forward, squared loss, backward, Adam)."""
    net = build_module(factory, torch.device("cpu"), gen)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    start = None
    for i in range(n_steps + 3):  # three warm-up steps
        if i == 3:
            start = time.perf_counter()
        loss = net(*inputs).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / n_steps


def bare_workload(seed: int) -> float:
    """The issue's yardstick: 1,000 Adam steps of a 3 x 128 SiLU MLP, batch 256."""
    _, gen = make_rngs(seed, torch.device("cpu"))
    x = torch.randn(256, 2, generator=gen)
    return 1000 * _bare_steps(lambda: MLP(2, 2, (128, 128, 128)), (x,), 1000, gen)


def bare_network_steps(seed: int) -> dict[str, float]:
    """One bare step of each stage's network on a batch of the stage's size."""
    _, gen = make_rngs(seed, torch.device("cpu"))

    def rows(n, d=2):
        return torch.randn(n, d, generator=gen)

    def time_net(batch):
        return (rows(batch), torch.rand(batch, 1, generator=gen))

    velocity = lambda: TimeMLP(2, 2, (128, 128, 128))  # noqa: E731
    potential = build_module(lambda: OTPotential(2, 64, 2), torch.device("cpu"), gen)
    n = 200
    return {
        "OT-CFM init": _bare_steps(velocity, time_net(256), n, gen),
        "Q-flow refinement": _bare_steps(velocity, time_net(512), n, gen),
        "Q-flow classifier warm-up": _bare_steps(
            lambda: MLP(2, 1, (128,) * 3), (rows(512),), n, gen
        ),
        "OT-Flow": _bare_potential(potential, rows(1024), n),
        "S-JKO": _bare_steps(lambda: NoisyMap(2, 2, 128, 3), (rows(400), rows(400)), n, gen)
        + _bare_steps(lambda: ResidualMLP(2, 1, 128, 3), (rows(800),), n, gen),
        "Q-flow-ratio": _bare_steps(lambda: TimeMLP(2, 1, (128, 128, 128)), time_net(1024), n, gen),
    }


def _bare_potential(potential, x, n_steps):
    """A plain step through OT-Flow's potential: its gradient and Laplacian."""
    optimizer = torch.optim.Adam(potential.parameters(), lr=1e-4)
    start = None
    for i in range(n_steps + 3):
        if i == 3:
            start = time.perf_counter()
        grad, lap = potential.gradient_and_laplacian(x, 0.5)
        loss = grad.square().mean() + lap.square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / n_steps


# ---------------------------------------------------------------- the fits


def fit_qflow():
    X, Y = make_2d("moons", 2000, random_state=0), make_2d("checkerboard", 2000, random_state=1)
    X_test = make_2d("moons", 1500, random_state=2)
    Y_test = make_2d("checkerboard", 1500, random_state=3)
    model, seconds = _timed(lambda: QFlowTransport(random_state=0).fit(X, Y))
    fit = empirical_w2_squared(model.transform(X_test), Y_test)
    floor = empirical_w2_squared(Y_test, make_2d("checkerboard", 1500, random_state=4))
    return seconds, f"target W2^2 {fit:.4f} (sampling floor {floor:.4f})"


def fit_otflow():
    X = make_2d("8gaussians", 5000, random_state=0)
    X_test = make_2d("8gaussians", 5000, random_state=1)
    model, seconds = _timed(lambda: OTFlowDensity(random_state=0).fit(X))
    return seconds, f"held-out mean log-density {model.score(X_test):.4f}"


def fit_sjko():
    X = make_2d("8gaussians", 5000, random_state=0)
    X_test = make_2d("8gaussians", 2000, random_state=1)
    model, seconds = _timed(lambda: SJKOGenerator(random_state=0).fit(X))
    distance = energy_distance(model.sample(2000, random_state=2), X_test)
    return seconds, f"energy distance {distance:.4f}"


def fit_ratio():
    X, Y, (P, Q) = make_mixture_pair(4000, random_state=0)
    test = np.concatenate([P.sample(5000, random_state=1), Q.sample(5000, random_state=2)])
    model, seconds = _timed(lambda: TelescopingRatioEstimator(random_state=0).fit(X, Y))
    error = np.abs(model.score_samples(test) - (Q.logpdf(test) - P.logpdf(test))).mean()
    return seconds, f"log-ratio MAE {error:.4f}"


FITS = {
    "qflow": ("QFlowTransport", fit_qflow),
    "otflow": ("OTFlowDensity", fit_otflow),
    "sjko": ("SJKOGenerator", fit_sjko),
    "ratio": ("TelescopingRatioEstimator", fit_ratio),
}


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(FITS), default=list(FITS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="fit_profile.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    bare = bare_workload(0)
    bare_steps = bare_network_steps(0)
    _instrument()
    fits, stage_rows = [], []
    for key in args.only:
        name, fit = FITS[key]
        before = {stage: dict(parts) for stage, parts in PROFILE.seconds.items()}
        steps_before = dict(PROFILE.steps)
        seconds, quality = fit()
        in_steps = 0.0
        for stage, parts in PROFILE.seconds.items():
            spent = {p: s - before.get(stage, {}).get(p, 0.0) for p, s in parts.items()}
            n = PROFILE.steps.get(stage, 0) - steps_before.get(stage, 0)
            if stage == "(validation)" or not n:
                continue
            in_steps += spent.get("step", 0.0)
            stage_rows.append((name, stage, n, spent, bare_steps.get(stage)))
        validation = PROFILE.seconds["(validation)"]["step"] - before.get("(validation)", {}).get(
            "step", 0.0
        )
        fits.append((name, seconds, seconds / bare, quality, seconds - in_steps, validation))
        print(f"{name}: {seconds:.1f} s, {quality}", flush=True)

    lines = [
        f"Command: `{command('bench_fit_profile.py')}`",
        f"Machine: {machine()}",
        "",
        f"Bare workload (1,000 Adam steps, 3 x 128 SiLU MLP, batch 256): {bare:.2f} s",
        "",
        "| default fit | seconds | x bare workload | quality | outside steps s "
        "| of it validation s |",
        "|---|---|---|---|---|---|",
    ]
    for name, seconds, ratio, quality, outside, validation in fits:
        lines.append(
            f"| {name} | {seconds:.1f} | {ratio:.0f}x | {quality} | {outside:.1f} "
            f"| {validation:.1f} |"
        )
    lines += [
        "",
        "Per step, in ms:",
        "",
        "| estimator | stage | steps | step | forward | backward | optimiser | guard "
        "| assignment | other | network | step / network | bare step | network / bare |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, stage, n, spent, bare_step in stage_rows:
        ms = {p: 1000 * spent.get(p, 0.0) / n for p in ("step", *PARTS)}
        other = ms["step"] - sum(ms[p] for p in PARTS)
        network = ms["forward"] + ms["backward"] + ms["optimiser"]
        bare_ms = 1000 * bare_step if bare_step else float("nan")
        lines.append(
            f"| {name} | {stage} | {n} | {ms['step']:.2f} | {ms['forward']:.2f} "
            f"| {ms['backward']:.2f} | {ms['optimiser']:.2f} | {ms['guard']:.2f} "
            f"| {ms['assignment']:.2f} | {other:.2f} | {network:.2f} "
            f"| {ms['step'] / network:.2f} | {bare_ms:.2f} | {network / bare_ms:.1f} |"
        )
    print("\n".join(lines))
    write(args.out, "\n".join(lines))


if __name__ == "__main__":
    main()
