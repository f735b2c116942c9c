"""What sets Q-flow's accuracy: the initial flow's training, and gamma.

Fits with seed 0 on pairs no test names, one torch thread per fit, scored
on held-out rows: L2-UVP % against the exact map (Gaussian pairs of
:func:`~skot.datasets.make_gaussian_ot`, non-Gaussian pairs of
:func:`~skot.datasets.make_brenier_ot`), or W2^2(T(X), Y) for moons ->
checkerboard (sampling floor 0.0997 on 2000 rows).

- Initialisation alone (``n_flips=0``), by OT-CFM's peak learning rate and
  steps (``init_learning_rate_init``, ``init_max_iter``; the cosine decay
  spans the steps) and the moving average of its parameters
  (``init_ema_decay``). The first column is the former default, the last
  the default on 8000 rows or more (``init_max_iter="auto"``; see
  ``bench_qflow_init_steps.py`` for fewer rows). One more row
  scores what the flow is for besides maps: the mean absolute error of the
  log-ratio telescoped along it (:class:`~skot.TelescopingRatioEstimator`,
  4 intervals) on :func:`~skot.datasets.make_mixture_pair` (10000 rows a
  side, 10000 held-out rows; one classifier's MAE is printed beside it).
- Refinement by ``gamma``, from the former default initialisation and from the
  fastest schedule, with the map's endpoint cost ``E|T(x) - x|^2`` over the
  exact W2^2 in brackets.

Usage::

    python benchmarks/bench_qflow_init_schedule.py --jobs 2
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from _report import RESULTS, command, machine, markdown_table, write

from skot import QFlowTransport, TelescopingRatioEstimator
from skot.datasets import make_2d, make_brenier_ot, make_gaussian_ot, make_mixture_pair
from skot.metrics import empirical_w2_squared, l2_uvp

# (peak learning rate, steps, init_ema_decay); the first is the former default
SCHEDULES = [
    (1e-3, 2000, 0.0),
    (2e-3, 2000, 0.0),
    (3e-3, 2000, 0.0),
    (5e-3, 4000, 0.0),
    (5e-3, 4000, 0.999),
]
FAST = SCHEDULES[-1]
# label -> (kind, dimension, training rows); "moons" is moons -> checkerboard
PROBLEMS = {
    "mixture d=2, 16384 rows": ("mixture", 2, 16384),
    "mixture d=8, 16384 rows": ("mixture", 8, 16384),
    "mixture d=8, 4000 rows": ("mixture", 8, 4000),
    "Student t d=8, 16384 rows": ("student_t", 8, 16384),
    "Gaussian d=10, 4000 rows": ("gaussian", 10, 4000),
    "Gaussian d=16, 16384 rows": ("gaussian", 16, 16384),
    "Gaussian d=64, 16384 rows": ("gaussian", 64, 16384),
    "moons -> checkerboard, 4000 rows": ("moons", 2, 4000),
    "mixture pair log-ratio MAE": ("ratio", 2, 10000),
}
INIT_PROBLEMS = list(PROBLEMS)
GAMMAS = [0.01, 0.002]
GAMMA_PROBLEMS = [
    "mixture d=8, 16384 rows",
    "Gaussian d=64, 16384 rows",
    "moons -> checkerboard, 4000 rows",
]


def _schedule(lr, steps, ema):
    return dict(init_learning_rate_init=lr, init_max_iter=steps, init_ema_decay=ema)


def _ratio_mae(params, seed=0):
    """Telescoped log-ratio MAE along the flow, and one classifier's."""
    X, Y, (P, Q) = make_mixture_pair(10000, random_state=seed)
    test = np.concatenate([P.sample(5000, random_state=1), Q.sample(5000, random_state=2)])
    true = Q.logpdf(test) - P.logpdf(test)
    common = dict(hidden_layer_sizes=(128, 128, 128), max_iter=2000, random_state=0)
    flow = QFlowTransport(random_state=0, **params).fit(X, Y)
    telescoped = TelescopingRatioEstimator(flow, n_intervals=4, **common).fit(X, Y)
    single = TelescopingRatioEstimator(bridge="none", **common).fit(X, Y)
    mae = np.abs(telescoped.score_samples(test) - true).mean()
    return mae, np.abs(single.score_samples(test) - true).mean()


