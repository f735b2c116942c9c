"""How much of Q-flow's refinement to average: ``ema_decay`` swept.

Each refinement phase ends at the moving average of its updates. A decay
``b`` averages the first ``1 / (1 - b)`` updates plainly, then forgets at
rate ``b``; with the default 100 steps per phase, 0.99 and 0.995 are both the
plain mean of the whole phase, and 0 is the last update.

On Gaussian pairs, where the optimal map is known in closed form, one
OT-CFM initialisation per problem is refined with each decay
(``warm_start``, the default ``n_flips=2``), for one round (the default fit)
and, with ``--rounds``, more rounds of the same refinement. The problems are
those of the closed-form test (d=2 on 16384 rows, d=10 on 4000) and of the
transport benchmark's hardest case (d=64 on 16384).

Columns: L2-UVP against the closed-form map on 10,000 held-out rows, its
ratio to the initialisation's, and the transport cost against W2^2.

Usage::

    python benchmarks/bench_qflow_ema.py
"""

from __future__ import annotations

import argparse
import copy
import time

from _maps import FORMER_DEFAULTS
from _report import RESULTS, command, machine, write

from skot import QFlowTransport
from skot.datasets import make_gaussian_ot
from skot.metrics import l2_uvp

DECAYS = [0.0, 0.9, 0.97, 0.99, 0.995]
# (d, rows of each sample, refinement rounds measured)
PROBLEMS = [(2, 2**14, (1,)), (10, 4000, (1,)), (64, 2**14, (1, 2))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dims", type=int, nargs="+", default=[d for d, _, _ in PROBLEMS])
    parser.add_argument("--decays", type=float, nargs="+", default=DECAYS)
    parser.add_argument("--out", default=str(RESULTS / "qflow_ema.md"))
    args = parser.parse_args()

    lines = [
        "| d | rows | rounds | ema_decay | L2-UVP | / init | cost / W2^2 | refine s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for d, n, all_rounds in PROBLEMS:
        if d not in args.dims:
            continue
        X, Y, problem = make_gaussian_ot(n, d, random_state=args.seed)
        X_test = problem.sample_p(10000, random_state=args.seed + 1)
        true = problem.transport(X_test)
        init = QFlowTransport(n_flips=0, random_state=args.seed, **FORMER_DEFAULTS).fit(X, Y)
        uvp_init = l2_uvp(init.transform(X_test), true, problem.target_variance)
        lines.append(f"| {d} | {n} | init | - | {uvp_init:.3f} | 1 | - | - |")
        print(lines[-1], flush=True)
        for rounds in all_rounds:
            for decay in args.decays:
                start = time.perf_counter()
                model = copy.deepcopy(init).set_params(n_flips=2, warm_start=True, ema_decay=decay)
                for _ in range(rounds):
                    model.fit(X, Y)
                seconds = time.perf_counter() - start
                uvp = l2_uvp(model.transform(X_test), true, problem.target_variance)
                cost = model.transport_cost(X_test).mean() / problem.w2_squared
                lines.append(
                    f"| {d} | {n} | {rounds} | {decay:g} | {uvp:.3f} | {uvp / uvp_init:.3f} "
                    f"| {cost:.3f} | {seconds:.1f} |"
                )
                print(lines[-1], flush=True)

    header = (
        "# Q-flow refinement: how much to average (`ema_decay`)\n\n"
        f"Command: `{command('bench_qflow_ema.py')}` (Gaussian pairs, seed {args.seed}; "
        "L2-UVP % on 10,000 held-out rows; one round = the default refinement, "
        "2 phases of 100 steps).\n"
        f"Machine: {machine()}.\n\n"
    )
    write(args.out, header + "\n".join(lines))


if __name__ == "__main__":
    main()
