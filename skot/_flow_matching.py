r"""The initial flows of Q-flow: conditional flow matching with minibatch
exact OT pairing (OT-CFM), and the distillation of a flow joined through
N(0, I).

OT-CFM draws a minibatch from P and one from Q, pairs them by the exact OT
assignment within the batch, and regresses the velocity field on the
straight-line displacement between the pairs:

.. math::
    \min_\theta \mathbb{E}\,\|f(x_t, t; \theta) - (x_1 - x_0)\|^2,\quad
    x_t = (1 - t)\,x_0 + t\,x_1 + \sigma\varepsilon.

References
----------
Tong et al., "Improving and generalizing flow-based generative models with
minibatch optimal transport", TMLR 2024.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import torch

from ._conditions import matched_rows, minibatch_samplers
from ._device import usable_cores
from ._engine import TrainingRecord, train_network
from ._ode import integrate
from ._ot import ot_pair
from ._weights import RowSampler

__all__ = ["FlowMatchingConfig", "cfm_loss", "distil_joined_flow", "train_field", "train_ot_cfm"]

_HINT = "Try a smaller init_learning_rate_init."
_PAIRED_AHEAD = 16  # minibatches drawn and paired ahead of the step that uses them
# With a pairing pool (FlowMatchingConfig.pairing_size), steps draw from one
# pool of OT pairs until they have drawn this many times its rows; then a new
# pool is drawn and paired. Exact assignment costs about n^2.5: a pool of
# 1024 rows takes 0.20 s against 6.8 ms for 256 (d=8, 1 thread), so serving
# each pool for 8 times its rows keeps the pairing's cost per row drawn (25
# against 27 us) that of minibatches of 256 paired alone. Served for 4 times its rows, at
# twice that cost, pools of 1024 fitted two maps at d=8 a little better
# (L2-UVP 1.99 against 2.07, 0.28 against 0.30); for 16 times, a mixture's
# map worse (0.41) (docs/qflow.md, "Pairing pools").
_POOL_PASSES = 8
# Threads pairing them; 0 pairs each minibatch in the training thread when it
# is drawn, as a plain loop does (benchmarks/bench_ot_cfm_pairing.py).
_PAIRING_WORKERS = min(4, usable_cores())


@dataclass(frozen=True)
class FlowMatchingConfig:
    """Settings of the initial flow's training (QFlowTransport's ``init_*``).

    ``tol`` and ``n_iter_no_change`` act only when a held-out split is
    given: the noisy minibatch loss stalls while the cosine rate is still
    high, and stopping there cut the annealing short (L2-UVP 0.210 against
    0.191 for the full schedule, Gaussians in d=2).
    """

    max_iter: int
    batch_size: int
    learning_rate_init: float
    sigma: float = 0.0
    ema_decay: float = 0.0
    tol: float = 1e-4
    n_iter_no_change: int = 10
    verbose: int = 0
    # Trailing one-hot class columns of the rows (skot._conditions): rows
    # are then drawn class by class and paired within their class.
    n_conditions: int = 0
    # Rows of each side matched by one exact OT problem, from which the
    # minibatches are drawn (_POOL_PASSES); None pairs each minibatch alone.
    pairing_size: int | None = None


def cfm_loss(velocity, x0, x1, t, noise, sigma) -> torch.Tensor:
    """Mean squared error of ``velocity`` against the displacement ``x1 - x0``
    at the interpolants ``(1 - t) x0 + t x1 + sigma * noise``."""
    xt = (1 - t) * x0 + t * x1 + sigma * noise
    return (velocity(xt, t) - (x1 - x0)).square().sum(1).mean()


def train_ot_cfm(
    velocity: torch.nn.Module,
    X: torch.Tensor,
    Y: torch.Tensor,
    config: FlowMatchingConfig,
    gen: torch.Generator,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    weights: tuple = (None, None),
) -> TrainingRecord:
    """Train ``velocity`` in place by OT-CFM from the rows of X to those of Y.

    ``weights`` are the sample weights of the rows of X and of Y (None:
    equal): minibatches draw rows in proportion to them. With
    ``validation = (X_val, Y_val)``, the loss on fixed OT-paired held-out
    rows is the held-out score (negated), and the best-scoring field is
    kept.
    """
    dev = X.device
    batch_size = min(config.batch_size, len(X), len(Y))
    validate = None
    if validation is not None:
        X_val, Y_val = matched_rows(*validation, config.n_conditions)
        m = len(X_val)
        fixed = (
            X_val,
            ot_pair(X_val, Y_val, config.n_conditions),
            torch.rand(m, 1, generator=gen, device=dev),
            torch.randn(m, X.shape[1], generator=gen, device=dev),
        )

        def validate():
            with torch.no_grad():
                return -cfm_loss(velocity, *fixed, config.sigma).item()

    samplers, batch_size = minibatch_samplers((X, Y), weights, config.n_conditions, batch_size)
    pool = None
    if config.pairing_size is not None:
        pool = _pairing_pool(X, Y, weights, config.n_conditions, config.pairing_size, batch_size)
    minibatches = _PairedMinibatches(
        X, Y, samplers, batch_size, config.max_iter, gen, config.n_conditions, pool
    )

    def loss():
        x0, x1, t, noise = minibatches.next()
        return {"loss": cfm_loss(velocity, x0, x1, t, noise, config.sigma)}

    # Cosine decay to zero: the regression target is noisy (random pairs and
    # times), and a constant rate leaves the field jittering around its
    # optimum, which shows up as a wiggly map.
    try:
        return train_field(velocity, loss, config, "flow-matching", "OT-CFM init", validate)
    finally:
        minibatches.close()


def train_field(velocity, loss, config: FlowMatchingConfig, name: str, desc: str, validate=None):
    """Train ``velocity`` on the minibatch ``loss`` under the initialisation's
    settings ``config`` (steps, rate, moving average, held-out stopping)."""
    return train_network(
        velocity,
        loss,
        max_iter=config.max_iter,
        learning_rate_init=config.learning_rate_init,
        name=name,
        hint=_HINT,
        desc=desc,
        validate=validate,
        tol=config.tol,
        n_iter_no_change=config.n_iter_no_change,
        verbose=config.verbose,
        ema_decay=config.ema_decay,
    )


def _pairing_pool(X, Y, weights, n_conditions: int, size: int, batch_size: int):
    """``(samplers, size, steps)`` of pools of ``size`` rows a side (fewer
    when a sample is smaller; rounded to the class counts), each serving
    ``steps`` minibatches of ``batch_size``: until 8 times its rows are drawn."""
    size = min(size, len(X), len(Y))
    samplers, size = minibatch_samplers((X, Y), weights, n_conditions, size)
    return samplers, size, max(1, round(_POOL_PASSES * size / batch_size))


class _PairedMinibatches:
    """The minibatches of OT-CFM, each step's paired by exact OT ahead of use.

    The exact assignment of a minibatch costs several times the network's
    step, and SciPy's solver releases the GIL: the minibatches of the next
    steps are drawn ahead and paired on worker threads while the network
    trains. They are drawn in the order a plain loop draws them (rows of X,
    rows of Y, times, noise, step after step), and :meth:`close` leaves the
    generator where a plain loop that stopped at the same step would, so
    training, and everything drawn after it, is the same as without the
    look-ahead.

    With ``pool = (samplers, size, steps)``, rows are instead drawn and
    paired ``size`` at a time, once every ``steps`` steps (the pool's rows of
    X, then of Y), and each step draws its minibatch from that pool's pairs
    (row numbers within the pool, then times and noise). A larger OT problem
    pairs a row in a tail against more candidates than a small minibatch
    holds; the minibatch, and so the network's step, stays as small. With
    classes, the pool is drawn class by class and paired within classes,
    and the steps draw from its pairs without stratifying them.
    """

    def __init__(
        self,
        X,
        Y,
        samplers,
        batch_size: int,
        n_steps: int,
        gen: torch.Generator,
        n_conditions=0,
        pool=None,
    ):
        self.X, self.Y, self.batch_size, self.gen = X, Y, batch_size, gen
        self.n_conditions = n_conditions
        self.samplers = samplers  # the RowSampler of X's rows and of Y's
        self.pool = pool
        self.pool_steps_left = 0
        self.current = None  # with a pool: its rows of X and their pairing
        self.remaining = n_steps
        self.ahead: deque = deque()
        # Far enough ahead that the next pool is paired while the current
        # one serves its steps.
        self.look_ahead = _PAIRED_AHEAD + (pool[2] if pool else 0)
        self.state = gen.get_state()  # the generator after the last step handed out
        self.pool_threads = (
            ThreadPoolExecutor(max_workers=_PAIRING_WORKERS) if _PAIRING_WORKERS else None
        )

    def _paired(self, x0, y) -> Future:
        if self.pool_threads is not None:
            return self.pool_threads.submit(ot_pair, x0, y, self.n_conditions)
        pairing = Future()
        pairing.set_result(ot_pair(x0, y, self.n_conditions))
        return pairing

    def _draw(self):
        X, Y, b, gen, dev = self.X, self.Y, self.batch_size, self.gen, self.X.device
        if self.pool is None:
            x0 = X[self.samplers[0].draw(b, gen)]
            y = Y[self.samplers[1].draw(b, gen)]
            pairs = (x0, self._paired(x0, y), None)
        else:
            samplers, size, steps = self.pool
            if not self.pool_steps_left:
                x0 = X[samplers[0].draw(size, gen)]
                self.current = (x0, self._paired(x0, Y[samplers[1].draw(size, gen)]))
                self.pool_steps_left = steps
            self.pool_steps_left -= 1
            pairs = (*self.current, torch.randint(size, (b,), generator=gen, device=dev))
        t = torch.rand(b, 1, generator=gen, device=dev)
        noise = torch.randn(b, X.shape[1], generator=gen, device=dev)
        self.ahead.append((pairs, t, noise, gen.get_state()))
        self.remaining -= 1

    def next(self):
        """``(x0, x1, t, noise)`` of the next step, x1 paired with x0."""
        while self.remaining and len(self.ahead) < self.look_ahead:
            self._draw()
        (x0, pairing, rows), t, noise, self.state = self.ahead.popleft()
        x1 = pairing.result()
        if rows is not None:
            x0, x1 = x0[rows], x1[rows]
        return x0, x1, t, noise

    def close(self) -> None:
        """Stop the workers and put the generator back after the last step used."""
        if self.pool_threads is not None:
            self.pool_threads.shutdown(wait=True, cancel_futures=True)
        self.gen.set_state(self.state)


def distil_joined_flow(
    velocity: torch.nn.Module,
    to_gaussian,
    X: torch.Tensor,
    config: FlowMatchingConfig,
    gen: torch.Generator,
    *,
    n_steps: int,
    weights=None,
) -> TrainingRecord:
    """Train ``velocity`` in place to reproduce the flow P -> N(0, I) -> Q.

    ``to_gaussian = (Phi_P, Phi_Q)`` are two OT-Flow potentials, each
    carrying its data to N(0, I) on [0, 1] with velocity ``-grad_x Phi``.
    Joined and run twice as fast, Phi_P's flow covers [0, 1/2] and Phi_Q's,
    backwards, [1/2, 1]. The rows of ``X`` are integrated through both halves
    (``n_steps`` RK4 steps each) and ``velocity`` is regressed on the joined
    flow's velocity at the nodes; at t = 1/2 both one-sided velocities are
    targets. Minibatches draw the rows of X in proportion to ``weights``
    (None: equally).
    """
    dev = X.device
    d = X.shape[1]
    phi_p, phi_q = to_gaussian

    def first_half(z, t):
        return -2.0 * phi_p.gradient(z, 2.0 * t)[:, :d]

    def second_half(z, t):
        return 2.0 * phi_q.gradient(z, 2.0 - 2.0 * t)[:, :d]

    points, targets, times = [], [], []
    with torch.no_grad():
        start = X
        for field, grid in (
            (first_half, torch.linspace(0.0, 0.5, n_steps + 1, device=dev)),
            (second_half, torch.linspace(0.5, 1.0, n_steps + 1, device=dev)),
        ):
            states = integrate(field, start, grid, n_substeps=1)
            for z, t in zip(states, grid, strict=True):
                points.append(z)
                targets.append(field(z, t))
                times.append(t)
            start = states[-1]
    points, targets = torch.stack(points), torch.stack(targets)  # [n_nodes, n, d]
    times = torch.stack(times)

    n_nodes, n = points.shape[:2]
    batch_size = min(config.batch_size, n * n_nodes)
    rows = RowSampler(n, weights, dev)

    def loss():
        node = torch.randint(n_nodes, (batch_size,), generator=gen, device=dev)
        row = rows.draw(batch_size, gen)
        pred = velocity(points[node, row], times[node].unsqueeze(1))
        return {"loss": (pred - targets[node, row]).square().sum(1).mean()}

    return train_network(
        velocity,
        loss,
        max_iter=config.max_iter,
        learning_rate_init=config.learning_rate_init,
        name="distillation",
        hint=_HINT,
        desc="OT-Flow init distillation",
        verbose=config.verbose,
    )
