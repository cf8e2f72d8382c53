"""SparseApproxSampler on a dask.array pool gives the batch of the in-memory pool."""
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from sparse_query import SparseApproxSampler

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def client(inproc_client):
    return inproc_client


@pytest.mark.parametrize("solver,sketch_dim", [("iht", None), ("greedy", None), ("iht", 16)])
def test_dask_pool_matches_in_memory_pool(client, solver, sketch_dim):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    model = LogisticRegression(max_iter=300).fit(X[:60], y[:60])
    pool = X[60:760]
    kw = dict(solver=solver, sketch_dim=sketch_dim, random_state=0, device="cpu", dtype="float64")
    ls = SparseApproxSampler(**kw)
    local = ls.fit(pool, model).query(12)  # fit keeps the embedding (fit_query would not)
    s = SparseApproxSampler(**kw)
    remote = s.fit_query(da.from_array(pool, chunks=(150, -1)), model, 12)
    if solver == "greedy":
        assert sorted(remote.tolist()) == sorted(local.tolist())
    else:
        # a Dask pool runs IHT from the zero start only (no copies grouping, no spread start,
        # which need the rows on the client): same batch as the in-memory zero-start IHT, and
        # the in-memory default (best of both starts) is at least as good
        import torch

        from sparse_query._utils import torch_generator
        from sparse_query.problem import SparseApproxProblem
        from sparse_query.solvers import proximal_iht

        prob = SparseApproxProblem(ls._operator, ls._sigma, 12, alpha=ls.alpha_effective_,
                                   beta=ls.beta, device="cpu", dtype=torch.float64,
                                   duplicates="keep")
        if sketch_dim:
            prob = prob.sketched(sketch_dim, generator=torch_generator(0, "cpu"))
        ref = proximal_iht(prob, init="zero")
        assert sorted(remote.tolist()) == sorted(ref.indices.tolist())
        assert ls.objective_ <= s.objective_ + 1e-12
    assert remote.dtype == np.int64 and s.embedding_kind_ == "gradient"
    assert s.weights_.shape == (12,)


def test_dask_pool_rejects_posterior_embedding(client):
    X, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=200).fit(X[:60], y[:60])
    with pytest.raises(ValueError, match=r"dask.array pool supports embedding='gradient' only"):
        SparseApproxSampler(embedding="posterior").fit(da.from_array(X[60:200], chunks=50), model)


def test_dask_pool_timeout_comes_from_dask_config(client):
    """The sampler's round trips are bounded by "sparse_query.dask.timeout"; a bad value names
    the key."""
    import dask

    X, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=200).fit(X[:60], y[:60])
    pool = da.from_array(X[60:200], chunks=50)
    for bad, err in [(0, ValueError), (-5.0, ValueError), ("soon", TypeError)]:
        with dask.config.set({"sparse_query.dask.timeout": bad}):
            with pytest.raises(err, match="sparse_query.dask.timeout"):
                SparseApproxSampler().fit_query(pool, model, 5)
    with dask.config.set({"sparse_query.dask.timeout": 120}):
        idx = SparseApproxSampler(random_state=0).fit_query(pool, model, 5)
    np.testing.assert_array_equal(idx, SparseApproxSampler(random_state=0).fit_query(pool, model, 5))
