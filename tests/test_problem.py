"""The objective, its gradient, line search, de-bias and the operators, against direct maths."""
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy.optimize import minimize_scalar

from sparse_query.problem import (
    DenseOperator,
    FactoredOperator,
    SparseApproxProblem,
    as_operator,
    sketch,
)


def _rand(n=12, K=3, d=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, K, generator=g, dtype=dtype)
    H = torch.randn(n, d, generator=g, dtype=dtype)
    sigma = torch.rand(n, generator=g, dtype=dtype)
    return A, H, sigma


def _explicit_f1(E, w, b, beta):
    n = E.shape[0]
    v = E.mean(0)
    phi = E.T / b
    r = v - phi @ w
    return float(r @ r + beta * ((w - 1) ** 2).sum())


def test_factored_operator_matches_dense_products():
    A, H, _ = _rand(n=30, K=4, d=5)
    fac = FactoredOperator(A, H, chunk_size=7)
    den = DenseOperator(fac.dense(), chunk_size=7)
    E = fac.dense()
    assert E.shape == (30, 20)
    assert_allclose(E[3].reshape(4, 5), torch.outer(A[3], H[3]))
    g = torch.Generator().manual_seed(1)
    u = torch.randn(30, generator=g, dtype=torch.float64)
    R = torch.randn(4, 5, generator=g, dtype=torch.float64)
    idx = torch.tensor([4, 0, 17])
    assert_allclose(fac.combine(u).reshape(-1), den.combine(u), rtol=1e-12)
    assert_allclose(fac.combine_rows(idx, u[idx]).reshape(-1), den.combine_rows(idx, u[idx]), rtol=1e-12)
    assert_allclose(fac.project(R), den.project(R.reshape(-1)), rtol=1e-12)
    assert_allclose(fac.project_rows(R, idx), den.project_rows(R.reshape(-1), idx), rtol=1e-12)
    assert_allclose(fac.gram_columns(idx), E @ E[idx].T, rtol=1e-12)
    assert_allclose(fac.gram_block(idx, idx[:2]), E[idx] @ E[idx[:2]].T, rtol=1e-12)
    assert_allclose(fac.sqnorms(), (E * E).sum(1), rtol=1e-12)
    assert_allclose(fac.mean().reshape(-1), E.mean(0), rtol=1e-12)


def test_f1_and_f2_match_the_formula():
    A, H, sigma = _rand()
    p = SparseApproxProblem((A, H), sigma, 4, alpha=0.7, beta=0.3, device="cpu", dtype="float64")
    E = p.op.dense()
    w = torch.zeros(12, dtype=torch.float64)
    w[[1, 5, 7]] = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    assert_allclose(p.f1(w), _explicit_f1(E, w, 4, 0.3), rtol=1e-12)
    assert_allclose(p.f2(w), -0.7 * float((sigma[[1, 5, 7]] ** 2).sum()), rtol=1e-12)
    assert_allclose(p.f(w), p.f1(w) + p.f2(w))
    # a chosen index with zero weight still counts as labelled in the batch objective
    assert_allclose(
        p.batch_objective(w, [1, 5, 7, 9]),
        p.f1(w) - 0.7 * float((sigma[[1, 5, 7, 9]] ** 2).sum()),
        rtol=1e-12,
    )


