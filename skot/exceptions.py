"""Exceptions raised by skot."""

__all__ = ["TrainingDivergedError"]


class TrainingDivergedError(RuntimeError):
    """Training produced a non-finite loss.

    The estimator's networks were restored to their last finite parameters
    before this was raised; no fitted state was written by the failed ``fit``.
    """
