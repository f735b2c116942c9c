"""Sample weights: their checks, weighted moments and weighted minibatches.

A weight says how many times a row counts. Every estimator trains on
minibatches drawn with replacement, so weights enter as the probability of
drawing a row: a row of integer weight k is then drawn exactly as often, in
law, as k copies of it would be, which is what a weight must mean. Weighted
losses on uniform minibatches match that in expectation where the loss is
a mean over rows, but not for OT-CFM: its minibatch OT pairing depends on
which rows a batch holds. OT-Flow weighs its losses instead, which fitted
strongly skewed weights better (docs/training.md). Rows of zero weight are
dropped before anything else, so they change nothing at all; and equal
weights are no weights, so an unweighted fit draws the same minibatches, bit
for bit, as before weights existed.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import _check_sample_weight

from ._validation import split_rows

__all__ = [
    "RowSampler",
    "check_sample_weight",
    "kish_effective_size",
    "positive_rows",
    "resample_by_weight",
    "rows_kept",
    "sample_weight_array",
    "split_weighted_rows",
    "stacked_weights",
    "weighted_mean_var",
]


def check_sample_weight(sample_weight, X: np.ndarray, name: str = "sample_weight"):
    """Validate ``sample_weight`` for the rows of X, then drop the rows of
    zero weight (:func:`positive_rows`).

    Returns ``(X, weights)``: the rows of X with a positive weight, and their
    weights as float64 (None when there are no weights, or all are equal).
    """
    return positive_rows(X, sample_weight_array(sample_weight, X, name), name)


def kish_effective_size(weights) -> float:
    """Kish's effective sample size of ``weights``: (sum w)^2 / sum w^2."""
    w = np.asarray(weights, dtype=np.float64)
    return float(w.sum() ** 2 / np.square(w).sum())


def sample_weight_array(sample_weight, X: np.ndarray, name: str = "sample_weight"):
    """``sample_weight`` checked as scikit-learn checks it, as float64 (None
    stays None).

    Raises
    ------
    ValueError
        Naming ``name``, when the weights are not one finite non-negative
        number per row of X.
    """
    if sample_weight is None:
        return None
    try:
        return _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True, copy=True
        )
    except ValueError as error:
        # scikit-learn's messages say "sample_weight" whatever the argument.
        raise ValueError(f"{name}: {error}") from None


def rows_kept(a, weights):
    """The rows of ``a`` (data or per-row labels) that :func:`positive_rows`
    keeps: those of positive weight (all of them without weights)."""
    return a if weights is None else a[weights > 0]


def positive_rows(X: np.ndarray, weights, name: str = "sample_weight"):
    """The rows of X of positive weight and their weights; the weights
    become None when they are all equal.

    Raises
    ------
    ValueError
        When fewer than 2 rows have a positive weight.
    """
    if weights is None:
        return X, None
    X, weights = rows_kept(X, weights), rows_kept(weights, weights)
    if len(weights) < 2:
        raise ValueError(
            f"{name} must give a positive weight to at least 2 rows; got {len(weights)}."
        )
    if np.all(weights == weights[0]):
        return X, None
    return X, weights


def weighted_mean_var(X: np.ndarray, weights) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and (biased) variance of the rows of X, weighted."""
    if weights is None:
        return X.mean(0), X.var(0)
    mean = np.average(X, axis=0, weights=weights)
    return mean, np.average(np.square(X - mean), axis=0, weights=weights)


def stacked_weights(*samples):
    """The weights of stacked samples, each a pair (rows, weights or None):
    1 for every row of an unweighted one; None when none is weighted."""
    if all(weights is None for _, weights in samples):
        return None
    return np.concatenate([np.ones(len(rows)) if w is None else w for rows, w in samples])


def resample_by_weight(rows, weights, rng):
    """As many rows as given, drawn with replacement in proportion to their
    weights (the rows themselves when there are none).

    Held-out rows pass through this once, so that every held-out criterion,
    an unweighted mean over rows, estimates the weighted one.
    """
    if weights is None:
        return rows
    return _take(rows, rng.choice(len(rows), size=len(rows), p=weights / weights.sum()))


def split_weighted_rows(a, weights, fraction: float, rng):
    """:func:`~skot._validation.split_rows` for weighted rows.

    Returns ``(held_out, train, train_weights)``: the held-out rows
    resampled by their weights (:func:`resample_by_weight`), the training
    rows and their weights. Without weights, the split is ``split_rows``'s,
    from the same draws.
    """
    if weights is None:
        held_out, train = split_rows(a, fraction, rng)
        return held_out, train, None
    held_out, train = split_rows(np.arange(len(a)), fraction, rng)
    held_out_rows = resample_by_weight(_take(a, held_out), weights[held_out], rng)
    return held_out_rows, _take(a, train), weights[train]


def _take(rows, index: np.ndarray):
    """The rows of an array or a tensor at the NumPy indices ``index``."""
    if isinstance(rows, torch.Tensor):
        index = torch.as_tensor(index, device=rows.device)
    return rows[index]


class RowSampler:
    """Draws minibatch row indices: uniformly, or in proportion to weights.

    Parameters
    ----------
    n_rows : int
    weights : ndarray of shape (n_rows,) or None
        Positive weights; None draws uniformly, with ``torch.randint``
        exactly as the unweighted code always did.
    device : torch.device
    """

    def __init__(self, n_rows: int, weights, device):
        self.n_rows, self.device = n_rows, device
        self.cdf = None
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if len(weights) != n_rows:
                raise ValueError(f"{len(weights)} weights for {n_rows} rows.")
            cdf = np.cumsum(weights / weights.sum())
            # Inverse-CDF draws: O(batch log n) a minibatch, where
            # torch.multinomial rebuilds its table of n rows every call.
            self.cdf = torch.as_tensor(cdf, dtype=torch.float64, device=device)

    def draw(self, batch_size: int, gen: torch.Generator) -> torch.Tensor:
        """``batch_size`` row indices drawn with replacement."""
        if self.cdf is None:
            return torch.randint(self.n_rows, (batch_size,), generator=gen, device=self.device)
        u = torch.rand(batch_size, generator=gen, device=self.device, dtype=torch.float64)
        u = u * self.cdf[-1]  # the cumulative sum ends at 1 up to rounding
        return torch.searchsorted(self.cdf, u, right=True).clamp_(max=self.n_rows - 1)
