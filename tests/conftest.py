import os

import pytest
import torch

# Keep CI's 2 cores busy with the tests, not with oversubscribed BLAS threads.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

CUDA = torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs CUDA; none on this machine")
    for item in items:
        if "gpu" in item.keywords and not CUDA:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="module")
def inproc_client():
    """A Dask client on an in-process ``LocalCluster`` (2 single-threaded workers), one per
    test module; ``tests/test_distributed.py`` runs worker processes instead."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()
