r"""Log density ratios by logistic classification.

A network :math:`r` trained to minimise

.. math::
    \mathbb{E}_{x \sim p}\,\mathrm{softplus}(r(x)) +
    \mathbb{E}_{y \sim q}\,\mathrm{softplus}(-r(y))

attains its optimum at :math:`r = \log q / p` (the logistic loss of a
classifier telling q-samples, label 1, from p-samples, label 0, with equal
class weights). Q-flow uses it to estimate the KL term of its loss, and the
telescoping ratio estimator along every interval of a flow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RatioTrainer", "logistic_ratio_loss"]


def logistic_ratio_loss(r_p: torch.Tensor, r_q: torch.Tensor) -> torch.Tensor:
    """Logistic loss whose minimiser is ``r = log q - log p``."""
    return F.softplus(r_p).mean() + F.softplus(-r_q).mean()


class RatioTrainer:
    """A classifier ``r(x) ~ log q(x)/p(x)`` with its optimiser.

    Parameters
    ----------
    net : nn.Module
        Maps ``[batch, d]`` to ``[batch, 1]`` logits.
    lr : float
        Adam learning rate.
    """

    def __init__(self, net: nn.Module, lr: float):
        self.net = net
        self.optimizer = torch.optim.Adam(net.parameters(), lr=lr)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)

    def step(self, xp: torch.Tensor, xq: torch.Tensor) -> float:
        """One Adam step on a batch from p and a batch from q; returns the loss."""
        loss = logistic_ratio_loss(self(xp.detach()), self(xq.detach()))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def fit(
        self,
        xp: torch.Tensor,
        xq: torch.Tensor,
        n_steps: int,
        batch_size: int,
        gen: torch.Generator,
    ) -> list[float]:
        """``n_steps`` steps on minibatches drawn with replacement from two pools."""
        losses = []
        for _ in range(n_steps):
            ip = torch.randint(len(xp), (batch_size,), generator=gen, device=xp.device)
            iq = torch.randint(len(xq), (batch_size,), generator=gen, device=xq.device)
            losses.append(self.step(xp[ip], xq[iq]))
        return losses

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
