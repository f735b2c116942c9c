"""OT-CFM's minibatch pairing on worker threads against pairing in the
training thread, side by side in one run.

The default initialisation of ``QFlowTransport`` (``n_flips=0``: OT-CFM
alone, 2,000 steps of 256-row minibatches, each paired by an exact
assignment) on moons -> checkerboard, 2,000 + 2,000 rows, timed with the
pairings computed ahead on worker threads (the default) and in the training
thread as each minibatch is drawn (``_PAIRING_WORKERS = 0``), on 1 and 2
torch threads. The two must give the same flow bit for bit: the last column
checks it.

Usage::

    python benchmarks/bench_ot_cfm_pairing.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _maps import FORMER_DEFAULTS
from _report import command, machine, write

import skot._flow_matching as flow_matching
from skot import QFlowTransport
from skot.datasets import make_2d


def fit_seconds(X, Y, workers: int):
    flow_matching._PAIRING_WORKERS = workers
    start = time.perf_counter()
    model = QFlowTransport(n_flips=0, random_state=0, **FORMER_DEFAULTS).fit(X, Y)
    return time.perf_counter() - start, model.transform(X)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", default="ot_cfm_pairing.md")
    args = parser.parse_args(argv)
    X, Y = make_2d("moons", 2000, random_state=0), make_2d("checkerboard", 2000, random_state=1)
    default = flow_matching._PAIRING_WORKERS
    lines = [
        f"Command: `{command('bench_ot_cfm_pairing.py')}`",
        f"Machine: {machine()}; {default} pairing workers by default",
        "",
        "| torch threads | pairing in the training thread s | on workers s | speed-up "
        "| same flow |",
        "|---|---|---|---|---|",
    ]
    for threads in args.threads:
        torch.set_num_threads(threads)
        inline, plain = fit_seconds(X, Y, 0)
        ahead, mapped = fit_seconds(X, Y, default)
        same = "yes" if np.array_equal(plain, mapped) else "NO"
        lines.append(f"| {threads} | {inline:.1f} | {ahead:.1f} | {inline / ahead:.2f}x | {same} |")
        print(lines[-1], flush=True)
    flow_matching._PAIRING_WORKERS = default
    write(args.out, "\n".join(lines))


if __name__ == "__main__":
    main()
