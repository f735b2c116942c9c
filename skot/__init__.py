"""skot: continuous-time optimal transport with neural ODEs, as scikit-learn
estimators on PyTorch."""

from . import datasets, metrics
from ._otflow import OTFlowDensity
from ._qflow import QFlowTransport
from .exceptions import TrainingDivergedError

__all__ = ["OTFlowDensity", "QFlowTransport", "TrainingDivergedError", "datasets", "metrics"]
__version__ = "0.1.0.dev0"
