"""Factored embeddings whose feature factor is a sparse matrix (TF-IDF, one-hot, leaf indicators).

For a linear model on a wide sparse pool the last layer's input ``h_j`` is the pool row
itself: a ``scipy.sparse`` row with a handful of non-zeros among tens of thousands of
columns. The gradient embedding ``e_j = a_j (outer) h~_j`` (``h~_j = [h_j, 1]``) then has a
sparse feature factor, and every product the solvers need has a sparse form:

=========================  ==========================================  =====================
product                    computed as                                 cost
=========================  ==========================================  =====================
``sum_j u_j e_j``          ``((A * u)^T H)`` = ``H^T (A * u)``          O(nnz K)
``<e_j, R>``               ``sum_k A_jk (H R^T)_jk``                    O(nnz K)
Gram column ``<e_j, e_i>`` ``(A a_i)_j * (H h_i)_j``                    O(nnz + n K)
``||e_j||^2``              ``||a_j||^2 * ||h_j||^2`` (sparse row norms)  O(nnz + n K)
sketch ``Omega2 h_j``      ``H Omega2^T`` (sparse times dense)          O(nnz m')
=========================  ==========================================  =====================

so memory is ``O(n (K + m'))`` plus the input, never ``O(n d)``.

Representation. ``H`` is held as a ``scipy.sparse`` CSR matrix (with the bias column of ones
appended as an explicit sparse column: ``n`` extra non-zeros, no densification). CSR gives
cheap row slices and fancy row gathers (``H[idx]``, needed by greedy and IHT for the
support) and compiled ``CSR x dense`` and ``CSR^T x dense`` kernels that work on float32
and float64 without copies; torch's sparse CSR tensors lack fast fancy row indexing on the
CPU. The sparse products therefore run on the CPU; the dense factor ``A`` and every result
live on the operator's device (inputs and outputs are moved, ``O(n)`` or ``O(K d)`` per
call).

Public entry points:

* :class:`SparseFactoredOperator` -- a :class:`~sparse_query.operators.PoolOperator`;
* :func:`factored_operator` -- ``(A, H)`` to the dense or the sparse factored operator;
* :func:`is_sparse`, :func:`as_csr`, :func:`append_ones_column`, :func:`row_sqnorms`,
  :func:`sparse_dots` (``H @ G[rows].T`` in one sparse-times-dense pass).

``sparse_query.operators.as_operator((A, H_sparse))`` and
``sparse_query.embeddings.gradient_embedding(logits, H_sparse)`` dispatch here, so a caller
with any wide sparse feature map (TF-IDF rows, one-hot categories, a forest's one-hot leaf
indicators) gets this path by passing a ``scipy.sparse`` matrix.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch

from .._utils import check_int, resolve_device, resolve_dtype
from .base import DEFAULT_CHUNK, PoolOperator, _as_tensor
from .dense import DenseOperator, FactoredOperator

__all__ = [
    "SparseFactoredOperator",
    "factored_operator",
    "is_sparse",
    "as_csr",
    "append_ones_column",
    "row_sqnorms",
    "rows_as_columns",
    "sparse_dots",
]

_NP_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
_SCIPY_LOOP_FACTOR = 3


def is_sparse(x) -> bool:
    """True for a ``scipy.sparse`` matrix/array or a torch sparse (COO/CSR) tensor."""
    if sp.issparse(x):
        return True
    return isinstance(x, torch.Tensor) and x.layout in (torch.sparse_coo, torch.sparse_csr)


def as_csr(x, dtype=None, *, name: str = "features") -> sp.csr_matrix:
    """``x`` (scipy sparse, or a torch sparse COO/CSR tensor) as a 2-D ``scipy.sparse.csr_matrix``.

    ``dtype`` (numpy float dtype) converts the values (a copy only when it differs); integer
    and boolean values become float64. Raises for NaN/inf values, naming the first bad row.
    """
    if isinstance(x, torch.Tensor):
        if x.ndim != 2:
            raise ValueError(f"{name} must be 2-D; got a sparse tensor of shape {tuple(x.shape)}.")
        x = x.detach().cpu()
        if x.layout == torch.sparse_coo:
            x = x.coalesce()
            i = x.indices().numpy()
            x = sp.csr_matrix((x.values().numpy(), (i[0], i[1])), shape=tuple(x.shape))
        else:
            x = sp.csr_matrix((x.values().numpy(), x.col_indices().numpy(),
                               x.crow_indices().numpy()), shape=tuple(x.shape))
    if not sp.issparse(x) or x.ndim != 2:
        raise TypeError(f"{name} must be a 2-D scipy.sparse matrix; got {type(x).__name__}.")
    x = sp.csr_matrix(x) if not isinstance(x, sp.csr_matrix) else x
    if x.dtype.kind in "biu":
        x = x.astype(np.float64)
    elif x.dtype.kind != "f":
        raise TypeError(f"{name} must hold real numbers; got dtype {x.dtype}.")
    if dtype is not None and x.dtype != dtype:
        x = x.astype(dtype)
    if not x.has_canonical_format:  # duplicates would be overwritten, not summed, by a scatter
        x = x.copy()
        x.sum_duplicates()
    if x.nnz and not np.isfinite(x.data).all():
        pos = int(np.flatnonzero(~np.isfinite(x.data))[0])
        row = int(np.searchsorted(x.indptr, pos, side="right") - 1)
        raise ValueError(f"{name} contains NaN or inf (first in row {row}); remove or impute "
                         "those rows before querying.")
    return x


def append_ones_column(H: sp.csr_matrix) -> sp.csr_matrix:
    """``[H, 1]`` as CSR: the bias column added as ``n`` explicit non-zeros (no densification)."""
    n, d = H.shape
    indptr = H.indptr.astype(np.int64) + np.arange(n + 1, dtype=np.int64)
    nnz = H.nnz + n
    idx_dtype = np.int32 if max(nnz, d + 1) < 2**31 - 1 else np.int64
    data = np.empty(nnz, dtype=H.dtype)
    indices = np.empty(nnz, dtype=idx_dtype)
    last = indptr[1:] - 1                       # where each row's bias entry goes
    keep = np.ones(nnz, dtype=bool)
    keep[last] = False
    data[keep] = H.data
    indices[keep] = H.indices
    data[last] = 1.0
    indices[last] = d
    return sp.csr_matrix((data, indices, indptr.astype(idx_dtype)), shape=(n, d + 1))


def row_sqnorms(H: sp.csr_matrix) -> np.ndarray:
    """``||h_j||^2`` of every row of a CSR matrix, ``(n,)`` in float64 (O(nnz))."""
    sq = np.zeros(H.shape[0], dtype=np.float64)
    if H.nnz:
        counts = np.diff(H.indptr)
        nonempty = counts > 0
        d2 = H.data.astype(np.float64) ** 2
        sq[nonempty] = np.add.reduceat(d2, H.indptr[:-1][nonempty])
    return sq


#: Rows of ``H`` turned into dense columns at once by :func:`rows_as_columns` (bounds the
#: ``d x block`` temporary: 64 columns of a 50,000-word vocabulary are 25 MB in float64).
ROW_BLOCK = 64


def rows_as_columns(H: sp.csr_matrix, rows) -> np.ndarray:
    """``H[rows].T`` as a dense ``(d, len(rows))`` array, scattered from the CSR arrays.

    Used with few rows (``len(rows) <= ROW_BLOCK``) so that ``H @ rows_as_columns(H, rows)``
    is one ``O(nnz)`` sparse-times-dense pass -- much cheaper than a sparse-times-sparse
    product -- with an ``O(d)`` temporary per row, never ``O(n d)``.
    """
    rows = np.asarray(rows).reshape(-1)
    out = np.zeros((H.shape[1], rows.shape[0]), dtype=H.dtype)
    for k, r in enumerate(rows.tolist()):
        lo, hi = H.indptr[r], H.indptr[r + 1]
        out[H.indices[lo:hi], k] = H.data[lo:hi]
    return out


def sparse_dots(H: sp.csr_matrix, G: sp.csr_matrix, rows) -> np.ndarray:
    """``H @ G[rows].T`` as a dense ``(H.shape[0], len(rows))`` array, ``ROW_BLOCK`` rows a pass."""
    rows = np.asarray(rows).reshape(-1)
    out = np.empty((H.shape[0], rows.shape[0]), dtype=np.result_type(H.dtype, G.dtype))
    for s in range(0, rows.shape[0], ROW_BLOCK):
        out[:, s:s + ROW_BLOCK] = H @ rows_as_columns(G, rows[s:s + ROW_BLOCK])
    return out


class SparseFactoredOperator(PoolOperator):
    """Embeddings ``e_j = a_j (outer) h_j`` with ``A (n, K)`` dense and ``H (n, d)`` sparse CSR.

    The sparse counterpart of :class:`~sparse_query.operators.FactoredOperator`: the same
    products (``combine``, ``project``, Gram columns, ...) in ``O(nnz K)`` per pass, chunked
    over the pool, never forming a dense ``(n, d)`` or ``(n, K d)`` matrix. A vector of the
    embedding space is a dense ``(K, d)`` tensor, as for the dense factored form.

    Parameters
    ----------
    A : torch.Tensor of shape (n, K)
        Class factors (``p_j - P_j`` for the gradient embedding), float32 or float64.
    H : scipy.sparse matrix of shape (n, d)
        Feature factors; include the bias column yourself (:func:`append_ones_column`) if the
        model has one. Converted to CSR with ``A``'s dtype.
    chunk_size : int, default=32768
        Pool rows per chunk in whole-pool products.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, torch
    >>> from sparse_query.operators.sparse import SparseFactoredOperator
    >>> H = sp.random(6, 50, density=0.1, random_state=0, format="csr")
    >>> op = SparseFactoredOperator(torch.randn(6, 3, dtype=torch.float64), H)
    >>> op.project(op.combine(torch.ones(6, dtype=torch.float64))).shape
    torch.Size([6])
    """

    def __init__(self, A: torch.Tensor, H, *, chunk_size: int = DEFAULT_CHUNK):
        if not isinstance(A, torch.Tensor) or A.ndim != 2:
            raise ValueError(f"A must be a 2-D torch tensor (n, K); got {type(A).__name__} "
                             f"of shape {tuple(getattr(A, 'shape', ()))}.")
        if A.dtype not in _NP_DTYPES:
            raise TypeError(f"A must be float32 or float64; got {A.dtype}.")
        H = as_csr(H, _NP_DTYPES[A.dtype], name="H")
        if A.shape[0] != H.shape[0]:
            raise ValueError(
                f"factors must have the same number of rows; A has {A.shape[0]}, H has "
                f"{H.shape[0]}."
            )
        self.A = A
        self._A = A.detach().cpu()          # the CPU copy the sparse products use
        self.H = H
        self.n = A.shape[0]
        self.space_shape = (A.shape[1], H.shape[1])
        self.chunk_size = chunk_size
        self._np = _NP_DTYPES[A.dtype]

    # conversions --------------------------------------------------------------------------
    def _as_operator(self, *, device, dtype, chunk_size, name="embedding"):
        """Hook of :func:`sparse_query.operators.as_operator`: move ``A`` and convert ``H``."""
        A = _as_tensor(self.A, f"{name} factor A", device, dtype)
        return SparseFactoredOperator(A, self.H, chunk_size=chunk_size)

    def _to_dev(self, x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=self._np))
        return t.to(self.A.device) if self.A.device.type != "cpu" else t

    def _np_in(self, t: torch.Tensor) -> np.ndarray:
        return t.detach().to("cpu", self.dtype).numpy()

    @property
    def device(self):
        return self.A.device

    @property
    def dtype(self):
        return self.A.dtype

    # products -----------------------------------------------------------------------------
    def combine(self, u):
        un = self._np_in(u)
        A = self._A.numpy()
        out = np.zeros(self.space_shape[::-1], dtype=self._np)        # (d, K)
        for s, e in self._chunks():
            out += self.H[s:e].T @ (A[s:e] * un[s:e, None])
        return self._to_dev(out.T)

    def combine_rows(self, idx, vals):
        i = idx.detach().cpu().numpy()
        Av = self._A.numpy()[i] * self._np_in(vals)[:, None]
        return self._to_dev((self.H[i].T @ Av).T)

    def project(self, r):
        Rt = np.ascontiguousarray(self._np_in(r).T)                   # (d, K)
        A = self._A.numpy()
        out = np.empty(self.n, dtype=self._np)
        for s, e in self._chunks():
            out[s:e] = (np.asarray(self.H[s:e] @ Rt) * A[s:e]).sum(axis=1)
        return self._to_dev(out)

    def project_rows(self, r, idx):
        i = idx.detach().cpu().numpy()
        Rt = np.ascontiguousarray(self._np_in(r).T)
        return self._to_dev((np.asarray(self.H[i] @ Rt) * self._A.numpy()[i]).sum(axis=1))

    def gram_columns(self, idx):
        i = np.asarray(idx.detach().cpu().numpy() if isinstance(idx, torch.Tensor) else idx)
        Ai = self._A.numpy()[i]
        A = self._A.numpy()
        out = np.empty((self.n, len(i)), dtype=self._np)
        for b0 in range(0, len(i), ROW_BLOCK):
            HiT = rows_as_columns(self.H, i[b0:b0 + ROW_BLOCK])      # (d, <= ROW_BLOCK)
            for s, e in self._chunks():
                out[s:e, b0:b0 + ROW_BLOCK] = ((A[s:e] @ Ai[b0:b0 + ROW_BLOCK].T)
                                               * (self.H[s:e] @ HiT))
        return self._to_dev(out)

    def gram_block(self, idx_rows, idx_cols):
        r = idx_rows.detach().cpu().numpy()
        c = idx_cols.detach().cpu().numpy()
        A = self._A.numpy()
        hh = sparse_dots(self.H[r], self.H, c)
        return self._to_dev((A[r] @ A[c].T) * hh)

    def sqnorms(self):
        a2 = (self._A.double() ** 2).sum(dim=1).numpy()
        return self._to_dev(a2 * row_sqnorms(self.H))

    def dense(self):
        """The ``(n, K d)`` matrix (tests and tiny pools only: it is ``n K d`` numbers)."""
        Hd = self._to_dev(self.H.toarray())
        return (self.A[:, :, None] * Hd[:, None, :]).reshape(self.n, -1)

    def take(self, idx):
        i = np.asarray(idx.detach().cpu().numpy() if isinstance(idx, torch.Tensor) else idx)
        it = torch.as_tensor(i, device=self.device, dtype=torch.long)
        return SparseFactoredOperator(self.A[it], self.H[i], chunk_size=self.chunk_size)

    @property
    def project_cost(self):
        # K q multiply-adds per row in scipy's CSR x dense loop, which runs about 3x slower per
        # operation than the BLAS products greedy's Gram mode uses (measured: n = 10,000 TF-IDF
        # rows, q = 51, K = 10, b = 1000: Gram mode 7.5 s, residual mode 15.4 s)
        K = self.space_shape[0]
        q = max(1.0, self.H.nnz / max(1, self.n))
        return int(math.ceil(_SCIPY_LOOP_FACTOR * (K * q + K)))

    @property
    def column_cost(self):
        K = self.space_shape[0]
        q = max(1.0, self.H.nnz / max(1, self.n))
        return int(math.ceil(K + q))

    def row_blocks(self):
        """``[A, H]`` for :mod:`sparse_query.duplicates`: ``H`` behind a view whose rows,
        gathered a chunk at a time, come back dense (only rows that already agree on ``A`` and
        ``sigma`` are ever gathered)."""
        return [self.A, _DenseRowView(self.H, self.A.device)]

    def sketch_row_cost(self, sketch_dim: int) -> int:
        """Multiply-adds per row of building the sketch: ``(K + q) m'`` for ``q`` non-zeros a
        row, in scipy's loop (see :attr:`project_cost`)."""
        K = self.space_shape[0]
        q = max(1.0, self.H.nnz / max(1, self.n))
        return int(math.ceil(_SCIPY_LOOP_FACTOR * q * sketch_dim + K * sketch_dim))

    # the Khatri-Rao sketch -------------------------------------------------------------------
    def _sketch(self, sketch_dim: int, generator, chunk: int) -> DenseOperator:
        """Hook of :func:`sparse_query.operators.sketch`: ``(A Omega1^T) * (H Omega2^T) / sqrt(m')``.

        Draws ``Omega1`` then ``Omega2`` exactly as the dense factored sketch does, so the same
        generator gives the same sketch as on the densified pool; ``H Omega2^T`` is a sparse
        times dense product (O(nnz m')).
        """
        K, d = self.space_shape
        scale = 1.0 / math.sqrt(sketch_dim)
        om1 = torch.randn((K, sketch_dim), generator=generator, dtype=torch.float64).to(self.dtype)
        om2 = torch.randn((d, sketch_dim), generator=generator, dtype=torch.float64)
        om2 = om2.to(self.dtype).numpy()
        out = torch.empty((self.n, sketch_dim), dtype=self.dtype, device=self.device)
        for s in range(0, self.n, chunk):
            e = min(s + chunk, self.n)
            hs = torch.from_numpy(np.ascontiguousarray(self.H[s:e] @ om2))
            out[s:e] = ((self._A[s:e] @ om1) * hs * scale).to(self.device)
        return DenseOperator(out, chunk_size=self.chunk_size)


