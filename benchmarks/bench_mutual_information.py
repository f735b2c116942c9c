"""Mutual information beyond Gaussians: skot's three bridges and KSG against
exact answers, side by side in one run.

Problems (``skot.datasets``; MI exact by construction):

- Student t pairs: dependent through their shared scale even when
  uncorrelated, and heavy tailed (1 degree of freedom is the Cauchy);
- transformed Gaussians: the Gaussian pairs of the TRE benchmark with each
  side through an invertible map (asinh, cube, normal CDF, a swirl of two
  coordinates), which leaves MI as it is;
- sparse dependence: 25 + 25 coordinates of which one pair of blocks is
  correlated, or all weakly.

Methods:

- ``skot qflow`` / ``linear`` / ``none``: ``mutual_information`` with its
  defaults (normal scores of each column or the rows as they are, whichever
  held-out rows favour, ``--preprocessing``; a ``TelescopingRatioEstimator``
  with early stopping, ``max_iter=10_000``, ``n_shuffles="auto"``: the product rows are ten
  shuffles of the training rows up to 5,000 of them, one from 50,000) and
  the given bridge; half the rows fit the ratio, half are averaged over.
  ``--n-shuffles 1`` gives the former default's single shuffle.
- ``KSG``: the Kraskov-Stoegbauer-Grassberger estimator (k = 4, max norm)
  of the ``infomeasure`` package on the raw rows, and ``KSG, normal
  scores`` on each column's normal scores (the same preprocessing as skot's;
  the stronger of the two is the peer). ``infomeasure`` was checked against
  the Gaussian closed form first: 0.492, 0.996 and 1.022 nats for truths
  0.5, 1.0 and 1.0 (d = 2 and 4; 5,000 and 20,000 rows). On more than
  ``--ksg-max-rows`` rows KSG runs on that many (its neighbour search in 40
  dimensions is quadratic); the table says so.

A row "holds" when its estimate is within 10% of the truth or 0.1 nats.

Usage::

    pip install infomeasure     # the KSG rows; skipped without it
    python benchmarks/bench_mutual_information.py
    python benchmarks/bench_mutual_information.py --problems t_cauchy_4 sparse_50 --methods none ksg
"""

from __future__ import annotations

import argparse
import time

from _report import command, machine, markdown_table, write
from sklearn.preprocessing import QuantileTransformer

from skot import TelescopingRatioEstimator, mutual_information
from skot._mutual_information import DEFAULT_MAX_ITER
from skot.datasets import (
    make_correlated_gaussians,
    make_student_t_pair,
    make_transformed_gaussians,
)

try:
    import infomeasure
except ImportError:  # the KSG rows are skipped
    infomeasure = None

# name: (dataset maker, keyword arguments, rows). Dimensions 4 to 50, MI
# 0.43 to 10 nats, 5,000 to 100,000 rows.
PROBLEMS = {
    "t_cauchy_4": (make_student_t_pair, dict(n_features=4, df=1.0), 5_000),
    "t_df3_10": (make_student_t_pair, dict(n_features=10, df=3.0, rho=0.5), 10_000),
    "cube_4": (make_transformed_gaussians, dict(n_features=4, transform="cube"), 5_000),
    "swirl_asinh_6": (
        make_transformed_gaussians,
        dict(n_features=6, transform=("swirl", "asinh")),
        50_000,
    ),
    "asinh_10": (make_transformed_gaussians, dict(n_features=10, transform="asinh"), 10_000),
    "normal_cdf_20": (
        make_transformed_gaussians,
        dict(n_features=20, transform="normal_cdf"),
        20_000,
    ),
    "asinh_40": (make_transformed_gaussians, dict(n_features=40, transform="asinh"), 100_000),
    "sparse_50": (make_correlated_gaussians, dict(n_features=50, n_dependent=1, rho=0.93), 5_000),
    "weak_50": (make_correlated_gaussians, dict(n_features=50, rho=0.3), 5_000),
}
METHODS = ("qflow", "linear", "none", "ksg", "ksg_scores")
LABELS = {
    "qflow": "skot qflow",
    "linear": "skot linear",
    "none": "skot none",
    "ksg": "KSG",
    "ksg_scores": "KSG, normal scores",
}


def _normal_scores(a):
    return QuantileTransformer(
        output_distribution="normal", n_quantiles=min(10_000, len(a)), random_state=0
    ).fit_transform(a)


