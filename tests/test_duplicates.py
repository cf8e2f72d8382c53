"""Copies in the pool: no batch spends two labels on one point (issue 15, SPEC section 9)."""
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from sparse_query import SparseApproxSampler
from sparse_query import duplicates as dup
from sparse_query.problem import SparseApproxProblem
from sparse_query.solvers import greedy, proximal_iht

SOLVE = {
    "greedy": lambda p: greedy(p),
    "iht": lambda p: proximal_iht(p),
    "iht-paper": lambda p: proximal_iht(p, prox="paper"),
}


def _distinct_rows(X, idx):
    return len(np.unique(np.asarray(X)[idx], axis=0))


@pytest.fixture(scope="module")
def digits_model():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    lab = np.random.default_rng(0).choice(len(X), 100, replace=False)
    rest = np.setdiff1d(np.arange(len(X)), lab)
    return X, rest, LogisticRegression(max_iter=500).fit(X[lab], y[lab])


@pytest.mark.parametrize("solver,prox", [("greedy", "exact"), ("iht", "exact"), ("iht", "paper")])
@pytest.mark.parametrize("sketch_dim", [None, 16])
def test_issue_case_ten_rows_fifty_copies(digits_model, solver, prox, sketch_dim):
    """Before: IHT returned 10 copies of one row, greedy 8 of 10 rows (5 with sketch_dim=16)."""
    X, rest, model = digits_model
    rng = np.random.default_rng(1)
    pool = np.repeat(X[rest[:10]], 50, axis=0)[rng.permutation(500)]
    s = SparseApproxSampler(solver=solver, prox=prox, sketch_dim=sketch_dim, device="cpu",
                            random_state=0)
    idx = s.fit_query(pool, model, 10)
    assert _distinct_rows(pool, idx) == 10


@pytest.mark.parametrize("solver,prox", [("greedy", "exact"), ("iht", "exact"), ("iht", "paper")])
@pytest.mark.parametrize("sketch_dim", [None, 16])
def test_issue_case_five_rows_hundred_copies_plus_distinct(digits_model, solver, prox, sketch_dim):
    """Before: IHT returned 20 copies of one row, greedy 10 distinct rows."""
    X, rest, model = digits_model
    rng = np.random.default_rng(2)
    pool = np.vstack([np.repeat(X[rest[:5]], 100, axis=0), X[rest[5:100]]])
    pool = pool[rng.permutation(len(pool))]
    s = SparseApproxSampler(solver=solver, prox=prox, sketch_dim=sketch_dim, device="cpu",
                            random_state=0)
    idx = s.fit_query(pool, model, 20)
    assert _distinct_rows(pool, idx) == 20


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.integers(3, 25), st.integers(0, 2**16), st.sampled_from(["greedy", "iht"]),
       st.sampled_from(["exact", "paper"]), st.sampled_from([None, 8]), st.data())
def test_property_sampler_on_digits_with_planted_copies(digits_model, n_distinct, seed, solver,
                                                         prox, sketch_dim, data):
    """The invariant through SparseApproxSampler.fit_query on real rows planted many times."""
    X, rest, model = digits_model
    rng = np.random.default_rng(seed)
    distinct = rest[np.unique(X[rest], axis=0, return_index=True)[1]]  # digits has a few copies
    rows = rng.choice(distinct, n_distinct, replace=False)
    pool = np.repeat(X[rows], rng.integers(1, 30, n_distinct), axis=0)
    pool = pool[rng.permutation(len(pool))]
    b = data.draw(st.integers(1, n_distinct))
    s = SparseApproxSampler(solver=solver, prox=prox, sketch_dim=sketch_dim, device="cpu",
                            random_state=seed)
    idx = s.fit_query(pool, model, b)
    assert _distinct_rows(pool, idx) == b


