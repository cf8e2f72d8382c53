"""Issue 12: ready-made strategies keep no pool-sized state and are safe to share."""
import pickle
import threading

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from sparse_query import SparseApproxSampler, sparse_greedy, sparse_iht
from sparse_query.baselines import (
    BADGE, BALD, EntropySampling, KCenterGreedy, MarginSampling, RandomSampling,
)


@pytest.fixture(scope="module")
def two_pools():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    a = LogisticRegression(max_iter=300).fit(X[:100], y[:100])
    b = LogisticRegression(max_iter=300, C=0.1).fit(X[100:250], y[100:250])
    return [(X[300:900], a), (X[900:1700], b)]


def _pool_sized(obj, n):
    """Names of attributes holding an array / tensor with a dimension of size n (or larger)."""
    out = []
    for k, v in vars(obj).items():
        shape = getattr(v, "shape", None)
        if shape is not None and len(shape) and max(shape) >= n:
            out.append(k)
        for inner in ("a", "h", "e", "_a", "_h", "_e"):  # operators
            sub = getattr(v, inner, None)
            if getattr(sub, "shape", None) is not None and max(sub.shape) >= n:
                out.append(f"{k}.{inner}")
    return out


STRATEGIES = [
    lambda: sparse_greedy, lambda: sparse_iht,
    lambda: SparseApproxSampler(solver="iht", device="cpu", random_state=0),
    lambda: EntropySampling(device="cpu"), lambda: MarginSampling(device="cpu"),
    lambda: KCenterGreedy(device="cpu"), lambda: BADGE(device="cpu", random_state=0),
]


@pytest.mark.parametrize("make", STRATEGIES)
def test_nothing_pool_sized_survives_a_call(make, two_pools):
    X, model = two_pools[0]
    s = make()
    s.fit_query(X, model, 10)
    assert _pool_sized(s, len(X)) == []
    assert s.indices_.shape == (10,)
    assert len(pickle.dumps(s)) < 50_000
    with pytest.raises(NotFittedError, match="holds no pool"):
        s.query(5)


def test_fit_keeps_what_query_needs(two_pools):
    X, model = two_pools[0]
    s = SparseApproxSampler(device="cpu", random_state=0).fit(X, model)
    a, b = s.query(10), s.query(10)
    assert_array_equal(a, b)
    s.fit_query(X, model, 5)   # and a call afterwards drops it
    assert _pool_sized(s, len(X)) == []


def test_sampler_keeps_its_documented_results(two_pools):
    X, model = two_pools[0]
    s = SparseApproxSampler(device="cpu", random_state=0)
    s.fit_query(X, model, 10)
    for name in ("weights_", "objective_", "n_iter_", "converged_", "history_",
                 "embedding_time_", "solve_time_", "temperature_", "embedding_kind_"):
        assert hasattr(s, name), name
    assert s.weights_.shape == (10,)


@pytest.mark.parametrize("make", [
    lambda: sparse_greedy, lambda: sparse_iht,
    lambda: SparseApproxSampler(solver="iht", device="cpu", random_state=0),
    lambda: EntropySampling(device="cpu"), lambda: KCenterGreedy(device="cpu"),
])
def test_threads_sharing_one_strategy_get_their_single_threaded_batch(make, two_pools):
    torch.set_num_threads(1)
    shared = make()
    want = [make().__class__(**shared.get_params()).fit_query(X, m, 12) for X, m in two_pools]
    jobs = [two_pools[i % 2] for i in range(16)]
    got = [None] * len(jobs)
    errors = []
    start = threading.Barrier(4)

    def work(k):
        try:
            start.wait()
            for i in range(k, len(jobs), 4):
                X, m = jobs[i]
                got[i] = shared(m, X, n_instances=12)   # modAL's call
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i, batch in enumerate(got):
        assert_array_equal(batch, want[i % 2])


def test_two_modal_learners_share_sparse_greedy(two_pools):
    modAL = pytest.importorskip("modAL")
    from modAL.models import ActiveLearner

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    l1 = ActiveLearner(LogisticRegression(max_iter=300), query_strategy=sparse_greedy,
                       X_training=X[:100], y_training=y[:100])
    l2 = ActiveLearner(LogisticRegression(max_iter=300), query_strategy=sparse_greedy,
                       X_training=X[100:200], y_training=y[100:200])
    alone = SparseApproxSampler().fit_query(X[900:1500], l1.estimator, 10)
    l2.query(X[300:900], n_instances=10)
    idx1 = l1.query(X[900:1500], n_instances=10)[0]
    assert_array_equal(idx1, alone)
    assert _pool_sized(sparse_greedy, 600) == []


def test_random_state_generator_keeps_advancing(two_pools):
    X, model = two_pools[0]
    s = RandomSampling(random_state=np.random.default_rng(0))
    a, b = s.fit_query(X, model, 10), s.fit_query(X, model, 10)
    assert not np.array_equal(a, b)
    ref = np.random.default_rng(0)
    assert_array_equal(a, ref.choice(len(X), 10, replace=False))
    assert_array_equal(b, ref.choice(len(X), 10, replace=False))


def test_bald_on_forest_shared(two_pools):
    X, _ = two_pools[0]
    Xd, y = load_digits(return_X_y=True)
    rf = RandomForestClassifier(10, random_state=0).fit(Xd[:200] / 16.0, y[:200])
    s = BALD(device="cpu")
    s.fit_query(X, rf, 5)
    assert _pool_sized(s, len(X)) == []
