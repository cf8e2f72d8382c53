"""Dask path: the same batch as the single-machine solvers, and clear failures.

A real ``LocalCluster`` (2 worker processes, loopback only) serves the whole module.
"""
import logging
import os

import numpy as np
import pytest
import torch

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from sparse_query import SparseApproxSampler  # noqa: E402
from sparse_query.distributed import (  # noqa: E402
    DaskOperator,
    DaskPoolVectors,
    DaskQueryError,
    greedy_dask,
    proximal_iht_dask,
    query_dask,
)
from sparse_query.problem import FactoredOperator, SparseApproxProblem, sketch  # noqa: E402
from sparse_query.solvers import PoolVectors, greedy, proximal_iht  # noqa: E402
from sparse_query._utils import torch_generator  # noqa: E402

CHUNK = 150


@pytest.fixture(scope="module")
def client():
    # no retry after a worker dies, so the killed-worker test fails fast (the default is 3)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
            dashboard_address=None, silence_logs=logging.CRITICAL,
        )
        c = distributed.Client(cluster)
        c.wait_for_workers(2)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def _factors(n=900, K=4, d=12, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, K, generator=g, dtype=dtype) * 0.3
    H = torch.randn(n, d, generator=g, dtype=dtype)
    sigma = torch.rand(n, generator=g, dtype=dtype) / n * 3
    return A, H, sigma


def _dask(x):
    return da.from_array(x.numpy(), chunks=(CHUNK, -1) if x.ndim == 2 else CHUNK)


