"""BatchBALD: exact joint entropy vs enumeration, greedy vs brute force, sampled estimator."""
import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from sparse_query.baselines import batchbald, joint_entropy


def _probs(seed, M, n, K, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(scale * torch.randn(M, n, K, generator=g, dtype=torch.float64), -1)


def _brute_joint_entropy(p, idx):
    """H[y_idx] by enumerating every label configuration (p: (M, n, K) numpy)."""
    M, _, K = p.shape
    h = 0.0
    for config in itertools.product(range(K), repeat=len(idx)):
        prob = np.mean([np.prod([p[m, j, c] for j, c in zip(idx, config)]) for m in range(M)])
        if prob > 0:
            h -= prob * math.log(prob)
    return h


def _brute_mi(p, idx):
    cond = sum(np.mean([-np.sum(p[m, j] * np.log(p[m, j])) for m in range(p.shape[0])])
               for j in idx)
    return _brute_joint_entropy(p, idx) - cond


@pytest.mark.parametrize("k", [1, 2, 3])
def test_exact_joint_entropy_matches_enumeration(k):
    p = _probs(0, 5, k, 3)
    assert_allclose(float(joint_entropy(p)), _brute_joint_entropy(p.numpy(), range(k)),
                    rtol=1e-12)


def test_sampled_joint_entropy_is_close_to_exact():
    p = _probs(1, 6, 4, 3)
    exact = float(joint_entropy(p))
    est = float(joint_entropy(p, n_samples=20000, generator=torch.Generator().manual_seed(0)))
    assert_allclose(est, exact, rtol=0.02)


def test_greedy_matches_brute_force_greedy():
    p = _probs(2, 6, 7, 3)
    res = batchbald(p, 3, n_configurations=10**6)
    pn = p.numpy()
    chosen, prev = [], 0.0
    for _ in range(3):
        gains = {i: _brute_mi(pn, chosen + [i]) for i in range(7) if i not in chosen}
        best = max(gains, key=lambda i: (gains[i], -i))
        assert int(res.indices[len(chosen)]) == best
        assert_allclose(float(res.scores[len(chosen)]), gains[best] - prev, rtol=1e-9, atol=1e-12)
        prev = gains[best]
        chosen.append(best)
    # the gains add up to the batch's joint mutual information
    assert_allclose(float(res.scores.sum()), _brute_mi(pn, chosen), rtol=1e-9)


def test_first_pick_is_bald_argmax():
    from sparse_query.baselines import bald_scores

    p = _probs(3, 8, 30, 4)
    res = batchbald(p, 1)
    assert int(res.indices[0]) == int(torch.argmax(bald_scores(p)))
    assert_allclose(float(res.scores[0]), float(bald_scores(p).max()), rtol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sampled_configurations_track_exact_mutual_information(seed):
    # K=10, n_configurations=2000: exact while 10^|A| <= 2000 (up to 3 chosen points), so the
    # 5th pick is scored with 2000 sampled configurations of the 4 chosen points.
    p = _probs(4, 6, 15, 10, scale=1.0)
    exact = batchbald(p, 5, n_configurations=10**6)
    sampled = batchbald(p, 5, n_configurations=2000,
                        generator=torch.Generator().manual_seed(seed))
    assert sampled.indices[:4].tolist() == exact.indices[:4].tolist()
    # The cumulative gains estimate the joint MI of the sampled run's own batch.
    sub = p[:, sampled.indices]
    truth = float(joint_entropy(sub)) - float((-torch.special.xlogy(sub, sub).sum(-1)).mean(0).sum())
    assert_allclose(float(sampled.scores.sum()), truth, rtol=0.05)


def test_sampled_is_seeded():
    p = _probs(5, 6, 40, 4)
    a = batchbald(p, 8, n_configurations=20, generator=torch.Generator().manual_seed(3))
    b = batchbald(p, 8, n_configurations=20, generator=torch.Generator().manual_seed(3))
    assert a.indices.tolist() == b.indices.tolist()
    torch.testing.assert_close(a.scores, b.scores)


@pytest.mark.parametrize("b", [1, 5, 9])
def test_uniform_probabilities_give_distinct_indices(b):
    p = torch.full((4, 9, 3), 1 / 3, dtype=torch.float64)
    res = batchbald(p, b, n_configurations=8)
    assert sorted(res.indices.tolist()) == list(range(b))  # all gains 0: lower index first
    assert_allclose(res.scores.numpy(), 0.0, atol=1e-12)


def test_long_batches_do_not_underflow():
    p = _probs(6, 5, 60, 10, scale=4.0)
    res = batchbald(p, 40, n_configurations=50, generator=torch.Generator().manual_seed(0))
    assert len(set(res.indices.tolist())) == 40
    assert torch.isfinite(res.scores).all()


def test_bad_parameters():
    p = _probs(7, 3, 5, 2)
    with pytest.raises(ValueError, match="n_configurations=0 must be >= 1"):
        batchbald(p, 2, n_configurations=0)
    with pytest.raises(TypeError, match="n_configurations must be an integer"):
        batchbald(p, 2, n_configurations=2.5)
    with pytest.raises(ValueError, match="n_instances=6 must be <= 5"):
        batchbald(p, 6)
    with pytest.raises(ValueError, match="n_instances=0 must be >= 1"):
        batchbald(p, 0)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        batchbald(p, 2, generator=0)
    with pytest.raises(ValueError, match="probs must have 3 dimensions"):
        batchbald(p[0], 2)
    with pytest.raises(ValueError, match="device='tpu'"):
        batchbald(p, 2, device="tpu")
    with pytest.raises(ValueError, match="n_samples=0 must be >= 1"):
        joint_entropy(p, n_samples=0)


@pytest.mark.gpu
def test_cuda_matches_cpu():
    p = _probs(8, 5, 30, 3)
    cpu = batchbald(p, 4, n_configurations=10**6)
    gpu = batchbald(p, 4, n_configurations=10**6, device="cuda",
                    generator=torch.Generator(device="cuda").manual_seed(0))
    assert gpu.indices.cpu().tolist() == cpu.indices.tolist()


def test_chunked_pool_gives_the_same_batch(monkeypatch):
    import importlib

    bb_module = importlib.import_module("sparse_query.baselines.batch_bald")

    p = _probs(9, 5, 40, 3)
    want = batchbald(p, 6, n_configurations=10**6)
    monkeypatch.setattr(bb_module, "_CHUNK_ELEMENTS", 10)  # chunks of a few candidates
    got = batchbald(p, 6, n_configurations=10**6)
    assert got.indices.tolist() == want.indices.tolist()
    torch.testing.assert_close(got.scores, want.scores)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.integers(1, 4), st.integers(2, 4), st.integers(0, 2**31 - 1),
       st.data())
def test_exactly_b_distinct_in_range(n, M, K, seed, data):
    p = _probs(seed % 1000, M, n, K)
    b = data.draw(st.integers(1, n))
    n_conf = data.draw(st.integers(1, 50))
    res = batchbald(p, b, n_configurations=n_conf, generator=torch.Generator().manual_seed(seed))
    idx = res.indices.tolist()
    assert len(idx) == b and len(set(idx)) == b and min(idx) >= 0 and max(idx) < n
