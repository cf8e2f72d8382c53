"""BADGE k-means++: first centre, D^2 sampling without repeats, factored distances, seeding."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from sparse_query.baselines import badge_kmeanspp
from sparse_query.baselines.badge import _factored_sqdist


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _factors(seed, n, K=3, d=4):
    g = _gen(seed)
    return (torch.randn(n, K, generator=g, dtype=torch.float64),
            torch.randn(n, d, generator=g, dtype=torch.float64))


def test_factored_distances_equal_dense():
    a, h = _factors(0, 12)
    dense = (a[:, :, None] * h[:, None, :]).reshape(12, -1)
    sq = (a * a).sum(1) * (h * h).sum(1)
    for c in (0, 5, 11):
        want = ((dense - dense[c]) ** 2).sum(1)
        got = _factored_sqdist(a, h, sq, a[c], h[c], sq[c])
        assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-12)
        assert float(got[c]) == 0.0


def test_first_centre_is_the_largest_norm_point():
    a, h = _factors(1, 30)
    norms = (a * a).sum(1) * (h * h).sum(1)
    for seed in range(3):
        assert int(badge_kmeanspp(a, h, 4, generator=_gen(seed)).indices[0]) == int(norms.argmax())


def test_first_centre_ties_go_to_the_lower_index():
    a = torch.tensor([[0.1, -0.1], [0.5, -0.5], [0.5, -0.5], [0.2, -0.2]])
    assert int(badge_kmeanspp(a, torch.ones(4, 2), 1, generator=_gen()).indices[0]) == 1


def test_same_seed_same_batch_different_seeds_differ():
    a, h = _factors(2, 200)
    runs = [badge_kmeanspp(a, h, 10, generator=_gen(s)).indices.tolist() for s in range(4)]
    assert runs[0] == badge_kmeanspp(a, h, 10, generator=_gen(0)).indices.tolist()
    assert len({tuple(r) for r in runs}) > 1


def test_second_centre_is_drawn_proportionally_to_d2():
    a = torch.tensor([[3.0], [1.0], [2.0], [2.5]], dtype=torch.float64)
    h = torch.ones(4, 1, dtype=torch.float64)
    # first centre: index 0 (norm 3); D^2 = [0, 4, 1, 0.25] -> probabilities 4/5.25, 1/5.25, ...
    g = _gen(0)
    counts = np.zeros(4)
    for _ in range(2000):
        counts[int(badge_kmeanspp(a, h, 2, generator=g).indices[1])] += 1
    assert counts[0] == 0
    assert_allclose(counts / 2000, [0, 4 / 5.25, 1 / 5.25, 0.25 / 5.25], atol=0.04)


def test_copies_of_a_centre_are_never_drawn_while_others_remain():
    a, h = _factors(3, 5)
    a = torch.cat([a, a[[0, 1, 2]].repeat(10, 1)])  # 30 exact copies of the first 3 points
    h = torch.cat([h, h[[0, 1, 2]].repeat(10, 1)])
    for seed in range(5):
        idx = badge_kmeanspp(a, h, 5, generator=_gen(seed)).indices.tolist()
        assert len(set(idx)) == 5
        # the 5 chosen are 5 distinct embeddings: only one index per duplicate group
        groups = {i if i < 5 else (i - 5) % 3 for i in idx}
        assert len(groups) == 5


@pytest.mark.parametrize("b", [4, 7, 10])
def test_more_instances_than_distinct_points_fill_without_repeats(b):
    a, h = _factors(4, 3)
    a, h = a.repeat(4, 1)[:10], h.repeat(4, 1)[:10]  # 10 rows, 3 distinct embeddings
    with pytest.warns(UserWarning, match="drawn uniformly"):
        res = badge_kmeanspp(a, h, b, generator=_gen(0))
    idx = res.indices.tolist()
    assert len(set(idx)) == b and min(idx) >= 0 and max(idx) < 10
    assert len({i % 3 for i in idx[:3]}) == 3  # the 3 distinct embeddings come first


def test_all_zero_embeddings_and_n_instances_equal_pool_size():
    a = torch.zeros(6, 3)
    h = torch.ones(6, 2)
    with pytest.warns(UserWarning, match="drawn uniformly"):
        res = badge_kmeanspp(a, h, 6, generator=_gen(0))
    assert sorted(res.indices.tolist()) == list(range(6))
    assert int(res.indices[0]) == 0  # no centre at the origin: the first is the first max


def test_n_instances_one():
    a, h = _factors(5, 7)
    assert badge_kmeanspp(a, h, 1, generator=_gen()).indices.shape == (1,)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 25), st.integers(0, 2**31 - 1), st.data())
def test_first_centre_is_permutation_equivariant_and_batches_valid(n, seed, data):
    a, h = _factors(seed % 1000, n)
    b = data.draw(st.integers(1, n))
    perm = torch.as_tensor(np.random.default_rng(seed).permutation(n))
    res = badge_kmeanspp(a, h, b, generator=_gen(seed))
    res_p = badge_kmeanspp(a[perm], h[perm], b, generator=_gen(seed))
    assert int(perm[res_p.indices[0]]) == int(res.indices[0])
    for r in (res, res_p):
        idx = r.indices.tolist()
        assert len(set(idx)) == b and min(idx) >= 0 and max(idx) < n


def test_bad_parameters():
    a, h = _factors(6, 5)
    with pytest.raises(ValueError, match="a has 5 rows but h has 4"):
        badge_kmeanspp(a, h[:4], 2)
    with pytest.raises(ValueError, match="n_instances=6 must be <= 5"):
        badge_kmeanspp(a, h, 6)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        badge_kmeanspp(a, h, 2, generator=np.random.default_rng(0))
    with pytest.raises(ValueError, match="h must have 2 dimensions"):
        badge_kmeanspp(a, h[:, 0], 2)
    with pytest.raises(ValueError, match="device='tpu'"):
        badge_kmeanspp(a, h, 2, device="tpu")


@pytest.mark.gpu
def test_cuda_first_centre_and_validity():
    a, h = _factors(7, 50)
    res = badge_kmeanspp(a, h, 8, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    assert int(res.indices[0]) == int(((a * a).sum(1) * (h * h).sum(1)).argmax())
    assert len(set(res.indices.tolist())) == 8
