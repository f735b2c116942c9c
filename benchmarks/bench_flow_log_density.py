"""Log-densities of two flows to N(0, I): QFlowTransport.score_samples (a
flow fitted by ``fit(X)``, log p by the change of variables along it)
beside OTFlowDensity, against closed-form densities, in one run.

Data (``--n-train`` training rows, ``--n-test`` held-out rows, ``--seed``):

- ``Gaussian d=2`` and ``Gaussian d=40``: N(m, S) with a random mean and a
  random covariance (eigenvalues from 0.25 to 4); at d=40 Q-flow's
  divergence is Hutchinson's estimate (16 probes per row), at d=2 exact;
- ``4 anisotropic`` and ``6 uneven``: the 2-D mixtures of
  ``benchmarks/_mixtures.py``.

Methods: ``QFlowTransport()`` and ``OTFlowDensity()`` with their defaults.
Columns: log-density MAE against the truth on the held-out rows, held-out
NLL (the truth's beside it), fit seconds, and seconds to score 10,000 rows.

Usage::

    python benchmarks/bench_flow_log_density.py
    python benchmarks/bench_flow_log_density.py --quick
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _mixtures import four_anisotropic, six_uneven
from _report import command, machine, markdown_table, write
from scipy.stats import multivariate_normal, ortho_group

from skot import OTFlowDensity, QFlowTransport

SCORED_ROWS = 10_000


class _Gaussian:
    def __init__(self, d, seed):
        rng = np.random.default_rng(seed)
        rotation = ortho_group.rvs(d, random_state=seed)
        self.mean = rng.normal(size=d)
        self.cov = rotation @ np.diag(np.geomspace(0.25, 4.0, d)) @ rotation.T
        self.law = multivariate_normal(self.mean, self.cov)

    def sample(self, n, random_state):
        return np.random.default_rng(random_state).multivariate_normal(self.mean, self.cov, n)

    def logpdf(self, X):
        return self.law.logpdf(X)


def problems(seed):
    return {
        "Gaussian d=2": _Gaussian(2, seed),
        "Gaussian d=40": _Gaussian(40, seed),
        "4 anisotropic": four_anisotropic(),
        "6 uneven": six_uneven(),
    }


def methods(quick):
    return {
        "QFlowTransport.score_samples": lambda: QFlowTransport(
            random_state=0, **({"init_max_iter": 50, "max_iter": 5} if quick else {})
        ),
        "OTFlowDensity": lambda: OTFlowDensity(
            random_state=0, **({"max_iter": 20} if quick else {})
        ),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=10000)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=4, help="a seed no test uses")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--methods", nargs="+", help="only the methods whose name contains one of these"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.n_train, args.n_test = 1000, 1000

    header = [
        "data",
        "method",
        "log-density MAE",
        "held-out NLL (truth)",
        "fit s",
        f"s per {SCORED_ROWS} rows",
    ]
    print(" | ".join(header), flush=True)
    rows = []
    for name, problem in problems(args.seed).items():
        X = problem.sample(args.n_train, random_state=args.seed)
        X_test = problem.sample(args.n_test, random_state=args.seed + 1)
        truth = problem.logpdf(X_test)
        for method, make in methods(args.quick).items():
            if args.methods and not any(part in method for part in args.methods):
                continue
            start = time.perf_counter()
            model = make().fit(X)
            fit_seconds = time.perf_counter() - start
            start = time.perf_counter()
            log_density = model.score_samples(X_test)
            score_seconds = (time.perf_counter() - start) * SCORED_ROWS / len(X_test)
            rows.append(
                [
                    name,
                    method,
                    f"{np.abs(log_density - truth).mean():.3f}",
                    f"{-log_density.mean():.3f} ({-truth.mean():.3f})",
                    f"{fit_seconds:.1f}",
                    f"{score_seconds:.2f}",
                ]
            )
            print(" | ".join(rows[-1]), flush=True)
    text = "\n".join(
        [
            "# Flow log-densities: Q-flow to N(0, I) beside OT-Flow",
            "",
            f"Command: `{command('bench_flow_log_density.py')}` ({args.n_train} training and "
            f"{args.n_test} held-out rows, seed {args.seed}).",
            f"Machine: {machine()}.",
            "",
            markdown_table(header, rows),
        ]
    )
    write(args.out or ("flow_log_density_quick.md" if args.quick else "flow_log_density.md"), text)


if __name__ == "__main__":
    main()
