"""Exact assignment OT: against brute force over every permutation."""

import itertools

import numpy as np
import pytest
import torch

from skot._ot import assignment, ot_pair, squared_distances


def _brute_force_cost(x, y):
    return min(((x - y[list(perm)]) ** 2).sum() for perm in itertools.permutations(range(len(x))))


@pytest.mark.parametrize("seed", range(5))
def test_ot_pair_is_the_cheapest_permutation(seed):
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    x1 = torch.randn(6, 3, generator=gen, dtype=torch.float64) + 1.0
    paired = ot_pair(x0, x1)
    # a reordering of x1's rows ...
    assert sorted(map(tuple, paired.tolist())) == sorted(map(tuple, x1.tolist()))
    # ... of least total squared distance
    cost = ((x0 - paired) ** 2).sum().item()
    assert cost == pytest.approx(_brute_force_cost(x0.numpy(), x1.numpy()), rel=1e-12)


def test_ot_pair_untangles_a_crossing():
    x0 = torch.tensor([[0.0], [1.0], [2.0]])
    x1 = torch.tensor([[12.0], [10.0], [11.0]])
    # in one dimension the optimal pairing is monotone
    assert ot_pair(x0, x1).squeeze(1).tolist() == [10.0, 11.0, 12.0]


def test_assignment_matches_brute_force_and_needs_equal_sizes():
    rng = np.random.RandomState(0)
    x, y = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    perm = assignment(x, y)
    assert ((x - y[perm]) ** 2).sum() == pytest.approx(_brute_force_cost(x, y))
    with pytest.raises(ValueError, match="equal sizes"):
        assignment(x, y[:4])


def test_squared_distances_are_exact_and_non_negative():
    x = np.array([[0.0, 0.0], [1.0, 2.0]])
    np.testing.assert_allclose(squared_distances(x, x), [[0.0, 5.0], [5.0, 0.0]])
    big = np.full((2, 2), 1e8)
    assert np.all(squared_distances(big, big) >= 0)