def _problem(name, seed=0):
    """Training rows, held-out rows, and the truth on them (None for moons)."""
    kind, d, n = PROBLEMS[name]
    if kind == "moons":
        X = make_2d("moons", n, random_state=seed)
        Y = make_2d("checkerboard", n, random_state=seed + 1)
        X_test = make_2d("moons", 2000, random_state=seed + 2)
        Y_test = make_2d("checkerboard", 2000, random_state=seed + 3)
        return X, Y, X_test, Y_test, None
    if kind == "gaussian":
        X, Y, problem = make_gaussian_ot(n, d, random_state=seed)
    else:
        X, Y, problem = make_brenier_ot(n, d, source=kind, random_state=seed)
    X_test = problem.sample_p(10000, seed + 100)
    return X, Y, X_test, problem.sample_q(2000, seed + 101), problem


def _score(name, params):
    torch.set_num_threads(1)
    if PROBLEMS[name][0] == "ratio":
        mae, single = _ratio_mae(params)
        return f"{mae:.3f} (one classifier {single:.3f})"
    X, Y, X_test, Y_test, problem = _problem(name)
    model = QFlowTransport(random_state=0, **params).fit(X, Y)
    mapped = model.transform(X_test)
    if problem is None:
        return f"{empirical_w2_squared(mapped, Y_test):.4f}"
    uvp = l2_uvp(mapped, problem.transport(X_test), problem.target_variance)
    if params.get("n_flips", 2) == 0:
        return f"{uvp:.3f}"
    cost = ((mapped - X_test) ** 2).sum(1).mean() / problem.w2_squared
    return f"{uvp:.3f} ({cost:.3f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1, help="fits at once")
    parser.add_argument("--out", default=str(RESULTS / "qflow_init_schedule.md"))
    args = parser.parse_args()

    init_jobs = [
        (name, dict(n_flips=0, **_schedule(*schedule)))
        for name in INIT_PROBLEMS
        for schedule in SCHEDULES
    ]
    gamma_jobs = [
        (name, dict(n_flips=0, **init) if gamma is None else dict(gamma=gamma, **init))
        for name in GAMMA_PROBLEMS
        for init in [_schedule(*SCHEDULES[0]), _schedule(*FAST)]
        for gamma in [None, *GAMMAS]
    ]
    # The "alone" entries of the gamma table are fits of the first table:
    # each distinct fit runs once.
    unique = {(n, str(p)): (n, p) for n, p in init_jobs + gamma_jobs}
    with ProcessPoolExecutor(args.jobs) as pool:
        by_job = dict(zip(unique, pool.map(_score, *zip(*unique.values()))))

    init_table = markdown_table(
        [
            "pair",
            *[
                f"lr {lr:g}, {steps} steps" + (f", EMA {ema:g}" if ema else "")
                for lr, steps, ema in SCHEDULES
            ],
        ],
        [
            [name, *[by_job[(name, str(p))] for n, p in init_jobs if n == name]]
            for name in INIT_PROBLEMS
        ],
    )
    fast = "lr {:g}, {} steps, EMA {:g}".format(*FAST)
    gamma_table = markdown_table(
        [
            "pair",
            "former default initialisation alone",
            *[f"gamma={g:g}" for g in GAMMAS],
            f"{fast} alone",
            *[f"gamma={g:g}" for g in GAMMAS],
        ],
        [
            [name, *[by_job[(name, str(p))] for n, p in gamma_jobs if n == name]]
            for name in GAMMA_PROBLEMS
        ],
    )
    out = f"## Initialisation alone\n\n{init_table}\n\n## Refinement by gamma\n\n{gamma_table}\n"
    print(out)
    header = (
        f"# Q-flow: the initial flow's training and gamma\n\n"
        f"Command: `{command('bench_qflow_init_schedule.py')}`.\nMachine: {machine()} "
        f"(one thread per fit, {args.jobs} at once).\n\n"
        f"L2-UVP % on 10000 held-out rows; moons -> checkerboard: W2^2(T(X), Y) on 2000 "
        f"held-out rows (floor 0.0997); mixture pair: mean absolute error (nats) of the "
        f"log-ratio telescoped along the flow, on 10000 held-out rows. "
        f"In brackets: E|T(x) - x|^2 / W2^2.\n\n"
    )
    write(args.out, header + out)


if __name__ == "__main__":
    main()
