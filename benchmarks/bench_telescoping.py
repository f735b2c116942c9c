"""Telescoping density ratios: the three bridges against closed-form answers.

Parts (``--parts``), side by side in one run for ``bridge="qflow"`` (the
default), ``"linear"`` (TRE's waymarks) and ``"none"`` (one classifier), all
with the estimator's defaults otherwise:

- ``mi``: mutual information on the TRE / DRE-infinity benchmark, a
  d-dimensional Gaussian of d/2 independent 2x2 blocks with correlation
  sqrt(1 - 1/e), X the first and Y the second coordinate of each block, so
  I(X; Y) = d/4 nats; ``--n`` samples (half to fit, half to average over).
- ``mixture``: ``make_mixture_pair`` (P three components, Q two) and two
  pairs of our own (``_mixtures.py``: 2-D, four components against three;
  5-D, two against three), 10,000 rows each; mean absolute error of the log
  ratio on 5,000 held-out rows of P and 5,000 of Q, overall and on the tail
  where Q has almost no mass; the defaults, and a larger learning rate for
  the telescoped ratio and for one classifier.
- ``digits``: an energy-based model of scikit-learn's bundled digits
  (dequantised, scaled to [0, 1], 75/25 split): a Gaussian base density fitted
  to the training rows, corrected by the log ratio from base samples to the
  data, log p(x) = log base(x) + log(data/base)(x); test bits per dimension
  (of the 17-level pixels, lower is better), the log normaliser
  log E_base[exp(log ratio)] that the unnormalised model leaves (0 for an
  exact ratio), and the bits per dimension once it is divided out; each
  bridge with and without early stopping.

The ``mi`` part runs ``mutual_information``'s defaults beside each bridge
(normal scores of each column; the ratio stopped early on held-out rows,
within at most 10,000 steps) and
a KSG row (``infomeasure``, see ``bench_mutual_information.py``; skipped
without it) on at most ``--ksg-max-rows`` rows, its neighbour search being
quadratic in these dimensions. ``--bridges`` picks its rows
(``qflow-to-the-end``: the Q-flow bridge without early stopping) and
``--skip-ksg`` leaves out KSG.

Usage::

    python benchmarks/bench_telescoping.py
    python benchmarks/bench_telescoping.py --parts mi --dims 40 80
    python benchmarks/bench_telescoping.py --parts mi --dims 320 --bridges qflow qflow-to-the-end
    python benchmarks/bench_telescoping.py --quick
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _mixtures import four_against_three, two_against_three_5d
from _report import command, machine, write
from bench_mutual_information import infomeasure, ksg_estimate
from scipy.stats import multivariate_normal
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skot import BRIDGE_SCHEDULE, QFlowTransport, TelescopingRatioEstimator, mutual_information
from skot._mutual_information import DEFAULT_MAX_ITER
from skot.datasets import make_correlated_gaussians, make_mixture_pair

BRIDGES = ("qflow", "linear", "none")
TO_THE_END = "qflow-to-the-end"


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def _estimator(bridge, args, **extra):
    params = dict(bridge=bridge, random_state=0)
    if args.baseline != "auto":
        params.update(baseline=None if args.baseline == "none" else args.baseline)
    params.update(extra)
    if args.quick:
        params.update(max_iter=200)
    if bridge == "qflow":
        transport = dict(BRIDGE_SCHEDULE, random_state=0)
        if args.quick:
            transport.update(init_max_iter=200, max_iter=10, classifier_warmup=20)
        params["transport"] = QFlowTransport(**transport)
    return TelescopingRatioEstimator(**params)


def _fit(est, X, Y, shared):
    """Fit ``est``, giving a Q-flow bridge the transport fitted once for this
    data (kept in the dict ``shared``); the seconds count that transport's
    fit in every row that uses it."""
    extra = 0.0
    if est.bridge == "qflow":
        if "transport" not in shared:
            shared["transport"], shared["seconds"] = _timed(est.transport.fit, X, Y)
        est.set_params(transport=shared["transport"])
        extra = shared["seconds"]
    est, sec = _timed(est.fit, X, Y)
    return est, sec + extra


def bench_mi(args):
    rows = [
        "| d | truth (nats) | bridge | estimate ± s.e. | relative error | fit s |",
        "|---|---|---|---|---|---|",
    ]
    for d in args.dims:
        X, Y, truth = make_correlated_gaussians(args.n, d, random_state=0)
        for bridge in args.bridges:
            # mutual_information's own default stops the ratio early, with
            # its cap on the steps; "qflow-to-the-end" is the Q-flow bridge
            # trained for all the estimator's own steps.
            to_the_end = bridge == TO_THE_END
            if to_the_end:
                bridge = "qflow"
                est = _estimator(bridge, args, early_stopping=False)
            else:
                est = _estimator(bridge, args, early_stopping=True, max_iter=DEFAULT_MAX_ITER)
            (mi, se), sec = _timed(
                mutual_information, X, Y, estimator=est, random_state=0, return_std=True
            )
            label = f"{bridge}, early_stopping=False" if to_the_end else bridge
            row = (
                f"| {d} | {truth:.1f} | {label} | {mi:.2f} ± {se:.2f} "
                f"| {mi / truth - 1:+.1%} | {sec:.0f} |"
            )
            print(row, flush=True)
            rows.append(row)
        if infomeasure is not None and not args.skip_ksg:
            (mi, note), sec = _timed(ksg_estimate, X, Y, False, args.ksg_max_rows)
            row = f"| {d} | {truth:.1f} | KSG{note} | {mi:.2f} | {mi / truth - 1:+.1%} "
            row += f"| {sec:.0f} |"
            print(row, flush=True)
            rows.append(row)
    return rows


def _mixture_pairs():
    """Each pair's label, its 10,000 training rows of P and of Q, and the
    two mixtures: ``make_mixture_pair``'s rows (seed 0) and two pairs of
    our own drawn with seed 0."""
    X, Y, (P, Q) = make_mixture_pair(10000, random_state=0)
    yield "make_mixture_pair (2-D, 3 vs 2)", X, Y, P, Q
    for label, pair in (
        ("four against three (2-D)", four_against_three),
        ("two against three (5-D)", two_against_three_5d),
    ):
        P, Q = pair()
        rng = np.random.RandomState(0)
        yield label, P.sample(10000, rng), Q.sample(10000, rng), P, Q


# The rows of the mixture part: (label, bridge, parameters beyond the
# defaults). The rows without the Gaussian baseline (``baseline=None``, the
# default before 2026-12-03) show what it does, for the telescoped ratio and
# for one classifier alike.
MIXTURE_ROWS = (
    ("qflow", "qflow", {}),
    ("linear", "linear", {}),
    ("none (one classifier)", "none", {}),
    ("qflow, baseline=None", "qflow", {"baseline": None}),
    ("none, baseline=None", "none", {"baseline": None}),
)


def bench_mixture(args):
    rows = [
        "Mean absolute error of the log ratio on the held-out rows; the tail is "
        "the held-out rows whose true log ratio is below -6 nats (Q has almost "
        "no mass there: the ratio is extrapolated). 'vs none' is the MAE over "
        "that of one classifier with the defaults. qflow rows include the "
        "transport's fit (fitted once per pair and shared).",
        "",
        "| pair | ratio | MAE on P's rows | MAE on Q's rows | MAE | vs none "
        "| tail MAE (share of rows) | MAE off the tail | fit s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, X, Y, P, Q in _mixture_pairs():
        test = np.concatenate([P.sample(5000, random_state=1), Q.sample(5000, random_state=2)])
        true = Q.logpdf(test) - P.logpdf(test)
        tail = true < -6
        shared, results = {}, []
        for name, bridge, extra in MIXTURE_ROWS:
            est, sec = _fit(_estimator(bridge, args, **extra), X, Y, shared)
            results.append((name, np.abs(est.score_samples(test) - true), sec))
            print(f"{label}, {name}: MAE {results[-1][1].mean():.3f}", flush=True)
        baseline = dict((name, err.mean()) for name, err, _ in results)["none (one classifier)"]
        for name, err, sec in results:
            rows.append(
                f"| {label} | {name} | {err[:5000].mean():.3f} | {err[5000:].mean():.3f} "
                f"| {err.mean():.3f} | {err.mean() / baseline:.2f} "
                f"| {err[tail].mean():.3f} ({tail.mean():.1%}) | {err[~tail].mean():.3f} "
                f"| {sec:.0f} |"
            )
    return rows


def bench_digits(args):
    digits = load_digits().data
    rng = np.random.RandomState(0)
    X = (digits + rng.uniform(size=digits.shape)) / 17.0
    train, test = train_test_split(X, test_size=0.25, random_state=0)
    d = X.shape[1]
    base = multivariate_normal(train.mean(0), np.cov(train.T) + 1e-4 * np.eye(d))
    base_rows = base.rvs(args.n_base, random_state=1)

    def bpd(log_density):
        return float((-log_density.mean() / d) / np.log(2) + np.log2(17))

    # The corrected model is not normalised exactly (an energy-based model,
    # as in the paper); log Z = log E_base[exp(log ratio)] on fresh base rows
    # says by how much (0 for an exact ratio), and the normalised bits per
    # dimension are those of log base + log ratio - log Z.
    fresh = base.rvs(20000, random_state=2)
    rows = [
        "| model | test bits/dim | log Z (nats) | normalised bits/dim | fit s |",
        "|---|---|---|---|---|",
    ]
    rows.append(f"| Gaussian base alone | {bpd(base.logpdf(test)):.3f} | 0 | - | 0 |")
    print(rows[-1], flush=True)
    shared = {}
    for bridge in BRIDGES:
        for early_stopping in (False, True):
            est = _estimator(bridge, args, early_stopping=early_stopping)
            est, sec = _fit(est, base_rows, train, shared)
            log_density = base.logpdf(test) + est.score_samples(test)
            r = est.score_samples(fresh)
            log_z = float(np.logaddexp.reduce(r) - np.log(len(r)))
            label = f"bridge={bridge}" + (", early_stopping=True" if early_stopping else "")
            row = (
                f"| Gaussian base x ratio, {label} | {bpd(log_density):.3f} "
                f"| {log_z:.2f} | {bpd(log_density - log_z):.3f} | {sec:.0f} |"
            )
            print(row, flush=True)
            rows.append(row)
    return rows


PARTS = {"mi": bench_mi, "mixture": bench_mixture, "digits": bench_digits}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS))
    parser.add_argument("--dims", nargs="+", type=int, default=[40, 80, 160])
    parser.add_argument("--n", type=int, default=100_000, help="MI samples")
    parser.add_argument("--ksg-max-rows", type=int, default=20_000)
    parser.add_argument(
        "--bridges",
        nargs="+",
        choices=[*BRIDGES, TO_THE_END],
        default=list(BRIDGES),
        help=f"mi part only; {TO_THE_END}: the Q-flow bridge without early stopping",
    )
    parser.add_argument("--skip-ksg", action="store_true", help="mi part: no KSG row")
    parser.add_argument(
        "--baseline",
        choices=["auto", "gaussian", "none"],
        default="auto",
        help="the ratio's baseline in every row that does not set its own (default: 'auto')",
    )
    parser.add_argument("--n-base", type=int, default=20_000, help="digits base samples")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a smoke run, few steps")
    parser.add_argument("--out", default=None, help="results file name")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    lines = [
        "# Telescoping density ratios: qflow vs linear (TRE) vs one classifier",
        "",
        f"Command: `{command('bench_telescoping.py')}`",
        f"Machine: {machine()}.",
        "",
    ]
    for part in args.parts:
        lines += [f"## {part}", "", *PARTS[part](args), ""]
    name = args.out or ("telescoping_quick.md" if args.quick else "telescoping.md")
    write(name, "\n".join(lines))


if __name__ == "__main__":
    main()
