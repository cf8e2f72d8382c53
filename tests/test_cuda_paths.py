"""Every solver and baseline on device="cuda" (issue 15); skipped cleanly without CUDA."""
import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs CUDA; none on this machine")


@pytest.fixture(scope="module")
def setup():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    model = LogisticRegression(max_iter=300).fit(X[:100], y[:100])
    pool = np.vstack([X[100:700], np.repeat(X[700:705], 20, axis=0)])  # with copies
    return pool, model, X[:100], y[:100]


@pytest.mark.parametrize("kw", [
    dict(solver="auto"), dict(solver="greedy"), dict(solver="iht"),
    dict(solver="iht", prox="paper"), dict(solver="greedy", sketch_dim=16),
    dict(solver="iht", sketch_dim=16),
])
def test_sampler_on_cuda_matches_cpu(setup, kw):
    from sparse_query import SparseApproxSampler

    pool, model, _, _ = setup
    gpu = SparseApproxSampler(device="cuda", dtype="float64", random_state=0, **kw)
    cpu = SparseApproxSampler(device="cpu", dtype="float64", random_state=0, **kw)
    a, b = gpu.fit_query(pool, model, 30), cpu.fit_query(pool, model, 30)
    assert a.dtype == np.int64 and len(np.unique(a)) == 30
    assert len(np.unique(pool[a], axis=0)) == 30  # no two copies, on the GPU too
    assert sorted(a.tolist()) == sorted(b.tolist())


@pytest.mark.parametrize("name", ["RandomSampling", "EntropySampling", "MarginSampling",
                                  "LeastConfidenceSampling", "KCenterGreedy", "BADGE",
                                  "BALD", "BatchBALD", "BayesianCoreset"])
def test_every_baseline_runs_on_cuda(setup, name):
    import sparse_query as sq
    from sklearn.ensemble import RandomForestClassifier

    pool, model, Xl, yl = setup
    if name in ("BALD", "BatchBALD", "BayesianCoreset"):
        model = RandomForestClassifier(n_estimators=5, random_state=0).fit(Xl, yl)
    s = getattr(sq, name)(device="cuda", random_state=0)
    idx = s.fit_query(pool[:300], model, 10, X_labeled=Xl, y_labeled=yl)
    assert idx.dtype == np.int64 and len(np.unique(idx)) == 10


def test_kcenter_and_solvers_on_cuda_tensors():
    from sparse_query.baselines.kcenter import kcenter_greedy
    from sparse_query.problem import SparseApproxProblem
    from sparse_query.solvers import greedy, proximal_iht

    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 8, generator=g, dtype=torch.float64)
    assert (kcenter_greedy(x.cuda(), 20).indices.cpu() == kcenter_greedy(x, 20).indices).all()
    A, H = torch.randn(400, 4, generator=g), torch.randn(400, 6, generator=g)
    sig = torch.rand(400, generator=g)
    for dev in ("cpu", "cuda"):
        p = SparseApproxProblem((A, H), sig, 15, device=dev, dtype="float64")
        assert len(set(greedy(p).indices.tolist())) == 15
        assert len(set(proximal_iht(p).indices.tolist())) == 15
