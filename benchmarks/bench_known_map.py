"""Maps on non-Gaussian pairs with a known OT map, every method in one run.

On :func:`skot.datasets.make_brenier_ot` pairs (P a Gaussian mixture or a
Student t, Q its image by the gradient of a convex potential, so the exact
OT map is known in any dimension), for d in {2, 8, 32, 64}:

- ``QFlowTransport`` with default parameters;
- ``init alone (OT-CFM + reflow)``: the same fit stopped before the
  refinement (``n_flips=0``; the refinement is then continued with ``warm_start``, so
  both rows come from one fit and the Q-flow row's time is their sum);
- POT's ``EMDTransport`` and ``SinkhornTransport`` with their out-of-sample
  maps, each on as many rows as it fits within Q-flow's fit time (sizes
  1000, 2000, 4000, ... while the next one is predicted to fit; Sinkhorn's
  ``reg_e`` by a stated rule: 5% of the total variance of X);
- POT's ``LinearTransport`` (the best affine map; exact only for Gaussians);
- where ott-jax is installed (``pip install -e ".[ott]"``), its neural
  Monge map (``MongeGapEstimator``, settings in ``benchmarks/_ott.py``),
  its steps sized to Q-flow's fit time;
- with ``--variant LABEL=JSON``, the same two Q-flow rows again for
  QFlowTransport's parameters in JSON, labelled ``[LABEL]`` (the discrete
  maps' time budget stays the default fit's).

Columns: L2-UVP (%) and the cosine of displacements against the true map;
``cost/W2^2``, the transport cost ``E|T(x) - x|^2`` (Q-flow: its path cost)
over the exact W2^2, and ``end cost/W2^2`` the same for the map's own cost
(for every method); ``end/exact``, the map's own cost over the exact map's
on the same test rows (paired, so free of the test rows' sampling error:
the exact map's cost over them was 2.1% below W2^2 on the Student t pair
in d=8; the ``exact map`` row gives it); ``fit/floor``, W2^2 between the mapped held-out rows
and held-out rows of Q over the same between two samples of Q (1 for a
perfect target match); fit seconds.

Usage::

    pip install -e ".[bench]"
    python benchmarks/bench_known_map.py                     # mixtures, d in {2, 8, 32, 64}
    python benchmarks/bench_known_map.py --sources mixture student_t
    python benchmarks/bench_known_map.py --quick             # d in {2, 8}, 4000 rows
    python benchmarks/bench_known_map.py --variant 'fast init={"init_max_iter": 4000}'

ott-jax's ICNN dual (``W2NeuralDual``) has no row: why in ``benchmarks/_ott.py``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from _maps import PotMap, init_then_refine, timed
from _ott import monge_gap_row
from _report import RESULTS, command, machine, markdown_table, write

from skot.datasets import make_brenier_ot
from skot.metrics import displacement_cosine, empirical_w2_squared, l2_uvp

_FLOOR_ROWS = 2000  # held-out rows behind the target match and its floor
_DISCRETE_SIZES = (1000, 2000, 4000, 8000, 16384)


def _discrete_rows(X, Y, budget):
    """POT's EMD and Sinkhorn maps, each on the most rows that fit in ``budget`` s."""
    try:
        import ot
    except ImportError:
        print("POT is not installed: skipping its rows (pip install -e '.[bench]').")
        return []
    rows = []
    reg = 0.05 * X.var(0).sum()
    for name, make, power in [
        # Enough simplex iterations for the exact plan on 16384 rows (POT's
        # default of 1e5 stops short of optimality from 4000 rows on).
        ("POT EMDTransport", lambda: ot.da.EMDTransport(max_iter=10**8), 3.0),
        ("POT SinkhornTransport", lambda: ot.da.SinkhornTransport(reg_e=reg), 2.0),
    ]:
        best = None
        for n in _DISCRETE_SIZES:
            n = min(n, len(X), len(Y))
            est = make()
            _, seconds = timed(lambda est=est, n=n: est.fit(Xs=X[:n], Xt=Y[:n]))
            best = (f"{name} ({n} rows)", PotMap(est), seconds)
            grow = min(2 * n, len(X), len(Y)) / n
            if n == min(len(X), len(Y)) or seconds * grow**power > budget:
                break
        rows.append(best)
    rows.append(("POT LinearTransport", PotMap(ot.da.LinearTransport().fit(Xs=X, Xt=Y)), 0.0))
    return rows


