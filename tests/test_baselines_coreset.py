"""Bayesian coreset: projections vs loops, Frank-Wolfe steps vs hand computation, padding."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from sparse_query.baselines import bayesian_coreset, coreset_projections


def _probs(seed, M, n, K, scale=1.5):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(scale * torch.randn(M, n, K, generator=g, dtype=torch.float64), -1)


@pytest.mark.parametrize("centering", ["mean", "none"])
def test_projections_match_loops(centering):
    p = _probs(0, 4, 5, 3).numpy()
    M, n, _ = p.shape
    want = np.zeros((n, M))
    for j in range(n):
        pred = p[:, j].mean(0)
        for m in range(M):
            want[j, m] = sum(pred[y] * math.log(p[m, j, y]) for y in range(3))
        if centering == "mean":
            want[j] -= want[j].mean()
    want /= math.sqrt(M)
    assert_allclose(coreset_projections(p, centering=centering).numpy(), want, rtol=1e-12)


def test_first_frank_wolfe_step_by_hand():
    p = _probs(1, 6, 10, 3)
    L = coreset_projections(p).numpy()
    sig = np.linalg.norm(L, axis=1)
    target = L.sum(0)
    f = int(np.argmax(L @ target / sig))
    vertex = sig.sum() / sig[f] * L[f]
    gamma = min(1.0, vertex @ target / (vertex @ vertex))
    res = bayesian_coreset(p, 1, max_iter=1)
    assert res.indices.tolist() == [f] and res.n_padded == 0 and res.n_iter == 1
    assert_allclose(float(res.weights[f]), gamma * sig.sum() / sig[f], rtol=1e-10)


def test_frank_wolfe_reduces_the_residual():
    p = _probs(2, 8, 40, 4)
    L = coreset_projections(p)
    target = L.sum(0)
    prev = float(target.norm())
    for it in (1, 3, 10, 30):
        res = bayesian_coreset(p, 40, max_iter=it)
        resid = float((target - res.weights @ L).norm())
        assert resid <= prev + 1e-9
        prev = resid


def test_padding_uses_largest_projection_norm_and_is_counted():
    p = _probs(3, 6, 12, 3)
    sig = coreset_projections(p).norm(dim=1)
    res = bayesian_coreset(p, 4, max_iter=1)
    assert res.n_padded == 3
    fw = int(res.indices[0])
    rest = sig.clone()
    rest[fw] = -1
    assert res.indices[1:].tolist() == torch.argsort(rest, descending=True, stable=True)[:3].tolist()
    assert_allclose(res.scores[1:].numpy(), 0.0)


def test_agreeing_draws_pad_everything_by_index():
    p = _probs(4, 1, 7, 3).repeat(5, 1, 1)  # every draw identical: all projections are 0
    res = bayesian_coreset(p, 3)
    assert res.n_padded == 3 and res.n_iter == 0
    assert res.indices.tolist() == [0, 1, 2]


@pytest.mark.parametrize("b", [1, 9])
def test_uniform_probabilities_and_full_pool(b):
    p = torch.full((4, 9, 3), 1 / 3, dtype=torch.float64)
    res = bayesian_coreset(p, b, centering="none")
    assert sorted(res.indices.tolist()) == list(range(b))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(1, 6), st.integers(0, 2**31 - 1), st.data())
def test_exactly_b_distinct_in_range(n, M, seed, data):
    p = _probs(seed % 1000, M, n, 3)
    b = data.draw(st.integers(1, n))
    res = bayesian_coreset(p, b, centering=data.draw(st.sampled_from(["mean", "none"])))
    idx = res.indices.tolist()
    assert len(idx) == b and len(set(idx)) == b and min(idx) >= 0 and max(idx) < n
    assert 0 <= res.n_padded <= b
    assert int((res.weights > 0).sum()) == b - res.n_padded


def test_bad_parameters():
    p = _probs(5, 3, 4, 2)
    with pytest.raises(ValueError, match="centering='median' is not one of"):
        bayesian_coreset(p, 2, centering="median")
    with pytest.raises(ValueError, match="max_iter=0 must be >= 1"):
        bayesian_coreset(p, 2, max_iter=0)
    with pytest.raises(ValueError, match="n_instances=5 must be <= 4"):
        bayesian_coreset(p, 5)
    with pytest.raises(ValueError, match="probs must have 3 dimensions"):
        bayesian_coreset(p[0], 2)
    with pytest.raises(ValueError, match="device='tpu'"):
        bayesian_coreset(p, 2, device="tpu")
    with pytest.raises(ValueError, match="centering='x' is not one of"):
        coreset_projections(p, centering="x")
