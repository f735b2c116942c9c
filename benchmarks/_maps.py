"""What the map benchmarks share: a timer and POT's transports behind the
``transform`` / ``transport_cost`` of a fitted :class:`~skot.QFlowTransport`."""

from __future__ import annotations

import time


def timed(fn):
    """``(fn(), seconds it took)``."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


class PotMap:
    """A fitted ``ot.da`` transport, mapping new rows out of sample."""

    def __init__(self, est):
        self.est = est

    def transform(self, X):
        return self.est.transform(Xs=X)

    def transport_cost(self, X):
        return ((self.transform(X) - X) ** 2).sum(1)
