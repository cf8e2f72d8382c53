"""The pool's embedding held as row chunks on a Dask cluster, behind the PoolOperator API.

The factors ``A (n, K)`` and ``H (n, d)`` of a gradient embedding, or a dense ``(n, m)``
embedding or sketch, stay on the workers, one row chunk per task result; the solvers of
:mod:`sparse_query.solvers` run on the client against a :class:`DaskOperator`:

* ``Phi^T r`` (:meth:`~DaskOperator.project`) is a map over the chunks;
* ``Phi u`` (:meth:`~DaskOperator.combine`) is a map over the chunks followed by a reduction,
  summed on the client in chunk order (so it rounds exactly like the single-machine chunked
  sum when the chunks have the same boundaries);
* rows of the support (a few ``b`` of them) are fetched once and cached on the client, so the
  de-bias and line-search steps cost no pass over the pool;
* copies are found (:mod:`sparse_query.duplicates`) from the factors' rows fetched in chunks:
  every row of ``A`` (``K`` numbers a row) and only the rows of ``H`` that could be copies;
  :meth:`~DaskOperator.take` keeps one row per group, on the workers;
* the sketch of :func:`sparse_query.problem.sketch` is drawn on the client and applied per
  chunk (:meth:`~DaskOperator.sketch`).

What runs on the workers is module-level (it pickles by reference).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .._utils import check_float, check_int, resolve_dtype
from ..problem import PoolOperator
from .dask_cluster import DEFAULT_TIMEOUT, align_rows, gather, gather_guard, import_dask, resolve_client

__all__ = ["DaskOperator"]


def _to_chunk(*blocks, dtype, start):
    """Turn numpy blocks into a tuple of contiguous torch tensors, checking finiteness."""
    out = []
    for blk in blocks:
        # a copy in torch's allocator (64-byte aligned, like the in-memory pool): BLAS may round
        # a GEMM over a differently aligned numpy buffer differently, and the chunk products
        # must equal the single-machine ones bit for bit
        t = torch.as_tensor(np.ascontiguousarray(blk)).to(dtype).clone()
        if t.ndim == 1:
            t = t.reshape(-1, 1)
        if not bool(torch.isfinite(t).all()):
            row = int((~torch.isfinite(t)).nonzero()[0, 0]) + start
            raise ValueError(f"the pool embedding contains NaN or infinity (first at row {row}).")
        out.append(t.contiguous())
    return tuple(out)


def _chunk_project(chunk, r):
    if len(chunk) == 2:
        A, H = chunk
        return ((H @ r.T) * A).sum(dim=1)
    return chunk[0] @ r


def _chunk_combine(chunk, u):
    if len(chunk) == 2:
        A, H = chunk
        return (A * u[:, None]).T @ H
    return u @ chunk[0]


def _chunk_gram(chunk, rows):
    if len(chunk) == 2:
        A, H = chunk
        return (A @ rows[0].T) * (H @ rows[1].T)
    return chunk[0] @ rows[0].T


def _chunk_sqnorms(chunk):
    if len(chunk) == 2:
        A, H = chunk
        return (A * A).sum(dim=1) * (H * H).sum(dim=1)
    return (chunk[0] * chunk[0]).sum(dim=1)


def _chunk_rows(chunk, local):
    return tuple(t[local] for t in chunk)


def _chunk_sketch(chunk, om, scale):
    if len(chunk) == 2:
        A, H = chunk
        return ((A @ (om[0] * scale)) * (H @ om[1]),)
    return ((chunk[0] @ om[0]) * scale,)


def _chunk_len(chunk):
    return int(chunk[0].shape[0])



class DaskOperator(PoolOperator):
    """The pool's embeddings held as row chunks on a Dask cluster, behind the PoolOperator API.

    Each chunk is one task result on a worker: a pair ``(A_c, H_c)`` of torch tensors for a
    factored embedding ``e_j = a_j (outer) h_j``, or ``(E_c,)`` for a dense one. Build it with
    :meth:`from_factors` / :meth:`from_dense` (from dask arrays) or :meth:`sketch`; release
    the chunks with :meth:`close` (or let it be garbage-collected).

    Parameters
    ----------
    client : distributed.Client
    chunks : list of distributed.Future
        The chunks, in pool order.
    sizes : list of int
        Rows per chunk.
    space_shape : tuple
        ``(K, d)`` for factored chunks, ``(m,)`` for dense ones.
    dtype : torch.dtype
    timeout : float
        Seconds each round trip to the cluster may take.
    max_cached_rows : int, default=262144
        Support rows kept on the client before the cache is reset.
    """

    def __init__(self, client, chunks, sizes, space_shape, dtype, *, timeout=DEFAULT_TIMEOUT,
                 max_cached_rows=262144):
        self.client = client
        self.chunks = list(chunks)
        self.sizes = [int(s) for s in sizes]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.n = int(self.offsets[-1])
        self.space_shape = tuple(int(s) for s in space_shape)
        self.chunk_size = max(self.sizes) if self.sizes else 1
        self._dtype = dtype
        self.timeout = timeout
        self.max_cached_rows = max_cached_rows
        self._children = []
        self._reset_cache()

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_factors(cls, A, H, *, client=None, dtype="float32", timeout=DEFAULT_TIMEOUT):
        """Chunks ``(A_c, H_c)`` from dask arrays ``A (n, K)`` and ``H (n, d)`` (rows chunked).

        ``H`` is rechunked to ``A``'s row chunks; columns are gathered into one chunk.
        """
        return cls._build(client, dtype, timeout, A, H)

    @classmethod
    def from_dense(cls, E, *, client=None, dtype="float32", timeout=DEFAULT_TIMEOUT):
        """Chunks ``(E_c,)`` from a dask array ``E (n, m)`` (rows chunked)."""
        return cls._build(client, dtype, timeout, E)

    @classmethod
    def _build(cls, client, dtype, timeout, *arrays, extra=None):
        dask, da, _ = import_dask()
        client = resolve_client(client)
        dtype = resolve_dtype(dtype)
        timeout = check_float(timeout, "timeout", min_val=0.0, min_inclusive=False)
        arrays, sizes = align_rows(arrays, ("A", "H") if len(arrays) == 2 else ("E",))
        starts = np.concatenate([[0], np.cumsum(sizes)])[:-1]
        blocks = [a.to_delayed().ravel() for a in arrays]
        # fresh keys per build: closing one operator must not cancel the chunks of another
        # built from the same arrays (deterministic keys would be shared)
        make = dask.delayed(_to_chunk, pure=False)
        tasks = [make(*[b[i] for b in blocks], dtype=dtype, start=int(starts[i]))
                 for i in range(len(sizes))]
        extra = list(extra or [])
        futs = gather_guard(client, lambda: client.compute(tasks + extra), timeout, wait=False)
        chunks, extra_futs = futs[: len(tasks)], futs[len(tasks):]
        shape = (arrays[0].shape[1], arrays[1].shape[1]) if len(arrays) == 2 else (arrays[0].shape[1],)
        op = cls(client, chunks, sizes, shape, dtype, timeout=timeout)
        op._extra = extra_futs
        gather(client, chunks[:1], timeout)  # surface input errors (NaN, shapes) now
        return op

    def sketch(self, sketch_dim: int, *, generator: torch.Generator | None = None) -> "DaskOperator":
        """The Khatri-Rao / Gaussian sketch of :func:`sparse_query.problem.sketch`, per chunk.

        The Gaussian matrices are drawn on the client from ``generator`` exactly as
        :func:`~sparse_query.problem.sketch` draws them (``Omega1 (K, m')`` then ``Omega2
        (d, m')``, float64, then cast), so the same generator state gives the same sketch.
        """
        sketch_dim = check_int(sketch_dim, "sketch_dim", min_val=1)
        scale = 1.0 / math.sqrt(sketch_dim)
        dt = self.dtype
        if len(self.space_shape) == 2:
            K, d = self.space_shape
            om1 = torch.randn((K, sketch_dim), generator=generator, dtype=torch.float64).to(dt)
            om2 = torch.randn((d, sketch_dim), generator=generator, dtype=torch.float64).to(dt)
            om = (om1, om2)
        else:
            m = self.space_shape[0]
            om = (torch.randn((m, sketch_dim), generator=generator, dtype=torch.float64).to(dt),)
        om_f = self.client.scatter(om, broadcast=True)
        chunks = [self.client.submit(_chunk_sketch, c, om_f, scale, pure=False) for c in self.chunks]
        gather(self.client, chunks[:1], self.timeout)
        return self._child(chunks, self.sizes, (sketch_dim,))

    def _sketch(self, sketch_dim, generator, chunk):
        """The hook :func:`sparse_query.problem.sketch` calls: the sketch, on the workers."""
        return self.sketch(sketch_dim, generator=generator)

    def take(self, idx) -> "DaskOperator":
        """The operator on the rows ``idx`` (ascending), selected on the workers.

        Used to keep one row per group of copies (:class:`~sparse_query.problem.SparseApproxProblem`);
        chunks left without rows are dropped. The result is closed with this operator.
        """
        idx = torch.as_tensor(idx, dtype=torch.long).reshape(-1).cpu()
        if idx.numel() > 1 and not bool((idx[1:] > idx[:-1]).all()):
            raise ValueError("DaskOperator.take needs distinct ascending row indices; sort them "
                             "first (the rows stay in pool order on the workers).")
        if idx.numel() and (int(idx[0]) < 0 or int(idx[-1]) >= self.n):
            raise IndexError(f"row indices must lie in [0, {self.n}); got {int(idx[0])} to "
                             f"{int(idx[-1])}.")
        which = np.searchsorted(self.offsets, idx.numpy(), side="right") - 1
        chunks, sizes = [], []
        for c in np.unique(which):
            local = idx[torch.from_numpy(which == c)] - int(self.offsets[c])
            chunks.append(self.client.submit(_chunk_rows, self.chunks[c], local, pure=False))
            sizes.append(int(local.numel()))
        return self._child(chunks, sizes, self.space_shape)

    def row_blocks(self):
        """``[A, H]`` row views for :mod:`sparse_query.duplicates`, fetched from the workers in
        chunks as the grouping reads them (all of ``A``, ``H`` only where rows could be copies).

        A dense operator returns None (no grouping): its only block is the whole embedding,
        which the grouping's first stage would ship to the client row by row."""
        if not self.factored:
            return None
        return [_RowView(self, 0), _RowView(self, 1)]

    def _child(self, chunks, sizes, space_shape):
        out = DaskOperator(self.client, chunks, sizes, space_shape, self.dtype,
                           timeout=self.timeout, max_cached_rows=self.max_cached_rows)
        self._children.append(out)
        return out

    def close(self):
        """Release the chunks on the cluster (and those of operators derived from this one)."""
        for child in self._children:
            child.close()
        self._children = []
        try:
            self.client.cancel(self.chunks + list(getattr(self, "_extra", [])))
        except Exception:  # noqa: BLE001 - the cluster may already be gone
            pass
        self.chunks = []
        self._extra = []

    # -- helpers ----------------------------------------------------------------------------
    @property
    def device(self):
        return torch.device("cpu")

    @property
    def dtype(self):
        return self._dtype

    @property
    def factored(self) -> bool:
        return len(self.space_shape) == 2

    def _map(self, fn, *args):
        futs = [self.client.submit(fn, c, *args, pure=False) for c in self.chunks]
        return gather(self.client, futs, self.timeout)

    def _reset_cache(self):
        self._pos = None
        self._cache = None
        self._cached = 0

    def _rows(self, idx: torch.Tensor):
        """The chunk tensors' rows ``idx`` (client side, cached)."""
        idx = torch.as_tensor(idx, dtype=torch.long).reshape(-1)
        if self._pos is None:
            self._pos = torch.full((self.n,), -1, dtype=torch.long)
        missing = torch.unique(idx[self._pos[idx] < 0])
        if missing.numel():
            if self._cached + missing.numel() > self.max_cached_rows:
                self._reset_cache()
                self._pos = torch.full((self.n,), -1, dtype=torch.long)
                missing = torch.unique(idx)
            new = self._fetch(missing)
            self._cache = new if self._cache is None else tuple(
                torch.cat([o, t]) for o, t in zip(self._cache, new))
            self._pos[missing] = torch.arange(self._cached, self._cached + missing.numel())
            self._cached += missing.numel()
        p = self._pos[idx]
        return tuple(t[p] for t in self._cache)

    def _fetch(self, rows: torch.Tensor):
        """The chunk tensors' rows ``rows`` (sorted, distinct), from the workers, uncached."""
        miss = rows.numpy()
        which = np.searchsorted(self.offsets, miss, side="right") - 1
        futs = []
        for c in np.unique(which):
            local = torch.from_numpy(miss[which == c] - self.offsets[c])
            futs.append(self.client.submit(_chunk_rows, self.chunks[c], local, pure=False))
        parts = gather(self.client, futs, self.timeout)  # ascending chunks = ascending rows
        return tuple(torch.cat([p[k] for p in parts]) for k in range(len(parts[0])))

    # -- products (same expressions as problem.DenseOperator / FactoredOperator) -------------
    def combine(self, u):
        u = u.to(self.dtype)
        parts = [self.client.submit(_chunk_combine, c, u[s:e], pure=False)
                 for c, s, e in zip(self.chunks, self.offsets[:-1], self.offsets[1:])]
        parts = gather(self.client, parts, self.timeout)
        out = torch.zeros(self.space_shape, dtype=self.dtype)
        for p in parts:  # in chunk order, like FactoredOperator.combine
            out += p
        return out

    def combine_rows(self, idx, vals):
        rows = self._rows(idx)
        if self.factored:
            return (rows[0] * vals[:, None]).T @ rows[1]
        return vals @ rows[0]

    def project(self, r):
        return torch.cat(self._map(_chunk_project, r.to(self.dtype)))

    def project_rows(self, r, idx):
        rows = self._rows(idx)
        if self.factored:
            return ((rows[1] @ r.T) * rows[0]).sum(dim=1)
        return rows[0] @ r

    def gram_columns(self, idx):
        rows = self._rows(idx)
        return torch.cat(self._map(_chunk_gram, rows))

    def gram_block(self, idx_rows, idx_cols):
        r, c = self._rows(idx_rows), self._rows(idx_cols)
        if self.factored:
            return (r[0] @ c[0].T) * (r[1] @ c[1].T)
        return r[0] @ c[0].T

    def sqnorms(self):
        return torch.cat(self._map(_chunk_sqnorms))

    def dense(self):
        parts = gather(self.client, self.chunks, self.timeout)
        if self.factored:
            A = torch.cat([p[0] for p in parts])
            H = torch.cat([p[1] for p in parts])
            return (A[:, :, None] * H[:, None, :]).reshape(self.n, -1)
        return torch.cat([p[0] for p in parts])

    @property
    def project_cost(self):
        if self.factored:
            K, d = self.space_shape
            return K * d + d
        return self.space_shape[0]

    @property
    def column_cost(self):
        if self.factored:
            K, d = self.space_shape
            return K + d
        return self.space_shape[0]


class _RowView:
    """Rows of one factor of a :class:`DaskOperator`, fetched on indexing (slices or index
    tensors), in the order asked; only what :func:`~sparse_query.duplicates.group_duplicates`
    reads: ``shape`` and ``view[rows]``."""

    def __init__(self, op: DaskOperator, k: int):
        self.op, self.k = op, k
        self.shape = (op.n, op.space_shape[k])

    def __getitem__(self, rows) -> torch.Tensor:
        if isinstance(rows, slice):
            rows = torch.arange(self.op.n)[rows]
        rows = torch.as_tensor(rows, dtype=torch.long).reshape(-1)
        if rows.numel() == 0:
            return torch.zeros((0, self.shape[1]), dtype=self.op.dtype)
        uniq, inv = torch.unique(rows, return_inverse=True)
        return self.op._fetch(uniq)[self.k][inv]

