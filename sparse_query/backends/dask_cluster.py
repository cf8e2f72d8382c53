"""The Dask cluster as the pool backends see it: the client, bounded round trips, clear failures.

Every round trip to the cluster goes through :func:`gather` (at most ``timeout`` seconds);
a worker that dies while running one of our tasks (after Dask's own retries,
``distributed.scheduler.allowed-failures``), a scheduler that goes away or a step that exceeds
the timeout raise :class:`DaskQueryError` instead of hanging. Dask and distributed are an
optional extra (``pip install '.[dask]'`` in a clone), imported only inside these functions.
"""
from __future__ import annotations

import math

__all__ = ["DaskQueryError", "DEFAULT_TIMEOUT", "import_dask", "resolve_client", "align_rows",
           "gather", "gather_guard"]

DEFAULT_TIMEOUT = 600.0


class DaskQueryError(RuntimeError):
    """The cluster failed during a query: a worker died, the scheduler left, or a step timed out."""


def import_dask():
    try:
        import dask
        import dask.array as da
        import distributed
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "sparse_query.distributed needs dask and distributed; install them with "
            "`pip install '.[dask]'` in a clone of sparse_query (or "
            "`pip install 'dask[array,distributed]'`)."
        ) from exc
    return dask, da, distributed


def resolve_client(client):
    _, _, distributed = import_dask()
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



def align_rows(arrays, names):
    """Check dask arrays are 2-D with the same rows; rechunk to the first's row chunks."""
    _, da, _ = import_dask()
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


def gather_guard(client, make, timeout, *, wait=True):
    """Run ``make()`` (which submits work), translating cluster failures into DaskQueryError."""
    try:
        futs = make()
    except Exception as exc:  # noqa: BLE001
        _raise_cluster_error(exc)
        raise
    if wait:
        return gather(client, futs, timeout)
    return futs


def gather(client, futs, timeout):
    """``client.gather(futs)`` bounded by ``timeout`` seconds; cluster failures -> DaskQueryError."""
    _, _, distributed = import_dask()
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
