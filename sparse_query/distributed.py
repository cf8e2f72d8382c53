"""Sparse-approximation queries over a pool that lives on a Dask cluster (issue 8).

The pool's embedding -- the factors ``A (n, K)`` and ``H (n, d)`` of the gradient embedding, or
its ``(n, m')`` sketch -- stays on the workers, one row chunk per task result; the solvers of
:mod:`sparse_query.solvers` run on the client against a :class:`DaskOperator`, which implements
the :class:`~sparse_query.problem.PoolOperator` interface with the cluster:

* ``Phi^T r`` (:meth:`~DaskOperator.project`) is a map over the chunks;
* ``Phi u`` (:meth:`~DaskOperator.combine`) is a map over the chunks followed by a reduction,
  summed on the client in chunk order (so it rounds exactly like the single-machine chunked
  sum when the chunks have the same boundaries);
* rows of the support (a few ``b`` of them) are fetched once and cached on the client, so the
  de-bias and line-search steps cost no pass over the pool.

Proximal IHT also keeps its length-``n`` vectors on the workers (:class:`DaskPoolVectors`): the
gradient is computed per chunk and stays there, the top-``b`` prox is a per-chunk top-``b``
merged on the client (at most ``b`` candidates per chunk), and the client holds only the
``b``-sparse iterates plus ``sigma`` (4 bytes per pool point in float32, needed to build the
problem; the workers get it in chunks). Greedy still gathers its gradient (``n`` values) to
the client at each step. The solver code is shared, so the same inputs, seed and sketch give
the same batch as the single-machine path (tests check this on a pool split over several
worker processes).

Pointing it at your own cluster
-------------------------------
Start a scheduler and workers (``dask scheduler`` on one machine, ``dask worker
tcp://scheduler:8786`` on the others, or any Dask deployment: Kubernetes, SLURM via
dask-jobqueue, ...), make ``sparse_query`` and your model's code importable on every worker, and
connect from the client before querying::

    from distributed import Client
    client = Client("tcp://scheduler:8786")
    X_pool = dask.array.from_zarr("pool.zarr")            # rows chunked, e.g. 32768 per chunk
    idx, info = query_dask(model, X_pool, 1000, sketch_dim=128, random_state=0)

``client=None`` uses the current default client (the last one created); pass ``client=`` to
choose one. Every round trip waits at most ``timeout`` seconds; a worker that dies while running
one of our tasks (after Dask's own retries, ``distributed.scheduler.allowed-failures``), a
scheduler that goes away or a step that exceeds the timeout raise :class:`DaskQueryError`
instead of hanging.

Dask and distributed are an optional extra (``pip install sparse_query[dask]``), imported only
inside the functions that need them.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from ._utils import check_float, check_int, check_option, resolve_dtype, torch_generator
from .problem import PoolOperator, SparseApproxProblem
from .solvers import PoolVectors, prox_score, topk_lowest_index

__all__ = [
    "DaskQueryError",
    "DaskOperator",
    "DaskPoolVectors",
    "dask_last_layer",
    "dask_gradient_embedding",
    "proximal_iht_dask",
    "greedy_dask",
    "query_dask",
]

DEFAULT_TIMEOUT = 600.0
_SOLVERS = ("iht", "greedy")


class DaskQueryError(RuntimeError):
    """The cluster failed during a query: a worker died, the scheduler left, or a step timed out."""


def _import_dask():
    try:
        import dask
        import dask.array as da
        import distributed
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "sparse_query.distributed needs dask and distributed; install them with "
            "`pip install sparse_query[dask]` (or `pip install 'dask[array,distributed]'`)."
        ) from exc
    return dask, da, distributed


def _resolve_client(client):
    _, _, distributed = _import_dask()
    if client is not None:
        if not isinstance(client, distributed.Client):
            raise TypeError(f"client must be a distributed.Client; got {type(client).__name__}.")
        return client
    try:
        return distributed.get_client()
    except ValueError:
        raise ValueError(
            "client=None but there is no Dask client in this process; connect first, e.g. "
            "`from distributed import Client; client = Client('tcp://scheduler:8786')` (or "
            "Client(LocalCluster()) on one machine), or pass client=."
        ) from None


# ------------------------------------------------------------------------------------------
# what runs on the workers (module-level, so it pickles by reference)
# ------------------------------------------------------------------------------------------
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


def _chunk_grad(chunk, r, local, vals, b, beta):
    """This chunk's piece of ``grad f1(z) = 2 Phi^T r / b + 2 beta (z - 1)`` (kept on the worker)."""
    u = 2.0 * _chunk_project(chunk, r) / b - 2.0 * beta
    u[local] += 2.0 * beta * vals
    return u


