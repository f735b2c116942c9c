"""The ``sample_domain`` convention of skada: which rows of a stacked X are
source rows and which are target rows.

One array X holds the rows of every domain. ``sample_domain`` gives each row
an integer: non-negative for a source domain, negative for a target domain.
Target rows carry the placeholder label -1 in ``y``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "UNLABELLED",
    "check_sample_domain",
    "domain_array",
    "source_rows",
    "split_by_domain",
]

UNLABELLED = -1  # skada's label for target rows, whose labels are unknown


def domain_array(sample_domain, n_samples: int) -> np.ndarray:
    """``sample_domain`` as an array, checked: 1-D, one integer per row."""
    domain = np.asarray(sample_domain)
    if domain.ndim != 1 or len(domain) != n_samples:
        raise ValueError(
            f"sample_domain must be a 1-D array with one entry per row of X "
            f"({n_samples}); got shape {domain.shape}."
        )
    integral = domain.dtype.kind in "iu" or (
        domain.dtype.kind == "f" and np.all(np.isfinite(domain) & (domain == np.round(domain)))
    )
    if not integral:
        raise ValueError(
            f"sample_domain must hold integers (>= 0 for source rows, < 0 for "
            f"target rows); got dtype {domain.dtype}."
        )
    return domain


def check_sample_domain(sample_domain, n_samples: int) -> np.ndarray:
    """Validated ``sample_domain`` as a boolean mask of the source rows.

    Raises
    ------
    ValueError
        Naming the problem, when ``sample_domain`` is not a 1-D integer
        array with one entry per row, or lacks two rows of either kind.
    """
    domain = domain_array(sample_domain, n_samples)
    source = domain >= 0
    n_source, n_target = int(source.sum()), int((~source).sum())
    if n_source < 2 or n_target < 2:
        raise ValueError(
            f"sample_domain must mark at least 2 source rows (>= 0) and 2 "
            f"target rows (< 0); got {n_source} and {n_target}."
        )
    return source


def split_by_domain(X: np.ndarray, y, sample_domain, weights=None):
    """The source rows and the target rows of a stacked X, and their
    weights (None without ``weights``).

    For the estimators whose ``y`` is otherwise a second sample (of Q): with
    ``sample_domain``, ``y`` can only be labels, which are ignored.
    """
    if y is not None and np.ndim(y) == 2:
        raise ValueError("Pass either a target sample y (2-D) or sample_domain, not both.")
    source = check_sample_domain(sample_domain, len(X))
    if weights is None:
        return X[source], X[~source], None, None
    return X[source], X[~source], weights[source], weights[~source]


def source_rows(y, sample_domain, n_samples: int) -> np.ndarray:
    """Boolean mask of the labelled source rows.

    From ``sample_domain`` when it is given; otherwise the rows whose label
    is not the placeholder -1.
    """
    if sample_domain is not None:
        return check_sample_domain(sample_domain, n_samples)
    if y is None:
        raise ValueError(
            "Pass sample_domain (>= 0 for source rows, < 0 for target rows), or "
            "labels y with -1 on the target rows, to say which rows are source rows."
        )
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:  # a column vector of labels
        labels = labels[:, 0]
    labelled = labels != UNLABELLED
    if labelled.ndim != 1:
        raise ValueError(f"y must be 1-D labels; got shape {labelled.shape}.")
    if labelled.sum() < 2:
        raise ValueError("Fewer than 2 labelled rows: y is -1 (unlabelled) nearly everywhere.")
    return labelled
