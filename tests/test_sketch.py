"""The random sketch of SPEC section 8 (``problem.sketch``) and solvers on sketched problems."""
import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from sparse_query.problem import DenseOperator, FactoredOperator, SparseApproxProblem, sketch
from sparse_query.solvers import greedy, proximal_iht


def _factored(n=400, K=6, d=20, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, K, generator=g, dtype=dtype) * 0.3
    H = torch.randn(n, d, generator=g, dtype=dtype)
    sigma = torch.rand(n, generator=g, dtype=dtype) / n * 2
    return A, H, sigma


def _sketched(A, H, sigma, b, m, seed, **kw):
    op = sketch(FactoredOperator(A, H), m, generator=torch.Generator().manual_seed(seed))
    return SparseApproxProblem(op, sigma, b, device="cpu", dtype=A.dtype, **kw)


@pytest.mark.parametrize("solver", [proximal_iht, greedy])
@pytest.mark.parametrize("m", [1, 8, 64])
def test_sketched_problem_gives_b_distinct_indices(solver, m):
    A, H, sigma = _factored()
    res = solver(_sketched(A, H, sigma, 30, m, seed=1))
    assert res.indices.shape == (30,) and res.indices.dtype == np.int64
    assert len(np.unique(res.indices)) == 30
    assert res.indices.min() >= 0 and res.indices.max() < 400


def test_same_seed_same_sketch_and_batch():
    A, H, sigma = _factored()
    op = FactoredOperator(A, H)
    s1 = sketch(op, 32, generator=torch.Generator().manual_seed(5))
    s2 = sketch(op, 32, generator=torch.Generator().manual_seed(5))
    s3 = sketch(op, 32, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(s1.E, s2.E, rtol=0, atol=0)
    assert not torch.allclose(s1.E, s3.E)
    r1 = proximal_iht(_sketched(A, H, sigma, 20, 32, seed=5))
    r2 = proximal_iht(_sketched(A, H, sigma, 20, 32, seed=5))
    np.testing.assert_array_equal(r1.indices, r2.indices)
    np.testing.assert_array_equal(r1.weights, r2.weights)


def test_sketch_does_not_depend_on_chunking_or_device_of_draws():
    A, H, _ = _factored(n=300)
    a = sketch(FactoredOperator(A, H, chunk_size=7), 16, generator=torch.Generator().manual_seed(2))
    b = sketch(FactoredOperator(A, H, chunk_size=300), 16,
               generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a.E, b.E)
    assert a.E.shape == (300, 16)


class _MaxAlloc(TorchDispatchMode):
    """Records the largest tensor any torch op produces while active."""

    def __init__(self):
        super().__init__()
        self.max_numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.max_numel = max(self.max_numel, t.numel())
        return out


def test_factored_sketch_never_materialises_the_kd_embedding():
    # K * d = 40,000 per row: the n x K*d matrix would be 100M floats (400 MB)
    n, K, d, m, chunk = 2500, 20, 2000, 16, 64
    g = torch.Generator().manual_seed(0)
    A = torch.randn(n, K, generator=g)
    H = torch.randn(n, d, generator=g)
    op = FactoredOperator(A, H, chunk_size=chunk)
    with _MaxAlloc() as rec:
        out = sketch(op, m, generator=torch.Generator().manual_seed(1))
    assert out.E.shape == (n, m)
    # the largest temporary is a chunk of H's rows or the (d, m) Gaussian, never n x K*d
    assert rec.max_numel <= max(n * m, chunk * d, d * m)
    assert rec.max_numel < n * K * d / 100
    # and the sketch agrees with the explicit Khatri-Rao formula on a few rows
    gen = torch.Generator().manual_seed(1)
    om1 = torch.randn((K, m), generator=gen, dtype=torch.float64).float()
    om2 = torch.randn((d, m), generator=gen, dtype=torch.float64).float()
    rows = torch.tensor([0, 1234, n - 1])
    expected = (A[rows] @ om1) * (H[rows] @ om2) / m ** 0.5
    torch.testing.assert_close(out.E[rows], expected, rtol=1e-5, atol=1e-5)


def test_sketch_preserves_inner_products_in_expectation():
    A, H, _ = _factored(n=5, K=4, d=6, seed=3)
    op = FactoredOperator(A, H)
    exact = op.dense() @ op.dense().T
    gen = torch.Generator().manual_seed(0)
    total = torch.zeros_like(exact)
    for _ in range(400):
        E = sketch(op, 64, generator=gen).E
        total += E @ E.T
    mean = total / 400
    scale = exact.diagonal().sqrt()
    # 400 x 64 draws: the relative error of each averaged inner product is a few percent
    torch.testing.assert_close(mean / scale[:, None] / scale[None, :],
                               exact / scale[:, None] / scale[None, :], atol=0.06, rtol=0)


def test_dense_gaussian_sketch():
    g = torch.Generator().manual_seed(0)
    E = torch.randn(50, 30, generator=g, dtype=torch.float64)
    out = sketch(DenseOperator(E), 12, generator=torch.Generator().manual_seed(4))
    om = torch.randn((30, 12), generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    torch.testing.assert_close(out.E, E @ om / 12 ** 0.5)


def test_sketch_bad_values():
    A, H, _ = _factored(n=10)
    with pytest.raises(ValueError, match="sketch_dim=0 must be >= 1"):
        sketch(FactoredOperator(A, H), 0)
    with pytest.raises(TypeError, match="sketch_dim must be an integer"):
        sketch(FactoredOperator(A, H), 2.5)


def _exact_objective(problem, indices):
    """Exact objective of a batch with its best non-negative weights (NNLS on the support)."""
    from scipy.optimize import nnls

    idx = torch.as_tensor(indices)
    b, beta = problem.b, problem.beta
    Phi = (problem.op.dense()[idx].T / b).double().numpy()
    v = problem.v.reshape(-1).double().numpy()
    M = np.vstack([Phi, np.sqrt(beta) * np.eye(len(idx))])
    y = np.concatenate([v, np.sqrt(beta) * np.ones(len(idx))])
    w_s, _ = nnls(M, y)
    w = torch.zeros(problem.n, dtype=problem.dtype)
    w[idx] = torch.as_tensor(w_s, dtype=problem.dtype)
    return problem.batch_objective(w, idx)


def test_sketched_batch_approaches_the_exact_one_as_sketch_dim_grows():
    # random isotropic factors are the hard case for the sketch (no dominant directions):
    # m = 320 here, and a Khatri-Rao sketch needs m' well above m to match the exact batch
    A, H, sigma = _factored(n=600, K=8, d=40, seed=4)
    b = 25
    exact = SparseApproxProblem((A, H), sigma, b, device="cpu", dtype="float64")
    f_exact = _exact_objective(exact, proximal_iht(exact).indices)
    rng = np.random.default_rng(0)
    f_random = np.median([_exact_objective(exact, rng.choice(600, b, replace=False))
                          for _ in range(10)])
    assert f_exact < f_random

    def closed(m):  # fraction of the random-to-exact gap the sketched batch closes
        f = np.mean([_exact_objective(exact, proximal_iht(_sketched(A, H, sigma, b, m, seed=s)).indices)
                     for s in range(3)])
        return (f_random - f) / (f_random - f_exact)

    small, large = closed(32), closed(2048)
    assert large >= 0.8
    assert small < large
