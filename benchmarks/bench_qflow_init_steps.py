"""How many steps the OT-CFM initialisation should run, by training rows.

The initialisation alone (``n_flips=0``) on pairs drawn with seed 7, which
neither the tests nor the other benchmarks use, scored on 10,000 held-out
rows: L2-UVP % against the exact map (Gaussian pairs of
:func:`~skot.datasets.make_gaussian_ot`, non-Gaussian pairs of
:func:`~skot.datasets.make_brenier_ot`), or W2^2(T(X), Y) on 2000 held-out
rows for moons -> checkerboard. Schedules:

- ``former``: the defaults before ``init_max_iter="auto"`` (peak rate 1e-3,
  2000 steps, no moving average; ``FORMER_DEFAULTS`` of ``_maps.py``);
- ``2000 steps`` and ``4000 steps``: the peak rate 5e-3 with the moving
  average 0.999 (the defaults), at the bounds of ``"auto"``.

The last column says which of the two ``"auto"`` picks for the pair's rows
(128 passes over them, clipped to [2000, 4000] steps).

Usage::

    python benchmarks/bench_qflow_init_steps.py --jobs 2
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor

import torch
from _maps import FORMER_DEFAULTS
from _report import RESULTS, command, machine, markdown_table, write

from skot import QFlowTransport
from skot.datasets import make_2d, make_brenier_ot, make_gaussian_ot
from skot.metrics import empirical_w2_squared, l2_uvp

SEED = 7
SCHEDULES = {
    "former": FORMER_DEFAULTS,  # its gamma is unused: the initialisation alone
    "2000 steps": dict(init_max_iter=2000),
    "4000 steps": dict(init_max_iter=4000),
}
# label -> (kind, dimension, training rows a side)
PROBLEMS = {
    "Gaussian d=6, 2000 rows": ("gaussian", 6, 2000),
    "Gaussian d=12, 4000 rows": ("gaussian", 12, 4000),
    "mixture d=8, 4000 rows": ("mixture", 8, 4000),
    "Student t d=4, 4000 rows": ("student_t", 4, 4000),
    "moons -> checkerboard, 4000 rows": ("moons", 2, 4000),
    "mixture d=2, 16384 rows": ("mixture", 2, 16384),
    "Student t d=8, 16384 rows": ("student_t", 8, 16384),
    "mixture d=32, 16384 rows": ("mixture", 32, 16384),
    "Gaussian d=64, 16384 rows": ("gaussian", 64, 16384),
}


def _score(job):
    name, schedule = job
    torch.set_num_threads(1)
    kind, d, n = PROBLEMS[name]
    model = QFlowTransport(n_flips=0, random_state=0, **SCHEDULES[schedule])
    if kind == "moons":
        X = make_2d("moons", n, random_state=SEED)
        Y = make_2d("checkerboard", n, random_state=SEED + 1)
        X_test = make_2d("moons", 2000, random_state=SEED + 2)
        Y_test = make_2d("checkerboard", 2000, random_state=SEED + 3)
        return empirical_w2_squared(model.fit(X, Y).transform(X_test), Y_test)
    if kind == "gaussian":
        X, Y, problem = make_gaussian_ot(n, d, random_state=SEED)
    else:
        X, Y, problem = make_brenier_ot(n, d, source=kind, random_state=SEED)
    X_test = problem.sample_p(10000, SEED + 100)
    mapped = model.fit(X, Y).transform(X_test)
    return l2_uvp(mapped, problem.transport(X_test), problem.target_variance)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1, help="fits at once")
    parser.add_argument("--out", default=str(RESULTS / "qflow_init_steps.md"))
    args = parser.parse_args()

    jobs = [(name, schedule) for name in PROBLEMS for schedule in SCHEDULES]
    with ProcessPoolExecutor(args.jobs) as pool:
        scores = dict(zip(jobs, pool.map(_score, jobs)))
    default = QFlowTransport()  # init_max_iter="auto"
    rows = []
    for name, (_, _, n) in PROBLEMS.items():
        auto = default._init_steps(n)
        cells = [
            f"{scores[name, s]:.4f}" if "moons" in name else f"{scores[name, s]:.3f}"
            for s in SCHEDULES
        ]
        rows.append([name, *cells, f"{auto} steps"])
    table = markdown_table(["pair", *SCHEDULES, '"auto" (default)'], rows)
    print(table)
    header = (
        "# Q-flow: the initialisation's steps by training rows\n\n"
        f"Command: `{command('bench_qflow_init_steps.py')}`.\n"
        f"Machine: {machine()} (one torch thread per fit, {args.jobs} at once).\n\n"
        "Initialisation alone, data seed 7. L2-UVP % on 10000 held-out rows; "
        "moons -> checkerboard: W2^2(T(X), Y) on 2000 held-out rows.\n\n"
    )
    write(args.out, header + table)


if __name__ == "__main__":
    main()
