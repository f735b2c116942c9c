"""Coverage of ``mutual_information``'s interval: how often it holds the
exact mutual information, over seeds, on problems with a known answer.

For each problem (those of ``bench_mutual_information.py``) and seed, one
sample is drawn and ``mutual_information(..., return_interval=True)`` runs
with ``n_splits`` refits of the ratio (Student's t on Nadeau and Bengio's
corrected resampled standard error). Beside it, the interval a user had
before: the first split alone, its estimate plus or minus 1.96 times the
held-out average's standard error (the same fit: a RandomState seeded as
the call's draws the same first split).

The table gives, per problem and bridge: how many intervals cover the
truth, how many lie wholly above it (an estimate above the truth by more
than the interval), the mean estimate's error and the mean half-width.

Usage::

    python benchmarks/bench_mi_interval.py                        # 10 seeds, bridge="none"
    python benchmarks/bench_mi_interval.py --bridges qflow --problems cube_4 --seeds 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _report import command, machine, markdown_table, write
from bench_mutual_information import PROBLEMS, add_preprocessing_option, preprocessing_of

from skot import TelescopingRatioEstimator, mutual_information


def _estimator(bridge, seed, quick):
    params = dict(bridge=bridge, early_stopping=True, random_state=seed)
    if quick:
        params.update(max_iter=200)
    return TelescopingRatioEstimator(**params)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--problems", nargs="+", choices=list(PROBLEMS), default=["cube_4", "t_cauchy_4"]
    )
    parser.add_argument("--bridges", nargs="+", default=["none"])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0, 1, ...")
    parser.add_argument("--n-splits", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="200 ratio steps")
    add_preprocessing_option(parser)
    parser.add_argument("--out", default="mi_interval.md")
    args = parser.parse_args()

    preprocessing = preprocessing_of(args)
    rows = []
    for name in args.problems:
        make, kwargs, n = PROBLEMS[name]
        for bridge in args.bridges:
            found = {"splits": [], "one": []}
            start = time.perf_counter()
            for seed in range(args.seeds):
                X, Y, truth = make(n, random_state=seed, **kwargs)
                est = _estimator(bridge, seed, args.quick)
                mi, (low, high) = mutual_information(
                    X,
                    Y,
                    estimator=est,
                    preprocessing=preprocessing,
                    n_splits=args.n_splits,
                    return_interval=True,
                    random_state=seed,
                )
                found["splits"].append((mi, low, high))
                # The first split alone: the same draws as the call above's first.
                one, std = mutual_information(
                    X,
                    Y,
                    estimator=est,
                    preprocessing=preprocessing,
                    return_std=True,
                    random_state=np.random.RandomState(seed),
                )
                found["one"].append((one, one - 1.96 * std, one + 1.96 * std))
                print(
                    name,
                    bridge,
                    seed,
                    f"truth {truth:.3f}",
                    f"{mi:.3f} [{low:.3f}, {high:.3f}]",
                    f"one split {one:.3f} ± {1.96 * std:.3f}",
                    flush=True,
                )
            seconds = time.perf_counter() - start
            for kind, label in (("splits", f"{args.n_splits} splits, t"), ("one", "1 split, s.e.")):
                estimates, low, high = np.array(found[kind]).T
                rows.append(
                    [
                        name,
                        f"{truth:.3f}",
                        bridge,
                        label,
                        f"{np.sum((low < truth) & (truth < high))}/{args.seeds}",
                        f"{np.sum(low > truth)}",
                        f"{100 * (estimates.mean() - truth) / truth:+.1f}%",
                        f"{np.mean(high - low) / 2:.3f}",
                        f"{seconds:.0f}" if kind == "splits" else "",
                    ]
                )
    header = ["problem", "truth", "bridge", "interval", "covers", "above", "mean error"]
    header += ["mean half-width", "s"]
    lines = [
        "# Coverage of mutual_information's interval",
        "",
        f"Command: `{command('bench_mi_interval.py')}`",
        f"Machine: {machine()}.",
        "",
        f"Seeds 0-{args.seeds - 1}, one sample each; 95% intervals. `above`: intervals wholly "
        "above the truth. `s`: all seeds, both intervals (the one-split fits are the first "
        f"splits refitted). preprocessing={args.preprocessing!r}.",
        "",
        markdown_table(header, rows),
    ]
    write(args.out, "\n".join(lines))


if __name__ == "__main__":
    main()