class _DenseRowView:
    """Rows of a CSR matrix gathered as a dense float64 tensor: ``view[rows]``."""

    def __init__(self, H: sp.csr_matrix, device):
        self.H, self.device = H, device
        self.shape = H.shape

    def __getitem__(self, rows) -> torch.Tensor:
        i = rows.detach().cpu().numpy() if isinstance(rows, torch.Tensor) else np.asarray(rows)
        return torch.from_numpy(self.H[i].toarray().astype(np.float64)).to(self.device)


def factored_operator(A, H, *, chunk_size: int = DEFAULT_CHUNK) -> PoolOperator:
    """The factored operator for ``e_j = a_j (outer) h_j``: sparse when ``H`` is sparse.

    Parameters
    ----------
    A : torch.Tensor of shape (n, K)
    H : torch.Tensor, scipy.sparse matrix or torch sparse tensor of shape (n, d)
        With the bias column already appended (``GradientEmbedding.h`` is).

    Returns
    -------
    FactoredOperator or SparseFactoredOperator
    """
    if is_sparse(H):
        return SparseFactoredOperator(A, H, chunk_size=chunk_size)
    return FactoredOperator(A, H, chunk_size=chunk_size)


def _operator_from_pair(A, H, *, device, dtype, chunk_size, name):
    """``as_operator((A, H_sparse))``: checked conversion of a pair with a sparse ``H``."""
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    dtype = resolve_dtype(dtype)
    chunk_size = check_int(chunk_size, "chunk_size", min_val=1)
    A = _as_tensor(A, f"{name} factor A", device, dtype)
    return SparseFactoredOperator(A, as_csr(H, _NP_DTYPES[dtype], name=f"{name} factor H"),
                                  chunk_size=chunk_size)
