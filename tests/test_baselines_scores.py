"""Uncertainty scores (entropy, margin, least confidence, BALD) against direct formulas."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from sparse_query.baselines import (
    bald_scores,
    entropy_scores,
    least_confidence_scores,
    margin_scores,
)
from sparse_query.baselines._common import _top_k


def _random_probs(rng, shape):
    z = rng.normal(size=shape) * 2
    p = np.exp(z - z.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)


def test_entropy_matches_loop():
    rng = np.random.default_rng(0)
    p = _random_probs(rng, (7, 4))
    p[0] = [1, 0, 0, 0]  # 0 log 0 = 0
    expected = [-sum(q * math.log(q) for q in row if q > 0) for row in p]
    assert_allclose(entropy_scores(p).numpy(), expected, rtol=1e-12)


def test_margin_and_least_confidence_match_sorting():
    rng = np.random.default_rng(1)
    p = _random_probs(rng, (9, 5))
    s = np.sort(p, axis=1)[:, ::-1]
    assert_allclose(margin_scores(p).numpy(), 1 - (s[:, 0] - s[:, 1]), rtol=1e-12)
    assert_allclose(least_confidence_scores(p).numpy(), 1 - s[:, 0], rtol=1e-12)


def test_margin_single_class_and_tie():
    assert_allclose(margin_scores([[1.0], [1.0]]).numpy(), [0.0, 0.0])
    assert_allclose(margin_scores([[0.5, 0.5], [0.9, 0.1]]).numpy(), [1.0, 0.2], atol=1e-12)


def test_bald_matches_direct_formula():
    rng = np.random.default_rng(2)
    p = _random_probs(rng, (6, 5, 3))  # (M, n, K)
    expected = []
    for j in range(5):
        mean = p[:, j].mean(0)
        h_mean = -np.sum(mean * np.log(mean))
        mean_h = np.mean([-np.sum(p[m, j] * np.log(p[m, j])) for m in range(6)])
        expected.append(h_mean - mean_h)
    assert_allclose(bald_scores(p).numpy(), expected, rtol=1e-10)


def test_bald_zero_when_draws_agree_and_log2_for_opposite_certain_draws():
    p = np.array([[[1.0, 0.0], [0.3, 0.7]], [[0.0, 1.0], [0.3, 0.7]]])
    assert_allclose(bald_scores(p).numpy(), [math.log(2), 0.0], atol=1e-12)


def test_scores_accept_tensors_and_keep_device_dtype():
    p = torch.softmax(torch.randn(4, 3, generator=torch.Generator().manual_seed(0)), 1)
    out = entropy_scores(p)
    assert out.dtype == torch.float32 and out.shape == (4,)


@pytest.mark.parametrize("fn", [entropy_scores, margin_scores, least_confidence_scores])
def test_bad_probs_are_rejected(fn):
    with pytest.raises(ValueError, match="must have 2 dimensions"):
        fn(np.ones(3) / 3)
    with pytest.raises(ValueError, match="negative entries"):
        fn([[1.5, -0.5]])
    with pytest.raises(ValueError, match="rows must sum to 1"):
        fn([[2.0, 3.0]])
    with pytest.raises(ValueError, match="NaN or infinity"):
        fn([[np.nan, 1.0]])
    with pytest.raises(ValueError, match="empty"):
        fn(np.zeros((0, 3)))


def test_bald_needs_three_dimensions():
    with pytest.raises(ValueError, match="probs must have 3 dimensions"):
        bald_scores([[0.5, 0.5]])


def test_top_k_breaks_ties_by_lower_index():
    scores = torch.tensor([0.1, 0.5, 0.5, 0.2, 0.5])
    assert _top_k(scores, 2).tolist() == [1, 2]
    assert _top_k(torch.zeros(6), 3).tolist() == [0, 1, 2]


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 30), st.integers(2, 5), st.integers(0, 2**31 - 1), st.data())
def test_entropy_top_k_is_permutation_equivariant(n, k, seed, data):
    rng = np.random.default_rng(seed)
    p = _random_probs(rng, (n, k))
    b = data.draw(st.integers(1, n))
    perm = rng.permutation(n)
    scores = entropy_scores(p)
    sel = _top_k(scores, b).numpy()
    sel_perm = _top_k(entropy_scores(p[perm]), b).numpy()
    # Ties only matter at the cut; with continuous random scores there are none.
    assert len(np.unique(sel)) == b and sel.min() >= 0 and sel.max() < n
    assert sorted(perm[sel_perm].tolist()) == sorted(sel.tolist())
