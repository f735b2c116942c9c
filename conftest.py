"""Test session set-up shared by the tests and the doctests.

The suite runs on every core through pytest-xdist (``-n auto --dist
worksteal`` in pyproject.toml; ``-n 0`` runs it in one process):

- each worker gets an equal share of the cores for torch's intra-op
  threads, so that two workers on two cores do not each start two threads
  and fight over them;
- the statistical tests, which fit models for tens of seconds, are handed
  out first, and the quick ones fill in around them: the longest jobs
  first is what keeps the workers finishing together.

It also holds the fixtures that tests in several files use.
"""

import os

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from skot._device import usable_cores


def pytest_xdist_auto_num_workers(config):
    # xdist's own count for -n auto is psutil's physical cores of the whole
    # host, which a container or a taskset may not be allowed to use.
    return usable_cores()


def pytest_configure(config):
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        torch.set_num_threads(max(1, usable_cores() // int(workers)))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    # A stable sort: within each group the order of collection is kept.
    items.sort(key=lambda item: item.get_closest_marker("statistical") is None)


@pytest.fixture
def optimizer_iterates():
    """The parameters of every optimiser step taken during the test, in order:
    one list per step, of the first parameter group's tensors."""
    iterates = []

    def keep(optimizer, args, kwargs):
        iterates.append([p.detach().clone() for p in optimizer.param_groups[0]["params"]])

    hook = register_optimizer_step_post_hook(keep)
    yield iterates
    hook.remove()