def _vec_take(u, local):
    return u[local]


def _vec_norm2(u):
    return float((u.double() ** 2).sum())


def _vec_dense_terms(chunk, u):
    return _chunk_combine(chunk, u), float(u.double().sum()), float((u.double() ** 2).sum())


def _vec_prox(u, sigma, local, vals, mu, alpha, b, rule, offset):
    """The chunk's own top-``b`` of the prox at ``s = z - mu u``: (global indices, score, s)."""
    s = -mu * u
    s[local] += vals
    score, largest = prox_score(s, sigma, alpha, rule)
    keep = topk_lowest_index(score, b, largest=largest, tiebreak=s)
    return keep + offset, score[keep], s[keep]


# ------------------------------------------------------------------------------------------
# the operator
# ------------------------------------------------------------------------------------------
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
        dask, da, _ = _import_dask()
        client = _resolve_client(client)
        dtype = resolve_dtype(dtype)
        timeout = check_float(timeout, "timeout", min_val=0.0, min_inclusive=False)
        arrays, sizes = _align_rows(arrays, ("A", "H") if len(arrays) == 2 else ("E",))
        starts = np.concatenate([[0], np.cumsum(sizes)])[:-1]
        blocks = [a.to_delayed().ravel() for a in arrays]
        # fresh keys per build: closing one operator must not cancel the chunks of another
        # built from the same arrays (deterministic keys would be shared)
        make = dask.delayed(_to_chunk, pure=False)
        tasks = [make(*[b[i] for b in blocks], dtype=dtype, start=int(starts[i]))
                 for i in range(len(sizes))]
        extra = list(extra or [])
        futs = _gather_guard(client, lambda: client.compute(tasks + extra), timeout, wait=False)
        chunks, extra_futs = futs[: len(tasks)], futs[len(tasks):]
        shape = (arrays[0].shape[1], arrays[1].shape[1]) if len(arrays) == 2 else (arrays[0].shape[1],)
        op = cls(client, chunks, sizes, shape, dtype, timeout=timeout)
        op._extra = extra_futs
        _gather(client, chunks[:1], timeout)  # surface input errors (NaN, shapes) now
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
        _gather(self.client, chunks[:1], self.timeout)
        return DaskOperator(self.client, chunks, self.sizes, (sketch_dim,), dt, timeout=self.timeout)

    def close(self):
        """Release the chunks on the cluster."""
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
        return _gather(self.client, futs, self.timeout)

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
            miss = missing.numpy()
            which = np.searchsorted(self.offsets, miss, side="right") - 1
            futs = []
            for c in np.unique(which):
                local = torch.from_numpy(miss[which == c] - self.offsets[c])
                futs.append(self.client.submit(_chunk_rows, self.chunks[c], local, pure=False))
            parts = _gather(self.client, futs, self.timeout)  # ascending chunks = ascending rows
            new = tuple(torch.cat([p[k] for p in parts]) for k in range(len(parts[0])))
            self._cache = new if self._cache is None else tuple(
                torch.cat([o, t]) for o, t in zip(self._cache, new))
            self._pos[missing] = torch.arange(self._cached, self._cached + missing.numel())
            self._cached += missing.numel()
        p = self._pos[idx]
        return tuple(t[p] for t in self._cache)

    # -- products (same expressions as problem.DenseOperator / FactoredOperator) -------------
    def combine(self, u):
        u = u.to(self.dtype)
        parts = [self.client.submit(_chunk_combine, c, u[s:e], pure=False)
                 for c, s, e in zip(self.chunks, self.offsets[:-1], self.offsets[1:])]
        parts = _gather(self.client, parts, self.timeout)
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
        parts = _gather(self.client, self.chunks, self.timeout)
        if self.factored:
            A = torch.cat([p[0] for p in parts])
            H = torch.cat([p[1] for p in parts])
            return (A[:, :, None] * H[:, None, :]).reshape(self.n, -1)
        return torch.cat([p[0] for p in parts])

    def take(self, idx):
        raise NotImplementedError("DaskOperator.take is not supported; gather the rows you need "
                                  "with dense() on a small pool instead.")

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


