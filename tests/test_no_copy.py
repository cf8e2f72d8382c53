"""A numpy pool reaches the model and the solver's operator without a pool-sized copy.

Peak memory is measured in ``benchmarks/bench_speed.py`` (RSS; torch's buffers are invisible
to tracemalloc); here the identity of the memory is checked.

The features of a linear head on the pool itself are the pool's rows: the operator must hold
the pool's own memory (a data-pointer check) for float32 / float64 arrays and memmaps, through
``fit`` with a torch module, a skorch net and a scikit-learn ``LogisticRegression``, and give
the batch the same data as a tensor would.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.linear_model import LogisticRegression

from sparse_query import SparseApproxSampler
from sparse_query.adapters import last_layer_outputs
from sparse_query.adapters._rows import _RowStack, _Staging, _join_rows, _pool_as_tensor

N, D, K = 3000, 16, 4


def _pool(dtype=np.float32, n=N, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(K, D))
    y = rng.integers(0, K, n)
    return (centres[y] + rng.normal(size=(n, D))).astype(dtype), y


def _head(dtype=torch.float32):
    torch.manual_seed(0)
    return torch.nn.Linear(D, K).to(dtype)


def _memmap(path, X, mode="r"):
    mm = np.memmap(path, dtype=X.dtype, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    del mm
    return np.memmap(path, dtype=X.dtype, mode=mode, shape=X.shape)


def _shares(t, X):
    return t.data_ptr() == X.ctypes.data and tuple(t.shape) == X.shape


def _sampler(**kw):
    return SparseApproxSampler(solver="iht", device="cpu", random_state=0, max_iter=5, **kw)


@pytest.mark.parametrize("dtype,net_dtype", [(np.float32, torch.float32),
                                             (np.float64, torch.float64)])
def test_torch_head_features_are_the_pool(dtype, net_dtype):
    X, _ = _pool(dtype)
    ll = last_layer_outputs(_head(net_dtype), X, batch_size=256)
    assert _shares(ll.features, X)
    s = _sampler(dtype="float32" if dtype == np.float32 else "float64").fit(X, _head(net_dtype))
    assert _shares(s._operator.H, X)


def test_memmap_pool_read_only(tmp_path):
    X, _ = _pool(np.float32)
    mm = _memmap(tmp_path / "pool.dat", X)
    s = _sampler().fit(mm, _head())
    assert _shares(s._operator.H, mm)
    idx = s.query(20)
    ref = _sampler().fit(torch.from_numpy(X), _head()).query(20)
    np.testing.assert_array_equal(idx, ref)
    assert not mm.flags.writeable  # read, never written


def test_numpy_pool_same_batch_as_tensor_pool():
    X, _ = _pool(np.float32)
    a = _sampler().fit_query(X, _head(), 30)
    b = _sampler().fit_query(torch.from_numpy(X.copy()), _head(), 30)
    np.testing.assert_array_equal(a, b)


def test_float64_pool_into_float32_net_converts_per_chunk():
    X, _ = _pool(np.float64)
    ll = last_layer_outputs(_head(), X, batch_size=256)
    assert ll.features.dtype == torch.float32
    torch.testing.assert_close(ll.features, torch.from_numpy(X).float(), rtol=0, atol=0)
    # the net saw the same numbers as on a float32 copy of the pool
    ref = last_layer_outputs(_head(), X.astype(np.float32), batch_size=256)
    torch.testing.assert_close(ll.logits, ref.logits, rtol=0, atol=0)
    s = _sampler().fit(X, _head())
    assert s._operator.H.dtype == torch.float32  # the net's own rows, not a float64 copy
    np.testing.assert_array_equal(s.query(25), _sampler().fit_query(X.astype(np.float32),
                                                                    _head(), 25))


def test_skorch_net_features_are_the_pool():
    skorch = pytest.importorskip("skorch")
    X, y = _pool(np.float32)
    net = skorch.NeuralNetClassifier(torch.nn.Linear, module__in_features=D,
                                     module__out_features=K, max_epochs=1, train_split=None,
                                     criterion=torch.nn.CrossEntropyLoss, verbose=0)
    net.fit(X[:200], y[:200].astype(np.int64))
    s = _sampler().fit(X, net)
    assert _shares(s._operator.H, X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logistic_regression_features_are_the_pool(dtype):
    X, y = _pool(dtype)
    model = LogisticRegression(max_iter=200).fit(X[:300], y[:300])
    s = _sampler(dtype="float32" if dtype == np.float32 else "float64").fit(X, model)
    assert _shares(s._operator.H, X)
    # the logits are computed in the coefficients' dtype, as predict_proba does (float64 up
    # to scikit-learn 1.8; 1.9 keeps a float32 pool's coefficients in float32)
    ll = last_layer_outputs(model, X)
    coef = torch.from_numpy(np.asarray(model.coef_)).dtype
    assert ll.logits.dtype == coef
    assert_allclose(torch.softmax(ll.logits, 1).numpy(), model.predict_proba(X), rtol=0,
                    atol=1e-8 if coef == torch.float64 else 1e-5)


def test_logistic_regression_memmap_pool_batch(tmp_path):
    X, y = _pool(np.float32)
    model = LogisticRegression(max_iter=200).fit(X[:300], y[:300])
    mm = _memmap(tmp_path / "pool.dat", X)
    np.testing.assert_array_equal(_sampler().fit_query(mm, model, 15),
                                  _sampler().fit_query(X.copy(), model, 15))


def test_pool_as_tensor_leaves_other_pools():
    X, _ = _pool(np.float32)
    flipped = X[::-1]  # negative strides: returned as given
    assert _pool_as_tensor(flipped) is flipped
    ints = np.arange(12).reshape(3, 4)
    assert _pool_as_tensor(ints) is ints
    column = X[:, 0]
    assert _pool_as_tensor(column) is column


def test_join_rows_copies_rows_that_are_not_back_to_back():
    X, _ = _pool(np.float32, n=10)
    t = torch.from_numpy(X)
    view = _join_rows([t[:4], t[4:]], X)
    assert view.data_ptr() == X.ctypes.data
    gap = _join_rows([t[:4], t[5:]], X)  # a row missing: a real concatenation
    assert gap.data_ptr() != X.ctypes.data
    torch.testing.assert_close(gap, torch.cat([t[:4], t[5:]]))


def test_row_stack_and_staging_keep_values():
    X, _ = _pool(np.float64, n=50)
    t = torch.from_numpy(X)
    stage, stack = _Staging(torch.float32, "cpu"), _RowStack(50, X)
    for s in range(0, 50, 16):
        stack.append(stage(t[s:s + 16]))  # the staging buffer is overwritten every call
    torch.testing.assert_close(stack.result(), t.float(), rtol=0, atol=0)
    short = _RowStack(50, X)
    short.append(t[:10])
    with pytest.raises(RuntimeError, match="10 rows were gathered for a pool of 50"):
        short.result()
