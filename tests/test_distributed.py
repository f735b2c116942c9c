"""Grid search on a real Dask cluster (two worker processes on loopback), and
on a local Ray cluster where Ray is installed, through joblib, against the
same search run in this process."""

import numpy as np
import pytest
import torch
from joblib import parallel_config
from sklearn.model_selection import GridSearchCV

from skot import QFlowTransport
from skot.datasets import make_gaussian_ot

# The test is of where fits run and that they agree, not of their accuracy.
CHEAP = dict(
    init_max_iter=50,
    max_iter=5,
    classifier_warmup=20,
    hidden_layer_sizes=(32, 32),
    classifier_hidden_layer_sizes=(32, 32),
    random_state=0,
)


def _search():
    X, Y, _ = make_gaussian_ot(400, 2, random_state=0)
    search = GridSearchCV(QFlowTransport(**CHEAP), {"gamma": [0.0, 0.1]}, cv=2, n_jobs=2)
    return search.fit(X, Y), X


def _worker_threads():
    return torch.get_num_threads()


@pytest.fixture(scope="module")
def local_search():
    # The same search here, on one torch thread as in the workers: fits are
    # then bitwise reproducible, whichever process runs them.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with parallel_config(backend="sequential"):
            return _search()[0]
    finally:
        torch.set_num_threads(threads)


def _assert_same_search(remote, local, X):
    for key in ("mean_test_score", "split0_test_score", "split1_test_score"):
        np.testing.assert_array_equal(remote.cv_results_[key], local.cv_results_[key])
    assert remote.best_params_ == local.best_params_
    np.testing.assert_array_equal(
        remote.best_estimator_.transform(X), local.best_estimator_.transform(X)
    )


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    # Dask's nannies start each worker with OMP_NUM_THREADS=1, so torch in a
    # worker runs on one thread: two workers on two cores, no oversubscription.
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_grid_search_on_a_dask_cluster_equals_the_local_one(client, local_search):
    import distributed

    assert set(client.run(_worker_threads).values()) == {1}
    with distributed.get_task_stream(client) as tasks, parallel_config(backend="dask"):
        remote, X = _search()
    # The fits ran on the workers, not here.
    assert len({task["worker"] for task in tasks.data}) == 2
    _assert_same_search(remote, local_search, X)


def test_grid_search_on_ray_equals_the_local_one(local_search):
    # Ray is not in the test extra (it is large); the test runs where it is
    # installed, as the docs' Ray recipe.
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        register_ray()

        @ray.remote
        def worker_threads():
            return torch.get_num_threads()

        # Ray sets OMP_NUM_THREADS to a task's CPUs (one), as Dask's nannies do.
        assert ray.get(worker_threads.remote()) == 1
        with parallel_config(backend="ray"):
            remote, X = _search()
    finally:
        ray.shutdown()
    _assert_same_search(remote, local_search, X)