class DaskPoolVectors(PoolVectors):
    """Proximal IHT's length-``n`` vectors kept on the workers, one piece per pool chunk.

    The gradient ``u = grad f1(z)`` is computed per chunk (``Phi^T r`` as a map) and never
    leaves its worker; the solver fetches it only at a few ``b`` indices. ``Phi u`` (when the
    solver needs the full-gradient step) is a map plus a reduction in chunk order. The prox is
    a per-chunk top-``b`` with the same order and tie-break as
    :func:`~sparse_query.solvers.hard_threshold_prox`, merged on the client over at most
    ``b x n_chunks`` candidates, so it keeps exactly the indices the single-machine prox keeps.
    ``sigma`` is split into the same chunks.
    """

    def __init__(self, problem: SparseApproxProblem):
        super().__init__(problem)
        op = problem.op
        if not isinstance(op, DaskOperator):
            raise TypeError(f"problem.op must be a DaskOperator; got {type(op).__name__}.")
        self.op = op
        bounds = list(zip(op.offsets[:-1].tolist(), op.offsets[1:].tolist()))
        self._bounds = bounds
        self._sigma = op.client.scatter([problem.sigma[s:e].clone() for s, e in bounds])

    def _split(self, idx, vals=None):
        """Per chunk: (chunk number, local indices, values) of sorted global ``idx``."""
        idx_np = idx.cpu().numpy()
        which = np.searchsorted(self.op.offsets, idx_np, side="right") - 1
        out = {}
        for c in np.unique(which):
            mask = torch.from_numpy(which == c)
            out[int(c)] = (idx[mask] - int(self.op.offsets[c]),
                           None if vals is None else vals[mask])
        return out

    def _run(self, futs):
        return _gather(self.op.client, futs, self.op.timeout)

    def gradient(self, z_idx, z_val, r):
        p, op = self.problem, self.op
        parts = self._split(z_idx, z_val)
        none = (torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=op.dtype))
        r = r.to(op.dtype)
        return [op.client.submit(_chunk_grad, chunk, r, *parts.get(c, none), p.b, p.beta,
                                 pure=False)
                for c, chunk in enumerate(op.chunks)]

    def norm2(self, u):
        return float(sum(self._run([self.op.client.submit(_vec_norm2, x, pure=False)
                                    for x in u])))

    def take(self, u, idx):
        parts = self._split(idx)
        if not parts:
            return torch.zeros(0, dtype=self.op.dtype)
        futs = [self.op.client.submit(_vec_take, u[c], local, pure=False)
                for c, (local, _) in sorted(parts.items())]
        return torch.cat(self._run(futs))

    def dense_terms(self, u):
        op = self.op
        parts = self._run([op.client.submit(_vec_dense_terms, chunk, x, pure=False)
                           for chunk, x in zip(op.chunks, u)])
        phi = torch.zeros(op.space_shape, dtype=op.dtype)
        for piece, _, _ in parts:  # in chunk order, like DaskOperator.combine
            phi += piece
        return (phi / self.problem.b, float(sum(t for _, t, _ in parts)),
                float(sum(q for _, _, q in parts)))

    def prox(self, u, z_idx, z_val, mu, rule):
        p, op = self.problem, self.op
        parts = self._split(z_idx, z_val)
        none = (torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=op.dtype))
        futs = [op.client.submit(_vec_prox, u[c], self._sigma[c], *parts.get(c, none), mu,
                                 p.alpha, p.b, rule, int(op.offsets[c]), pure=False)
                for c in range(len(op.chunks))]
        got = self._run(futs)  # chunk order: candidates sorted by global index
        idx = torch.cat([g[0] for g in got])
        score = torch.cat([g[1] for g in got])
        s = torch.cat([g[2] for g in got])
        keep = topk_lowest_index(score, p.b, largest=rule == "exact", tiebreak=s)
        return idx[keep], s[keep]

    def sigma2(self, idx):
        parts = self._split(idx)
        if not parts:
            return torch.zeros(0, dtype=self.op.dtype)
        futs = [self.op.client.submit(_vec_take, self._sigma[c], local, pure=False)
                for c, (local, _) in sorted(parts.items())]
        sig = torch.cat(self._run(futs))
        return sig * sig

    def close(self):
        try:
            self.op.client.cancel(self._sigma)
        except Exception:  # noqa: BLE001 - the cluster may already be gone
            pass


