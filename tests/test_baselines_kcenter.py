"""k-Center greedy: 2-approximation, labeled-set initialisation, determinism, chunked distances."""
import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from sparse_query.baselines import kcenter_greedy
from sparse_query.baselines import kcenter as kc


def _cover_radius(x, centres):
    d = np.sqrt(((x[:, None, :] - x[None, centres, :]) ** 2).sum(-1))
    return d.min(1).max()


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 9), st.integers(1, 3), st.integers(0, 2**31 - 1), st.data())
def test_two_approximation_against_brute_force(n, k, seed, data):
    k = min(k, n)
    x = np.random.default_rng(seed).normal(size=(n, 2))
    first = data.draw(st.integers(0, n - 1))  # any first centre: the bound holds for all
    res = kcenter_greedy(x, k, first=first)
    assert int(res.indices[0]) == first
    greedy = _cover_radius(x, res.indices.numpy())
    opt = min(_cover_radius(x, list(c)) for c in itertools.combinations(range(n), k))
    assert greedy <= 2 * opt + 1e-9


def test_default_first_centre_is_nearest_the_mean():
    x = np.array([[0.0, 0.0], [4.0, 0.0], [2.2, 0.0], [2.0, 0.1]])
    res = kcenter_greedy(x, 2)
    assert int(res.indices[0]) == int(np.argmin(((x - x.mean(0)) ** 2).sum(1)))
    assert np.isinf(float(res.scores[0]))


def test_furthest_first_distances_and_order():
    x = np.array([[0.0], [1.0], [10.0], [4.0]])
    res = kcenter_greedy(x, 3, labeled_features=[[0.0]])
    assert res.indices.tolist() == [2, 3, 1]
    assert_allclose(res.scores.numpy(), [10.0, 4.0, 1.0])


def test_never_selects_a_copy_of_a_labeled_point_while_a_farther_point_exists():
    rng = np.random.default_rng(0)
    labeled = rng.normal(size=(5, 3)) * 100
    far = rng.normal(size=(4, 3)) * 0.01  # close to each other, far from no one in particular
    pool = np.concatenate([labeled, labeled + 0.0, far])  # first 10 rows copy labeled points
    res = kcenter_greedy(pool, 4, labeled_features=labeled)
    assert all(i >= 10 for i in res.indices.tolist())


def test_labeled_initialisation_is_chunked(monkeypatch):
    monkeypatch.setattr(kc, "_CHUNK_ELEMENTS", 7)  # forces many tiny chunks of centres
    rng = np.random.default_rng(1)
    pool, labeled = rng.normal(size=(20, 3)), rng.normal(size=(13, 3))
    got = kc._min_sqdist(torch.tensor(pool), torch.tensor((pool ** 2).sum(1)), torch.tensor(labeled))
    want = ((pool[:, None] - labeled[None]) ** 2).sum(-1).min(1)
    assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("b", [1, 3, 6])
def test_all_duplicates_give_distinct_indices_and_warn(b):
    x = np.ones((6, 4))
    if b == 1:
        res = kcenter_greedy(x, b)
    else:
        with pytest.warns(UserWarning, match="coincide with an existing centre"):
            res = kcenter_greedy(x, b)
    assert sorted(res.indices.tolist()) == list(range(b))


def test_pool_entirely_labeled_still_returns_a_batch():
    x = np.arange(12.0).reshape(4, 3)
    with pytest.warns(UserWarning, match="coincide"):
        res = kcenter_greedy(x, 4, labeled_features=x)
    assert sorted(res.indices.tolist()) == [0, 1, 2, 3]


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 25), st.integers(0, 2**31 - 1), st.data())
def test_labeled_start_is_permutation_equivariant(n, seed, data):
    rng = np.random.default_rng(seed)
    x, labeled = rng.normal(size=(n, 3)), rng.normal(size=(3, 3))
    b = data.draw(st.integers(1, n))
    perm = rng.permutation(n)
    a = kcenter_greedy(x, b, labeled).indices.numpy()
    p = kcenter_greedy(x[perm], b, labeled).indices.numpy()
    assert perm[p].tolist() == a.tolist()  # same points, same order


def test_bad_parameters():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="n_instances=5 must be <= 4"):
        kcenter_greedy(x, 5)
    with pytest.raises(ValueError, match="first=4 must be <= 3"):
        kcenter_greedy(x, 1, first=4)
    with pytest.raises(ValueError, match="first=-1 must be >= 0"):
        kcenter_greedy(x, 1, first=-1)
    with pytest.raises(ValueError, match="labeled_features has 3 features but features has 2"):
        kcenter_greedy(x, 1, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="features must have 2 dimensions"):
        kcenter_greedy(np.zeros(4), 1)
    with pytest.raises(ValueError, match="device='tpu'"):
        kcenter_greedy(x, 1, device="tpu")


def test_float32_duplicates_are_exact_zeros():
    x = torch.randn(50, 16, generator=torch.Generator().manual_seed(0)) * 1000
    sq = (x * x).sum(1)
    d = kc._sqdist(x, sq, x, sq)
    assert bool((torch.diagonal(d) == 0).all())


@pytest.mark.gpu
def test_cuda_matches_cpu():
    x = np.random.default_rng(0).normal(size=(40, 5))
    cpu = kcenter_greedy(x, 6, x[:3])
    gpu = kcenter_greedy(x, 6, x[:3], device="cuda")
    assert gpu.indices.cpu().tolist() == cpu.indices.tolist()
