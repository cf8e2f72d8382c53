"""The Dask backend: a ``dask.array`` pool embedded and solved where its rows are.

The model runs on every row block on the workers (:mod:`.dask_blocks`), the gradient
embedding's factors are computed there into row chunks behind a :class:`.DaskOperator`
(:mod:`.dask_operator`), and IHT keeps its length-``n`` vectors there
(:mod:`.dask_vectors`); the solvers run on the client, on the CPU. The client holds the
``b``-sparse iterates, the support rows it has fetched, ``sigma`` and ``sigma^2``, the
row cache's index and, for grouping copies, one ``int64`` key and group id per pool row
(a few ``int64`` a row in all, not measured).

What differs from an in-memory pool, and why:

* ``solver="auto"`` is IHT: every greedy step is a round trip to the cluster (and gathers an
  ``n``-vector to the client), while IHT's passes are maps over the chunks, so the
  operation count that ranks the two in memory does not rank them here. For the same reason
  ``sketch_dim="auto"`` sketches whenever the pool and the embedding are large enough
  (more than 10,000 rows and 1,024 dimensions), without the in-memory cost comparison.
* ``embedding`` must resolve to ``"gradient"``: the leaf-gradient and committee embeddings
  build operators (CSR leaf indicators, per-member class blocks) that have no chunked form
  here yet, and the posterior embedding's draws (MC-dropout masks, variational samples) have
  not been checked to be the in-memory draws when taken block by block on the workers, so a
  Dask pool refuses them rather than risk a different batch. Compute the pool into memory
  (``X_pool.compute()``) to use them.
"""
from __future__ import annotations

import math

import torch

from .._utils import check_float
from . import PoolBackend, PoolEmbedding
from .dask_cluster import DEFAULT_TIMEOUT, gather, resolve_client

__all__ = ["DaskBackend", "TIMEOUT_CONFIG"]

#: Dask configuration key of the seconds one round trip may take (DEFAULT_TIMEOUT when unset)
TIMEOUT_CONFIG = "sparse_query.dask.timeout"


class DaskBackend(PoolBackend):
    """A pool held as a ``dask.array``; see :class:`~sparse_query.backends.PoolBackend`.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, ...)
        The pool, chunked along rows (each row block is one task on a worker).
    client : distributed.Client or None, default=None
        ``None``: the current default client.
    timeout : float or None, default=None
        Seconds any single round trip to the cluster may take
        (:class:`~sparse_query.backends.dask_cluster.DaskQueryError` after that). ``None``
        reads Dask's configuration key ``"sparse_query.dask.timeout"`` (600 when unset), so
        ``with dask.config.set({"sparse_query.dask.timeout": 60}): sampler.fit_query(...)``
        bounds a sampler's round trips.
    batch_size, dtype, progress :
        As :class:`~sparse_query.backends.PoolBackend`.
    """

    plan_by_cost = False
    auto_solver = "iht"

    def __init__(self, X, *, batch_size, dtype, progress=False, client=None, timeout=None):
        super().__init__(X, batch_size=batch_size, dtype=dtype, progress=progress)
        n = X.shape[0]
        if isinstance(n, float) and math.isnan(n):
            raise ValueError("X_pool has unknown chunk sizes; call X_pool.compute_chunk_sizes() "
                             "first.")
        self.client = resolve_client(client)
        name = "timeout"
        if timeout is None:
            import dask

            name, timeout = TIMEOUT_CONFIG, dask.config.get(TIMEOUT_CONFIG, DEFAULT_TIMEOUT)
        self.timeout = check_float(timeout, name, min_val=0.0, min_inclusive=False)

    def gradient(self, est, temperature):
        from .dask_blocks import dask_gradient_embedding, dask_last_layer
        from .dask_operator import DaskOperator

        with self.client.as_current():
            F, Z, bias = dask_last_layer(est, self.X, batch_size=self.batch_size)
            K, d = int(Z.shape[1]), int(F.shape[1])
            if K < 2:
                return None
            A, H, sigma = dask_gradient_embedding(F, Z, temperature=temperature(), bias=bias)
            op = DaskOperator._build(self.client, self.dtype, self.timeout, A, H, extra=[sigma])
        sig = gather(self.client, op._extra, self.timeout)[0]
        return PoolEmbedding(op, torch.as_tensor(sig), K * (d + int(bias)))

    def posterior(self, est, *, n_samples, random_state):
        raise self._unsupported("posterior")

    def leaf_gradient(self, est, temperature, *, class_blocks, input_weight=None):
        raise self._unsupported("leaf-gradient" if input_weight is None
                                else "leaf-input-gradient")

    def committee_gradient(self, est, temperature):
        raise self._unsupported("committee-gradient")

    def input_gradient(self, est, temperature):
        raise self._unsupported("input-gradient")

    @staticmethod
    def _unsupported(kind):
        return ValueError(
            "a dask.array pool supports embedding='gradient' only (a model with a last linear "
            f"layer); got {kind!r} (see sparse_query.backends.dask_backend for why). Pass "
            "X_pool.compute() to embed the pool in memory, or use a model with a last layer."
        )

    def solve_device(self, device):
        return torch.device("cpu")  # the operator's products arrive on the client's CPU

    def release(self, operator):
        for child in operator._children:  # the copies-removed operator and the sketch
            child.close()
        operator._children = []

    def pool_vectors(self, problem):
        from .dask_vectors import DaskPoolVectors

        return DaskPoolVectors(problem)