def _align_rows(arrays, names):
    """Check dask arrays are 2-D with the same rows; rechunk to the first's row chunks."""
    _, da, _ = _import_dask()
    out = []
    for a, name in zip(arrays, names):
        if not isinstance(a, da.Array):
            raise TypeError(f"{name} must be a dask.array.Array; got {type(a).__name__}. Wrap "
                            "in-memory data with dask.array.from_array(x, chunks=(rows, -1)).")
        if a.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n, columns); got shape {a.shape}.")
        if any(math.isnan(s) for s in a.shape):
            raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() "
                             "first.")
        out.append(a)
    n = out[0].shape[0]
    for a, name in zip(out[1:], names[1:]):
        if a.shape[0] != n:
            raise ValueError(f"{name} has {a.shape[0]} rows but {names[0]} has {n}; both must "
                             "describe the same pool points.")
    if n == 0:
        raise ValueError(f"{names[0]} has no rows: the pool is empty.")
    rows = out[0].chunks[0]
    out = [a.rechunk((rows, -1)) for a in out]
    return out, list(rows)


def _gather_guard(client, make, timeout, *, wait=True):
    """Run ``make()`` (which submits work), translating cluster failures into DaskQueryError."""
    try:
        futs = make()
    except Exception as exc:  # noqa: BLE001
        _raise_cluster_error(exc)
        raise
    if wait:
        return _gather(client, futs, timeout)
    return futs


def _gather(client, futs, timeout):
    """``client.gather(futs)`` bounded by ``timeout`` seconds; cluster failures -> DaskQueryError."""
    _, _, distributed = _import_dask()
    if not futs:
        return []
    try:
        distributed.wait(futs, timeout=timeout)
        return client.gather(futs)
    except Exception as exc:  # noqa: BLE001
        try:
            client.cancel(futs)
        except Exception:  # noqa: BLE001
            pass
        _raise_cluster_error(exc, timeout)
        raise


def _raise_cluster_error(exc, timeout=None):
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):
        raise DaskQueryError(
            f"a Dask worker died while running part of the query ({exc}); the task was retried "
            "up to the scheduler's 'distributed.scheduler.allowed-failures' and every attempt "
            "killed its worker. Check the workers' logs (memory limit, crashing model code) and "
            "query again."
        ) from exc
    if isinstance(exc, TimeoutError):
        raise DaskQueryError(
            f"a step of the query took longer than timeout={timeout} seconds (workers lost, "
            "cluster overloaded or unreachable); check the cluster and retry, or pass a larger "
            "timeout."
        ) from exc
    if isinstance(exc, (CommClosedError, ConnectionError)):
        raise DaskQueryError(
            f"lost the connection to the Dask cluster during the query ({exc}); check that the "
            "scheduler is running and reachable."
        ) from exc


# ------------------------------------------------------------------------------------------
# embeddings of a dask pool
# ------------------------------------------------------------------------------------------
def _last_layer_block(X, estimator, d, K, batch_size):
    from .adapters import last_layer_outputs

    out = last_layer_outputs(estimator, X, batch_size=batch_size)
    h, z = out.features, out.logits
    if h.shape[1] != d or z.shape[1] != K:
        raise ValueError(f"a block gave features of width {h.shape[1]} and {z.shape[1]} logits; "
                         f"the first rows gave {d} and {K}.")
    dt = torch.float64 if torch.float64 in (h.dtype, z.dtype) else torch.float32
    return torch.cat([h.to(dt), z.to(dt)], dim=1).numpy()


