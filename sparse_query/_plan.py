"""How a query is run: ``solver="auto"`` and ``sketch_dim="auto"`` resolved.

In memory the choice is by an operation count per pool row (:func:`_cost`): greedy's ``b``
steps against IHT's 20-odd passes, with or without the sketch. A backend whose passes are
round trips to a cluster (``plan_by_cost = False``, :mod:`sparse_query.backends`) takes its
``auto_solver`` and sketches by the size rule alone.
"""
from __future__ import annotations

import math

import torch

from .problem import FactoredOperator

__all__ = ["plan", "AUTO_SKETCH_DIM", "AUTO_SKETCH_MIN_POOL", "AUTO_SKETCH_MIN_DIM"]

AUTO_SKETCH_DIM = 256
AUTO_SKETCH_MIN_POOL = 10_000
AUTO_SKETCH_MIN_DIM = 1024


def plan(solver, sketch_dim, operator, n_instances, *, n_pool, embedding_dim, backend):
    """``(solver, sketch_dim)`` for one query, ``"auto"`` values resolved.

    ``sketch_dim="auto"`` may sketch (to :data:`AUTO_SKETCH_DIM`) only when the pool has
    more than :data:`AUTO_SKETCH_MIN_POOL` rows and the exact embedding more than
    :data:`AUTO_SKETCH_MIN_DIM` dimensions; among the allowed options the lowest
    :func:`_cost` wins (ties: the first listed, greedy before IHT, sketched before exact).
    """
    auto_sketch = isinstance(sketch_dim, str) and sketch_dim == "auto"
    may_sketch = n_pool > AUTO_SKETCH_MIN_POOL and embedding_dim > AUTO_SKETCH_MIN_DIM
    if not backend.plan_by_cost:  # Dask: a greedy step, any pass, is a round trip
        sv = backend.auto_solver if solver == "auto" else solver
        sk = (AUTO_SKETCH_DIM if may_sketch else None) if auto_sketch else sketch_dim
        return sv, sk
    sketches = [AUTO_SKETCH_DIM, None] if (auto_sketch and may_sketch) else (
        [None] if auto_sketch else [sketch_dim])
    solvers = ["greedy", "iht"] if solver == "auto" else [solver]
    options = [(_cost(operator, sv, n_instances, sk), i, sv, sk)
               for i, (sv, sk) in enumerate((sv, sk) for sv in solvers for sk in sketches)]
    _, _, sv, sk = min(options)
    return sv, sk


#: Passes over the pool that proximal IHT's two runs typically take (gradient, dense line
#: search and escape per iteration, a handful of iterations each).
IHT_PASSES = 20
#: greedy's default ``max_cache_bytes``: the Gram-column cache it may keep
GREEDY_CACHE_BYTES = 2**30


def _cost(operator, solver, b, sketch_dim):
    """Multiply-adds per pool row of a solve, to choose the solver and the sketch by.

    Building a sketch reads every row once against a ``(K + d) x m'`` (factored) or
    ``m x m'`` (dense) matrix; afterwards a pass costs ``m'``. Exactly, a pass costs the
    operator's ``project_cost`` and a greedy step its ``column_cost`` plus the cached-column
    product (``|S|`` per row, ``b / 2`` on average) when the cache fits, whichever of the two
    greedy itself would use. IHT is charged :data:`IHT_PASSES` passes, greedy ``b`` steps.
    """
    if sketch_dim is None:
        if solver == "iht":
            return IHT_PASSES * operator.project_cost
        gram_fits = operator.n * b * torch.finfo(operator.dtype).bits // 8 <= GREEDY_CACHE_BYTES
        step = operator.column_cost + b / 2 if gram_fits else math.inf
        return b * min(operator.project_cost, step)
    if isinstance(operator, FactoredOperator):
        build = (operator.space_shape[0] + operator.space_shape[1]) * sketch_dim
    elif hasattr(operator, "sketch_row_cost"):  # e.g. a sparse H: (K + nnz per row) m'
        build = operator.sketch_row_cost(sketch_dim)
    else:
        build = operator.project_cost * sketch_dim
    return build + (IHT_PASSES if solver == "iht" else b) * sketch_dim
