"""Q-flow trained with one RK4 step per interval against the paper's three.

Every refinement update back-propagates through the solver, so the RK4 steps
per interval in training (``n_substeps``) set the refinement's cost. Each
pair below is fitted twice with the defaults and the same seed, once with
``n_substeps=3`` (the paper's 3-5) and once with ``n_substeps=1``; both map
points with ``n_substeps_eval=3``. None of the pairs is tuned on: three 2-D
pairs (one of them the README's) and two Gaussian pairs in dimensions the
tests do not use.

Columns: target match ``W2^2(T(X), Y)`` on held-out rows next to the sampling
floor (2-D pairs) or L2-UVP % against the closed-form map (Gaussians), the
mean transport cost against the exact W2^2 (of the held-out rows for 2-D
pairs), the largest inversion error ``|T^-1(T(x)) - x|`` and fit seconds.
With ``--jobs 2`` the two settings run side by side, one torch thread each:
then the seconds compare the settings with each other, not with a fit run
alone.

Usage::

    python benchmarks/bench_qflow_substeps.py --jobs 2
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from _maps import FORMER_DEFAULTS
from _report import command, machine, markdown_table, write

from skot import QFlowTransport
from skot.datasets import make_2d, make_gaussian_ot
from skot.metrics import empirical_w2_squared, l2_uvp

PAIRS = ["moons-checkerboard", "spirals-rings", "8gaussians-rings", "gauss5", "gauss8"]
SETTINGS = [3, 1]


def _fit(pair, n_substeps, seed=0):
    torch.set_num_threads(1)
    if pair.startswith("gauss"):
        d = int(pair[5:])
        X, Y, problem = make_gaussian_ot(4000, d, random_state=seed + 7)
        X_test = problem.sample_p(5000, random_state=seed + 1)
    else:
        a, b = pair.split("-")
        X, Y = make_2d(a, 2000, random_state=seed), make_2d(b, 2000, random_state=seed + 1)
        X_test = make_2d(a, 2000, random_state=seed + 2)
        Y_test = make_2d(b, 2000, random_state=seed + 3)
    start = time.perf_counter()
    model = QFlowTransport(n_substeps=n_substeps, random_state=seed, **FORMER_DEFAULTS).fit(X, Y)
    seconds = time.perf_counter() - start
    mapped = model.transform(X_test)
    row = {
        "inversion": float(np.abs(model.inverse_transform(mapped) - X_test).max()),
        "seconds": seconds,
    }
    cost = float(model.transport_cost(X_test).mean())
    if pair.startswith("gauss"):
        row["fit"] = l2_uvp(mapped, problem.transport(X_test), problem.target_variance)
        row["cost"] = cost / problem.w2_squared
    else:
        floor = empirical_w2_squared(make_2d(b, 2000, random_state=seed + 9), Y_test)
        row["fit"] = empirical_w2_squared(mapped, Y_test)
        row["floor"] = floor
        row["cost"] = cost / empirical_w2_squared(X_test, Y_test)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1, help="settings fitted at once")
    parser.add_argument("--out", default="qflow_substeps.md")
    args = parser.parse_args()

    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {(p, s): pool.submit(_fit, p, s) for s in SETTINGS for p in PAIRS}
        rows = {key: future.result() for key, future in futures.items()}

    lines = [
        "# Q-flow: RK4 steps per interval in training",
        "",
        f"Command: `{command('bench_qflow_substeps.py')}`",
        f"Machine: {machine()}; each fit on 1 torch thread, {args.jobs} at once.",
        "",
        "fit: W2^2(T(X), Y) on 2,000 held-out rows (2-D, floor in brackets) or "
        "L2-UVP % (Gaussians, 4,000 training rows); cost: mean transport cost "
        "over the exact W2^2.",
        "",
    ]
    cells = []
    for p in PAIRS:
        for s in SETTINGS:
            r = rows[p, s]
            fit = f"{r['fit']:.4f}" + (f" ({r['floor']:.3f})" if "floor" in r else "")
            cells.append(
                [p, s, fit, f"{r['cost']:.3f}", f"{r['inversion']:.1e}", f"{r['seconds']:.1f}"]
            )
    header = ["pair", "n_substeps", "fit", "cost / W2^2", "max inversion error", "fit s"]
    text = "\n".join(lines) + "\n" + markdown_table(header, cells)
    print(text)
    write(args.out, text)


if __name__ == "__main__":
    main()