def dask_last_layer(estimator, X, *, batch_size: int = 1024):
    """Penultimate features and logits of ``estimator`` on a dask array pool, block by block.

    :func:`sparse_query.adapters.last_layer_outputs` runs on each row block of ``X`` (via
    ``map_blocks``), on the workers; the estimator travels to them once per block.

    Parameters
    ----------
    estimator : object
        A fitted model :func:`~sparse_query.adapters.last_layer_outputs` supports; it must be
        picklable and its code importable on the workers.
    X : dask.array.Array of shape (n_samples, ...)
        The pool, chunked along rows only (other axes are gathered into one chunk).
    batch_size : int, default=1024
        Rows per forward pass inside a block.

    Returns
    -------
    features : dask.array.Array of shape (n_samples, n_features)
    logits : dask.array.Array of shape (n_samples, n_classes)
    bias : bool
        Whether the last layer has a bias (from a probe on the first rows).
    """
    _, da, _ = _import_dask()
    from .adapters import last_layer_outputs

    if not isinstance(X, da.Array):
        raise TypeError(f"X must be a dask.array.Array; got {type(X).__name__}.")
    if X.ndim < 2 or X.shape[0] == 0:
        raise ValueError(f"X must have shape (n_samples, ...) with n_samples >= 1; got {X.shape}.")
    batch_size = check_int(batch_size, "batch_size", min_val=1)
    X = X.rechunk({i: -1 for i in range(1, X.ndim)})
    probe = last_layer_outputs(estimator, np.asarray(X[:2].compute()))
    d, K = int(probe.features.shape[1]), int(probe.logits.shape[1])
    dt = np.float64 if torch.float64 in (probe.features.dtype, probe.logits.dtype) else np.float32
    drop = tuple(range(2, X.ndim))
    out = X.map_blocks(_last_layer_block, estimator, d, K, batch_size, dtype=dt,
                       chunks=(X.chunks[0], (d + K,)), drop_axis=drop, meta=np.empty((0, 0), dt))
    return out[:, :d], out[:, d:], bool(probe.bias)


def _embed_block(F, Z, temperature, bias, n):
    from .embeddings import _expected_onehot_distance, gradient_embedding

    emb = gradient_embedding(torch.as_tensor(Z), torch.as_tensor(F), temperature=temperature,
                             bias=bias)
    # gradient_embedding divides sigma by the block's size; the pool's 1/n is global, so
    # recompute it with the same expression and the pool size n.
    sigma = torch.linalg.vector_norm(emb.h, dim=1) * _expected_onehot_distance(emb.probs) / n
    return torch.cat([emb.a, emb.h, sigma[:, None]], dim=1).numpy()


def dask_gradient_embedding(features, logits, *, temperature: float, bias: bool = True):
    """The last-layer gradient embedding (paper eq. 14) of a dask pool, block by block.

    The same maths as :func:`sparse_query.embeddings.gradient_embedding`, including the global
    ``1/n`` of ``sigma`` (``n`` is the whole pool, not the block).

    Parameters
    ----------
    features : dask.array.Array of shape (n_samples, n_features)
    logits : dask.array.Array of shape (n_samples, n_classes)
    temperature : float
        ``T >= 0`` of the label distribution ``P_j = softmax(z_j / T)`` (0: one-hot limit).
    bias : bool, default=True

    Returns
    -------
    A : dask.array.Array of shape (n_samples, n_classes)
    H : dask.array.Array of shape (n_samples, n_features + bias)
    sigma : dask.array.Array of shape (n_samples,)
    """
    _, da, _ = _import_dask()
    if isinstance(temperature, str):
        raise TypeError(f"temperature={temperature!r} must be a number >= 0 here; resolve 'auto' "
                        "with sparse_query.embeddings.estimate_temperature first.")
    temperature = check_float(temperature, "temperature", min_val=0.0)
    (F, Z), _ = _align_rows((features, logits), ("features", "logits"))
    n, d = F.shape
    K = Z.shape[1]
    dh = d + (1 if bias else 0)
    out = da.map_blocks(_embed_block, F, Z, temperature, bool(bias), n, dtype=F.dtype,
                        chunks=(F.chunks[0], (K + dh + 1,)), meta=np.empty((0, 0), F.dtype))
    return out[:, :K], out[:, K:K + dh], out[:, K + dh]


