"""The in-memory operators: :class:`DenseOperator` (an ``(n, m)`` matrix) and
:class:`FactoredOperator` (``e_j = a_j (outer) h_j`` as ``A (n, K)`` and ``H (n, d)``).

:class:`DenseOperator` holds the matrix of embeddings; :class:`FactoredOperator` holds the
two factors and never forms the ``n x K*d`` matrix. Both work over the pool in chunks, so
temporary memory is bounded by the chunk.
"""
from __future__ import annotations

import torch

from .base import DEFAULT_CHUNK, PoolOperator

__all__ = ["DenseOperator", "FactoredOperator"]


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