@st.composite
def planted(draw):
    """A pool of ``n_distinct`` random rows, some planted many times, shuffled."""
    n_distinct = draw(st.integers(2, 12))
    copies = draw(st.lists(st.integers(1, 6), min_size=n_distinct, max_size=n_distinct))
    factored = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    rep = np.repeat(np.arange(n_distinct), copies)
    perm = rng.permutation(len(rep))
    rep = rep[perm]
    scale = draw(st.sampled_from([1.0, 1e-3]))
    sigma = (rng.uniform(0, 1, n_distinct) * draw(st.sampled_from([0.0, 0.3, 3.0])))[rep]
    if factored:
        K, d = draw(st.integers(2, 4)), draw(st.integers(1, 5))
        A = rng.normal(size=(n_distinct, K)) * scale
        H = rng.normal(size=(n_distinct, d))
        emb, E = (A[rep], H[rep]), (A[:, :, None] * H[:, None, :]).reshape(n_distinct, -1)[rep]
    else:
        E = rng.normal(size=(n_distinct, draw(st.integers(1, 5)))) * scale
        E = E[rep]
        emb = E
    b = draw(st.integers(1, len(rep)))
    alpha = draw(st.sampled_from([0.0, 1.0, 100.0]))
    return emb, E, sigma, rep, b, alpha


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(planted(), st.sampled_from(sorted(SOLVE)), st.sampled_from([None, 3]))
def test_property_no_two_copies_while_enough_distinct_rows(data, name, sketch_dim):
    """The invariant of issue 15 through the solver API, with and without a sketch."""
    emb, E, sigma, rep, b, alpha = data
    n_distinct = len(np.unique(rep))
    p = SparseApproxProblem(emb, sigma, b, alpha=alpha, beta=1e-2, device="cpu", dtype="float64")
    assert p.n == n_distinct
    if sketch_dim:
        p = p.sketched(sketch_dim, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = SOLVE[name](p)
    idx = res.indices
    assert len(idx) == b and len(np.unique(idx)) == b and idx.min() >= 0 and idx.max() < len(rep)
    groups = rep[idx]
    if b <= n_distinct:
        assert len(np.unique(groups)) == b  # no two rows with identical embeddings
        assert len(np.unique(E[idx], axis=0)) == b
        assert not [w for w in caught if "distinct rows" in str(w.message)]
    else:
        assert len(np.unique(groups)) == n_distinct  # every distinct row, then copies
        assert any("distinct rows" in str(w.message) for w in caught)
        # copies spread over the groups: no group holds more than one more than another
        # group that still had a copy to give
        counts = np.bincount(rep, minlength=n_distinct)
        taken = np.bincount(groups, minlength=n_distinct)
        short = taken < counts
        if short.any():
            assert taken.max() <= taken[short].min() + 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(planted(), st.sampled_from(["iht", "greedy"]))
def test_property_grouped_objective_is_the_papers_objective_of_the_batch(data, solver):
    """The grouped problem's objective is the paper's objective of the same batch and weights
    on the full pool, copies at weight 0 (the only changes: candidates and sigma counted once)."""
    emb, E, sigma, rep, b, alpha = data
    n_distinct = len(np.unique(rep))
    b = min(b, n_distinct)
    p = SparseApproxProblem(emb, sigma, b, alpha=alpha, beta=1e-2, device="cpu", dtype="float64")
    res = SOLVE[solver](p)
    full = SparseApproxProblem(emb, sigma, b, alpha=alpha, beta=1e-2, device="cpu",
                               dtype="float64", duplicates="keep")
    w = torch.zeros(len(rep), dtype=torch.float64)
    w[torch.as_tensor(res.indices)] = torch.as_tensor(res.weights)
    assert_allclose(full.batch_objective(w, res.indices), res.objective, rtol=1e-9, atol=1e-12)


def test_grouping_matches_exact_row_equality_and_keeps_lowest_index():
    rng = np.random.default_rng(0)
    base_a, base_h = rng.normal(size=(30, 4)), rng.normal(size=(30, 7))
    rep = rng.integers(0, 30, 400)
    A, H = torch.as_tensor(base_a[rep]), torch.as_tensor(base_h[rep])
    sig = torch.as_tensor(rng.uniform(size=30)[rep])
    g = dup.group_duplicates([A, H], sig)
    uniq, first = np.unique(rep, return_index=True)
    assert g.n_groups == len(uniq)
    assert sorted(g.reps.tolist()) == g.reps.tolist() == sorted(first.tolist())
    # members of a group share its representative's base row, and only they do
    assert np.array_equal(rep[g.reps.numpy()[g.inverse.numpy()]], rep)
    assert g.counts.sum() == 400


def test_near_copies_within_the_grid_merge_and_distinct_points_do_not():
    rng = np.random.default_rng(1)
    A = torch.as_tensor(rng.normal(size=(50, 5))).float()
    H = torch.as_tensor(rng.normal(size=(50, 9))).float()
    sig = torch.rand(50, generator=torch.Generator().manual_seed(0))
    # a copy moved by float32 round-off (one unit in the last place of every entry)
    A2 = torch.nextafter(A, torch.full_like(A, np.inf))
    g = dup.group_duplicates([torch.cat([A, A2]), torch.cat([H, H])], torch.cat([sig, sig]))
    assert g.n_groups <= 52  # a value straddling a grid boundary may keep a copy apart
    assert g.n_groups >= 50
    # points 1e-3 apart (relative) are different points
    A3 = A * (1 + 1e-3)
    g = dup.group_duplicates([torch.cat([A, A3]), torch.cat([H, H])], torch.cat([sig, sig]))
    assert g.n_groups == 100
    # a different sigma alone keeps rows apart; rows with a zero factor are not merged
    g = dup.group_duplicates([torch.cat([A, A]), torch.cat([H, H])], torch.cat([sig, sig + 0.5]))
    assert g.n_groups == 100
    Z = torch.zeros(50, 5)
    g = dup.group_duplicates([Z, H], torch.zeros(50))
    assert g.n_groups == 50


def test_a_hash_collision_never_merges_distinct_rows(monkeypatch):
    rng = np.random.default_rng(2)
    rep = rng.integers(0, 10, 60)
    E = torch.as_tensor(rng.normal(size=(10, 3))[rep])
    sig = torch.zeros(60, dtype=torch.float64)
    monkeypatch.setattr(dup, "_combine", lambda keys: torch.zeros(keys.shape[0], dtype=torch.int64))
    g = dup.group_duplicates([E], sig)  # every row collides; verification splits them
    # no wrong merge: each group holds copies of one base row only
    assert np.all(rep[g.reps.numpy()[g.inverse.numpy()]] == rep)
    assert g.n_groups >= 10


def test_large_pool_grouping_hashes_wide_factor_only_for_candidates(monkeypatch):
    """A pool without copies of its first block never touches the wide block H."""
    n = 5000
    A = torch.randn(n, 10, generator=torch.Generator().manual_seed(0))
    H = torch.randn(n, 64, generator=torch.Generator().manual_seed(1))
    seen = []
    orig = dup._hash_block

    def spy(x, bits, seed):
        seen.append(x.shape)
        return orig(x, bits, seed)

    monkeypatch.setattr(dup, "_hash_block", spy)
    g = dup.group_duplicates([A, H], torch.zeros(n), chunk_size=2048)
    assert g.n_groups == n and not g.has_copies
    assert all(shape[1] == 11 for shape in seen)  # only A and sigma were hashed


def test_fill_spreads_copies_over_groups():
    inverse = torch.tensor([0, 0, 0, 1, 2, 2, 0, 1])
    reps = torch.tensor([0, 3, 4])
    counts = torch.bincount(inverse)
    g = dup.DuplicateGroups(reps=reps, counts=counts, inverse=inverse)
    out = g.fill(torch.arange(3), 7).tolist()
    assert out[:3] == [0, 3, 4]
    assert out[3:] == [1, 7, 5, 2]  # second copies: group 0 (largest) first, then 1, 2; then 0
    assert len(set(out)) == 7


def test_duplicates_keep_is_the_papers_problem_and_bad_value_raises():
    E = np.repeat(np.eye(3), 4, axis=0)
    p = SparseApproxProblem(E, np.ones(12), 3, device="cpu", duplicates="keep")
    assert p.n == 12 and p.candidates is None
    q = SparseApproxProblem(E, np.ones(12), 3, device="cpu")
    assert q.n == 3 and q.candidates.tolist() == [0, 4, 8]
    with pytest.raises(ValueError, match="duplicates='merge'.*'group'.*'keep'"):
        SparseApproxProblem(E, np.ones(12), 3, device="cpu", duplicates="merge")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA; none on this machine")
def test_grouping_on_cuda_matches_cpu():
    rng = np.random.default_rng(3)
    rep = rng.integers(0, 20, 300)
    A, H = rng.normal(size=(20, 4))[rep], rng.normal(size=(20, 6))[rep]
    cpu = SparseApproxProblem((A, H), np.zeros(300), 10, device="cpu")
    gpu = SparseApproxProblem((A, H), np.zeros(300), 10, device="cuda")
    assert cpu.candidates.tolist() == gpu.candidates.cpu().tolist()
    assert greedy(cpu).indices.tolist() == greedy(gpu).indices.tolist()
