"""The optimisation problem of the paper's Problem 2 (SPEC section 1) and its sub-procedures.

A pool of ``n`` points has expected embeddings ``e_j`` and spreads ``sigma_j``. With

    v   = (1/n) sum_j e_j
    Phi = (1/b) [e_1 ... e_n]

the problem is to find ``w >= 0`` with ``||w||_0 = b`` minimising

    f(w)  = f1(w) + f2(w)
    f1(w) = ||v - Phi w||^2 + beta ||w - 1||^2
    f2(w) = -alpha sum_j 1(w_j > 0) sigma_j^2

The embeddings enter only through a :class:`PoolOperator`, which offers the handful of
products the solvers need (``sum_j u_j e_j``, ``<e_j, r>``, columns of the Gram matrix).
:class:`DenseOperator` holds an ``(n, m)`` matrix; :class:`FactoredOperator` holds
``e_j = a_j (outer) h_j`` as the two factors ``A (n, K)`` and ``H (n, d)`` and never forms the
``n x K*d`` matrix. Both work over the pool in chunks so temporary memory is bounded by the chunk.

This module knows nothing of estimators, modAL or skorch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ._utils import all_finite, check_float, check_int, check_option, resolve_device, resolve_dtype
from .duplicates import group_duplicates

__all__ = [
    "PoolOperator",
    "DenseOperator",
    "FactoredOperator",
    "SparseApproxProblem",
    "SolverResult",
    "as_operator",
    "sketch",
]

DEFAULT_CHUNK = 32768
DUPLICATES = ("group", "keep")


def _as_tensor(x, name, device, dtype):
    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            arr = np.asarray(x)
        except Exception:  # pragma: no cover - exotic input
            raise TypeError(f"{name} must be an array or tensor; got {type(x).__name__}.") from None
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
            raise TypeError(f"{name} must hold numbers; got dtype {arr.dtype}.")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.is_complex():
        raise TypeError(f"{name} must be real; got a complex tensor.")
    t = t.to(device=device, dtype=dtype)
    if not all_finite(t):
        raise ValueError(f"{name} contains NaN or infinity; the problem needs finite numbers.")
    return t


class PoolOperator:
    """The pool's embeddings ``e_1 ... e_n`` seen through the products the solvers need.

    A vector of the embedding space (``v``, ``Phi w``, residuals) is a tensor of shape
    :attr:`space_shape`; ``inner`` is the Euclidean inner product there.
    """

    n: int
    space_shape: tuple
    chunk_size: int

    # products ---------------------------------------------------------------------------
    def combine(self, u: torch.Tensor) -> torch.Tensor:
        """``sum_j u_j e_j`` for a dense weight vector ``u`` of shape ``(n,)``."""
        raise NotImplementedError

    def combine_rows(self, idx: torch.Tensor, vals: torch.Tensor) -> torch.Tensor:
        """``sum_i vals_i e_{idx_i}``: :meth:`combine` for a sparse vector, cost O(len(idx))."""
        raise NotImplementedError

    def project(self, r: torch.Tensor) -> torch.Tensor:
        """``[<e_j, r>]_j`` of shape ``(n,)``: one pass over the pool."""
        raise NotImplementedError

    def project_rows(self, r: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """``[<e_j, r>]_{j in idx}``, cost O(len(idx))."""
        raise NotImplementedError

    def gram_columns(self, idx: torch.Tensor) -> torch.Tensor:
        """``[<e_j, e_i>]`` of shape ``(n, len(idx))``."""
        raise NotImplementedError

    def gram_block(self, idx_rows: torch.Tensor, idx_cols: torch.Tensor) -> torch.Tensor:
        """``[<e_i, e_k>]`` for ``i`` in ``idx_rows`` and ``k`` in ``idx_cols``."""
        raise NotImplementedError

    def sqnorms(self) -> torch.Tensor:
        """``||e_j||^2`` of shape ``(n,)``."""
        raise NotImplementedError

    def dense(self) -> torch.Tensor:
        """The ``(n, m)`` matrix of embeddings (for tests and small pools only)."""
        raise NotImplementedError

    def take(self, idx) -> "PoolOperator":
        """The operator restricted to the rows ``idx`` (a permutation or subset of the pool)."""
        raise NotImplementedError

    def row_blocks(self):
        """What determines each row's embedding, as a list of ``(n, k_i)`` tensors, cheapest
        first, or None.

        Used only to find copies (:mod:`sparse_query.duplicates`): rows equal in every block
        have equal embeddings. The default, None, means the operator cannot tell, and every
        row is treated as distinct (the paper's problem). Views, not copies.
        """
        return None

    # costs per pool row, used by greedy to choose how to keep its gradient up to date -----
    @property
    def project_cost(self) -> int:
        raise NotImplementedError

    @property
    def column_cost(self) -> int:
        raise NotImplementedError

    # helpers ----------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        raise NotImplementedError

    @property
    def dtype(self) -> torch.dtype:
        raise NotImplementedError

    @staticmethod
    def inner(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (x * y).sum()

    def mean(self) -> torch.Tensor:
        """``(1/n) sum_j e_j``."""
        return self.combine(torch.full((self.n,), 1.0 / self.n, dtype=self.dtype, device=self.device))

    def _chunks(self):
        for start in range(0, self.n, self.chunk_size):
            yield start, min(start + self.chunk_size, self.n)


class DenseOperator(PoolOperator):
    """Embeddings given as a matrix ``E`` of shape ``(n, m)``, row ``j`` is ``e_j``."""

    def __init__(self, E: torch.Tensor, *, chunk_size: int = DEFAULT_CHUNK):
        if E.ndim != 2:
            raise ValueError(f"embedding must be 2-D (n, m); got shape {tuple(E.shape)}.")
        self.E = E
        self.n = E.shape[0]
        self.space_shape = (E.shape[1],)
        self.chunk_size = chunk_size

    @property
    def device(self):
        return self.E.device

    @property
    def dtype(self):
        return self.E.dtype

    def combine(self, u):
        return u @ self.E

    def combine_rows(self, idx, vals):
        return vals @ self.E[idx]

    def project(self, r):
        return self.E @ r

    def project_rows(self, r, idx):
        return self.E[idx] @ r

    def gram_columns(self, idx):
        return self.E @ self.E[idx].T

    def gram_block(self, idx_rows, idx_cols):
        return self.E[idx_rows] @ self.E[idx_cols].T

    def sqnorms(self):
        return (self.E * self.E).sum(dim=1)

    def dense(self):
        return self.E

    def take(self, idx):
        return DenseOperator(self.E[torch.as_tensor(idx, device=self.device)], chunk_size=self.chunk_size)

    def row_blocks(self):
        return [self.E]

    @property
    def project_cost(self):
        return self.space_shape[0]

    @property
    def column_cost(self):
        return self.space_shape[0]


class FactoredOperator(PoolOperator):
    """Embeddings ``e_j = a_j (outer) h_j`` held as ``A (n, K)`` and ``H (n, d)``.

    Inner products factor, ``<a_i (x) h_i, a_j (x) h_j> = (a_i . a_j)(h_i . h_j)``, and a vector of
    the embedding space is a ``(K, d)`` matrix ``R`` with ``<e_j, R> = a_j^T R h_j``. Nothing of
    size ``n x K*d`` is ever formed; products over the whole pool run in chunks of
    ``chunk_size`` rows.

    With ``ones_column=True`` the embedding is ``a_j (outer) [h_j, 1]`` (the last layer's bias
    gradient) without the ``n x (d + 1)`` copy of ``H`` that appending the column costs: the
    space is ``(K, d + 1)`` and every product handles the constant column on its own. The
    operator keeps a reference to ``A`` and ``H`` (no copy).
    """

    def __init__(self, A: torch.Tensor, H: torch.Tensor, *, chunk_size: int = DEFAULT_CHUNK,
                 ones_column: bool = False):
        if A.ndim != 2 or H.ndim != 2:
            raise ValueError(
                f"factors must be 2-D, A (n, K) and H (n, d); got shapes {tuple(A.shape)} and "
                f"{tuple(H.shape)}."
            )
        if A.shape[0] != H.shape[0]:
            raise ValueError(
                f"factors must have the same number of rows; A has {A.shape[0]}, H has {H.shape[0]}."
            )
        self.A = A
        self.H = H
        self.ones_column = bool(ones_column)
        self.n = A.shape[0]
        self.space_shape = (A.shape[1], H.shape[1] + int(self.ones_column))
        self.chunk_size = chunk_size

    @property
    def device(self):
        return self.A.device

    @property
    def dtype(self):
        return self.A.dtype

    def _hr(self, H, r):
        """``[H, 1] @ r^T`` of shape (rows, K): a GEMM over the long dimension d."""
        if self.ones_column:
            return torch.addmm(r[:, -1], H, r[:, :-1].T)
        return H @ r.T

    def _ht(self, Hi):
        """``[H_i, 1]`` (only for the few rows of a support)."""
        if self.ones_column:
            return torch.cat([Hi, torch.ones((Hi.shape[0], 1), dtype=Hi.dtype, device=Hi.device)], 1)
        return Hi

    def combine(self, u):
        out = torch.zeros(self.space_shape, dtype=self.dtype, device=self.device)
        d = self.H.shape[1]
        for s, e in self._chunks():
            au = self.A[s:e] * u[s:e, None]
            out[:, :d] += au.T @ self.H[s:e]
            if self.ones_column:
                out[:, d] += au.sum(0)
        return out

    def combine_rows(self, idx, vals):
        return (self.A[idx] * vals[:, None]).T @ self._ht(self.H[idx])

    def project(self, r):
        out = torch.empty(self.n, dtype=self.dtype, device=self.device)
        # <a_j (x) h_j, R> = a_j . (R h_j): (H R^T) is a GEMM with inner dimension d, far
        # faster than forming A R (inner dimension K) and multiplying by H entrywise
        for s, e in self._chunks():
            out[s:e] = (self._hr(self.H[s:e], r) * self.A[s:e]).sum(dim=1)
        return out

    def project_rows(self, r, idx):
        return (self._hr(self.H[idx], r) * self.A[idx]).sum(dim=1)

    def _hh(self, H, Hi):
        g = H @ Hi.T
        return g + 1.0 if self.ones_column else g

    def gram_columns(self, idx):
        Ai, Hi = self.A[idx], self.H[idx]
        out = torch.empty((self.n, len(idx)), dtype=self.dtype, device=self.device)
        for s, e in self._chunks():
            out[s:e] = (self.A[s:e] @ Ai.T) * self._hh(self.H[s:e], Hi)
        return out

    def gram_block(self, idx_rows, idx_cols):
        return (self.A[idx_rows] @ self.A[idx_cols].T) * self._hh(self.H[idx_rows], self.H[idx_cols])

    def sqnorms(self):
        h2 = (self.H * self.H).sum(dim=1)
        return (self.A * self.A).sum(dim=1) * (h2 + 1.0 if self.ones_column else h2)

    def dense(self):
        H = self._ht(self.H)
        return (self.A[:, :, None] * H[:, None, :]).reshape(self.n, -1)

    def take(self, idx):
        idx = torch.as_tensor(idx, device=self.device)
        return FactoredOperator(self.A[idx], self.H[idx], chunk_size=self.chunk_size,
                                ones_column=self.ones_column)

    def row_blocks(self):
        return [self.A, self.H]

    @property
    def project_cost(self):
        K, d = self.space_shape
        return K * d + d

    @property
    def column_cost(self):
        K, d = self.space_shape
        return K + d


def as_operator(embedding, *, device=None, dtype=torch.float32, chunk_size=DEFAULT_CHUNK,
                name="embedding") -> PoolOperator:
    """Turn a dense ``(n, m)`` array, a pair ``(A, H)`` or a :class:`PoolOperator` into an operator.

    Validates shapes and finiteness and moves everything to ``device``/``dtype``.
    """
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    dtype = resolve_dtype(dtype)
    chunk_size = check_int(chunk_size, "chunk_size", min_val=1)
    if isinstance(embedding, DenseOperator):
        return DenseOperator(_as_tensor(embedding.E, name, device, dtype), chunk_size=chunk_size)
    if isinstance(embedding, FactoredOperator):
        return FactoredOperator(
            _as_tensor(embedding.A, f"{name} factor A", device, dtype),
            _as_tensor(embedding.H, f"{name} factor H", device, dtype),
            chunk_size=chunk_size, ones_column=embedding.ones_column,
        )
    convert = getattr(embedding, "_as_operator", None)
    if isinstance(embedding, PoolOperator) and convert is not None:  # e.g. the sparse operator
        return convert(device=device, dtype=dtype, chunk_size=chunk_size, name=name)
    if isinstance(embedding, PoolOperator):  # a user-defined operator: trust it
        return embedding
    if isinstance(embedding, (tuple, list)) and len(embedding) == 2:
        from .problem_sparse import _operator_from_pair, is_sparse

        if is_sparse(embedding[1]):  # a wide sparse feature factor (TF-IDF, one-hot, leaves)
            return _operator_from_pair(embedding[0], embedding[1], device=device, dtype=dtype,
                                       chunk_size=chunk_size, name=name)
        A = _as_tensor(embedding[0], f"{name} factor A", device, dtype)
        H = _as_tensor(embedding[1], f"{name} factor H", device, dtype)
        return FactoredOperator(A, H, chunk_size=chunk_size)
    E = _as_tensor(embedding, name, device, dtype)
    if E.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (n, m) or a pair (A, H) of 2-D factors; got shape "
            f"{tuple(E.shape)}."
        )
    return DenseOperator(E, chunk_size=chunk_size)


def sketch(operator: PoolOperator, sketch_dim: int, *, generator: torch.Generator | None = None,
           chunk_size: int | None = None) -> DenseOperator:
    """A random sketch of the embeddings that preserves inner products in expectation.

    For a :class:`FactoredOperator` this is the Khatri-Rao (tensor) sketch of SPEC section 8,
    ``e_j -> (Omega1 a_j) * (Omega2 h_j) / sqrt(m')`` with Gaussian ``Omega1 (m', K)`` and
    ``Omega2 (m', d)``, which never forms the ``K*d`` vector (an operator with a ``_sketch``
    method, such as :class:`~sparse_query.problem_sparse.SparseFactoredOperator`, builds the same
    sketch itself); for a :class:`DenseOperator` it is a
    Gaussian projection ``e_j -> Omega e_j / sqrt(m')``. Built in chunks.

    Parameters
    ----------
    operator : PoolOperator
        The exact embeddings.
    sketch_dim : int
        ``m'``, the sketch dimension.
    generator : torch.Generator, optional
        Source of randomness (on the CPU); the same seed gives the same sketch on any device.
    """
    sketch_dim = check_int(sketch_dim, "sketch_dim", min_val=1)
    chunk = chunk_size or operator.chunk_size
    hook = getattr(operator, "_sketch", None)
    if hook is not None:  # an operator that sketches itself (problem_sparse)
        return hook(sketch_dim, generator, chunk)
    dev, dt = operator.device, operator.dtype
    scale = 1.0 / math.sqrt(sketch_dim)
    out = torch.empty((operator.n, sketch_dim), dtype=dt, device=dev)
    if isinstance(operator, FactoredOperator):
        K, d = operator.space_shape
        om1 = torch.randn((K, sketch_dim), generator=generator, dtype=torch.float64).to(dev, dt)
        om2 = torch.randn((d, sketch_dim), generator=generator, dtype=torch.float64).to(dev, dt)
        om1 = om1 * scale
        for s in range(0, operator.n, chunk):
            e = min(s + chunk, operator.n)
            if operator.ones_column:  # [h, 1] @ om2 without forming [h, 1]
                hs = torch.addmm(om2[-1], operator.H[s:e], om2[:-1])
            else:
                hs = operator.H[s:e] @ om2
            out[s:e] = (operator.A[s:e] @ om1) * hs
    elif isinstance(operator, DenseOperator):
        m = operator.space_shape[0]
        om = torch.randn((m, sketch_dim), generator=generator, dtype=torch.float64).to(dev, dt)
        for s in range(0, operator.n, chunk):
            e = min(s + chunk, operator.n)
            out[s:e] = (operator.E[s:e] @ om) * scale
    else:
        raise TypeError(f"cannot sketch a {type(operator).__name__}; use a dense or factored embedding.")
    return DenseOperator(out, chunk_size=operator.chunk_size)


@dataclass
class SolverResult:
    """What a solver returns.

    Attributes
    ----------
    indices : ndarray of shape (b,), int64
        The chosen batch: ``b`` distinct pool indices (greedy: in selection order; IHT: sorted).
    weights : ndarray of shape (b,)
        ``w_j`` of each chosen index (may be 0 for an index whose weight was clipped).
    objective : float
        ``f1(w) - alpha * sum_{j in batch} sigma_j^2`` at the returned weights (every chosen
        point counts as labelled, whatever its weight).
    n_iter : int
        Greedy: ``b`` steps; IHT: iterations run.
    converged : bool
        IHT: whether the support and weights stopped changing before ``max_iter``; greedy: True.
    history : list of float
        The objective after every step / iteration.
    """

    indices: np.ndarray
    weights: np.ndarray
    objective: float
    n_iter: int
    converged: bool
    history: list = field(default_factory=list)


class SparseApproxProblem:
    """Problem 2 of the paper: ``min f1(w) + f2(w)`` s.t. ``w >= 0, ||w||_0 = b``, over groups
    of identical pool rows.

    Parameters
    ----------
    embedding : array-like of shape (n, m), pair ``(A, H)`` of shapes (n, K) and (n, d), or PoolOperator
        Expected embeddings ``e_j`` (dense rows, or factored as ``a_j (outer) h_j``).
    sigma : array-like of shape (n,)
        Non-negative spreads ``sigma_j``.
    b : int
        Batch size, ``1 <= b <= n``.
    alpha : float, default=1.0
        Weight of the variance term ``f2`` (uncertainty); ``alpha = 0`` is representation only.
    beta : float, default=1e-3
        Weight of the stabiliser ``beta ||w - 1||^2``.
    device : {"auto", "cpu", "cuda", ...} or torch.device, default="auto"
    dtype : {"float32", "float64"} or torch.dtype, default="float32"
    chunk_size : int, default=32768
        Rows per chunk in products over the whole pool.
    duplicates : {"group", "keep"}, default="group"
        ``"group"`` (a departure from the paper, SPEC section 9): rows whose factors and
        ``sigma`` agree (to about five significant digits, :mod:`sparse_query.duplicates`)
        form one group; only the group's lowest pool index is a candidate and its
        ``sigma^2`` counts once, while the pool mean ``v`` keeps every copy (the candidate
        stands for ``c`` copies with weight ``c / n`` in ``v``). Labelling one copy fixes the
        label of all of them, so the paper's ``-alpha sum_S sigma_j^2``, which credits every
        copy separately, rewards spending labels on copies. A batch never holds two rows of
        one group unless there are fewer than ``b`` groups; then it holds every group's
        representative and further copies spread over the groups (with a ``UserWarning``).
        ``"keep"`` is the paper's problem, every row a candidate. Operators that cannot
        describe their rows (:meth:`PoolOperator.row_blocks` is None, e.g. a dense Dask operator) are
        not grouped.

    Attributes
    ----------
    n : int
        Candidate rows the solvers choose from (``n_pool`` without copies).
    n_pool : int
        Rows of the pool.
    candidates : Tensor of shape (n,) or None
        Pool index of every candidate row (None: row ``j`` is pool index ``j``). Weight
        vectors ``w`` of :meth:`f1`, :meth:`grad_f1` and friends live on the candidate rows;
        the solvers return pool indices.
    groups : DuplicateGroups or None
        The groups of identical rows (None with ``duplicates="keep"``).

    Examples
    --------
    >>> import torch
    >>> from sparse_query.problem import SparseApproxProblem
    >>> from sparse_query.solvers import greedy
    >>> g = torch.Generator().manual_seed(0)
    >>> problem = SparseApproxProblem(torch.randn(50, 4, generator=g), torch.rand(50, generator=g),
    ...                               b=5, alpha=1.0, beta=1e-3, device="cpu")
    >>> greedy(problem).indices.shape
    (5,)
    """

    def __init__(self, embedding, sigma, b, *, alpha=1.0, beta=1e-3, device="auto",
                 dtype="float32", chunk_size=DEFAULT_CHUNK, duplicates="group"):
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)
        check_option(duplicates, "duplicates", DUPLICATES)
        self.op = as_operator(embedding, device=self.device, dtype=self.dtype, chunk_size=chunk_size)
        n = self.op.n
        if n < 1:
            raise ValueError("embedding has no rows: the pool is empty.")
        sig = _as_tensor(sigma, "sigma", self.device, self.dtype)
        if sig.ndim != 1 or sig.shape[0] != n:
            raise ValueError(
                f"sigma must have shape ({n},) to match the embedding's {n} rows; got "
                f"{tuple(sig.shape)}."
            )
        if bool((sig < 0).any()):
            j = int((sig < 0).nonzero()[0, 0])
            raise ValueError(f"sigma must be non-negative; sigma[{j}] = {float(sig[j]):g}.")
        self.b = check_int(b, "b", min_val=1, max_val=n,
                           max_hint=f"It exceeds the pool size {n}; ask for at most {n}.")
        self.alpha = check_float(alpha, "alpha", min_val=0.0)
        self.beta = check_float(beta, "beta", min_val=0.0)
        self.n_pool = n
        self.groups = None
        self.candidates = None
        self._v_weights = None
        blocks = self.op.row_blocks()
        self._row_keys = None
        if blocks is not None:
            groups = group_duplicates(blocks, sig)
            self._row_keys = groups.keys
        if blocks is not None and duplicates == "group":
            self.groups = groups
            self._row_keys = groups.keys[groups.reps]
            if self.groups.has_copies:
                reps = self.groups.reps
                self.candidates = reps
                self.op = self.op.take(reps)
                sig = sig[reps]
                self._v_weights = self.groups.counts.to(self.dtype) / n
        self.n = self.op.n
        self.sigma = sig
        self.sigma2 = sig * sig
        self._v = None
        self._vv = None
        self._c = None

    @property
    def stab_const(self) -> int:
        """Pool rows that are not candidates: each has ``w = 0`` and adds ``beta`` to ``f1``."""
        return self.n_pool - self.n

    @property
    def v(self) -> torch.Tensor:
        """``(1/n_pool) sum_j e_j`` over the whole pool, copies included (one pass, cached)."""
        if self._v is None:
            if self._v_weights is None:
                self._v = self.op.mean()
            else:
                self._v = self.op.combine(self._v_weights)
        return self._v

    @property
    def vv(self) -> float:
        if self._vv is None:
            self._vv = float(self.op.inner(self.v, self.v))
        return self._vv

    def spread_rows(self, k: int, offset: int = 0):
        """``k`` candidate rows chosen by a hash of their content (sorted), or None when the
        operator cannot describe its rows: a batch drawn as if at random, without a seed, the
        same whatever the order of the pool. IHT's second start (a batch whose mean tracks
        ``v`` the way a random sample's does)."""
        if self._row_keys is None:
            return None
        order = torch.sort(self._row_keys, stable=True).indices
        pos = (torch.arange(k, device=order.device) + offset) % order.numel()
        return torch.sort(order[pos]).values

    def pool_indices(self, rows: torch.Tensor) -> torch.Tensor:
        """The pool indices of candidate rows."""
        return rows if self.candidates is None else self.candidates[rows]

    def sketched(self, sketch_dim: int, *, generator: torch.Generator | None = None
                 ) -> "SparseApproxProblem":
        """The same problem (groups, ``b``, ``alpha``, ``beta``) on :func:`sketch` of the
        candidate rows; ``v`` is the sketch of the pool mean (the sketch is linear)."""
        import copy

        out = copy.copy(self)
        out.op = sketch(self.op, sketch_dim, generator=generator)
        out._v = out._vv = out._c = None
        return out

    # -- cached constants ----------------------------------------------------------------
    @property
    def c(self) -> torch.Tensor:
        """``Phi^T v`` of shape ``(n,)`` (one pass, cached)."""
        if self._c is None:
            self._c = self.op.project(self.v) / self.b
        return self._c

    # -- the objective ---------------------------------------------------------------------
    def phi(self, w: torch.Tensor) -> torch.Tensor:
        """``Phi w`` using only the support of ``w``."""
        idx = w.nonzero().reshape(-1)
        if idx.numel() == 0:
            return torch.zeros_like(self.v)
        return self.op.combine_rows(idx, w[idx]) / self.b

    def phi_dense(self, u: torch.Tensor) -> torch.Tensor:
        """``Phi u`` for a dense ``u`` (one pass over the pool)."""
        return self.op.combine(u) / self.b

    def f1(self, w: torch.Tensor, *, phi_w=None) -> float:
        """``||v - Phi w||^2 + beta ||w - 1||^2`` (float64 accumulation); ``phi_w`` if known."""
        r = ((self.phi(w) if phi_w is None else phi_w) - self.v).double()
        d = (w.double() - 1.0)
        return float((r * r).sum() + self.beta * ((d * d).sum() + self.stab_const))

    def f2(self, w: torch.Tensor) -> float:
        """``-alpha sum_j 1(w_j > 0) sigma_j^2``."""
        return -self.alpha * float(self.sigma2.double()[w > 0].sum())

    def f(self, w: torch.Tensor) -> float:
        return self.f1(w) + self.f2(w)

    def batch_objective(self, w: torch.Tensor, indices, *, phi_w=None) -> float:
        """``f1(w) - alpha sum_{j in indices} sigma_j^2``: every chosen point counts as labelled."""
        idx = torch.as_tensor(indices, device=self.device, dtype=torch.long)
        return self.f1(w, phi_w=phi_w) - self.alpha * float(self.sigma2.double()[idx].sum())

    def grad_f1(self, w: torch.Tensor) -> torch.Tensor:
        """``2 Phi^T (Phi w - v) + 2 beta (w - 1)`` (one pass over the pool)."""
        r = self.phi(w) - self.v
        return 2.0 * self.op.project(r) / self.b + 2.0 * self.beta * (w - 1.0)

    def line_search(self, u: torch.Tensor, w: torch.Tensor, *, phi_u=None, phi_w=None) -> float:
        """The exact minimiser ``mu`` of ``f1(w - mu u)`` (appendix E, Algorithm 4); 0 when ``u = 0``.

        ``phi_u``/``phi_w`` may be passed when already known; otherwise ``Phi u`` uses the
        support of ``u`` when it is sparse.
        """
        if phi_u is None:
            nnz = int((u != 0).sum())
            phi_u = self.phi(u) if nnz <= max(1, self.n // 4) else self.phi_dense(u)
        if phi_w is None:
            phi_w = self.phi(w)
        num = self.op.inner(phi_w - self.v, phi_u) + self.beta * ((w - 1.0) * u).sum()
        den = self.op.inner(phi_u, phi_u) + self.beta * (u * u).sum()
        return self.step_length(num, den)

    def line_search_rows(self, idx: torch.Tensor, u: torch.Tensor, w_at: torch.Tensor, *,
                         phi_u: torch.Tensor, phi_w: torch.Tensor) -> float:
        """:meth:`line_search` for a direction that is ``u`` on the rows ``idx`` and 0 elsewhere,
        given ``w_at = w[idx]``, ``Phi u`` and ``Phi w``: no vector of length ``n``."""
        num = self.op.inner(phi_w - self.v, phi_u) + self.beta * ((w_at - 1.0) * u).sum()
        den = self.op.inner(phi_u, phi_u) + self.beta * (u * u).sum()
        return self.step_length(num, den)

    @staticmethod
    def step_length(num, den) -> float:
        """``num / den``, or 0 where that is not a finite step (``den <= 0``, NaN, inf)."""
        den = float(den)
        if not den > 0.0 or not math.isfinite(den):
            return 0.0
        mu = float(num) / den
        return mu if math.isfinite(mu) else 0.0

    def debias(self, w: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
        """Appendix E, Algorithm 5: one exact line-search step along the in-support gradient.

        ``support`` are the chosen indices (the solver's batch, distinct), which may include
        indices with zero weight. Cost O(|support| * m), no pass over the pool.
        """
        out = w.clone()
        out[support] = self.debias_rows(support, w[support], self.phi(w))
        return out

    def debias_rows(self, support: torch.Tensor, w_s: torch.Tensor,
                    phi_w: torch.Tensor) -> torch.Tensor:
        """:meth:`debias` on the rows alone: the new weights on ``support`` given
        ``w_s = w[support]`` and ``phi_w = Phi w`` (no vector of length ``n``)."""
        r = phi_w - self.v
        g = 2.0 * self.op.project_rows(r, support) / self.b + 2.0 * self.beta * (w_s - 1.0)
        phi_u = self.op.combine_rows(support, g) / self.b
        return w_s - self.line_search_rows(support, g, w_s, phi_u=phi_u, phi_w=phi_w) * g
