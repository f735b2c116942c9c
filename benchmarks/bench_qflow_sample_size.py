"""What limits the OT-CFM initialisation of Q-flow: the sample or its training?

On Gaussian pairs, where the optimal map is known in closed form, the
initialisation alone (``n_flips=0``) is fitted on more rows at the same
number of steps, and on the same rows for twice the steps. Beside it, the
plug-in Gaussian map from the same rows (means and covariances estimated,
then the closed-form linear OT map between the two fitted Gaussians): the
parametric answer a non-parametric map cannot be expected to beat.

If more rows help and more steps do not, the initialisation is limited by
the sample, which the refinement shares.

Columns: L2-UVP against the closed-form map on 10,000 held-out rows; fit
seconds.

Usage::

    python benchmarks/bench_qflow_sample_size.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _maps import FORMER_DEFAULTS
from _report import RESULTS, command, machine, write

from skot import QFlowTransport
from skot.datasets import GaussianOT, make_gaussian_ot
from skot.metrics import l2_uvp

# (d, rows of each sample, initialisation steps)
SETTINGS = [(10, 4000, 2000), (10, 16000, 2000), (10, 4000, 4000), (2, 2000, 2000)]


def plug_in_map(X, Y):
    """The closed-form OT map between Gaussians fitted to X and to Y."""
    fitted = GaussianOT(X.mean(0), np.cov(X, rowvar=False), Y.mean(0), np.cov(Y, rowvar=False))
    return fitted.transport


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS / "qflow_sample_size.md"))
    args = parser.parse_args()

    lines = [
        "| d | rows | init steps | OT-CFM init L2-UVP | plug-in Gaussian map L2-UVP | fit s |",
        "|---|---|---|---|---|---|",
    ]
    for d, n, steps in SETTINGS:
        # The problem (means, covariances) depends on the seed and d only;
        # the rows drawn depend on n.
        X, Y, problem = make_gaussian_ot(n, d, random_state=args.seed)
        X_test = problem.sample_p(10000, random_state=args.seed + 1)
        true = problem.transport(X_test)
        start = time.perf_counter()
        schedule = dict(FORMER_DEFAULTS, init_max_iter=steps)
        init = QFlowTransport(n_flips=0, random_state=args.seed, **schedule).fit(X, Y)
        seconds = time.perf_counter() - start
        uvp = l2_uvp(init.transform(X_test), true, problem.target_variance)
        plug_in = l2_uvp(plug_in_map(X, Y)(X_test), true, problem.target_variance)
        lines.append(f"| {d} | {n} | {steps} | {uvp:.3f} | {plug_in:.3f} | {seconds:.1f} |")
        print(lines[-1], flush=True)

    header = (
        "# What limits Q-flow's OT-CFM initialisation\n\n"
        f"Command: `{command('bench_qflow_sample_size.py')}` (Gaussian pairs, seed "
        f"{args.seed}; L2-UVP % on 10,000 held-out rows).\n"
        f"Machine: {machine()}.\n\n"
    )
    write(args.out, header + "\n".join(lines))


if __name__ == "__main__":
    main()