# ------------------------------------------------------------------------------------------
# solvers
# ------------------------------------------------------------------------------------------
def _solve_dask(solver, A, H, sigma, b, *, alpha, beta, sketch_dim, random_state, client,
                dtype, timeout, solver_kwargs):
    from .solvers import greedy, proximal_iht

    _, da, _ = _import_dask()
    client = _resolve_client(client)
    if sketch_dim is not None:
        sketch_dim = check_int(sketch_dim, "sketch_dim", min_val=1)
    arrays = (A,) if H is None else (A, H)
    if isinstance(sigma, da.Array):
        if sigma.ndim != 1:
            raise ValueError(f"sigma must be 1-D (n,); got shape {sigma.shape}.")
        op = DaskOperator._build(client, dtype, timeout, *arrays, extra=[sigma])
        sig = _gather(client, op._extra, timeout)[0]
    else:
        op = DaskOperator._build(client, dtype, timeout, *arrays)
        sig = sigma
    sk = None
    try:
        t0 = time.perf_counter()
        if sketch_dim is not None:
            sk = op.sketch(sketch_dim, generator=torch_generator(random_state))
            work = sk
        else:
            work = op
        problem = SparseApproxProblem(work, np.asarray(sig), b, alpha=alpha, beta=beta,
                                      device="cpu", dtype=op.dtype)
        if solver == "iht":
            pool = DaskPoolVectors(problem)
            try:
                res = proximal_iht(problem, _pool=pool, **solver_kwargs)
            finally:
                pool.close()
        else:
            res = greedy(problem, **solver_kwargs)
        res.info = {"n_chunks": len(op.chunks), "solve_s": time.perf_counter() - t0,
                    "n_workers": len(client.scheduler_info().get("workers", {}))}
        return res
    finally:
        if sk is not None:
            sk.close()
        op.close()


def proximal_iht_dask(A, H, sigma, b: int, *, alpha: float = 1.0, beta: float = 1e-3,
                      max_iter: int = 100, tol: float = 1e-6, prox: str = "exact",
                      patience: int | None = 10, sketch_dim: int | None = None,
                      random_state=None, client=None, dtype="float32",
                      timeout: float = DEFAULT_TIMEOUT):
    """Proximal IHT (:func:`sparse_query.solvers.proximal_iht`) on a pool held by a Dask cluster.

    Parameters
    ----------
    A : dask.array.Array of shape (n, K)
        Class factors ``a_j`` of a factored embedding, or the dense embedding ``(n, m)`` when
        ``H`` is None. Rows chunked; each chunk becomes one task result on a worker.
    H : dask.array.Array of shape (n, d) or None
        Feature factors ``h_j`` (rechunked to ``A``'s rows).
    sigma : dask.array.Array or array-like of shape (n,)
    b : int
        Batch size.
    alpha, beta, max_iter, tol, prox, patience
        As in :class:`~sparse_query.problem.SparseApproxProblem` and ``proximal_iht``.
    sketch_dim : int or None, default=None
        Sketch the embedding to this dimension on the workers (``None``: exact); the sketch is
        drawn from ``torch_generator(random_state)``, exactly like the single-machine path.
    random_state : None, int or numpy Generator
    client : distributed.Client or None
        ``None``: the default client.
    dtype : {"float32", "float64"}, default="float32"
    timeout : float, default=600
        Seconds any single round trip to the cluster may take before :class:`DaskQueryError`.

    Returns
    -------
    SolverResult
        As ``proximal_iht``, with an extra ``info`` dict (``n_chunks``, ``n_workers``,
        ``solve_s``).
    """
    check_option(prox, "prox", ("exact", "paper"))
    return _solve_dask("iht", A, H, sigma, b, alpha=alpha, beta=beta, sketch_dim=sketch_dim,
                       random_state=random_state, client=client, dtype=dtype, timeout=timeout,
                       solver_kwargs=dict(max_iter=max_iter, tol=tol, prox=prox,
                                          patience=patience))


def greedy_dask(A, H, sigma, b: int, *, alpha: float = 1.0, beta: float = 1e-3,
                sketch_dim: int | None = None, random_state=None, client=None,
                dtype="float32", timeout: float = DEFAULT_TIMEOUT):
    """Greedy (:func:`sparse_query.solvers.greedy`) on a pool held by a Dask cluster.

    One round trip per selected point; parameters as in :func:`proximal_iht_dask`.
    """
    return _solve_dask("greedy", A, H, sigma, b, alpha=alpha, beta=beta, sketch_dim=sketch_dim,
                       random_state=random_state, client=client, dtype=dtype, timeout=timeout,
                       solver_kwargs={})


