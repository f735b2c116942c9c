"""Q-flow refinement with and without the held-out guard (``early_stopping``).

Refinement follows classifiers fitted to finite samples; run long on a small
sample it can drift away from the optimal map. With ``early_stopping=True``
the flow is scored on held-out rows before refinement and after every phase
and the best-scoring flow is kept. This benchmark measures both on a Gaussian
pair, where the optimal map is known in closed form:

- the OT-CFM initialisation alone (``n_flips=0``), without and with the
  held-out split (which also stops the initialisation early);
- that initialisation refined for ``max_iter`` in {100 (default), 400} steps
  per phase, without and with the guard.

Columns: L2-UVP against the closed-form map and transport cost over the exact
W2^2, on 10,000 held-out rows; refinement seconds; with the guard, the
held-out scores (``validation_scores_``: before refinement, then after each
phase) and the one kept.

Usage::

    python benchmarks/bench_qflow_guard.py            # d = 10, 4000 rows
    python benchmarks/bench_qflow_guard.py --dim 2 --n 2000
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--max-iters", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS / "qflow_guard.md"))
    args = parser.parse_args()

    X, Y, problem = make_gaussian_ot(args.n, args.dim, random_state=args.seed)
    X_test = problem.sample_p(10000, random_state=args.seed + 1)
    true = problem.transport(X_test)

    rows = []

    def report(name, model, seconds):
        rows.append(
            {
                "name": name,
                "uvp": l2_uvp(model.transform(X_test), true, problem.target_variance),
                "cost": model.transport_cost(X_test).mean() / problem.w2_squared,
                "seconds": seconds,
                # with the guard: the held-out score before refinement and
                # after each phase, and which of them was kept
                "scores": getattr(model, "validation_scores_", None),
            }
        )
        r = rows[-1]
        print(f"{name}: L2-UVP {r['uvp']:.3f}, cost / W2^2 {r['cost']:.3f}, {seconds:.1f} s")

    for guarded in (False, True):
        start = time.perf_counter()
        init = QFlowTransport(
            n_flips=0, early_stopping=guarded, random_state=args.seed, **FORMER_DEFAULTS
        )
        init.fit(X, Y)
        label = "held-out split" if guarded else "no split"
        report(
            f"OT-CFM init ({label}, {init.init_n_iter_} steps)", init, time.perf_counter() - start
        )
        for max_iter in args.max_iters:
            start = time.perf_counter()
            refined = copy.deepcopy(init).set_params(n_flips=2, warm_start=True, max_iter=max_iter)
            refined.fit(X, Y)
            name = f"refined, {max_iter} steps per phase, " + (
                "guarded" if guarded else "unguarded"
            )
            report(name, refined, time.perf_counter() - start)

    def scores(r):
        if not r["scores"]:
            return "-"
        kept = int(max(range(len(r["scores"])), key=r["scores"].__getitem__))
        return ", ".join(
            f"**{v:.3f}**" if i == kept else f"{v:.3f}" for i, v in enumerate(r["scores"])
        )

    lines = [
        "| flow | L2-UVP | cost / W2^2 | seconds | held-out scores (kept in bold) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['name']} | {r['uvp']:.3f} | {r['cost']:.3f} | {r['seconds']:.1f} | {scores(r)} |"
        for r in rows
    ]
    out = "\n".join(lines)
    print(out)
    header = (
        "# Q-flow refinement with and without the held-out guard\n\n"
        f"Command: `{command('bench_qflow_guard.py')}` "
        f"(Gaussian pair, d = {args.dim}, {args.n} rows of each sample, seed {args.seed}; "
        "every refinement starts from the initialisation above it; seconds: the "
        "initialisation's fit, or the refinement's alone).\n"
        f"Machine: {machine()}.\n\n"
    )
    write(args.out, header + out)


if __name__ == "__main__":
    main()
