"""Q-flow against its OT-CFM initialisation and POT's discrete maps.

On Gaussian pairs (closed-form OT map) for several dimensions, and on
moons -> checkerboard (no closed form: exact discrete OT on held-out points
is the reference), side by side in one run:

- ``QFlowTransport`` (OT-CFM initialisation straightened by reflow, then
  Q-flow refinement), and the same refinement returning its last update
  instead of the moving average of its updates (``ema_decay=0``);
- ``init alone (OT-CFM + reflow)``: the same initialisation alone (the
  refinement is timed separately by continuing the same fit with
  ``warm_start``);
- POT's ``EMDTransport`` and ``SinkhornTransport`` with their out-of-sample
  maps, fitted on a subsample (exact OT is cubic in the rows);
- POT's ``LinearTransport`` (exact for Gaussians: the reference).

Columns: L2-UVP (%) and cosine of displacements against the true map,
transport cost E|T(x) - x|^2 against the exact W2^2 (Gaussians) or the
exact discrete OT cost on held-out points (2-D) (for Q-flow its discretised
path cost, and beside it the end-point cost E|T(x) - x|^2 of its map),
target match W2^2(T(X), Y)
on held-out points, fit seconds, and transform throughput (rows per second).

Usage::

    pip install -e ".[bench]"
    python benchmarks/bench_qflow_transport.py              # d in {2, 16, 64}, 2^14 rows
    python benchmarks/bench_qflow_transport.py --quick      # smaller, for a smoke run

Needs POT (``pip install -e ".[bench]"``); rows of a missing peer are skipped.
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
from _maps import PotMap, init_then_refine, timed
from _report import RESULTS, command, machine, markdown_table, write

from skot import QFlowTransport
from skot.datasets import make_2d, make_gaussian_ot
from skot.metrics import displacement_cosine, empirical_w2_squared, l2_uvp


def _throughput(transform, X):
    _, seconds = timed(lambda: transform(X))
    return len(X) / seconds


def _qflow_pair(X, Y, seed, gamma, extra_rounds=0, baseline=None):
    """The OT-CFM initialisation and the refined Q-flow, from one fit; then,
    with ``extra_rounds``, the same flow refined for that many more rounds
    of the default refinement (``warm_start``); with ``baseline`` ("none" or
    "gaussian"), both again with that ``baseline``."""
    params = {} if gamma is None else {"gamma": gamma}
    out = init_then_refine(X, Y, seed, **params)
    (_, init, t_init), (_, refined, t_total) = out
    t_refine = t_total - t_init
    # Ablation: the refinement's last update instead of its moving average.
    last = copy.deepcopy(init).set_params(n_flips=2, warm_start=True, ema_decay=0.0)
    last, t_last = timed(lambda: last.fit(X, Y))
    out.append(("QFlowTransport (ema_decay=0)", last, t_init + t_last))
    if extra_rounds:
        longer, seconds = copy.deepcopy(refined), t_init + t_refine
        for _ in range(extra_rounds):
            seconds += timed(lambda: longer.fit(X, Y))[1]
        steps = (1 + extra_rounds) * 2 * refined.max_iter
        out.append((f"QFlowTransport ({steps} refinement steps)", longer, seconds))
    if baseline:
        value = None if baseline == "none" else baseline
        with_baseline = init_then_refine(X, Y, seed, baseline=value, **params)
        out += [(f"{name}, baseline={value!r}", *rest) for name, *rest in with_baseline]
    return out


def _pot_maps(X, Y, n_sub, seed):
    try:
        import ot
    except ImportError:
        print("POT is not installed: skipping its rows (pip install -e '.[bench]').")
        return []
    rng = np.random.RandomState(seed)
    i = rng.choice(len(X), min(n_sub, len(X)), replace=False)
    j = rng.choice(len(Y), min(n_sub, len(Y)), replace=False)
    rows = []
    for name, make, sub in [
        (f"POT EMDTransport ({len(i)} rows)", lambda: ot.da.EMDTransport(), True),
        (
            f"POT SinkhornTransport ({len(i)} rows)",
            lambda: ot.da.SinkhornTransport(reg_e=0.05 * X.var(0).sum()),
            True,
        ),
        ("POT LinearTransport", lambda: ot.da.LinearTransport(), False),
    ]:
        est = make()
        Xs, Xt = (X[i], Y[j]) if sub else (X, Y)
        _, seconds = timed(lambda est=est, Xs=Xs, Xt=Xt: est.fit(Xs=Xs, Xt=Xt))
        rows.append((name, PotMap(est), seconds))
    return rows


def _rows(
    problem,
    X,
    Y,
    X_test,
    Y_test,
    reference,
    n_sub,
    seed,
    gamma,
    truth=None,
    extra_rounds=0,
    baseline=None,
):
    """One row per method; ``truth = (T*(X_test), Var(Q))`` where the map is known."""
    rows = []
    qflow = _qflow_pair(X, Y, seed, gamma, extra_rounds, baseline)
    for name, model, seconds in qflow + _pot_maps(X, Y, n_sub, seed):
        mapped = model.transform(X_test)
        rows.append(
            dict(
                problem=problem,
                method=name,
                l2_uvp=l2_uvp(mapped, *truth) if truth else float("nan"),
                cosine=displacement_cosine(X_test, mapped, truth[0]) if truth else float("nan"),
                cost=float(model.transport_cost(X_test).mean()),
                # The cost of the map itself: Q-flow's path cost adds the
                # paths' bends, which do not move the end points.
                end_cost=float(np.square(mapped - X_test).sum(1).mean()),
                reference=reference,
                target_w2=empirical_w2_squared(mapped[: len(Y_test)], Y_test),
                fit_s=seconds,
                rows_per_s=_throughput(model.transform, X_test),
            )
        )
    return rows


def gaussian_rows(d, n, n_test, n_sub, seed, gamma, extra_rounds=0, baseline=None):
    X, Y, problem = make_gaussian_ot(n, d, random_state=seed)
    X_test = problem.sample_p(n_test, random_state=seed + 1)
    Y_test = problem.sample_q(min(n_test, 2000), random_state=seed + 2)
    truth = (problem.transport(X_test), problem.target_variance)
    return _rows(
        f"Gaussian d={d}",
        X,
        Y,
        X_test,
        Y_test,
        problem.w2_squared,
        n_sub,
        seed,
        gamma,
        truth,
        extra_rounds,
        baseline,
    )


def moons_rows(n, n_sub, seed, gamma):
    X = make_2d("moons", n, random_state=seed)
    Y = make_2d("checkerboard", n, random_state=seed + 1)
    X_test = make_2d("moons", 2000, random_state=seed + 2)
    Y_test = make_2d("checkerboard", 2000, random_state=seed + 3)
    reference = empirical_w2_squared(X_test, Y_test)
    return _rows("moons->checkerboard", X, Y, X_test, Y_test, reference, n_sub, seed, gamma)


def table(rows):
    header = ["problem", "method", "L2-UVP %", "cos", "cost", "W2^2 ref", "cost/ref"]
    header += ["end cost/ref", "W2^2(T(X),Y)", "fit s", "rows/s"]
    return markdown_table(
        header,
        [
            [
                r["problem"],
                r["method"],
                f"{r['l2_uvp']:.3f}",
                f"{r['cosine']:.4f}",
                f"{r['cost']:.3f}",
                f"{r['reference']:.3f}",
                f"{r['cost'] / r['reference']:.3f}",
                f"{r['end_cost'] / r['reference']:.3f}",
                f"{r['target_w2']:.4f}",
                f"{r['fit_s']:.1f}",
                f"{r['rows_per_s']:.3g}",
            ]
            for r in rows
        ],
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 16, 64])
    parser.add_argument("--n-train", type=int, default=2**14)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--n-sub", type=int, default=2000, help="rows for POT's discrete maps")
    parser.add_argument(
        "--gamma", type=float, default=None, help="QFlowTransport's default when not given"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="d in {2, 16}, 4000 rows")
    parser.add_argument(
        "--extra-rounds",
        type=int,
        default=0,
        help="also report the Gaussian Q-flow refined for this many more default rounds",
    )
    parser.add_argument("--no-moons", action="store_true", help="Gaussian pairs only")
    parser.add_argument(
        "--baseline",
        choices=["none", "gaussian"],
        help="also the Gaussian rows with QFlowTransport(baseline=None or 'gaussian'); "
        "the default, 'auto', is 'gaussian' from 32 features on",
    )
    parser.add_argument("--out", default=str(RESULTS / "qflow_transport.md"))
    args = parser.parse_args()
    if args.quick:
        args.dims, args.n_train, args.n_test, args.n_sub = [2, 16], 4000, 4000, 1000

    rows = []
    for d in args.dims:
        new = gaussian_rows(
            d,
            args.n_train,
            args.n_test,
            args.n_sub,
            args.seed,
            args.gamma,
            args.extra_rounds,
            args.baseline,
        )
        rows += new
        print(table(new), flush=True)
    if not args.no_moons:
        rows += moons_rows(min(args.n_train, 4000), args.n_sub, args.seed, args.gamma)
    out = table(rows)
    print(out)

    gamma = QFlowTransport().gamma if args.gamma is None else args.gamma
    header = (
        f"# QFlowTransport benchmark\n\n"
        f"Command: `{command('bench_qflow_transport.py')}` "
        f"(dims {args.dims}, {args.n_train} training rows, "
        f"{args.n_test} test rows, POT discrete maps on {args.n_sub} rows, gamma={gamma}).\n"
        f"Machine: {machine()}.\n\n"
        f"cost: mean E|T(x)-x|^2 on test rows (Q-flow: discretised path cost); "
        f"end cost: E|T(x)-x|^2 of the map itself for every method; "
        f"W2^2 ref: exact (Gaussians) or exact discrete OT on 2000 held-out rows (moons).\n"
        f"Times drift on shared machines: compare within a table.\n\n"
    )
    write(args.out, header + out)


if __name__ == "__main__":
    main()
