"""``n_jobs``: the sampler decides torch's and the BLAS libraries' threads while it runs and
restores the process's settings afterwards, errors included."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from threadpoolctl import threadpool_info

from sparse_query import SparseApproxSampler
from sparse_query._utils import check_n_jobs, resolve_n_jobs, thread_limit


def _blas_threads():
    return sorted({lib["num_threads"] for lib in threadpool_info()})


class _Recorder(torch.nn.Module):
    """A linear head that records the thread counts its forward pass runs under."""

    def __init__(self, d=6, k=3, fail=False):
        super().__init__()
        torch.manual_seed(0)
        self.head = torch.nn.Linear(d, k)
        self.seen = []
        self.fail = fail

    def forward(self, x):
        self.seen.append((torch.get_num_threads(), _blas_threads()))
        if self.fail:
            raise RuntimeError("boom")
        return self.head(x)


def _pool(n=400, d=6):
    return np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("solver", ["greedy", "iht"])
def test_default_runs_one_thread_and_restores(two_threads, solver):
    blas = _blas_threads()
    model = _Recorder()
    s = SparseApproxSampler(solver=solver, device="cpu", random_state=0)
    s.fit_query(_pool(), model, 5)
    assert model.seen and all(t == 1 and b == [1] for t, b in model.seen)
    assert torch.get_num_threads() == 2
    assert _blas_threads() == blas


def test_n_jobs_sets_the_count(two_threads):
    model = _Recorder()
    SparseApproxSampler(device="cpu", n_jobs=2, random_state=0).fit_query(_pool(), model, 5)
    assert {t for t, _ in model.seen} == {2}
    assert torch.get_num_threads() == 2


def test_restored_after_an_error(two_threads):
    blas = _blas_threads()
    with pytest.raises(RuntimeError, match="boom"):
        SparseApproxSampler(device="cpu").fit_query(_pool(), _Recorder(fail=True), 5)
    assert torch.get_num_threads() == 2
    assert _blas_threads() == blas


def test_same_batch_whatever_the_threads():
    X = _pool(2000)
    a = SparseApproxSampler(device="cpu", random_state=0).fit_query(X, _Recorder(), 20)
    b = SparseApproxSampler(device="cpu", random_state=0, n_jobs=2).fit_query(X, _Recorder(), 20)
    np.testing.assert_array_equal(a, b)


def test_nested_limits_restore_once(two_threads):
    with thread_limit(None):
        with thread_limit(2):  # inside a limit the first one holds
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_bad_n_jobs(bad):
    with pytest.raises(ValueError, match=r"n_jobs=.* must be None \(one thread\), -1"):
        SparseApproxSampler(device="cpu", n_jobs=bad).fit(_pool(), _Recorder())


def test_resolve_and_clone():
    assert resolve_n_jobs(None) == 1
    assert resolve_n_jobs(3) == 3
    assert resolve_n_jobs(-1) >= 1
    assert check_n_jobs(-1) == -1
    assert clone(SparseApproxSampler(n_jobs=-1)).n_jobs == -1