def ksg_estimate(X, Y, scores, max_rows):
    """KSG's estimate (nats) on at most ``max_rows`` rows, on each column's
    normal scores when ``scores``, and a note saying how many rows it took."""
    note = ""
    if len(X) > max_rows:
        X, Y, note = X[:max_rows], Y[:max_rows], f" ({max_rows:,} rows)"
    if scores:
        X, Y = _normal_scores(X), _normal_scores(Y)
    mi = infomeasure.mutual_information(X, Y, approach="ksg", k=4, base="e")
    return float(mi), note


def add_preprocessing_option(parser):
    """``--preprocessing``: mutual_information's, ``none`` for None (read
    back with :func:`preprocessing_of`)."""
    parser.add_argument(
        "--preprocessing",
        choices=["auto", "normal_scores", "none"],
        default="auto",
        help="mutual_information's preprocessing (default: 'auto'; the tables "
        "before 2026-12-04 were measured with 'normal_scores')",
    )


def preprocessing_of(args):
    return None if args.preprocessing == "none" else args.preprocessing


def _estimate(method, X, Y, seed, args):
    if method in ("ksg", "ksg_scores"):
        mi, note = ksg_estimate(X, Y, method == "ksg_scores", args.ksg_max_rows)
        return mi, None, note
    params = dict(bridge=method, early_stopping=True, max_iter=args.max_iter, random_state=seed)
    if args.baseline != "auto":
        params.update(baseline=None if args.baseline == "none" else args.baseline)
    mi, std = mutual_information(
        X,
        Y,
        estimator=TelescopingRatioEstimator(**params),
        preprocessing=preprocessing_of(args),
        n_shuffles=args.n_shuffles,
        return_std=True,
        random_state=seed,
    )
    return mi, std, ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", choices=list(PROBLEMS), default=list(PROBLEMS))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ksg-max-rows", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="200 ratio steps")
    parser.add_argument(
        "--n-shuffles",
        type=lambda v: v if v == "auto" else int(v),
        default="auto",
        help="mutual_information's n_shuffles (default: auto)",
    )
    parser.add_argument(
        "--baseline",
        choices=["auto", "gaussian", "none"],
        default="auto",
        help="the ratio's baseline (default: the estimator's, 'auto')",
    )
    add_preprocessing_option(parser)
    parser.add_argument(
        "--max-iter",
        type=int,
        default=DEFAULT_MAX_ITER,
        help=f"the ratio's max_iter (default: mutual_information's, {DEFAULT_MAX_ITER})",
    )
    parser.add_argument("--out", default="mutual_information.md")
    args = parser.parse_args()
    if args.quick:
        args.max_iter = 200

    rows, holds = [], {}
    for name in args.problems:
        make, kwargs, n = PROBLEMS[name]
        X, Y, truth = make(n, random_state=args.seed, **kwargs)
        for method in args.methods:
            if method.startswith("ksg") and infomeasure is None:
                print(f"{name}: {LABELS[method]} skipped (pip install infomeasure)")
                continue
            start = time.perf_counter()
            mi, std, note = _estimate(method, X, Y, args.seed, args)
            seconds = time.perf_counter() - start
            error = mi - truth
            ok = abs(error) <= max(0.1 * truth, 0.1)
            holds.setdefault(method, []).append(ok)
            estimate = f"{mi:.3f}" if std is None else f"{mi:.3f} ± {std:.3f}"
            rows.append(
                [
                    name,
                    2 * X.shape[1],
                    f"{n:,}",
                    f"{truth:.3f}",
                    LABELS[method] + note,
                    estimate,
                    f"{100 * error / truth:+.1f}%",
                    "yes" if ok else "**no**",
                    f"{seconds:.0f}",
                ]
            )
            print(" | ".join(str(c) for c in rows[-1]), flush=True)

    header = ["problem", "d", "rows", "truth (nats)", "method", "estimate ± s.e.", "error"]
    header += ["holds", "s"]
    summary = [[LABELS[m], f"{sum(v)}/{len(v)}", sum(not ok for ok in v)] for m, v in holds.items()]
    lines = [
        "# Mutual information beyond Gaussians: skot's bridges against KSG",
        "",
        f"Command: `{command('bench_mutual_information.py')}`",
        f"Machine: {machine()}.",
        "",
        "A row holds when its estimate is within 10% of the truth or 0.1 nats. "
        "The s.e. is that of the held-out average only (not the ratio's own error). "
        f"skot rows: preprocessing={args.preprocessing!r}, "
        f"n_shuffles={args.n_shuffles!r}, baseline={args.baseline!r}, "
        f"max_iter={args.max_iter} (early stopping on).",
        "",
        markdown_table(header, rows),
        "",
        markdown_table(["method", "holds", "misses"], summary),
    ]
    write(args.out, "\n".join(lines))


if __name__ == "__main__":
    main()
