"""Model files that load without running code from the file.

``pickle`` and ``joblib`` rebuild objects by calling whatever functions a file
names, so loading a model file from someone else runs their code. A skot
model file holds only plain data: the estimator's class name, its
parameters, its fitted attributes as numbers, strings, lists and arrays, and
each network as the keyword arguments that build it plus its weights. It is
written by :func:`torch.save` and read back by :func:`torch.load` with
``weights_only=True``, whose unpickler refuses every object but tensors and
plain containers; :func:`load` then rebuilds the estimator from classes of
its own registry (the four skot estimators and their networks), so nothing
the file names is ever imported or called.

What can be saved: a skot estimator, fitted or not, whose parameters and
fitted attributes are plain data, arrays, skot networks and skot estimators
(a :class:`~skot.TelescopingRatioEstimator` with its Q-flow, for example).
The meta-estimators of :mod:`skot.da` hold scikit-learn estimators of any
kind and are refused; save their skot parts, or use skops for the rest.
"""

from __future__ import annotations

import importlib.metadata
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._metadata_requests import SIMPLE_METHODS, MetadataRequest
from torch import nn

from ._nets import MLP, ConditionedField, NoisyMap, ResidualMLP, TimeMLP
from ._otflow import OTFlowDensity
from ._potential import OTPotential
from ._qflow import QFlowTransport
from ._sjko import SJKOGenerator
from ._telescoping import TelescopingRatioEstimator

__all__ = ["dump", "load"]

FORMAT = "skot-model"
# Bump when the layout below changes; load() refuses files from a newer one.
FORMAT_VERSION = 1

ESTIMATORS = {
    cls.__name__: cls
    for cls in (QFlowTransport, TelescopingRatioEstimator, OTFlowDensity, SJKOGenerator)
}
NETWORKS = {
    cls.__name__: cls
    for cls in (MLP, TimeMLP, ConditionedField, ResidualMLP, NoisyMap, OTPotential)
}

# Every encoded object that is not plain data is a dict with this key,
# naming its kind; plain dicts may not use it.
TAG = "__skot__"
# Arrays of these kinds are saved as tensors of the same dtype.
NUMERIC_KINDS = "biuf"


def dump(estimator, file) -> None:
    """Save a skot estimator to a model file that loads without running code.

    Parameters
    ----------
    estimator : QFlowTransport, TelescopingRatioEstimator, OTFlowDensity or SJKOGenerator
        Fitted or not. Its networks are saved on the CPU, whatever its device.
    file : str, path-like or binary file object
        Where to write. A path is written to a temporary file in the same
        folder and renamed, so a failure leaves no partial file.

    Raises
    ------
    TypeError
        If the estimator, one of its parameters or one of its fitted
        attributes is of a type a model file cannot hold; the message names
        the attribute.

    See Also
    --------
    load : Read the file back.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from skot import OTFlowDensity
    >>> from skot.io import dump, load
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> model = OTFlowDensity(max_iter=5, random_state=0).fit(X)
    >>> buffer = io.BytesIO()
    >>> dump(model, buffer)
    >>> _ = buffer.seek(0)
    >>> loaded = load(buffer)
    >>> bool(np.array_equal(loaded.score_samples(X), model.score_samples(X)))
    True
    """
    _check_registered(estimator, "estimator")
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skot_version": _skot_version(),
        "torch_version": str(torch.__version__),
        "sklearn_version": sklearn.__version__,
        "estimator": _encode(estimator, "estimator"),
    }
    if isinstance(file, (str, os.PathLike)):
        _save_atomically(payload, Path(file))
    else:
        torch.save(payload, file)


def load(file):
    """Load a skot estimator saved by :func:`dump`, without running code from the file.

    The file is read with ``torch.load(weights_only=True)``, which refuses
    any object but tensors and plain containers, and the estimator is
    rebuilt from skot's own classes. Networks load on the CPU; the
    estimator's ``device`` parameter moves them on first use, as after a fit.

    Parameters
    ----------
    file : str, path-like or binary file object

    Returns
    -------
    estimator
        The saved estimator, with the same parameters and fitted attributes;
        its outputs on the same device are bit-identical to the saved one's.

    Raises
    ------
    ValueError
        If the file is not a skot model file, comes from a newer format,
        names a class outside skot's registry or an attribute the estimator
        class defines, or carries any object but plain data (a code payload,
        for instance). Nothing from the file runs before this check.

    See Also
    --------
    dump : Write a model file.
    """
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{_name(file)}: refused: the file carries objects other than tensors and plain "
            f"data, which a skot model file never holds ({_refusal_reason(err)})."
        ) from None
    except (RuntimeError, ValueError, EOFError, OSError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"{_name(file)}: not a readable skot model file ({reason}).") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{_name(file)}: not a skot model file (no '{FORMAT}' header).")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{_name(file)}: model file format {version!r} is newer than this skot reads "
            f"({FORMAT_VERSION}); upgrade skot."
        )
    estimator = _decode(payload.get("estimator"), "estimator")
    if not isinstance(estimator, tuple(ESTIMATORS.values())):
        raise ValueError(f"{_name(file)}: the file holds no skot estimator.")
    return estimator


