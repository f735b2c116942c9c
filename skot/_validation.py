"""Input checks shared by the estimators, beyond scikit-learn's own."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
from sklearn.utils import check_array

__all__ = [
    "check_target_sample",
    "score_target_sample",
    "split_rows",
    "standard_normal_target",
    "uniform_width",
]

_TARGET_DRAWS = 4096  # least number of rows drawn from N(0, I) when fit has no target sample


def check_target_sample(Y, n_features: int, estimator) -> np.ndarray | None:
    """Validate the second argument of ``fit(X, Y)``.

    Returns None when ``Y`` is None or one-dimensional (labels, as everywhere
    in scikit-learn, which this estimator does not use), else ``Y`` as a
    finite float array with ``n_features`` columns and at least two rows.
    """
    if Y is None:
        return None
    if not hasattr(Y, "ndim"):  # lists, array-likes that only define __array__
        Y = np.asarray(Y)
    if Y.ndim == 1:
        return None
    name = type(estimator).__name__
    Y = check_array(
        Y,
        dtype=[np.float64, np.float32],
        ensure_min_samples=2,
        input_name="Y",
        estimator=estimator,
    )
    if Y.shape[1] != n_features:
        raise ValueError(
            f"Y has {Y.shape[1]} features, but X has {n_features}: {name} "
            "transports between distributions on the same space."
        )
    return Y


def standard_normal_target(rng, n_samples: int, n_features: int) -> np.ndarray:
    """The target sample used when ``fit`` gets none: rows of N(0, I), at
    least ``_TARGET_DRAWS`` of them so that small X still sees a fair Q."""
    return rng.standard_normal((max(n_samples, _TARGET_DRAWS), n_features))


def score_target_sample(Y, X: np.ndarray, estimator) -> np.ndarray:
    """The sample of Q that ``score(X, Y)`` compares with: ``Y`` validated,
    or, when there is none, as many rows of N(0, I) as X has, drawn with a
    fixed seed so that scores compare across fits."""
    Y = check_target_sample(Y, X.shape[1], estimator)
    if Y is None:
        Y = np.random.RandomState(0).standard_normal(X.shape)
    return Y


def split_rows(a, fraction: float, rng):
    """A held-out share ``fraction`` of the rows of ``a`` (at least one), and
    the other rows, drawn from ``rng``. ``a`` is an array or a tensor."""
    n_val = max(1, round(fraction * len(a)))
    perm = rng.permutation(len(a))
    if isinstance(a, torch.Tensor):
        perm = torch.as_tensor(perm, device=a.device)
    return a[perm[:n_val]], a[perm[n_val:]]


def uniform_width(sizes, name: str, caller: str) -> tuple[int, int]:
    """``(width, depth)`` of a residual network's ``hidden_layer_sizes``,
    which must repeat one positive width (residual connections add layers
    of equal width)."""
    sizes = tuple(sizes)
    if (
        not sizes
        or len(set(sizes)) != 1
        or not isinstance(sizes[0], Integral)
        or isinstance(sizes[0], bool)
        or sizes[0] < 1
    ):
        raise ValueError(
            f"The {name!r} parameter of {caller} must repeat one positive width "
            f"(a residual network's layers all have one width); got {sizes!r}."
        )
    return int(sizes[0]), len(sizes)
