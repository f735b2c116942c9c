"""Generative quality and cost: SJKOGenerator against its one-phase ablation,
OTFlowDensity.sample and GaussianMixture.sample.

Data: four 2-D toys from ``skot.datasets.make_2d`` (25 Gaussians, two
circles, checkerboard, 8 Gaussians), 20,000 training rows and 2,000
held-out rows each. Methods, side by side in one run:

- ``S-JKO``: ``SJKOGenerator`` with its defaults (K = 10 phases);
- ``one phase``: the same with ``n_phases=1`` and K times the steps per
  phase, so the same total steps (source-fixed UOT, the paper's ablation);
- ``OT-Flow``: ``OTFlowDensity`` with its defaults, ``.sample``;
- ``GMM``: ``GaussianMixture`` with its number of components chosen by BIC
  in {5, 10, 15, 20, 25, 30}, ``.sample``;
- ``data``: another 2,000 rows of the true distribution, the floor that
  sampling noise puts under every distance.

Columns: W2 (exact OT between 2,000 samples and the 2,000 held-out rows,
square root of the mean squared distance of the optimal assignment), energy
distance to the held-out rows, modes covered (a mode is covered when it
gets at least half its fair share of 5,000 samples; modes are the 25 and 8
centres, the 2 circles, the 8 squares of the checkerboard), the share of
samples far from every mode, and fit seconds.

A second part fits 25 Gaussians for K in {5, 10, 20} phases with the total
steps fixed: the seconds stay flat if one phase costs the same whatever its
index (O(K) training), where chaining K maps would grow the cost with K.

Usage::

    python benchmarks/bench_sjko.py
    python benchmarks/bench_sjko.py --quick
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _report import command, machine, write
from sklearn.mixture import GaussianMixture

from skot import OTFlowDensity, SJKOGenerator
from skot.datasets import make_2d
from skot.metrics import empirical_w2_squared, energy_distance

DATASETS = ("25gaussians", "circles", "checkerboard", "8gaussians")
N_TRAIN, N_TEST, N_SAMPLES = 20_000, 2_000, 5_000


def _grid_modes(centres, radius):
    def assign(S):
        dist = np.linalg.norm(S[:, None] - centres[None], axis=2)
        return dist.argmin(1), dist.min(1) < radius

    return len(centres), assign


def _circle_modes(S):
    radius = np.linalg.norm(S, axis=1)
    label = (np.abs(radius - 8) < np.abs(radius - 4)).astype(int)
    return label, np.minimum(np.abs(radius - 4), np.abs(radius - 8)) < 1.0


def _checkerboard_modes():
    # The squares of side 2 that hold the data, found from a large sample.
    X = make_2d("checkerboard", 100_000, random_state=123)
    cells, counts = np.unique(np.floor(X / 2).astype(int), axis=0, return_counts=True)
    cells = cells[counts > 0.01 * len(X)]

    def assign(S):
        cell = np.floor(S / 2).astype(int)
        match = (cell[:, None] == cells[None]).all(2)
        return match.argmax(1), match.any(1)

    return len(cells), assign


def modes(name):
    """Number of modes and a function: samples -> (mode label, near a mode)."""
    if name == "25gaussians":
        grid = np.array([-6.0, -3.0, 0.0, 3.0, 6.0])
        return _grid_modes(np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2), 0.5)
    if name == "8gaussians":
        angles = 2 * np.pi * np.arange(8) / 8
        return _grid_modes(2 * np.sqrt(2) * np.c_[np.cos(angles), np.sin(angles)], 1.0)
    if name == "circles":
        return 2, _circle_modes
    return _checkerboard_modes()


def coverage(S, name):
    n_modes, assign = modes(name)
    label, near = assign(S)
    shares = np.bincount(label[near], minlength=n_modes) / len(S)
    return int((shares >= 0.5 / n_modes).sum()), n_modes, float(1 - near.mean())


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _gmm(X):
    fits = [GaussianMixture(k, random_state=0).fit(X) for k in (5, 10, 15, 20, 25, 30)]
    return min(fits, key=lambda g: g.bic(X))


def _sample(model, n_samples):
    if isinstance(model, GaussianMixture):
        # GaussianMixture.sample seeds itself from its own random_state and
        # returns rows grouped by component: shuffle, since the W2 and energy
        # distance columns use the first rows only.
        S = model.sample(n_samples)[0]
        return S[np.random.default_rng(1).permutation(n_samples)]
    return model.sample(n_samples, random_state=1)


def _sjko(args, **extra):
    params = dict(random_state=0, verbose=0)
    if args.quick:
        params.update(n_phases=2, max_iter=50)
    params.update(extra)
    return SJKOGenerator(**params)


def bench_quality(args):
    base = SJKOGenerator()
    n_phases = 2 if args.quick else base.n_phases
    steps = 50 if args.quick else base.max_iter
    methods = {
        "S-JKO": lambda X: _sjko(args).fit(X),
        "one phase": lambda X: _sjko(args, n_phases=1, max_iter=n_phases * steps).fit(X),
        "OT-Flow": lambda X: OTFlowDensity(
            random_state=0, **({"max_iter": 20} if args.quick else {})
        ).fit(X),
        "GMM": _gmm,
    }
    lines = [
        f"S-JKO: {n_phases} phases x {steps} steps; one phase: {n_phases * steps} steps.",
        "",
        "| data | method | W2 | energy distance | modes covered | far from modes | fit s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in args.datasets:
        X = make_2d(name, N_TRAIN, random_state=0)
        X_test = make_2d(name, N_TEST, random_state=1)
        rows = {}
        for method, fit in methods.items():
            model, seconds = _timed(lambda fit=fit, X=X: fit(X))
            S = _sample(model, N_SAMPLES)
            rows[method] = (S, seconds)
        rows["data"] = (make_2d(name, N_SAMPLES, random_state=2), float("nan"))
        for method, (S, seconds) in rows.items():
            w2 = np.sqrt(empirical_w2_squared(S[:N_TEST], X_test))
            ed = energy_distance(S[:N_TEST], X_test)
            covered, n_modes, far = coverage(S, name)
            line = (
                f"| {name} | {method} | {w2:.3f} | {ed:.4f} | {covered}/{n_modes} | "
                f"{far:.1%} | {seconds:.1f} |"
            )
            print(line, flush=True)
            lines.append(line)
    return lines


def bench_phases(args):
    total = 200 if args.quick else args.total_steps
    X = make_2d("25gaussians", N_TRAIN, random_state=0)
    X_test = make_2d("25gaussians", N_TEST, random_state=1)
    lines = [
        f"25 Gaussians, {total} steps in all, split over K phases.",
        "",
        "| K | steps per phase | fit s | s per step | first / last phase s | "
        "map rows per phase | W2 | modes covered |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k in args.phases:
        model, seconds = _timed(lambda k=k: _sjko(args, n_phases=k, max_iter=total // k).fit(X))
        S = model.sample(N_SAMPLES, random_state=1)
        w2 = np.sqrt(empirical_w2_squared(S[:N_TEST], X_test))
        covered, n_modes, _ = coverage(S, "25gaussians")
        phase_s = model.history_["seconds"]
        rows_per_phase = sorted(set(model.history_["map_evaluations"]))
        line = (
            f"| {k} | {total // k} | {seconds:.1f} | {1e3 * seconds / total:.2f} ms | "
            f"{phase_s[0]:.2f} / {phase_s[-1]:.2f} | {rows_per_phase} | {w2:.3f} | "
            f"{covered}/{n_modes} |"
        )
        print(line, flush=True)
        lines.append(line)
    return lines


PARTS = {"quality": bench_quality, "phases": bench_phases}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS))
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--phases", nargs="+", type=int, default=[5, 10, 20])
    parser.add_argument("--total-steps", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a smoke run, few steps")
    parser.add_argument("--out", default=None, help="results file name")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    lines = [
        "# S-JKO: generative quality and O(K) training",
        "",
        f"Command: `{command('bench_sjko.py')}`",
        f"Machine: {machine()}.",
        "",
    ]
    for part in args.parts:
        lines += [f"## {part}", "", *PARTS[part](args), ""]
    name = args.out or ("sjko_quick.md" if args.quick else "sjko.md")
    write(name, "\n".join(lines))


if __name__ == "__main__":
    main()
