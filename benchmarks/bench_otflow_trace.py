"""Cost of the gradient plus Laplacian of OT-Flow's potential as d grows.

Three ways to get grad_x Phi and the trace of its Hessian for a batch, on the
same potential (width 128, two layers as the authors' default):

- ``closed form``: skot's one forward and one backward sweep, exact, O(m^2 d);
- ``autograd exact``: autograd gradient, then one more backward pass per
  coordinate for the diagonal of the Hessian (exact, d passes);
- ``Hutchinson x1``: autograd gradient and one vector-Hessian product with a
  Rademacher probe (unbiased, not exact).

A fourth column times the one matrix product that the closed form cannot
avoid: ``[n min(d, m), m] @ [m, m]``, the m^2 min(d, m) multiply-adds per
sample of the residual layer's Laplacian term. It is the floor for any exact
trace of this network on the machine; one Hutchinson probe needs only
O(m^2 + md) per sample, so "closed / Hutchinson" cannot drop below
"floor / Hutchinson".

Every method is also checked against the closed form (relative error of the
Laplacian; Hutchinson's is its noise). Columns are microseconds per sample and
the ratios that the issue's goals name.

Usage::

    python benchmarks/bench_otflow_trace.py            # d = 2 ... 1024
    python benchmarks/bench_otflow_trace.py --quick
"""

from __future__ import annotations

import argparse
import time

import torch
from _report import RESULTS, command, machine, write

from skot._device import build_module
from skot._potential import OTPotential


def closed_form(phi, x, t):
    return phi.gradient_and_laplacian(x, t)


def autograd_exact(phi, x, t):
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(phi(x, t).sum(), x, create_graph=True)
    lap = torch.zeros(len(x), dtype=x.dtype)
    for i in range(x.shape[1]):
        lap = lap + torch.autograd.grad(grad[:, i].sum(), x, retain_graph=True)[0][:, i]
    return grad.detach(), lap.detach()


def hutchinson(phi, x, t, gen):
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(phi(x, t).sum(), x, create_graph=True)
    probe = torch.randint(0, 2, x.shape, generator=gen, dtype=x.dtype).mul_(2).sub_(1)
    (hvp,) = torch.autograd.grad((grad * probe).sum(), x)
    return grad.detach(), (hvp * probe).sum(1)


def gemm_floor(d, width, n, gen):
    """The product the closed form's residual term is made of, alone."""
    a = torch.randn(n * min(d, width), width, generator=gen)
    k = torch.randn(width, width, generator=gen)
    return lambda: a @ k


def _time(fn, repeats):
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def row(d, width, n, repeats, seed=0):
    gen = torch.Generator().manual_seed(seed)
    phi = build_module(lambda: OTPotential(d, width, 2), torch.device("cpu"), gen)
    phi.requires_grad_(False)
    x = torch.randn(n, d, generator=gen)
    t = 0.5
    _, lap = closed_form(phi, x, t)
    _, lap_ad = autograd_exact(phi, x, t)
    _, lap_h = hutchinson(phi, x, t, gen)
    # The autograd loop costs d passes: time fewer repeats at large d.
    ad_repeats = max(1, repeats // max(1, d // 64))
    seconds = {
        "closed": _time(lambda: closed_form(phi, x, t), repeats),
        "autograd": _time(lambda: autograd_exact(phi, x, t), ad_repeats),
        "hutchinson": _time(lambda: hutchinson(phi, x, t, gen), repeats),
        "floor": _time(gemm_floor(d, width, n, gen), repeats),
    }
    per_sample = {k: 1e6 * v / n for k, v in seconds.items()}
    return {
        "d": d,
        **per_sample,
        "speedup_autograd": seconds["autograd"] / seconds["closed"],
        "vs_hutchinson": seconds["closed"] / seconds["hutchinson"],
        "vs_floor": seconds["closed"] / seconds["floor"],
        "floor_vs_hutchinson": seconds["floor"] / seconds["hutchinson"],
        "err_autograd": ((lap_ad - lap).norm() / lap.norm()).item(),
        "err_hutchinson": ((lap_h - lap).norm() / lap.norm()).item(),
    }


def table(rows):
    lines = [
        "| d | closed form µs | autograd exact µs | Hutchinson x1 µs | GEMM floor µs | "
        "autograd / closed | closed / Hutchinson | closed / floor | floor / Hutchinson | "
        "rel. err. autograd | rel. err. Hutchinson |",
        "|" + "---|" * 11,
    ]
    for r in rows:
        lines.append(
            f"| {r['d']} | {r['closed']:.2f} | {r['autograd']:.2f} | {r['hutchinson']:.2f} | "
            f"{r['floor']:.2f} | {r['speedup_autograd']:.1f}x | {r['vs_hutchinson']:.2f}x | "
            f"{r['vs_floor']:.2f}x | {r['floor_vs_hutchinson']:.2f}x | "
            f"{r['err_autograd']:.1e} | {r['err_hutchinson']:.2f} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 8, 32, 64, 128, 256, 512, 1024])
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(RESULTS / "otflow_trace.md"))
    args = parser.parse_args()
    if args.quick:
        args.dims, args.repeats = [2, 64, 256], 2

    rows = []
    for d in args.dims:
        rows.append(row(d, args.width, args.batch, args.repeats))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    out = table(rows)
    print(out)
    header = (
        "# Gradient + Laplacian of the OT-Flow potential\n\n"
        f"Command: `{command('bench_otflow_trace.py')}` "
        f"(width {args.width}, 2 layers, batch {args.batch}, float32, best of "
        f"{args.repeats}).\n"
        f"Machine: {machine()}.\n\n"
        "Microseconds per sample. rel. err.: relative error of the Laplacian against "
        "the closed form (float32 round-off for autograd; probe noise for Hutchinson). "
        "GEMM floor: the one product `[n min(d, m), m] @ [m, m]` that the closed form "
        "is made of, timed alone.\n\n"
    )
    write(args.out, header + out)


if __name__ == "__main__":
    main()