def pair_rows(source, d, n, n_test, seed, variants=()):
    X, Y, problem = make_brenier_ot(n, d, source=source, random_state=seed)
    X_test = problem.sample_p(n_test, random_state=seed + 1)
    Y_test = problem.sample_q(_FLOOR_ROWS, random_state=seed + 2)
    floor = empirical_w2_squared(problem.sample_q(_FLOOR_ROWS, random_state=seed + 3), Y_test)
    true_map = problem.transport(X_test)
    # The exact map's cost on the test rows: the paired reference of each
    # map's own cost, whose ratio to it is free of these rows' sampling error.
    exact_cost = float(np.square(true_map - X_test).sum(1).mean())
    qflow = init_then_refine(X, Y, seed)
    default_seconds = qflow[-1][2]  # the discrete maps' budget: the default fit's time
    for label, params in variants:
        qflow += [
            (f"{name} [{label}]", model, seconds)
            for name, model, seconds in init_then_refine(X, Y, seed, **params)
        ]
    peers = _discrete_rows(X, Y, budget=default_seconds)
    neural = monge_gap_row(X, Y, budget=default_seconds, seed=seed)
    out = [
        dict(
            problem=f"{source} d={d}",
            method="exact map",
            l2_uvp=0.0,
            cosine=1.0,
            cost=exact_cost / problem.w2_squared,
            end_cost=exact_cost / problem.w2_squared,
            end_exact=1.0,
            fit=empirical_w2_squared(true_map[:_FLOOR_ROWS], Y_test) / floor,
            fit_s=None,
        )
    ]
    for name, model, seconds in qflow + peers + ([neural] if neural else []):
        mapped = model.transform(X_test)
        if not np.isfinite(mapped).all():
            # POT's Sinkhorn underflows on heavy tails at this reg_e: report
            # the failure, not figures computed from NaN.
            out.append(dict(problem=f"{source} d={d}", method=name, fit_s=seconds, failed=True))
            continue
        end_cost = float(np.square(mapped - X_test).sum(1).mean())
        out.append(
            dict(
                problem=f"{source} d={d}",
                method=name,
                l2_uvp=l2_uvp(mapped, true_map, problem.target_variance),
                cosine=displacement_cosine(X_test, mapped, true_map),
                cost=float(model.transport_cost(X_test).mean()) / problem.w2_squared,
                # The map's own cost (for Q-flow its path cost adds the bends).
                end_cost=end_cost / problem.w2_squared,
                end_exact=end_cost / exact_cost,
                fit=empirical_w2_squared(mapped[:_FLOOR_ROWS], Y_test) / floor,
                fit_s=seconds,
            )
        )
    return out


def table(rows):
    header = ["problem", "method", "L2-UVP %", "cos", "cost/W2^2", "end cost/W2^2"]
    header += ["end/exact", "fit/floor", "fit s"]
    return markdown_table(
        header,
        [
            [r["problem"], r["method"], *["NaN map"] * 6, f"{r['fit_s']:.1f}"]
            if r.get("failed")
            else [
                r["problem"],
                r["method"],
                f"{r['l2_uvp']:.3f}",
                f"{r['cosine']:.4f}",
                f"{r['cost']:.3f}",
                f"{r['end_cost']:.3f}",
                f"{r['end_exact']:.3f}",
                f"{r['fit']:.2f}",
                "" if r["fit_s"] is None else f"{r['fit_s']:.1f}",
            ]
            for r in rows
        ],
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 8, 32, 64])
    parser.add_argument("--sources", nargs="+", default=["mixture"])
    parser.add_argument("--n-train", type=int, default=2**14)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="d in {2, 8}, 4000 rows")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL=JSON",
        help="Q-flow rows with these parameters too",
    )
    parser.add_argument("--out", default=str(RESULTS / "known_map.md"))
    args = parser.parse_args()
    variants = [
        (label, json.loads(params))
        for label, params in (item.split("=", 1) for item in args.variant)
    ]
    if args.quick:
        args.dims, args.n_train, args.n_test = [2, 8], 4000, 4000

    rows = []
    for source in args.sources:
        for d in args.dims:
            new = pair_rows(source, d, args.n_train, args.n_test, args.seed, variants)
            print(table(new), flush=True)
            rows += new
    out = table(rows)
    print(out)
    header = (
        f"# Maps on pairs with a known OT map (make_brenier_ot)\n\n"
        f"Command: `{command('bench_known_map.py')}` (sources {args.sources}, dims "
        f"{args.dims}, {args.n_train} training rows, {args.n_test} test rows, seed "
        f"{args.seed}{''.join(f'; [{lab}]: {par}' for lab, par in variants)})."
        f"\nMachine: {machine()}.\n\n"
        f"cost/W2^2: E|T(x)-x|^2 on test rows (Q-flow: its discretised path cost) over "
        f"the exact W2^2 (Monte Carlo, standard error under 0.4%); end cost: the map's "
        f"own E|T(x)-x|^2 for every method; end/exact: that cost over the exact map's "
        f"on the same test rows (paired; the exact map's row gives the test rows' own "
        f"sampling error against W2^2). fit/floor: "
        f"W2^2(T(X_test), Y_test) over W2^2 between two samples of Q, on "
        f"{_FLOOR_ROWS} rows each. Discrete maps: on as many rows as fit in "
        f"Q-flow's fit time; ott-jax's Monge gap map: as many steps. "
        f"Times drift on shared machines: compare within a table.\n\n"
    )
    write(args.out, header + out)


if __name__ == "__main__":
    main()
