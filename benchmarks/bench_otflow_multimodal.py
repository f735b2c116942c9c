"""Multimodal densities: OTFlowDensity with its defaults and with a deeper
potential, against cross-validated KernelDensity and GaussianMixture, on
mixtures with a known density that no test uses.

Data (2-D, ``--n-train`` training and ``--n-test`` held-out rows each):

- ``4 anisotropic``: four Gaussian components with weights 0.4, 0.3, 0.2,
  0.1, rotated elongated covariances and one tight round component (standard
  deviations from 0.05 to 0.8);
- ``6 uneven``: six round components with weights from 0.05 to 0.35,
  unequal spacings and standard deviations from 0.1 to 0.5;
- ``25gaussians`` from ``skot.datasets.make_2d`` (known density: the grid
  ``{-6, -3, 0, 3, 6}^2``, covariance 0.005 I, equal weights);
- ``checkerboard`` from ``make_2d`` (density not in closed form here).

Methods, side by side in one run:

- ``OT-Flow``: ``OTFlowDensity`` with its defaults;
- ``OT-Flow, depth 4``: the same with ``hidden_layer_sizes=(64,) * 4``
  (four ResNet layers of the default width instead of two);
- ``KernelDensity``: bandwidth chosen by 5-fold cross-validation on a
  log-spaced grid of 16 values;
- ``GaussianMixture``: full covariances, the number of components (12
  values from 1 to 30) chosen by 5-fold cross-validated held-out
  log-likelihood (``GridSearchCV``);
- ``true density`` where it is known.

Columns: held-out negative log-likelihood (nats, lower is better), the mean
absolute error of the log-density against the truth on the held-out rows,
the same on the 10% of held-out rows of lowest true density (the tails),
modes covered by 5,000 samples (a mode is covered when it receives at least
half its weight's share of samples within 3 of its standard deviations;
OT-Flow samples by inverting its flow), and fit seconds.

Usage::

    python benchmarks/bench_otflow_multimodal.py
    python benchmarks/bench_otflow_multimodal.py --quick
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _mixtures import four_anisotropic, modes_covered, six_uneven, twenty_five_gaussians
from _report import command, machine, markdown_table, write
from sklearn.mixture import GaussianMixture as SklearnGMM
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity

from skot import OTFlowDensity
from skot.datasets import make_2d

N_SAMPLES = 5000
DEPTH = 4


MIXTURES = {
    "4 anisotropic": four_anisotropic,
    "6 uneven": six_uneven,
    "25gaussians": twenty_five_gaussians,
}
DATASETS = (*MIXTURES, "checkerboard")


def data(name, args):
    if name in MIXTURES:
        mixture = MIXTURES[name]()
        X = mixture.sample(args.n_train, random_state=args.seed)
        return X, mixture.sample(args.n_test, random_state=args.seed + 1), mixture
    X = make_2d(name, args.n_train, random_state=args.seed)
    return X, make_2d(name, args.n_test, random_state=args.seed + 1), None


def kde(X):
    grid = {"bandwidth": np.geomspace(0.01, 1.0, 16)}
    return GridSearchCV(KernelDensity(), grid, cv=5).fit(X).best_estimator_


def gmm(X):
    grid = {"n_components": [1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 25, 30]}
    search = GridSearchCV(SklearnGMM(random_state=0, n_init=2), grid, cv=5)
    return search.fit(X).best_estimator_


def methods(args):
    quick = {"max_iter": 30} if args.quick else {}
    return {
        "OT-Flow": lambda X: OTFlowDensity(random_state=0, **quick).fit(X),
        f"OT-Flow, depth {DEPTH}": lambda X: OTFlowDensity(
            hidden_layer_sizes=(64,) * DEPTH, random_state=0, **quick
        ).fit(X),
        "KernelDensity (CV)": kde,
        "GaussianMixture (CV)": gmm,
    }


def sample(model, n):
    if isinstance(model, SklearnGMM):
        return model.sample(n)[0]  # seeded by its own random_state
    return model.sample(n, random_state=1)


def row(name, method, model, seconds, X_test, mixture, truth):
    """One table row; ``truth`` is the true log-density of ``X_test`` (None
    where it is not known)."""
    log_density = model.score_samples(X_test)
    cells = [name, method, f"{-log_density.mean():.3f}"]
    if mixture is None:
        cells += ["", "", ""]
    else:
        error = np.abs(log_density - truth)
        tails = truth <= np.quantile(truth, 0.1)
        covered, n_modes = modes_covered(sample(model, N_SAMPLES), mixture)
        cells += [f"{error.mean():.3f}", f"{error[tails].mean():.3f}", f"{covered}/{n_modes}"]
    return [*cells, f"{seconds:.1f}"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=3, help="a seed no test uses")
    parser.add_argument("--only", nargs="+", choices=DATASETS, help="run these data sets only")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="otflow_multimodal.md")
    args = parser.parse_args()
    if args.quick:
        args.n_train, args.n_test = 2000, 1000

    header = ["data", "method", "held-out NLL", "log-density MAE", "MAE, tails", "modes", "fit s"]
    print(" | ".join(header), flush=True)
    rows = []
    fits = methods(args)
    for name in args.only or DATASETS:
        X, X_test, mixture = data(name, args)
        truth = None if mixture is None else mixture.logpdf(X_test)
        for method, fit in fits.items():
            start = time.perf_counter()
            model = fit(X)
            seconds = time.perf_counter() - start
            rows.append(row(name, method, model, seconds, X_test, mixture, truth))
            print(" | ".join(rows[-1]), flush=True)
        if mixture is not None:
            rows.append([name, "true density", f"{-truth.mean():.3f}", "0", "0", "", ""])
    text = "\n".join(
        [
            "# OTFlowDensity on multimodal densities",
            "",
            f"Command: `{command('bench_otflow_multimodal.py')}` ({args.n_train} training and "
            f"{args.n_test} held-out rows, seed {args.seed}).",
            f"Machine: {machine()}.",
            "",
            markdown_table(header, rows),
        ]
    )
    write(args.out, text)


if __name__ == "__main__":
    main()
