"""skot's OT-CFM initialisation beside torchcfm's exact-OT conditional flow
matcher, at the same network and the same budget, in one run.

On Gaussian pairs with a closed-form OT map (``make_gaussian_ot``) in
several dimensions:

- ``skot OT-CFM``: ``QFlowTransport(n_flips=0)``, the initialisation alone
  (minibatch exact OT pairing by SciPy's assignment, pairs drawn ahead on
  worker threads, cosine learning-rate decay), on a fixed schedule that
  both libraries can run: 2000 steps at the peak rate 1e-3 and no moving
  average of the parameters, which torchcfm has not (the defaults before
  ``init_max_iter="auto"``, ``FORMER_DEFAULTS`` of ``_maps.py``);
- ``torchcfm ExactOT-CFM``: torchcfm's ``ExactOptimalTransportConditionalFlowMatcher``
  (``sigma=0``; its plan is POT's exact EMD, and pairs are sampled from it)
  training the same velocity network (skot's ``TimeMLP``, the default
  ``hidden_layer_sizes`` and activation) on the same normalised rows, for
  the same steps, batch and Adam rate, once with the same cosine decay and
  once at a constant rate (torchcfm's own examples); its map is integrated
  with torchdiffeq's RK4 at the step skot's ``transform`` takes
  (``n_intervals x n_substeps`` steps on [0, 1]).

Columns: L2-UVP (%) against the true map on held-out rows, transport cost
E|T(x) - x|^2 against the exact W2^2, and fit seconds (ratios between rows
are what to read: absolute times drift on shared machines).

Usage::

    pip install -e ".[bench]"
    python benchmarks/bench_flow_matching_peers.py
    python benchmarks/bench_flow_matching_peers.py --quick

The torchcfm rows are skipped when torchcfm is not installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np
import torch
from _maps import FORMER_DEFAULTS
from _report import RESULTS, command, machine, markdown_table, write

from skot import QFlowTransport
from skot._nets import TimeMLP
from skot.datasets import make_gaussian_ot
from skot.metrics import l2_uvp


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


class TorchCFMMap:
    """A velocity field trained by torchcfm's exact-OT matcher, as a map."""

    def __init__(self, defaults: QFlowTransport, cosine: bool, seed: int):
        self.p, self.cosine, self.seed = defaults, cosine, seed

    def fit(self, X, Y):
        from torchcfm.conditional_flow_matching import (
            ExactOptimalTransportConditionalFlowMatcher,
        )

        p = self.p
        torch.manual_seed(self.seed)  # torchcfm draws its times and pairs globally
        gen = torch.Generator().manual_seed(self.seed)
        # skot's normalisation: one centre and one scalar for both samples.
        self.center = 0.5 * (X.mean(0) + Y.mean(0))
        self.scale = float(np.sqrt(0.5 * (X.var(0).sum() + Y.var(0).sum()) / X.shape[1]))
        Xn = torch.as_tensor((X - self.center) / self.scale, dtype=torch.float32)
        Yn = torch.as_tensor((Y - self.center) / self.scale, dtype=torch.float32)
        d = X.shape[1]
        self.net = TimeMLP(d, d, tuple(p.hidden_layer_sizes), p.activation)
        opt = torch.optim.Adam(self.net.parameters(), lr=p.init_learning_rate_init)
        schedule = (
            torch.optim.lr_scheduler.CosineAnnealingLR(opt, p.init_max_iter)
            if self.cosine
            else None
        )
        matcher = ExactOptimalTransportConditionalFlowMatcher(sigma=0.0)
        batch = min(p.init_batch_size, len(Xn), len(Yn))
        for _ in range(p.init_max_iter):
            x0 = Xn[torch.randint(len(Xn), (batch,), generator=gen)]
            x1 = Yn[torch.randint(len(Yn), (batch,), generator=gen)]
            t, xt, ut = matcher.sample_location_and_conditional_flow(x0, x1)
            loss = (self.net(xt, t[:, None]) - ut).square().sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if schedule is not None:
                schedule.step()
        return self

    def transform(self, X):
        from torchdiffeq import odeint

        p = self.p
        x = torch.as_tensor((X - self.center) / self.scale, dtype=torch.float32)

        def field(t, z):
            return self.net(z, t.expand(len(z), 1))

        step = 1.0 / (p.n_intervals * p.n_substeps)
        with torch.no_grad():
            end = odeint(
                field, x, torch.tensor([0.0, 1.0]), method="rk4", options={"step_size": step}
            )[-1]
        return end.double().numpy() * self.scale + self.center


def _skot_ot_cfm(**params):
    """skot's initialisation alone on the schedule both libraries run."""
    return QFlowTransport(n_flips=0, **FORMER_DEFAULTS, **params)


def rows_for(d, n, n_test, seed):
    X, Y, problem = make_gaussian_ot(n, d, random_state=seed)
    X_test = problem.sample_p(n_test, random_state=seed + 1)
    truth = (problem.transport(X_test), problem.target_variance)
    defaults = _skot_ot_cfm(random_state=seed)
    methods = {"skot OT-CFM (QFlowTransport(n_flips=0))": defaults}
    if importlib.util.find_spec("torchcfm") is None:
        print("torchcfm is not installed: skipping its rows (pip install -e '.[bench]').")
    else:
        methods["torchcfm ExactOT-CFM, same cosine decay"] = TorchCFMMap(defaults, True, seed)
        methods["torchcfm ExactOT-CFM, constant rate"] = TorchCFMMap(defaults, False, seed)
    rows = []
    for name, est in methods.items():
        _, seconds = _timed(lambda est=est: est.fit(X, Y))
        mapped = est.transform(X_test)
        cost = float(((mapped - X_test) ** 2).sum(1).mean())
        rows.append(
            dict(
                problem=f"Gaussian d={d}",
                method=name,
                l2_uvp=l2_uvp(mapped, *truth),
                cost_ratio=cost / problem.w2_squared,
                fit_s=seconds,
            )
        )
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    return rows


def table(rows):
    return markdown_table(
        ["problem", "method", "L2-UVP %", "cost / W2^2", "fit s"],
        [
            [
                r["problem"],
                r["method"],
                f"{r['l2_uvp']:.3f}",
                f"{r['cost_ratio']:.3f}",
                f"{r['fit_s']:.1f}",
            ]
            for r in rows
        ],
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 16, 64])
    parser.add_argument("--n-train", type=int, default=2**14)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="d in {2, 16}, 4000 rows")
    parser.add_argument("--out", default=str(RESULTS / "flow_matching_peers.md"))
    args = parser.parse_args()
    if args.quick:
        args.dims, args.n_train, args.n_test = [2, 16], 4000, 2000
    torch.set_num_threads(args.threads)
    rows = []
    for d in args.dims:
        rows += rows_for(d, args.n_train, args.n_test, args.seed)
    out = table(rows)
    print(out)
    default = _skot_ot_cfm()
    header = (
        "# Flow matching: skot's OT-CFM initialisation beside torchcfm\n\n"
        f"Command: `{command('bench_flow_matching_peers.py')}` ({args.n_train} training rows, "
        f"{args.n_test} held-out rows; every row trains the same "
        f"{default.hidden_layer_sizes} {default.activation} velocity network for "
        f"{default.init_max_iter} Adam steps of batch {default.init_batch_size} at "
        f"{default.init_learning_rate_init}).\n"
        f"Machine: {machine()}.\n\n"
    )
    write(args.out, header + out)


if __name__ == "__main__":
    main()
