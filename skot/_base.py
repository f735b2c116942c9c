"""What the four estimators share: fitting and prediction plumbing.

:class:`SkotEstimator` validates the data at fit and prediction, tells a
warm start from a fresh one, moves the fitted networks to the device they
are used on and pickles them on the CPU. The functions below it do the
work every estimator repeats: the per-feature standardisation, batched
inference without autograd, the finite-output check, and the checks of
``sample``'s arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral
from typing import NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._conditions import check_condition, encode_conditions, predict_codes
from ._device import (
    PicklesNetworksOnCPU,
    batches,
    make_rngs,
    module_to,
    resolve_device,
    to_tensor,
)
from ._domains import check_sample_domain, split_by_domain
from ._validation import check_target_sample, standard_normal_target
from ._weights import positive_rows, rows_kept, sample_weight_array, weighted_mean_var

__all__ = [
    "FLOAT_DTYPES",
    "FitSamples",
    "SkotEstimator",
    "check_finite",
    "predict_in_batches",
    "sample_rng",
    "standardisation",
]

FLOAT_DTYPES = [np.float64, np.float32]


class FitSamples(NamedTuple):
    """What ``fit(X, y, sample_domain=...)`` of a two-sample estimator starts from."""

    X: np.ndarray  # the sample of P
    Y: np.ndarray  # the sample of Q
    warm: bool  # whether this fit continues the last one
    device: torch.device
    rng: np.random.RandomState  # the fit's generators, from random_state
    gen: torch.Generator
    weights_x: np.ndarray | None  # the rows' positive weights (None: equal)
    weights_y: np.ndarray | None
    standard_normal_target: bool  # whether Q is N(0, I), drawn here
    # The class labels of the rows of P and of Q (None: not conditional).
    conditions: tuple[np.ndarray, np.ndarray] | None = None


class SkotEstimator(PicklesNetworksOnCPU, BaseEstimator):
    """Base of skot's estimators.

    ``_networks`` names the fitted torch modules; the first one tells
    whether the estimator is fitted (and so whether ``warm_start`` has
    something to continue). Subclasses declare ``warm_start`` and
    ``device`` among their parameters.
    """

    def _validate_fit_data(self, X) -> tuple[np.ndarray, bool]:
        """X validated for ``fit``, and whether this fit continues the last one."""
        warm = self.warm_start and hasattr(self, self._networks[0])
        X = validate_data(self, X, reset=not warm, dtype=FLOAT_DTYPES, ensure_min_samples=2)
        return X, warm

    def _validate_fit_samples(
        self,
        X,
        y,
        sample_domain,
        sample_weight=None,
        target_sample_weight=None,
        condition=None,
        target_condition=None,
    ) -> FitSamples:
        """The samples of P and Q of ``fit(X, y, sample_domain=...)``, and
        their weights.

        With ``sample_domain``, the source and target rows of X (skada's
        convention), ``sample_weight`` weighing both; else X and a 2-D
        ``y``, weighed by ``sample_weight`` and ``target_sample_weight``;
        else X and rows of N(0, I) drawn from the fit's generator. Rows of
        zero weight are dropped (:mod:`skot._weights`). ``condition`` and
        ``target_condition`` label the rows the same way (:mod:`skot._conditions`).
        """
        X, warm = self._validate_fit_data(X)
        weights = sample_weight_array(sample_weight, X)
        labels = None if condition is None else check_condition(condition, len(X), "condition")
        target_labels = target_condition
        if sample_domain is not None:
            for name, value in (
                ("sample_weight", target_sample_weight),
                ("condition", target_condition),
            ):
                if value is not None:
                    raise ValueError(
                        f"With sample_domain, {name} covers the rows of both domains: "
                        f"pass no target_{name}."
                    )
            source = check_sample_domain(sample_domain, len(X))
            if labels is not None:
                labels, target_labels = labels[source], labels[~source]
            X, y, weights, target_weights = split_by_domain(X, y, sample_domain, weights)
            names = ("sample_weight (source rows)", "sample_weight (target rows)")
        else:
            target_weights = target_sample_weight
            names = ("sample_weight", "target_sample_weight")
        if labels is not None:
            labels = rows_kept(labels, weights)
        X, weights_x = positive_rows(X, weights, names[0])
        Y = check_target_sample(y, X.shape[1], self)
        dev = resolve_device(self.device)
        rng, gen = make_rngs(self.random_state, dev)
        if Y is None:
            if target_weights is not None:
                raise ValueError(
                    "target_sample_weight weighs the rows of a target sample y; "
                    "without one the target is N(0, I)."
                )
            if labels is not None or target_condition is not None:
                raise ValueError(
                    "condition labels the rows of a conditional transport to a target sample "
                    "y (or with sample_domain); without one the target is N(0, I)."
                )
            Y = standard_normal_target(rng, len(X), X.shape[1])
            return FitSamples(X, Y, warm, dev, rng, gen, weights_x, None, True)
        target_weights = sample_weight_array(target_weights, Y, names[1])
        conditions = self._target_conditions(labels, target_labels, target_weights, len(Y))
        Y, weights_y = positive_rows(Y, target_weights, names[1])
        return FitSamples(X, Y, warm, dev, rng, gen, weights_x, weights_y, False, conditions)

    @staticmethod
    def _target_conditions(labels, target_labels, target_weights, n_target: int):
        """The labels of both samples' kept rows, checked to come together."""
        if labels is None and target_labels is None:
            return None
        if labels is None or target_labels is None:
            raise ValueError(
                "A conditional transport needs the labels of both samples: pass both "
                "condition (rows of X) and target_condition (rows of y)."
            )
        target_labels = check_condition(target_labels, n_target, "target_condition")
        return labels, rows_kept(target_labels, target_weights)

    def _fit_conditions(self, conditions, warm: bool):
        """The classes of a conditional fit (None otherwise) and the codes of
        the rows of P and of Q, checked against the fit a warm start continues."""
        previous = getattr(self, "conditions_", None) if warm else None
        if conditions is None:
            if previous is not None:
                raise ValueError(
                    "warm_start continues a conditional fit: pass condition and "
                    "target_condition again."
                )
            return None, (None, None)
        classes, codes_x, codes_y = encode_conditions(*conditions)
        if warm and (previous is None or not np.array_equal(previous, classes)):
            raise ValueError(
                "warm_start continues the last fit, whose classes were "
                f"{None if previous is None else previous.tolist()}; got {classes.tolist()}."
            )
        return classes, (codes_x, codes_y)

    def _prediction_codes(self, condition, n_rows: int, name: str = "condition"):
        """The class codes of the rows a method was given, after a
        conditional fit; None after an unconditional one (which refuses labels)."""
        classes = getattr(self, "conditions_", None)
        if classes is None:
            if condition is not None:
                raise ValueError(
                    f"{name}: this {type(self).__name__} was fitted without conditions; fit "
                    "it with condition and target_condition to work within classes."
                )
            return None
        if condition is None:
            raise ValueError(
                f"This {type(self).__name__} is conditional (classes {classes.tolist()}): "
                f"pass the {name} (class label) of each row."
            )
        return predict_codes(condition, classes, n_rows, name)

    def _validate_predict_data(self, X) -> tuple[np.ndarray, torch.device]:
        """X validated against the fit, and the device, with the fitted
        networks moved to it."""
        dev = self._fitted_device()
        return validate_data(self, X, reset=False, dtype=FLOAT_DTYPES), dev

    def _fitted_device(self) -> torch.device:
        """The device, with the fitted networks moved to it (NotFittedError
        before a fit)."""
        check_is_fitted(self)
        dev = resolve_device(self.device)
        for name in self._networks:
            module_to(getattr(self, name), dev)
        return dev

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def standardisation(X: np.ndarray, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation of X (1 where it is 0),
    weighted by ``weights`` when given."""
    mean, var = weighted_mean_var(X, weights)
    scale = np.sqrt(var)
    scale[scale == 0] = 1.0
    return mean, scale


def predict_in_batches(
    fn: Callable[[torch.Tensor], torch.Tensor],
    X: np.ndarray,
    batch_size: int,
    device: torch.device,
    empty_shape: tuple[int, ...] | None = None,
) -> np.ndarray:
    """``fn`` over the rows of X, ``batch_size`` at a time, without autograd.

    Each batch goes to ``device`` as float32; the results come back as one
    float64 array. ``empty_shape`` is the trailing shape of the result when
    X has no rows.
    """
    out = []
    with torch.no_grad():
        for s in batches(len(X), batch_size):
            out.append(fn(to_tensor(X[s], device)).double().cpu().numpy())
    if not out:
        return np.empty((0, *(empty_shape or ())))
    return np.concatenate(out)


def check_finite(values: np.ndarray, what: str) -> np.ndarray:
    """``values``, or a FloatingPointError saying ``what`` was not finite."""
    if not np.all(np.isfinite(values)):
        raise FloatingPointError(
            f"{what} produced non-finite values; the rows may lie far outside the "
            "training data, or the fit may have failed."
        )
    return values


def sample_rng(n_samples, random_state) -> np.random.RandomState:
    """The generator of ``sample(n_samples, random_state)``, after checking
    that ``n_samples`` is a positive integer.

    ``random_state=None`` draws fresh entropy without touching NumPy's
    global generator.
    """
    if not isinstance(n_samples, Integral) or isinstance(n_samples, bool) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
    if random_state is None:
        random_state = np.random.default_rng().integers(2**31)
    return check_random_state(random_state)
