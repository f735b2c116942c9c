"""What the map benchmarks share: a timer, Q-flow's initial flow and its
refinement from one fit, and POT's transports behind the ``transform`` /
``transport_cost`` of a fitted :class:`~skot.QFlowTransport`."""

from __future__ import annotations

import copy
import time

from skot import QFlowTransport


def timed(fn):
    """``(fn(), seconds it took)``."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def init_then_refine(X, Y, seed, **params):
    """``[(name, model, seconds)]`` for the OT-CFM initialisation alone
    (``n_flips=0``) and the same flow refined from it by the default
    refinement (``warm_start``); the refined row's time is the sum."""
    init, t_init = timed(lambda: QFlowTransport(n_flips=0, random_state=seed, **params).fit(X, Y))
    flips = QFlowTransport().n_flips
    refined = copy.deepcopy(init).set_params(n_flips=flips, warm_start=True)
    refined, t_refine = timed(lambda: refined.fit(X, Y))
    return [("OT-CFM (init alone)", init, t_init), ("QFlowTransport", refined, t_init + t_refine)]


class PotMap:
    """A fitted ``ot.da`` transport, mapping new rows out of sample."""

    def __init__(self, est):
        self.est = est

    def transform(self, X):
        return self.est.transform(Xs=X)

    def transport_cost(self, X):
        return ((self.transform(X) - X) ** 2).sum(1)
