import warnings

import numpy as np
import pytest
import torch

from skot._device import batches, build_module, make_rngs, resolve_device, to_numpy, to_tensor
from skot._nets import MLP, TimeMLP


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_auto_device_is_the_cpu_without_cuda():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # chosen, not fallen back to
        assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auto_device_is_cuda_where_there_is_one():
    assert resolve_device("auto") == torch.device("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_explicit_cuda_falls_back_with_warning():
    with pytest.warns(RuntimeWarning, match="CUDA is not available"):
        assert resolve_device("cuda").type == "cpu"


def test_bad_device_names_the_problem():
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("gpu-please")


def test_same_seed_same_network_and_global_rng_untouched():
    dev = torch.device("cpu")
    torch.manual_seed(123)
    before = torch.get_rng_state().clone()
    nets = []
    for _ in range(2):
        _, gen = make_rngs(7, dev)
        nets.append(build_module(lambda: TimeMLP(3, 3, (8, 8)), dev, gen))
    assert torch.equal(torch.get_rng_state(), before)
    for p, q in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(p, q)
    _, gen = make_rngs(8, dev)
    other = build_module(lambda: TimeMLP(3, 3, (8, 8)), dev, gen)
    assert not torch.equal(next(other.parameters()), next(nets[0].parameters()))


def test_initialisation_matches_torch_default_scale():
    _, gen = make_rngs(0, torch.device("cpu"))
    net = build_module(lambda: MLP(400, 1, (400,)), torch.device("cpu"), gen)
    w = net.net[0].weight
    # kaiming_uniform(a=sqrt(5)) is uniform on +-1/sqrt(fan_in)
    bound = 1 / np.sqrt(400)
    assert w.abs().max() <= bound
    assert w.std().item() == pytest.approx(bound / np.sqrt(3), rel=0.05)


def test_batches_cover_every_row_once():
    covered = np.concatenate([np.arange(10)[s] for s in batches(10, 3)])
    np.testing.assert_array_equal(covered, np.arange(10))


def test_round_trip_keeps_dtype():
    x = np.random.RandomState(0).rand(4, 2).astype(np.float32)
    t = to_tensor(x, torch.device("cpu"), torch.float64)
    assert to_numpy(t, np.float32).dtype == np.float32
