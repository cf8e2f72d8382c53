"""Issue 12: temperature="auto" touches no global random state and does not re-train per query."""
import random

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from torch import nn

import sparse_query.sampler as sampler_module
from sparse_query import SparseApproxSampler

skorch = pytest.importorskip("skorch")

FITS = {"n": 0}


class CountingNet(skorch.NeuralNetClassifier):
    def fit(self, X, y=None, **kw):
        FITS["n"] += 1
        return super().fit(X, y, **kw)


class CountingLR(LogisticRegression):
    def fit(self, X, y, sample_weight=None):
        FITS["n"] += 1
        return super().fit(X, y, sample_weight)


@pytest.fixture()
def data():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return X[:150], y[:150].astype(np.int64), X[150:600]


def _states():
    return (torch.get_rng_state().clone(), np.random.get_state(), random.getstate())


#: the models whose clone fits are counted: a skorch net and a scikit-learn estimator
MODELS = [
    lambda: CountingNet(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)),
                        criterion=nn.CrossEntropyLoss, max_epochs=3, train_split=None,
                        verbose=0, batch_size=32),
    lambda: CountingLR(max_iter=300),
]


def _assert_same(a, b):
    assert torch.equal(a[0], b[0])
    assert a[1][0] == b[1][0] and np.array_equal(a[1][1], b[1][1]) and a[1][2:] == b[1][2:]
    assert a[2] == b[2]


@pytest.mark.parametrize("make", MODELS, ids=["skorch", "logreg"])
def test_auto_temperature_keeps_global_rng_and_calibrates_once(make, data):
    X, y, pool = data
    torch.manual_seed(123)
    model = make().fit(X, y)
    FITS["n"] = 0
    s = SparseApproxSampler(temperature="auto", alpha_reliability=None, device="cpu",
                            random_state=0)
    before = _states()
    a = s.fit_query(pool, model, 10, X_labeled=X, y_labeled=y)
    _assert_same(before, _states())
    assert s.temperature_source_ == "held-out" and s.temperature_refit_
    assert FITS["n"] == 1                       # one clone fitted for the calibration
    T = s.temperature_
    b = s.fit_query(pool, model, 10, X_labeled=X, y_labeled=y)
    _assert_same(before, _states())
    assert FITS["n"] == 1 and not s.temperature_refit_   # the same fitted model: reused
    assert s.temperature_ == T
    np.testing.assert_array_equal(a, b)
    # the same seed calibrates to the same T from scratch (the clone's fit is seeded)
    sampler_module._TEMPERATURES.clear()
    s.fit_query(pool, model, 10, X_labeled=X, y_labeled=y)
    assert FITS["n"] == 2 and s.temperature_ == pytest.approx(T, rel=1e-9)
    # a refit model is calibrated again, once
    torch.manual_seed(7)
    model.fit(X[:120], y[:120])
    FITS["n"] = 0
    s.fit_query(pool, model, 10, X_labeled=X[:120], y_labeled=y[:120])
    s.fit_query(pool, model, 10, X_labeled=X[:120], y_labeled=y[:120])
    assert FITS["n"] == 1


def test_auto_temperature_with_validation_data_never_fits(data):
    X, y, pool = data
    model = CountingLR(max_iter=300).fit(X[:100], y[:100])
    FITS["n"] = 0
    s = SparseApproxSampler(temperature="auto", validation_data=(X[100:], y[100:]),
                            alpha_reliability=None, device="cpu", random_state=0)
    s.fit_query(pool, model, 5)
    assert FITS["n"] == 0 and s.temperature_source_ == "validation"
    assert not s.temperature_refit_


def test_auto_temperature_caches_a_net_that_joblib_cannot_hash(data):
    X, y, pool = data
    torch.manual_seed(0)
    net = CountingNet(nn.Sequential(nn.Linear(64, 10)), criterion=nn.CrossEntropyLoss,
                      max_epochs=2, train_split=None, verbose=0,
                      predict_nonlinearity=lambda out: torch.softmax(out, -1)).fit(X, y)
    FITS["n"] = 0
    s = SparseApproxSampler(temperature="auto", alpha_reliability=None, device="cpu",
                            random_state=0)
    s.fit_query(pool, net, 5, X_labeled=X, y_labeled=y)
    s.fit_query(pool, net, 5, X_labeled=X, y_labeled=y)
    assert FITS["n"] == 1


@pytest.mark.parametrize("make", MODELS, ids=["skorch", "logreg"])
def test_alpha_reliability_keeps_global_rng_and_measures_once(make, data):
    """alpha_reliability="held-out" fits 3 clones (one per fold) with the global generators
    preserved, once per fitted model and labeled set, like temperature="auto"; the default
    "auto" fits none of them."""
    X, y, pool = data
    torch.manual_seed(123)
    model = make().fit(X, y)
    FITS["n"] = 0
    SparseApproxSampler(device="cpu", random_state=0).fit_query(
        pool, model, 10, X_labeled=X, y_labeled=y)
    assert FITS["n"] == 0
    s = SparseApproxSampler(device="cpu", random_state=0, alpha_reliability="held-out")
    before = _states()
    a = s.fit_query(pool, model, 10, X_labeled=X, y_labeled=y)
    _assert_same(before, _states())
    assert s.reliability_source_ == "held-out" and FITS["n"] == 3
    kappa = s.reliability_
    b = s.fit_query(pool, model, 10, X_labeled=X, y_labeled=y)
    _assert_same(before, _states())
    assert FITS["n"] == 3 and s.reliability_ == kappa      # the same fitted model: reused
    np.testing.assert_array_equal(a, b)
    sampler_module._RELIABILITIES.clear()                   # from scratch: the same kappa
    s.fit_query(pool, model, 10, X_labeled=X, y_labeled=y)
    assert FITS["n"] == 6 and s.reliability_ == kappa
    FITS["n"] = 0                                           # another labeled set: measured again
    s.fit_query(pool, model, 10, X_labeled=X[:120], y_labeled=y[:120])
    assert FITS["n"] == 3