def query_dask(estimator, X_pool, n_instances: int, *, solver: str = "iht", alpha: float = 1.0,
               beta: float = 1e-3, max_iter: int = 100, tol: float = 1e-6,
               patience: int | None = 10, temperature: float = 0.1,
               sketch_dim: int | None = None, random_state=None,
               client=None, dtype="float32", batch_size: int = 1024,
               timeout: float = DEFAULT_TIMEOUT):
    """Choose a batch from a pool held as a dask array: inference, embedding and solve on a cluster.

    The model runs on each row block of ``X_pool`` on the workers
    (:func:`dask_last_layer`), the gradient embedding is built there
    (:func:`dask_gradient_embedding`) and kept as chunks, and greedy or proximal IHT runs
    against them (:func:`proximal_iht_dask`). Same inputs, seed and sketch give the same batch
    as ``last_layer_outputs`` + ``gradient_embedding`` + the single-machine solver with
    ``sketch(op, sketch_dim, generator=torch_generator(random_state))``.

    Parameters
    ----------
    estimator : object
        Fitted model with a last linear layer (see :func:`sparse_query.adapters.last_layer_outputs`).
    X_pool : dask.array.Array of shape (n_samples, ...)
        The pool, chunked along rows.
    n_instances : int
        Batch size ``b``.
    solver : {"iht", "greedy"}, default="iht"
    alpha, beta : float
        Weights of the variance term and the stabiliser.
    max_iter, tol, patience : IHT's iteration cap, tolerance and stable-batch patience.
    temperature : float, default=0.1
        ``T`` of the label distribution (a number: resolve ``"auto"`` on the labeled data first).
    sketch_dim : int or None, default=None
        ``None``: the exact embedding.
    random_state : None, int or numpy Generator
    client : distributed.Client or None
    dtype : {"float32", "float64"}, default="float32"
    batch_size : int, default=1024
        Rows per forward pass inside a block.
    timeout : float, default=600
        Seconds any single round trip may take.

    Returns
    -------
    indices : ndarray of shape (n_instances,), int64
    info : dict
        ``weights``, ``objective``, ``n_iter``, ``converged``, ``history``, ``n_chunks``,
        ``n_workers``, ``time_s``.

    Raises
    ------
    DaskQueryError
        When a worker dies, the scheduler goes away or a step exceeds ``timeout``.

    Examples
    --------
    >>> from distributed import Client, LocalCluster              # doctest: +SKIP
    >>> client = Client(LocalCluster(n_workers=2, processes=True))  # doctest: +SKIP
    >>> X = dask.array.from_array(X_pool, chunks=(10_000, -1))     # doctest: +SKIP
    >>> idx, info = query_dask(model, X, 100, sketch_dim=128, random_state=0)  # doctest: +SKIP
    """
    _, da, _ = _import_dask()
    check_option(solver, "solver", _SOLVERS)
    if not isinstance(X_pool, da.Array):
        raise TypeError(f"X_pool must be a dask.array.Array; got {type(X_pool).__name__}.")
    n = X_pool.shape[0]
    if isinstance(n, float) and math.isnan(n):
        raise ValueError("X_pool has unknown chunk sizes; call X_pool.compute_chunk_sizes() first.")
    n_instances = check_int(n_instances, "n_instances", min_val=1, max_val=n,
                            max_hint=f"It exceeds the pool size ({n}).")
    alpha = check_float(alpha, "alpha", min_val=0.0)
    beta = check_float(beta, "beta", min_val=0.0)
    max_iter = check_int(max_iter, "max_iter", min_val=1)
    tol = check_float(tol, "tol", min_val=0.0)
    timeout = check_float(timeout, "timeout", min_val=0.0, min_inclusive=False)
    client = _resolve_client(client)
    t0 = time.perf_counter()
    with client.as_current():
        F, Z, bias = dask_last_layer(estimator, X_pool, batch_size=batch_size)
        A, H, sigma = dask_gradient_embedding(F, Z, temperature=temperature, bias=bias)
        kw = dict(alpha=alpha, beta=beta, sketch_dim=sketch_dim, random_state=random_state,
                  client=client, dtype=dtype, timeout=timeout)
        if solver == "iht":
            res = proximal_iht_dask(A, H, sigma, n_instances, max_iter=max_iter, tol=tol,
                                    patience=patience, **kw)
        else:
            res = greedy_dask(A, H, sigma, n_instances, **kw)
    info = dict(weights=res.weights, objective=res.objective, n_iter=res.n_iter,
                converged=res.converged, history=res.history, **res.info,
                time_s=time.perf_counter() - t0)
    return np.asarray(res.indices, dtype=np.int64), info
