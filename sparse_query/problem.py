"""The optimisation problem of the paper's Problem 2 and what a solver returns.

A pool of ``n`` points has expected embeddings ``e_j`` and spreads ``sigma_j``. With

    v   = (1/n) sum_j e_j
    Phi = (1/b) [e_1 ... e_n]

the problem is to find ``w >= 0`` with ``||w||_0 = b`` minimising

    f(w)  = f1(w) + f2(w)
    f1(w) = ||v - Phi w||^2 + beta ||w - 1||^2
    f2(w) = -alpha sum_j 1(w_j > 0) sigma_j^2

:class:`SparseApproxProblem` holds the problem (objective, gradient, line search, de-bias,
groups of identical rows); :class:`SolverResult` is what a solver returns. The embeddings
enter only through a :class:`~sparse_query.operators.PoolOperator` (:mod:`sparse_query.operators`
holds the dense, factored, sparse and committee operators, :func:`as_operator` and
:func:`sketch`; they are re-exported here, where they used to live).

This module knows nothing of estimators, modAL or skorch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ._utils import check_float, check_int, check_option, resolve_device, resolve_dtype
from .duplicates import group_duplicates
from .operators import (
    DEFAULT_CHUNK, DenseOperator, FactoredOperator, PoolOperator, as_operator, sketch,
)
from .operators.base import _as_tensor

__all__ = [
    "PoolOperator",
    "DenseOperator",
    "FactoredOperator",
    "SparseApproxProblem",
    "SolverResult",
    "as_operator",
    "sketch",
]

DUPLICATES = ("group", "keep")


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
        ``"group"`` (a departure from the paper): rows whose factors and
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