# --- encoding: objects to plain data -------------------------------------------------


def _encode(value, where: str):
    """``value`` as plain data and CPU tensors; ``where`` names it in errors."""
    if value is None:
        return None
    if isinstance(value, np.generic) and value.dtype.kind in NUMERIC_KINDS + "U":
        return value.item()
    for plain in (bool, int, float, str):
        if isinstance(value, plain):
            # Subclasses (numpy's float64, torch's version string) would be
            # pickled by class, and load would rightly refuse them.
            return plain(value)
    if isinstance(value, np.ndarray):
        return _encode_array(value, where)
    if isinstance(value, torch.Tensor):
        return {TAG: "tensor", "data": value.detach().to("cpu").clone()}
    if isinstance(value, list):
        return [_encode(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(_encode(item, f"{where}[{i}]") for i, item in enumerate(value))
    if isinstance(value, dict):
        return _encode_dict(value, where)
    if isinstance(value, nn.Module):
        return _encode_network(value, where)
    if isinstance(value, BaseEstimator):
        return _encode_estimator(value, where)
    if isinstance(value, MetadataRequest):
        # Set by set_fit_request and friends; replayed on load.
        return {TAG: "metadata_request", "requests": value._serialize()}
    raise TypeError(
        f"{where}: a skot model file cannot hold a {type(value).__module__}."
        f"{type(value).__qualname__}."
    )


def _encode_array(array: np.ndarray, where: str) -> dict:
    if array.dtype.kind in NUMERIC_KINDS:
        data = torch.from_numpy(np.ascontiguousarray(array)).clone()
        return {TAG: "ndarray", "data": data, "dtype": array.dtype.str}
    if array.dtype.kind in "UO" and all(isinstance(item, str) for item in array.flat):
        # Feature names: scikit-learn keeps them as an object array of str.
        kind = array.dtype.str if array.dtype.kind == "U" else "object"
        items = [str(item) for item in array.flat]
        return {TAG: "strings", "items": items, "shape": array.shape, "dtype": kind}
    raise TypeError(f"{where}: a skot model file cannot hold an array of dtype {array.dtype}.")


def _encode_dict(mapping: dict, where: str) -> dict:
    for key in mapping:
        if not isinstance(key, str) or key == TAG:
            raise TypeError(f"{where}: a skot model file holds dicts with str keys; got {key!r}.")
    return {key: _encode(item, f"{where}[{key!r}]") for key, item in mapping.items()}


def _encode_network(module: nn.Module, where: str) -> dict:
    name = type(module).__name__
    if NETWORKS.get(name) is not type(module):
        raise TypeError(f"{where}: a skot model file holds skot's networks only; got {name}.")
    return {
        TAG: "network",
        "class": name,
        "config": _encode(module.config, f"{where}.config"),
        "state_dict": {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()},
        "training": module.training,
        "requires_grad": [p.requires_grad for p in module.parameters()],
    }


def _check_registered(estimator, where: str) -> None:
    """A TypeError unless ``estimator`` is one of skot's own estimators."""
    name = type(estimator).__name__
    if ESTIMATORS.get(name) is not type(estimator):
        raise TypeError(
            f"{where}: skot.io saves {', '.join(ESTIMATORS)}; got {name}. Save the skot "
            "estimators a Pipeline or meta-estimator holds one by one (skops can save the rest)."
        )


def _encode_estimator(estimator: BaseEstimator, where: str) -> dict:
    _check_registered(estimator, where)
    name = type(estimator).__name__
    params = estimator.get_params(deep=False)
    state = {key: value for key, value in vars(estimator).items() if key not in params}
    return {
        TAG: "estimator",
        "class": name,
        "params": _encode_dict(params, f"{where}.params"),
        "state": _encode_dict(state, where),
    }


# --- decoding: plain data to objects, from skot's own classes only --------------------


def _decode(value, where: str):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_decode(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(_decode(item, f"{where}[{i}]") for i, item in enumerate(value))
    if isinstance(value, dict) and TAG not in value:
        return {_key(key, where): _decode(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, dict):
        decoder = _DECODERS.get(value[TAG])
        if decoder is None:
            raise ValueError(f"{where}: unknown kind {value[TAG]!r} in the model file.")
        return decoder(value, where)
    raise ValueError(f"{where}: a skot model file cannot hold a {type(value).__name__}.")


def _key(key, where: str) -> str:
    if not isinstance(key, str):
        raise ValueError(f"{where}: dict key {key!r} is not a str.")
    return key


def _field(record: dict, key: str, kind, where: str):
    if key not in record or not isinstance(record[key], kind):
        raise ValueError(f"{where}: the model file's {key!r} is missing or malformed.")
    return record[key]


def _decode_array(record: dict, where: str) -> np.ndarray:
    data = _field(record, "data", torch.Tensor, where)
    dtype = np.dtype(_field(record, "dtype", str, where))
    if dtype.kind not in NUMERIC_KINDS:
        raise ValueError(f"{where}: array dtype {dtype} is not numeric.")
    return data.numpy().astype(dtype, copy=False)


def _decode_strings(record: dict, where: str) -> np.ndarray:
    items = _field(record, "items", list, where)
    shape = _field(record, "shape", tuple, where)
    dtype = _field(record, "dtype", str, where)
    if not all(isinstance(item, str) for item in items):
        raise ValueError(f"{where}: a string array holds something other than str.")
    if dtype != "object":
        if np.dtype(dtype).kind != "U":
            raise ValueError(f"{where}: string array dtype {dtype} is not a str dtype.")
        return np.array(items, dtype=dtype).reshape(shape)
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array.reshape(shape)


def _decode_tensor(record: dict, where: str) -> torch.Tensor:
    return _field(record, "data", torch.Tensor, where)


def _decode_network(record: dict, where: str) -> nn.Module:
    name = _field(record, "class", str, where)
    if name not in NETWORKS:
        raise ValueError(f"{where}: {name!r} is not one of skot's networks.")
    config = _decode(_field(record, "config", dict, where), f"{where}.config")
    try:
        module = NETWORKS[name](**config)
        module.load_state_dict(_field(record, "state_dict", dict, where), strict=True)
    except (TypeError, RuntimeError) as err:
        raise ValueError(f"{where}: the {name} in the model file does not rebuild: {err}") from err
    module.train(bool(_field(record, "training", bool, where)))
    flags = _field(record, "requires_grad", list, where)
    parameters = list(module.parameters())
    if len(flags) != len(parameters):
        raise ValueError(f"{where}: the {name} in the model file has the wrong parameter count.")
    for parameter, flag in zip(parameters, flags):
        parameter.requires_grad_(bool(flag))
    return module


def _decode_estimator(record: dict, where: str) -> BaseEstimator:
    name = _field(record, "class", str, where)
    if name not in ESTIMATORS:
        raise ValueError(f"{where}: {name!r} is not one of skot's estimators.")
    cls = ESTIMATORS[name]
    params = _decode(_field(record, "params", dict, where), f"{where}.params")
    estimator = cls()
    try:
        estimator.set_params(**params)
        estimator._validate_params()
    except (ValueError, TypeError) as err:
        raise ValueError(f"{where}: the model file's parameters are invalid: {err}") from err
    for attribute, value in _field(record, "state", dict, where).items():
        # Only data attributes the class does not define: a file may not
        # replace a method, a property or a parameter.
        if (
            not isinstance(attribute, str)
            or not attribute.isidentifier()
            or attribute.startswith("__")
            or attribute in params
            or hasattr(cls, attribute)
        ):
            raise ValueError(f"{where}: the model file may not set attribute {attribute!r}.")
        if attribute == "_metadata_request":
            value = _decode_metadata_request(value, f"{where}.{attribute}", estimator)
        else:
            value = _decode(value, f"{where}.{attribute}")
        setattr(estimator, attribute, value)
    return estimator


def _decode_metadata_request(record: dict, where: str, estimator) -> MetadataRequest:
    # The estimator's own default requests (whose owner is the estimator in
    # some scikit-learn versions, its class name in others), then the saved
    # ones replayed on them, as set_fit_request does.
    request = estimator._get_metadata_request()
    for method, aliases in _field(record, "requests", dict, where).items():
        if method not in SIMPLE_METHODS or not isinstance(aliases, dict):
            raise ValueError(f"{where}: malformed metadata request for {method!r}.")
        for param, alias in aliases.items():
            if not isinstance(param, str) or not (alias is None or isinstance(alias, (bool, str))):
                raise ValueError(f"{where}: malformed metadata request {param!r}: {alias!r}.")
            getattr(request, method).add_request(param=param, alias=alias)
    return request


_DECODERS = {
    "ndarray": _decode_array,
    "strings": _decode_strings,
    "tensor": _decode_tensor,
    "network": _decode_network,
    "estimator": _decode_estimator,
}


# --- files -------------------------------------------------------------------------------


def _save_atomically(payload: dict, path: Path) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(payload, stream)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _refusal_reason(err: Exception) -> str:
    """The line of torch's refusal that names the object, without its advice
    on loading the file unsafely."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = lines[0] if lines else type(err).__name__
    return reason.split(" was not an allowed global")[0]


def _name(file) -> str:
    return str(file) if isinstance(file, (str, os.PathLike)) else "model file"


def _skot_version() -> str:
    try:
        return importlib.metadata.version("skot")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"