@pytest.mark.parametrize("factored", [True, False])
def test_grad_f1_matches_autograd(factored):
    A, H, sigma = _rand(n=10, seed=3)
    emb = (A, H) if factored else FactoredOperator(A, H).dense()
    p = SparseApproxProblem(emb, sigma, 3, alpha=1.0, beta=0.2, device="cpu", dtype="float64")
    E = p.op.dense()
    w = torch.rand(10, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    w[[0, 4]] = 0.0
    wg = w.clone().requires_grad_(True)
    v = E.mean(0)
    f = ((v - (E.T / 3) @ wg) ** 2).sum() + 0.2 * ((wg - 1) ** 2).sum()
    f.backward()
    torch.testing.assert_close(p.grad_f1(w), wg.grad)


def test_line_search_is_the_exact_1d_minimiser():
    A, H, sigma = _rand(n=15, seed=4)
    p = SparseApproxProblem((A, H), sigma, 5, alpha=1.0, beta=0.05, device="cpu", dtype="float64")
    g = torch.Generator().manual_seed(9)
    for _ in range(5):
        w = torch.rand(15, generator=g, dtype=torch.float64)
        u = torch.randn(15, generator=g, dtype=torch.float64)
        mu = p.line_search(u, w)
        res = minimize_scalar(lambda m: p.f1(w - m * u), bracket=(-10, 10), tol=1e-12)
        assert_allclose(mu, res.x, rtol=1e-6, atol=1e-8)
        assert p.f1(w - mu * u) <= res.fun + 1e-10


def test_line_search_of_zero_direction_is_zero():
    A, H, sigma = _rand()
    p = SparseApproxProblem((A, H), sigma, 4, alpha=1.0, beta=0.0, device="cpu", dtype="float64")
    assert p.line_search(torch.zeros(12, dtype=torch.float64), torch.ones(12, dtype=torch.float64)) == 0.0
    # all-zero embedding and beta = 0: denominator 0 for every direction
    z = SparseApproxProblem(np.zeros((5, 2)), np.zeros(5), 2, beta=0.0, device="cpu",
                            duplicates="keep")  # the paper's problem: five candidate rows
    assert z.line_search(torch.ones(5), torch.zeros(5)) == 0.0


def test_debias_does_not_increase_f1_and_stays_on_support():
    A, H, sigma = _rand(n=20, seed=6)
    p = SparseApproxProblem((A, H), sigma, 5, alpha=1.0, beta=0.1, device="cpu", dtype="float64")
    w = torch.zeros(20, dtype=torch.float64)
    support = torch.tensor([2, 3, 11, 19])
    w[support] = torch.tensor([0.3, 1.5, 0.7, 2.0], dtype=torch.float64)
    w2 = p.debias(w, support)
    assert p.f1(w2) <= p.f1(w) + 1e-12
    off = torch.ones(20, dtype=torch.bool)
    off[support] = False
    assert torch.all(w2[off] == 0)
    # and it is the exact line search along the in-support gradient
    u = torch.zeros(20, dtype=torch.float64)
    u[support] = p.grad_f1(w)[support]
    torch.testing.assert_close(w2, w - p.line_search(u, w) * u)


def test_sketch_preserves_inner_products_in_expectation():
    A, H, _ = _rand(n=6, K=3, d=5, seed=7)
    fac = FactoredOperator(A, H)
    E = fac.dense()
    exact = E @ E.T
    acc = torch.zeros_like(exact)
    reps = 200
    g = torch.Generator().manual_seed(0)
    for _ in range(reps):
        S = sketch(fac, 64, generator=g).dense()
        acc += S @ S.T
    rel = (acc / reps - exact).abs().max() / exact.abs().max()
    assert rel < 0.05
    dense_sk = sketch(DenseOperator(E), 2000, generator=torch.Generator().manual_seed(1)).dense()
    assert_allclose((dense_sk @ dense_sk.T).numpy(), exact.numpy(), atol=0.15 * float(exact.abs().max()))


def test_sketch_is_seeded():
    A, H, _ = _rand(n=6, seed=8)
    fac = FactoredOperator(A, H)
    s1 = sketch(fac, 16, generator=torch.Generator().manual_seed(3)).dense()
    s2 = sketch(fac, 16, generator=torch.Generator().manual_seed(3)).dense()
    s3 = sketch(fac, 16, generator=torch.Generator().manual_seed(4)).dense()
    torch.testing.assert_close(s1, s2)
    assert not torch.allclose(s1, s3)


# -- bad input ----------------------------------------------------------------------------
def test_bad_b():
    with pytest.raises(ValueError, match=r"b=0 must be >= 1"):
        SparseApproxProblem(np.ones((5, 2)), np.ones(5), 0, device="cpu")
    with pytest.raises(ValueError, match=r"b=6 must be <= 5.*pool size 5"):
        SparseApproxProblem(np.ones((5, 2)), np.ones(5), 6, device="cpu")
    with pytest.raises(TypeError, match=r"b must be an integer"):
        SparseApproxProblem(np.ones((5, 2)), np.ones(5), 2.5, device="cpu")


def test_bad_embedding_and_sigma():
    E = np.ones((5, 2))
    bad = E.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"embedding contains NaN or infinity"):
        SparseApproxProblem(bad, np.ones(5), 2, device="cpu")
    with pytest.raises(ValueError, match=r"factor H contains NaN"):
        SparseApproxProblem((np.ones((5, 2)), np.full((5, 3), np.inf)), np.ones(5), 2, device="cpu")
    with pytest.raises(ValueError, match=r"sigma contains NaN"):
        SparseApproxProblem(E, np.array([1, 1, np.nan, 1, 1.0]), 2, device="cpu")
    with pytest.raises(ValueError, match=r"sigma must be non-negative; sigma\[3\]"):
        SparseApproxProblem(E, np.array([1, 1, 1, -1, 1.0]), 2, device="cpu")
    with pytest.raises(ValueError, match=r"sigma must have shape \(5,\)"):
        SparseApproxProblem(E, np.ones(4), 2, device="cpu")
    with pytest.raises(ValueError, match=r"same number of rows"):
        SparseApproxProblem((np.ones((5, 2)), np.ones((4, 3))), np.ones(5), 2, device="cpu")
    with pytest.raises(ValueError, match=r"must be a 2-D array"):
        SparseApproxProblem(np.ones(5), np.ones(5), 2, device="cpu")
    with pytest.raises(TypeError, match=r"embedding must hold numbers"):
        SparseApproxProblem(np.array([["a", "b"]] * 5), np.ones(5), 2, device="cpu")


def test_bad_alpha_beta_device_dtype():
    E, s = np.ones((5, 2)), np.ones(5)
    with pytest.raises(ValueError, match=r"alpha=-1.0 must be >= 0"):
        SparseApproxProblem(E, s, 2, alpha=-1, device="cpu")
    with pytest.raises(ValueError, match=r"beta=nan must be finite"):
        SparseApproxProblem(E, s, 2, beta=float("nan"), device="cpu")
    with pytest.raises(ValueError, match=r"device='tpu' is not a device"):
        SparseApproxProblem(E, s, 2, device="tpu")
    with pytest.raises(ValueError, match=r"dtype='float16' is not supported"):
        SparseApproxProblem(E, s, 2, device="cpu", dtype="float16")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"CUDA is not available"):
            SparseApproxProblem(E, s, 2, device="cuda")


def test_as_operator_keeps_factored_form():
    A, H, _ = _rand()
    op = as_operator((A.numpy(), H.numpy()), device=torch.device("cpu"), dtype="float32")
    assert isinstance(op, FactoredOperator)
    assert op.A.dtype == torch.float32
