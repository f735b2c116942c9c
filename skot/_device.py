"""Device, dtype and random-number plumbing shared by every estimator.

Library code never touches torch's or NumPy's global random state: every
estimator turns its ``random_state`` into a local :class:`numpy.random.RandomState`
and a local :class:`torch.Generator` with :func:`make_rngs`, and builds its
networks with :func:`build_module`, which initialises parameters from that
generator instead of from the global one.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import torch
from sklearn.utils import check_random_state
from torch import nn

__all__ = [
    "batches",
    "build_module",
    "make_rngs",
    "module_to",
    "resolve_device",
    "to_numpy",
    "to_tensor",
    "usable_cores",
]


def usable_cores() -> int:
    """CPU cores this process may run on: its affinity where the platform
    reports one, not the whole host's count (``os.cpu_count``), which a
    container or a taskset may not be allowed to use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform
        return os.cpu_count() or 1


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn a ``device`` parameter into a usable :class:`torch.device`.

    ``"auto"`` picks CUDA when it is available and the CPU otherwise. An
    explicit CUDA device on a machine without one falls back to the CPU with a
    warning, so that a model fitted on a GPU still runs where there is none.
    """
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(
                f"device must be 'auto', 'cpu', 'cuda' or a torch device string; got {device!r}."
            ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            f"device={device!r} was requested but CUDA is not available; "
            "running on the CPU instead.",
            RuntimeWarning,
            stacklevel=3,
        )
        dev = torch.device("cpu")
    return dev


def make_rngs(random_state, device: torch.device) -> tuple[np.random.RandomState, torch.Generator]:
    """Local NumPy and torch generators derived from ``random_state``.

    The torch generator lives on ``device`` so that sampling on a GPU does not
    round-trip through the CPU. The same ``random_state`` on the same device
    gives the same streams.
    """
    rng = check_random_state(random_state)
    seed = int(rng.randint(np.iinfo(np.int32).max))
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return rng, gen


def _reset_parameters(module: nn.Module, gen: torch.Generator) -> None:
    # Same distributions as torch's defaults for Linear layers
    # (kaiming-uniform weights, uniform(+-1/sqrt(fan_in)) biases), drawn from
    # the local generator.
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.kaiming_uniform_(layer.weight, a=5**0.5, generator=gen)
            if layer.bias is not None:
                bound = 1.0 / layer.in_features**0.5 if layer.in_features else 0.0
                nn.init.uniform_(layer.bias, -bound, bound, generator=gen)
        if hasattr(layer, "init_parameters"):
            # Modules with parameters of their own initialise them from gen.
            layer.init_parameters(gen)
        elif not isinstance(layer, nn.Linear) and list(layer.parameters(recurse=False)):
            raise TypeError(
                f"build_module does not know how to initialise {type(layer).__name__}; "
                "give it an init_parameters(generator) method."
            )


def build_module(
    factory: Callable[[], nn.Module], device: torch.device, gen: torch.Generator
) -> nn.Module:
    """Build ``factory()`` on ``device`` with parameters drawn from ``gen``.

    The module is constructed on the meta device first, so its default
    initialisation consumes nothing from torch's global generator.
    """
    with torch.device("meta"):
        module = factory()
    module = module.to_empty(device=device)
    with torch.no_grad():
        # Generators are device-bound: initialise on the generator's device,
        # then move.
        if gen.device.type != device.type:
            raise ValueError("generator and module must be on the same device type")
        _reset_parameters(module, gen)
    return module


def module_to(module: nn.Module | None, device: torch.device) -> nn.Module | None:
    """Move ``module`` to ``device`` if it is not already there."""
    if module is None:
        return None
    param = next(module.parameters(), None)
    if param is not None and param.device != device:
        module.to(device)
    return module


def to_tensor(X, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A NumPy array as a tensor on ``device`` (no copy when already there)."""
    X = np.asarray(X)
    if not X.flags.writeable:
        # torch cannot protect read-only memory (pandas' copy-on-write
        # frames give such arrays): it warns, then shares it. A copy is
        # cheaper than the warning is confusing.
        X = X.copy()
    return torch.as_tensor(X, dtype=dtype, device=device)


def to_numpy(t: torch.Tensor, dtype) -> np.ndarray:
    """A tensor as a NumPy array of ``dtype`` on the CPU."""
    return t.detach().to("cpu").numpy().astype(dtype, copy=False)


def batches(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``batch_size`` rows covering ``range(n)``."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


class PicklesNetworksOnCPU:
    """Mixin: pickle the fitted networks named in ``_networks`` on the CPU.

    Tensors are pickled with their device, so a model fitted on a GPU would
    not load on a machine without one. The estimator itself is not moved:
    only the pickled copy is. Put it before ``BaseEstimator`` in the bases.
    """

    _networks: tuple[str, ...] = ()

    def __getstate__(self):
        state = super().__getstate__()
        for key in self._networks:
            if key in state:
                state[key] = copy.deepcopy(state[key]).to("cpu")
        return state
