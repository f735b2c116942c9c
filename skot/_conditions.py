"""Class conditions of a conditional transport.

A conditional flow carries the mass of each class of P to the same class of
Q with one network. Each row carries its class as ``n_conditions`` trailing
one-hot columns, which the flow's velocity reads and never moves, so every
stage that integrates, pairs or classifies rows works on these augmented
rows unchanged. What differs is the minibatches: :class:`StratifiedRowSampler`
draws the same number of rows of each class from P and from Q, so that
OT-CFM can pair rows within their class and the refinement's classifiers see
the same class shares on both sides.
"""

from __future__ import annotations

import numpy as np
import torch

from ._weights import RowSampler

__all__ = [
    "StratifiedRowSampler",
    "check_condition",
    "class_counts",
    "condition_codes",
    "encode_conditions",
    "matched_rows",
    "minibatch_samplers",
    "predict_codes",
    "with_one_hot",
]


def check_condition(condition, n_rows: int, name: str) -> np.ndarray:
    """``condition`` as a 1-D array of labels, one per row, none missing."""
    labels = np.asarray(condition)
    if labels.ndim == 2 and labels.shape[1] == 1:  # a column vector of labels
        labels = labels[:, 0]
    if labels.ndim != 1 or len(labels) != n_rows:
        raise ValueError(
            f"{name} must be a 1-D array of labels with one entry per row ({n_rows}); "
            f"got shape {labels.shape}."
        )
    if labels.dtype.kind == "f" and not np.all(np.isfinite(labels)):
        raise ValueError(f"{name} holds NaN or infinite labels.")
    if labels.dtype.kind == "O" and any(label is None for label in labels):
        raise ValueError(f"{name} holds missing labels (None).")
    return labels


def encode_conditions(condition_x: np.ndarray, condition_y: np.ndarray, names=("X", "y")):
    """The sorted classes and the integer codes of the rows of P and of Q.

    Raises
    ------
    ValueError
        When a class has rows on one side only: its mass would have nowhere
        to go, or nothing to come from.
    """
    classes = np.unique(np.concatenate([condition_x, condition_y]))
    codes_x = np.searchsorted(classes, condition_x)
    codes_y = np.searchsorted(classes, condition_y)
    for side, codes, other in ((names[0], codes_x, names[1]), (names[1], codes_y, names[0])):
        missing = np.setdiff1d(np.arange(len(classes)), codes)
        if len(missing):
            raise ValueError(
                f"Class {classes[missing[0]].tolist()!r} has rows in {other} but none in {side}: a "
                "conditional transport needs every class on both sides."
            )
    return classes, codes_x, codes_y


def predict_codes(condition, classes: np.ndarray, n_rows: int, name="condition") -> np.ndarray:
    """The codes of the labels of new rows, each one of the fitted classes."""
    labels = check_condition(condition, n_rows, name)
    codes = np.searchsorted(classes, labels).clip(max=len(classes) - 1)
    unknown = classes[codes] != labels
    if np.any(unknown):
        raise ValueError(
            f"{name} holds labels the fit did not see: {np.unique(labels[unknown])[:5].tolist()}; "
            f"the fitted classes are {classes.tolist()}."
        )
    return codes


def with_one_hot(Z, codes, n_conditions: int):
    """The rows of ``Z`` (array or tensor) with their classes' one-hot columns.

    A tensor of trajectories, ``[n, n_nodes, d]``, gets the same columns at
    every node.
    """
    if isinstance(Z, torch.Tensor):
        codes = torch.as_tensor(codes, device=Z.device)
        one_hot = torch.nn.functional.one_hot(codes, n_conditions).to(Z.dtype)
        if Z.dim() == 3:
            one_hot = one_hot[:, None, :].expand(-1, Z.shape[1], -1)
        return torch.cat([Z, one_hot], dim=-1)
    return np.hstack([Z, np.eye(n_conditions, dtype=Z.dtype)[codes]])


def condition_codes(Z: torch.Tensor, n_conditions: int) -> torch.Tensor:
    """The class codes of augmented rows, read off their one-hot columns."""
    return Z[:, -n_conditions:].argmax(1)


