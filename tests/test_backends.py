"""One query path, whatever holds the pool (issue 16): the backends and what a Dask pool now does.

An in-process ``LocalCluster`` (threads) serves the module; ``tests/test_distributed.py``
runs the same code over worker processes.
"""
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from sparse_query import SparseApproxSampler
from sparse_query.backends import pool_backend
from sparse_query.backends.memory import InMemoryBackend
from sparse_query.problem import SparseApproxProblem
from sparse_query.solvers import proximal_iht

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


@pytest.fixture(scope="module")
def client(inproc_client):
    return inproc_client


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    model = LogisticRegression(max_iter=300).fit(X[:60], y[:60])
    return X[60:660], y, model


def test_pool_backend_is_chosen_by_the_pool(client):
    X = np.zeros((10, 3))
    kw = dict(batch_size=4, dtype=torch.float32)
    assert isinstance(pool_backend(X, **kw), InMemoryBackend)
    assert isinstance(pool_backend(sp.csr_matrix(X), **kw), InMemoryBackend)
    dask_backend = pool_backend(da.from_array(X, chunks=5), **kw)
    assert type(dask_backend).__name__ == "DaskBackend" and not dask_backend.plan_by_cost
    assert dask_backend.solve_device(torch.device("cuda")) == torch.device("cpu")


def _factors(n=600, K=4, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, K, generator=g, dtype=torch.float64) * 0.3
    H = torch.randn(n, d, generator=g, dtype=torch.float64)
    sigma = torch.rand(n, generator=g, dtype=torch.float64) / n * 3
    return A, H, sigma


def test_dask_operator_groups_copies_like_the_in_memory_operator(client):
    from sparse_query.distributed import DaskOperator

    A, H, sigma = _factors()
    copies = torch.arange(0, 600, 7)
    A[copies], H[copies], sigma[copies] = A[3].clone(), H[3].clone(), sigma[3].clone()
    ref = SparseApproxProblem((A, H), sigma, 10, device="cpu", dtype="float64")
    op = DaskOperator.from_factors(da.from_array(A.numpy(), chunks=(150, -1)),
                                   da.from_array(H.numpy(), chunks=(150, -1)), client=client,
                                   dtype="float64")
    try:
        prob = SparseApproxProblem(op, sigma, 10, device="cpu", dtype="float64")
        assert prob.n == ref.n == 600 - copies.numel()  # row 3 and its 86 copies: one
        torch.testing.assert_close(prob.candidates, ref.candidates, rtol=0, atol=0)
        torch.testing.assert_close(prob.groups.keys, ref.groups.keys, rtol=0, atol=0)
        torch.testing.assert_close(prob.op.dense(), ref.op.dense(), rtol=0, atol=0)
        torch.testing.assert_close(prob.v, ref.v)
        assert op._children and len(prob.op.chunks) == 4
    finally:
        op.close()
    assert op.chunks == [] and op._children == []


def test_proximal_iht_dask_starts_are_the_in_memory_ones(client):
    """The spread start needs the rows' hash keys, which a Dask pool now has: every start
    gives the in-memory batch (on these factors the spread start wins with init='both')."""
    from sparse_query.distributed import proximal_iht_dask

    A, H, sigma = _factors(n=900, seed=2)

    def local(init):
        return proximal_iht(SparseApproxProblem((A, H), sigma, 40, alpha=1.0, device="cpu",
                                                dtype="float64", chunk_size=150),
                            max_iter=15, init=init)

    both, zero = local("both"), local("zero")
    assert sorted(both.indices.tolist()) != sorted(zero.indices.tolist())  # the case matters
    for init in ("both", "fallback", "zero"):
        ref = local(init)
        res = proximal_iht_dask(da.from_array(A.numpy(), chunks=(150, -1)),
                                da.from_array(H.numpy(), chunks=(150, -1)), sigma.numpy(), 40,
                                alpha=1.0, max_iter=15, init=init, client=client,
                                dtype="float64")
        np.testing.assert_array_equal(res.indices, ref.indices)
        np.testing.assert_allclose(res.weights, ref.weights, rtol=1e-9, atol=1e-12)


def test_dask_pool_with_copies_gives_the_in_memory_batch(client, digits):
    pool, _, model = digits
    pool = np.concatenate([pool, np.repeat(pool[:5], 40, axis=0)])  # five rows, 41 times each
    kw = dict(solver="iht", random_state=0, device="cpu", dtype="float64")
    local = SparseApproxSampler(**kw).fit_query(pool, model, 15)
    s = SparseApproxSampler(**kw)
    remote = s.fit_query(da.from_array(pool, chunks=(200, -1)), model, 15)
    assert sorted(remote.tolist()) == sorted(local.tolist())
    rows = {tuple(r) for r in pool[remote]}
    assert len(rows) == 15  # never two copies of one row


@pytest.mark.parametrize("solver", ["iht", "greedy"])
def test_dask_pool_with_paper_prox_and_auto_temperature(client, digits, solver):
    pool, y, model = digits
    kw = dict(solver=solver, prox="paper", temperature="auto", random_state=0, device="cpu",
              dtype="float64", validation_data=(pool[:80], y[60:140]))
    ls = SparseApproxSampler(**kw)
    local = ls.fit_query(pool, model, 12)
    s = SparseApproxSampler(**kw)
    remote = s.fit_query(da.from_array(pool, chunks=(150, -1)), model, 12)
    assert sorted(remote.tolist()) == sorted(local.tolist())
    assert s.temperature_ == ls.temperature_ and s.temperature_source_ == "validation"


def test_dask_pool_refuses_tree_leaves_with_the_reason(client, digits):
    pool, y, _ = digits
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(pool[:100], y[60:160])
    with pytest.raises(ValueError, match=r"supports embedding='gradient' only.*'leaf-gradient'"
                                         r".*X_pool.compute\(\)"):
        SparseApproxSampler().fit(da.from_array(pool, chunks=150), forest)


def test_threaded_workers_sharing_one_torch_model_give_the_in_memory_outputs():
    """Tasks of one worker run in threads that may share one deserialized model (always so
    on an in-process cluster); the last-layer hooks of one block's forward pass must not see
    another block's, which the head check would refuse (or, without it, mix up)."""
    from sparse_query.adapters import last_layer_outputs
    from sparse_query.distributed import dask_last_layer

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(32, 256), torch.nn.ReLU(),
                              torch.nn.Linear(256, 256), torch.nn.ReLU(),
                              torch.nn.Linear(256, 10))
    X = np.random.default_rng(0).normal(size=(4000, 32)).astype(np.float32)
    ref = last_layer_outputs(net, X, batch_size=50)
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=8, processes=False,
                                       dashboard_address=None)
    with distributed.Client(cluster) as c:
        for _ in range(3):
            F, Z, _ = dask_last_layer(net, da.from_array(X, chunks=(100, -1)), batch_size=50)
            F, Z = c.compute([F, Z], sync=True)
            np.testing.assert_allclose(F, ref.features.numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(Z, ref.logits.numpy(), rtol=1e-5, atol=1e-6)
    cluster.close()
