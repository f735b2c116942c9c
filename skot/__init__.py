"""skot: continuous-time optimal transport with neural ODEs, as scikit-learn
estimators on PyTorch."""

from . import da, datasets, io, metrics
from ._mutual_information import mutual_information
from ._otflow import OTFlowDensity
from ._qflow import QFlowTransport
from ._sjko import SJKOGenerator
from ._telescoping import BRIDGE_SCHEDULE, TelescopingRatioEstimator
from .exceptions import LowOverlapWarning, TrainingDivergedError

__all__ = [
    "BRIDGE_SCHEDULE",
    "LowOverlapWarning",
    "OTFlowDensity",
    "QFlowTransport",
    "SJKOGenerator",
    "TelescopingRatioEstimator",
    "TrainingDivergedError",
    "da",
    "datasets",
    "io",
    "metrics",
    "mutual_information",
]
__version__ = "0.1.0.dev0"