def class_counts(batch_size: int, shares: np.ndarray) -> list[int]:
    """Rows of each class in a minibatch of ``batch_size``: proportional to
    ``shares`` (largest remainders), at least one each."""
    n = len(shares)
    if batch_size < n:
        raise ValueError(
            f"A minibatch of {batch_size} rows cannot hold one row of each of {n} classes; "
            "raise batch_size."
        )
    exact = batch_size * np.asarray(shares, dtype=np.float64) / np.sum(shares)
    counts = np.floor(exact).astype(int)
    counts[np.argsort(counts - exact)[: batch_size - counts.sum()]] += 1
    # A class too rare for its share to round to a row still gets one,
    # taken from the largest class.
    for c in np.flatnonzero(counts == 0):
        counts[np.argmax(counts)] -= 1
        counts[c] = 1
    return [int(c) for c in counts]


class StratifiedRowSampler:
    """Draws minibatch row indices class by class: ``counts[c]`` rows of
    class ``c``, in proportion to their weights within the class.

    The classes are interleaved in a fixed order that depends on the counts
    alone, so two samplers with the same counts give minibatches whose i-th
    rows are of the same class (the linear bridge mixes such pairs), and
    whose every stretch holds the classes in about their shares (the flow
    bridge takes half its rows from each sample).
    """

    def __init__(self, codes: np.ndarray, weights, counts: list[int], device):
        self.counts = counts
        self.batch_size = sum(counts)
        # Row j of class c sits at (j + 1/2) / counts[c] of the way through.
        spread = np.concatenate([(np.arange(n) + 0.5) / n for n in counts])
        self.order = torch.as_tensor(np.argsort(spread, kind="stable"), device=device)
        self.blocks = []
        for c in range(len(counts)):
            rows = np.flatnonzero(codes == c)
            if not len(rows):
                raise ValueError(
                    f"No training rows of the class of code {c} are left (the held-out "
                    "split of early_stopping may have taken them all): give it more rows."
                )
            w = None if weights is None else np.asarray(weights)[rows]
            sampler = RowSampler(len(rows), w, device)
            self.blocks.append((torch.as_tensor(rows, device=device), sampler))

    def draw(self, batch_size: int, gen: torch.Generator) -> torch.Tensor:
        """``batch_size`` (the sum of the counts) row indices, with replacement."""
        if batch_size != self.batch_size:
            raise ValueError(f"This sampler draws {self.batch_size} rows, not {batch_size}.")
        drawn = [rows[sampler.draw(n, gen)] for (rows, sampler), n in zip(self.blocks, self.counts)]
        return torch.cat(drawn)[self.order]


def minibatch_samplers(samples, weights, n_conditions: int, batch_size: int):
    """The row samplers of P's and Q's rows, and the minibatch size they draw.

    Without conditions, :class:`RowSampler` s. With ``n_conditions``
    trailing one-hot columns, :class:`StratifiedRowSampler` s drawing the
    classes in their (weighted) shares among P's rows on both sides.
    """
    if not n_conditions:
        samplers = tuple(RowSampler(len(Z), w, Z.device) for Z, w in zip(samples, weights))
        return samplers, batch_size
    codes = [condition_codes(Z, n_conditions).cpu().numpy() for Z in samples]
    shares = np.bincount(codes[0], weights=weights[0], minlength=n_conditions)
    counts = class_counts(batch_size, shares)
    samplers = tuple(
        StratifiedRowSampler(c, w, counts, Z.device) for Z, c, w in zip(samples, codes, weights)
    )
    return samplers, sum(counts)


def matched_rows(X: torch.Tensor, Y: torch.Tensor, n_conditions: int):
    """Rows of X and Y with as many of each class on both sides (the first
    ones of each), so that an assignment within classes exists."""
    if not n_conditions:
        m = min(len(X), len(Y))
        return X[:m], Y[:m]
    codes_x, codes_y = condition_codes(X, n_conditions), condition_codes(Y, n_conditions)
    keep_x, keep_y = [], []
    for c in range(n_conditions):
        rows_x = torch.nonzero(codes_x == c).flatten()
        rows_y = torch.nonzero(codes_y == c).flatten()
        m = min(len(rows_x), len(rows_y))
        keep_x.append(rows_x[:m])
        keep_y.append(rows_y[:m])
    return X[torch.cat(keep_x)], Y[torch.cat(keep_y)]
