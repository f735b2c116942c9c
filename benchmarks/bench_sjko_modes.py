"""Mode proportions: SJKOGenerator on mixtures with unequal weights and
spacings, against its one-phase ablation, OTFlowDensity, a GaussianMixture and
an OT-CFM generator, every method in one run.

Data (2-D mixtures with a known law from ``benchmarks/_mixtures.py``, no
test uses them; ``--n-train`` training rows drawn with ``--seed``):

- ``25gaussians``: the 5 x 5 grid of ``make_2d``, equal weights;
- ``9 unequal``: a 3 x 3 grid of spacing 3, standard deviation 0.2, weights
  from 0.3 down to 0.03 (a tenfold spread);
- ``6 uneven``: six round components, weights from 0.05 to 0.35, unequal
  spacings and standard deviations from 0.1 to 0.5.

Methods:

- ``S-JKO``: ``SJKOGenerator`` with its defaults (K phases of ``max_iter``
  steps);
- ``one phase``: the same with ``n_phases=1`` and K times the steps, so the
  same total steps (the paper's ablation);
- ``OT-Flow``: ``OTFlowDensity`` with its defaults, ``.sample``;
- ``GMM``: ``sklearn.mixture.GaussianMixture``, its number of components
  chosen by BIC in {1, ..., 30}, ``.sample`` (a model of the right family:
  the reference, not a peer);
- ``OT-CFM``: ``QFlowTransport(n_flips=0)`` fitted to the data alone, so a
  flow from the data to N(0, I) trained by minibatch-OT flow matching; its
  samples are ``inverse_transform`` of N(0, I) rows (torchcfm's method);
- with ``--variant LABEL=JSON``, S-JKO again with those parameters;
- ``data``: fresh rows of the true law (what sampling noise alone gives).

Columns, on 5,000 samples: ``W2/floor``, W2 between 2,000 samples and
2,000 held-out rows over W2 between two samples of 2,000 true rows (1 is
as close as sampling allows); ``worst share``, the factor by which the mode
furthest from its weight misses it (a sample counts for the component
nearest in its own standard deviations, within 3 of them; a missed mode
gives inf); the lowest and highest share over weight; modes covered (at
least half their weight's share); the share of samples near no mode; fit
seconds.

The issue's bar for S-JKO: worst share at most 1.5 and W2/floor at most
1.3 on every data set.

Usage::

    python benchmarks/bench_sjko_modes.py
    python benchmarks/bench_sjko_modes.py --quick
    python benchmarks/bench_sjko_modes.py --variant 'no noise={"instance_noise": 0}'
    python benchmarks/bench_sjko_modes.py --methods S-JKO "GMM (BIC)"
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from _maps import FORMER_DEFAULTS
from _mixtures import (
    mode_shares,
    nine_unequal,
    six_uneven,
    twenty_five_gaussians,
    worst_share_factor,
)
from _report import command, machine, markdown_table, write
from sklearn.mixture import GaussianMixture as SklearnGMM

from skot import OTFlowDensity, QFlowTransport, SJKOGenerator
from skot.metrics import empirical_w2_squared

MIXTURES = {
    "25gaussians": twenty_five_gaussians,
    "9 unequal": nine_unequal,
    "6 uneven": six_uneven,
}
N_SAMPLES, N_W2 = 5000, 2000


class _FlowGenerator:
    """Samples of a flow fitted from the data to N(0, I): its inverse applied
    to standard normal rows."""

    def __init__(self, flow):
        self.flow = flow

    def sample(self, n_samples, random_state=None):
        rng = np.random.default_rng(random_state)
        return self.flow.inverse_transform(rng.standard_normal((n_samples, 2)))


def _gmm(X):
    fits = [SklearnGMM(k, random_state=0).fit(X) for k in range(1, 31)]
    return min(fits, key=lambda g: g.bic(X))


def _sample(model, n):
    if isinstance(model, SklearnGMM):
        # Seeded by its own random_state, rows grouped by component: shuffle,
        # since the W2 column uses the first rows only.
        return model.sample(n)[0][np.random.default_rng(1).permutation(n)]
    return model.sample(n, random_state=1)


def methods(args, variants):
    base = SJKOGenerator()
    phases, steps = (2, 50) if args.quick else (base.n_phases, base.max_iter)
    quick = {"n_phases": 2, "max_iter": 50} if args.quick else {}

    def sjko(**params):
        return lambda X: SJKOGenerator(random_state=0, **{**quick, **params}).fit(X)

    out = {
        "S-JKO": sjko(),
        "one phase": sjko(n_phases=1, max_iter=phases * steps),
        "OT-Flow": lambda X: OTFlowDensity(
            random_state=0, **({"max_iter": 20} if args.quick else {})
        ).fit(X),
        "GMM (BIC)": _gmm,
        "OT-CFM": lambda X: _FlowGenerator(
            QFlowTransport(
                n_flips=0,
                random_state=0,
                **dict(FORMER_DEFAULTS, **({"init_max_iter": 50} if args.quick else {})),
            ).fit(X)
        ),
    }
    out.update({f"S-JKO [{label}]": sjko(**params) for label, params in variants})
    return out


def row(name, method, S, seconds, X_test, floor, mixture):
    ratio, far = mode_shares(S, mixture)
    w2 = np.sqrt(empirical_w2_squared(S[:N_W2], X_test))
    covered = int((ratio >= 0.5).sum())
    return [
        name,
        method,
        f"{w2 / floor:.2f}",
        f"{worst_share_factor(ratio):.2f}",
        f"{ratio.min():.2f} / {ratio.max():.2f}",
        f"{covered}/{len(ratio)}",
        f"{far:.1%}",
        "" if seconds is None else f"{seconds:.1f}",
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=3, help="a seed no test uses")
    parser.add_argument("--only", nargs="+", choices=list(MIXTURES))
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL=JSON",
        help="S-JKO again with these parameters (repeatable)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        metavar="METHOD",
        help="only these rows (names as in the table, variants by their label); default all",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a smoke run, few steps")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.n_train = 2000
    variants = [
        (label, json.loads(params))
        for label, params in (item.split("=", 1) for item in args.variant)
    ]

    header = [
        "data",
        "method",
        "W2/floor",
        "worst share",
        "share min / max",
        "modes",
        "far",
        "fit s",
    ]
    print(" | ".join(header), flush=True)
    rows, fits = [], methods(args, variants)
    if args.methods:
        unknown = set(args.methods) - set(fits)
        if unknown:
            parser.error(f"unknown methods {sorted(unknown)}; choose from {list(fits)}")
        fits = {name: fit for name, fit in fits.items() if name in args.methods}
    for name in args.only or MIXTURES:
        mixture = MIXTURES[name]()
        X = mixture.sample(args.n_train, random_state=args.seed)
        X_test = mixture.sample(N_W2, random_state=args.seed + 1)
        floor = np.sqrt(
            empirical_w2_squared(mixture.sample(N_W2, random_state=args.seed + 2), X_test)
        )
        for method, fit in fits.items():
            start = time.perf_counter()
            model = fit(X)
            seconds = time.perf_counter() - start
            rows.append(
                row(name, method, _sample(model, N_SAMPLES), seconds, X_test, floor, mixture)
            )
            print(" | ".join(rows[-1]), flush=True)
        S = mixture.sample(N_SAMPLES, random_state=args.seed + 3)
        rows.append(row(name, "data", S, None, X_test, floor, mixture))
        print(" | ".join(rows[-1]), flush=True)

    base = SJKOGenerator()
    text = "\n".join(
        [
            "# S-JKO: mode proportions on mixtures with unequal weights",
            "",
            f"Command: `{command('bench_sjko_modes.py')}` ({args.n_train} training rows, "
            f"seed {args.seed}; S-JKO {base.n_phases} phases x {base.max_iter} steps).",
            f"Machine: {machine()}.",
            "",
            markdown_table(header, rows),
        ]
    )
    write(args.out or ("sjko_modes_quick.md" if args.quick else "sjko_modes.md"), text)


if __name__ == "__main__":
    main()