def test_operator_products_match_single_machine(client):
    A, H, _ = _factors()
    ref = FactoredOperator(A, H, chunk_size=CHUNK)
    op = DaskOperator.from_factors(_dask(A), _dask(H), client=client, dtype="float64")
    try:
        # the scheduler may place every chunk on one worker when the other is busy (a loaded
        # machine); spread them so that the products below really gather from both
        client.rebalance(op.chunks)
        holders = {w for ws in client.who_has(op.chunks).values() for w in ws}
        assert len(op.chunks) == 6 and len(holders) == 2  # several chunks on each worker
        g = torch.Generator().manual_seed(1)
        r = torch.randn(4, 12, generator=g, dtype=torch.float64)
        u = torch.randn(900, generator=g, dtype=torch.float64)
        idx = torch.tensor([5, 899, 0, 300, 5])
        vals = torch.randn(5, generator=g, dtype=torch.float64)
        torch.testing.assert_close(op.project(r), ref.project(r), rtol=0, atol=0)
        torch.testing.assert_close(op.combine(u), ref.combine(u), rtol=0, atol=0)
        torch.testing.assert_close(op.combine_rows(idx, vals), ref.combine_rows(idx, vals),
                                   rtol=0, atol=0)
        torch.testing.assert_close(op.project_rows(r, idx), ref.project_rows(r, idx), rtol=0, atol=0)
        torch.testing.assert_close(op.gram_columns(idx[:3]), ref.gram_columns(idx[:3]))
        torch.testing.assert_close(op.gram_block(idx, idx[:2]), ref.gram_block(idx, idx[:2]))
        torch.testing.assert_close(op.sqnorms(), ref.sqnorms())
        torch.testing.assert_close(op.dense(), ref.dense())
        # the Khatri-Rao sketch per chunk equals the single-machine sketch
        sk = op.sketch(16, generator=torch.Generator().manual_seed(3))
        ref_sk = sketch(ref, 16, generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(sk.dense(), ref_sk.E)
        sk.close()
    finally:
        op.close()


@pytest.mark.parametrize("sketch_dim", [None, 16])
def test_iht_same_batch_as_single_machine(client, sketch_dim):
    A, H, sigma = _factors(seed=2)
    b = 40
    res = proximal_iht_dask(_dask(A), _dask(H), _dask(sigma), b, alpha=1.0, beta=1e-3,
                            max_iter=15, sketch_dim=sketch_dim, random_state=7, client=client,
                            dtype="float64")
    prob = SparseApproxProblem((A, H), sigma, b, alpha=1.0, beta=1e-3, device="cpu",
                               dtype="float64", chunk_size=CHUNK)
    if sketch_dim is not None:
        op = sketch(prob.op, sketch_dim, generator=torch_generator(7))
        prob = SparseApproxProblem(op, sigma, b, alpha=1.0, beta=1e-3, device="cpu",
                                   dtype="float64", chunk_size=CHUNK)
    ref = proximal_iht(prob, max_iter=15, init="zero")  # a Dask pool has the zero start only
    np.testing.assert_array_equal(res.indices, ref.indices)
    np.testing.assert_allclose(res.weights, ref.weights, rtol=1e-9, atol=1e-12)
    assert res.n_iter == ref.n_iter
    assert res.info["n_chunks"] == 6


@pytest.mark.parametrize("b", [7, 200])  # fewer and more than one chunk's 150 rows
@pytest.mark.parametrize("rule", ["exact", "paper"])
def test_per_chunk_prox_and_gradient_match_single_machine(client, b, rule):
    """The gradient stays on the workers and the prox is a per-chunk top-b plus a merge; both
    give exactly what the single-machine vectors give, ties included (many s_j <= 0 and
    repeated sigma_j tie on the exact rule's score)."""
    A, H, sigma = _factors(seed=4)
    sigma[::3] = sigma[0]
    prob = SparseApproxProblem((A, H), sigma, b, alpha=1.0, beta=1e-3, device="cpu",
                               dtype="float64", chunk_size=CHUNK)
    op = DaskOperator.from_factors(_dask(A), _dask(H), client=client, dtype="float64")
    dprob = SparseApproxProblem(op, sigma, b, alpha=1.0, beta=1e-3, device="cpu",
                                dtype="float64")
    local, remote = PoolVectors(prob), DaskPoolVectors(dprob)
    try:
        z_idx = torch.tensor([3, 151, 152, 600, 899])
        z_val = torch.tensor([0.5, 1.0, 0.0, 2.0, 0.25], dtype=torch.float64)
        r = torch.randn(4, 12, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
        u_loc, u_rem = local.gradient(z_idx, z_val, r), remote.gradient(z_idx, z_val, r)
        assert isinstance(u_rem, list) and len(u_rem) == 6  # one piece per chunk, not gathered
        torch.testing.assert_close(remote.take(u_rem, torch.arange(900)), u_loc, rtol=0, atol=0)
        assert remote.norm2(u_rem) == pytest.approx(local.norm2(u_loc), rel=1e-12)
        phi_r, sum_r, sq_r = remote.dense_terms(u_rem)
        phi_l, sum_l, sq_l = local.dense_terms(u_loc)
        torch.testing.assert_close(phi_r, phi_l, rtol=0, atol=0)
        assert sum_r == pytest.approx(sum_l, rel=1e-12, abs=1e-12)
        for mu in (0.0, 1e-3, 50.0):
            sel_l, s_l = local.prox(u_loc, z_idx, z_val, mu, rule)
            sel_r, s_r = remote.prox(u_rem, z_idx, z_val, mu, rule)
            torch.testing.assert_close(sel_r, sel_l, rtol=0, atol=0)
            torch.testing.assert_close(s_r, s_l, rtol=0, atol=0)
        torch.testing.assert_close(remote.sigma2(sel_l), local.sigma2(sel_l), rtol=0, atol=0)
    finally:
        remote.close()
        op.close()


def test_iht_same_batch_as_single_machine_when_b_exceeds_a_chunk(client):
    A, H, sigma = _factors(seed=6)
    b = 200
    res = proximal_iht_dask(_dask(A), _dask(H), _dask(sigma), b, alpha=1.0, beta=1e-3,
                            max_iter=20, client=client, dtype="float64")
    prob = SparseApproxProblem((A, H), sigma, b, alpha=1.0, beta=1e-3, device="cpu",
                               dtype="float64", chunk_size=CHUNK)
    ref = proximal_iht(prob, max_iter=20, init="zero")
    np.testing.assert_array_equal(res.indices, ref.indices)
    np.testing.assert_allclose(res.weights, ref.weights, rtol=1e-9, atol=1e-12)


def test_closing_one_operator_leaves_another_on_the_same_arrays(client):
    """Two queries in a row over the same dask arrays: the first one's close() must not cancel
    the second one's chunks (it did when chunk keys were derived from the data)."""
    A, H, _ = _factors(seed=8)
    first = DaskOperator.from_factors(_dask(A), _dask(H), client=client, dtype="float64")
    second = DaskOperator.from_factors(_dask(A), _dask(H), client=client, dtype="float64")
    first.close()
    try:
        r = torch.ones(4, 12, dtype=torch.float64)
        ref = FactoredOperator(A, H, chunk_size=CHUNK).project(r)
        torch.testing.assert_close(second.project(r), ref, rtol=0, atol=0)
    finally:
        second.close()


def test_greedy_same_batch_as_single_machine(client):
    A, H, sigma = _factors(n=600, seed=3)
    res = greedy_dask(_dask(A), _dask(H), sigma.numpy(), 12, client=client, dtype="float64")
    ref = greedy(SparseApproxProblem((A, H), sigma, 12, device="cpu", dtype="float64",
                                     chunk_size=CHUNK))
    np.testing.assert_array_equal(res.indices, ref.indices)
    np.testing.assert_allclose(res.weights, ref.weights, rtol=1e-9, atol=1e-12)


@pytest.fixture(scope="module")
def digits_model():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    rng = np.random.default_rng(0)
    lab = rng.choice(len(X), 60, replace=False)
    model = LogisticRegression(max_iter=300).fit(X[lab], y[lab])
    pool = np.delete(X, lab, axis=0)[:600]
    return model, pool


def _sampler_batch(client, model, X, b, **params):
    s = SparseApproxSampler(**params)
    with client.as_current():
        idx = s.fit_query(X, model, b)
    return idx, s


@pytest.mark.parametrize("params", [
    {},  # the sampler's defaults: solver and sketch "auto", alpha=0.1 scaled, T=0.01
    dict(solver="iht", sketch_dim=32, alpha=0.5, temperature=0.1, max_iter=15),
    dict(solver="greedy", sketch_dim=None, beta=1e-2, dtype="float64"),
])
def test_query_dask_is_the_sampler_on_a_dask_pool(client, digits_model, params):
    model, pool = digits_model
    X = da.from_array(pool, chunks=(CHUNK, -1))
    with pytest.warns(FutureWarning, match=r"query_dask is deprecated .* SparseApproxSampler"):
        idx, info = query_dask(model, X, 25, random_state=11, client=client, **params)
    ref, s = _sampler_batch(client, model, X, 25, random_state=11, **params)
    assert idx.dtype == np.int64 and idx.shape == (25,)
    np.testing.assert_array_equal(idx, ref)
    # float32 sketches are sums over chunks in the order the workers answer: two runs of the
    # same query agree to float32 rounding carried through the iterations (2.6e-5 measured)
    np.testing.assert_allclose(info["weights"], s.weights_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(info["objective"], s.objective_, rtol=1e-4)
    assert info["n_iter"] == s.n_iter_ and info["converged"] == s.converged_
    assert info["n_chunks"] == 4 and info["n_workers"] == 2


def test_query_dask_defaults_are_the_samplers():
    import inspect

    ours = inspect.signature(query_dask).parameters
    theirs = inspect.signature(SparseApproxSampler).parameters
    shared = set(ours) & set(theirs)
    assert {"solver", "alpha", "tol", "temperature", "sketch_dim", "batch_size"} <= shared
    for name in shared:
        assert ours[name].default == theirs[name].default, name


def test_query_dask_init_fallback_is_the_samplers_start(client, digits_model):
    model, pool = digits_model
    X = da.from_array(pool[:300], chunks=(100, -1))
    with pytest.warns(FutureWarning):
        idx, _ = query_dask(model, X, 10, solver="iht", init="fallback", client=client)
    ref, _ = _sampler_batch(client, model, X, 10, solver="iht")
    np.testing.assert_array_equal(idx, ref)


def test_query_dask_timeout_bounds_each_round_trip(client):
    class Slow(torch.nn.Module):  # local class: pickled by value to the workers
        def __init__(self):
            super().__init__()
            self.parent = os.getpid()
            self.head = torch.nn.Linear(8, 3)

        def forward(self, x):
            if os.getpid() != self.parent:
                import time

                time.sleep(3.0)
            return self.head(x)

    X = da.from_array(np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32),
                      chunks=(100, -1))
    with pytest.warns(FutureWarning), pytest.raises(DaskQueryError, match="timeout=0.5"):
        query_dask(Slow(), X, 5, client=client, timeout=0.5)


def test_query_dask_greedy_returns_distinct_indices(client, digits_model):
    model, pool = digits_model
    with pytest.warns(FutureWarning):
        idx, info = query_dask(model, da.from_array(pool[:300], chunks=(100, -1)), 10,
                               solver="greedy", sketch_dim=16, random_state=0, client=client)
    assert idx.shape == (10,) and len(set(idx.tolist())) == 10
    assert idx.min() >= 0 and idx.max() < 300 and info["n_iter"] == 10


@pytest.mark.filterwarnings("ignore:query_dask is deprecated:FutureWarning")
def test_bad_parameters(client, digits_model):
    model, pool = digits_model
    X = da.from_array(pool[:100], chunks=(50, -1))
    with pytest.raises(ValueError, match="solver='lasso'"):
        query_dask(model, X, 5, solver="lasso", client=client)
    with pytest.raises(ValueError, match="n_instances=101 must be <= "):
        query_dask(model, X, 101, client=client)
    with pytest.raises(TypeError, match="X_pool must be a dask.array.Array"):
        query_dask(model, pool, 5, client=client)
    with pytest.raises(ValueError, match="sketch_dim=0 must be >= 1"):
        query_dask(model, X, 5, sketch_dim=0, client=client)
    with pytest.raises(ValueError, match="timeout=0.0 must be > 0"):
        query_dask(model, X, 5, timeout=0, client=client)
    with pytest.raises(TypeError, match="client must be a distributed.Client"):
        query_dask(model, X, 5, client="tcp://nowhere:8786")
    with pytest.raises(ValueError, match=r"init='zero' is no longer supported.*proximal_iht_dask"):
        query_dask(model, X, 5, init="zero", client=client)
    A, H, sigma = _factors(n=100)
    with pytest.raises(ValueError, match="H has 99 rows but A has 100"):
        proximal_iht_dask(_dask(A), _dask(H[:99]), sigma, 5, client=client)
    bad = A.clone()
    bad[70, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinity \\(first at row 70\\)"):
        proximal_iht_dask(_dask(bad), _dask(H), sigma, 5, client=client)


def test_killed_worker_is_a_clear_error(client, tmp_path):
    """A block function that kills its own worker process: DaskQueryError, not a hang."""
    flag = str(tmp_path / "kill")

    class Killer(torch.nn.Module):  # local class: pickled by value to the workers
        def __init__(self):
            super().__init__()
            self.parent = os.getpid()
            self.flag = flag
            self.body = torch.nn.Linear(8, 6)
            self.head = torch.nn.Linear(6, 3)

        def forward(self, x):
            if os.getpid() != self.parent and os.path.exists(self.flag):
                os._exit(1)
            return self.head(torch.relu(self.body(x)))

    model = Killer()
    X = da.from_array(np.random.default_rng(0).normal(size=(400, 8)).astype(np.float32),
                      chunks=(100, -1))
    open(flag, "w").close()
    try:
        with pytest.warns(FutureWarning), pytest.raises(DaskQueryError, match="worker died"):
            query_dask(model, X, 5, client=client, timeout=60)
    finally:
        os.remove(flag)
        client.wait_for_workers(2, timeout=60)
