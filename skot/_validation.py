"""Input checks shared by the estimators, beyond scikit-learn's own."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_array

__all__ = ["check_target_sample", "standard_normal_target"]

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
