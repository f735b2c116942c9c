"""Exceptions raised by skot."""

__all__ = ["LowOverlapWarning", "TrainingDivergedError"]


class TrainingDivergedError(RuntimeError):
    """Training produced a non-finite loss.

    The estimator's networks were restored to their last finite parameters
    before this was raised; no fitted state was written by the failed ``fit``.
    """


class LowOverlapWarning(UserWarning):
    """The source rows cover too little of the target for importance weighting.

    Raised by :class:`skot.da.ImportanceWeightedEstimator` when the ratio
    estimator puts less than half of the target's mass where the source rows
    are (``covered_share_ < 0.5``): no weighting of the source rows reaches
    the rest, and the weights fall back towards equal ones there.
    """
