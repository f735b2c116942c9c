"""Log density ratios by logistic classification."""

import math

import pytest
import torch

from skot._engine import Player
from skot._ratio import logistic_ratio_loss


def test_logistic_loss_minimiser_is_the_log_ratio():
    # For p = N(0, 1), q = N(1, 1): log q/p = x - 1/2. A linear classifier
    # reaches it.
    gen = torch.Generator().manual_seed(0)
    xp = torch.randn(20000, 1, generator=gen)
    xq = torch.randn(20000, 1, generator=gen) + 1
    net = torch.nn.Linear(1, 1)
    classifier = Player(net, 0.05, name="classifier")
    for _ in range(600):
        ip = torch.randint(len(xp), (2000,), generator=gen)
        iq = torch.randint(len(xq), (2000,), generator=gen)
        classifier.update(logistic_ratio_loss(net(xp[ip])[:, 0], net(xq[iq])[:, 0]))
    assert net.weight.item() == pytest.approx(1.0, abs=0.08)
    assert net.bias.item() == pytest.approx(-0.5, abs=0.06)
    # and its value at the optimum is 2 log 2 - 2 JS(p, q) < 2 log 2
    with torch.no_grad():
        loss = logistic_ratio_loss(net(xp)[:, 0], net(xq)[:, 0]).item()
    assert loss < 2 * math.log(2.0)
