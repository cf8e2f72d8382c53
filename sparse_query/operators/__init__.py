"""Pool operators: the pool's embeddings seen only through the products the solvers need.

Every solver, the sketch and the baselines work on a :class:`PoolOperator`; which one holds
the pool is decided when it is built:

- :mod:`~sparse_query.operators.base` -- :class:`PoolOperator`, the interface;
- :mod:`~sparse_query.operators.dense` -- :class:`DenseOperator` (an ``(n, m)`` matrix) and
  :class:`FactoredOperator` (``e_j = a_j (outer) h_j`` as two factors);
- :mod:`~sparse_query.operators.sparse` -- :class:`SparseFactoredOperator` (a CSR feature
  factor: text, one-hot and leaf-indicator pools) and its CSR helpers;
- :mod:`~sparse_query.operators.concat` -- :class:`ConcatOperator` (a committee's blocks);
- :mod:`~sparse_query.operators.convert` -- :func:`as_operator` and :func:`sketch`.

This package knows nothing of estimators, modAL or skorch.
"""
from .base import DEFAULT_CHUNK, PoolOperator
from .concat import ConcatOperator
from .convert import as_operator, sketch
from .dense import DenseOperator, FactoredOperator
from .sparse import (
    SparseFactoredOperator, append_ones_column, as_csr, factored_operator, is_sparse,
    row_sqnorms, rows_as_columns, sparse_dots,
)

__all__ = [
    "PoolOperator",
    "DenseOperator",
    "FactoredOperator",
    "SparseFactoredOperator",
    "ConcatOperator",
    "as_operator",
    "sketch",
    "factored_operator",
    "is_sparse",
    "as_csr",
    "append_ones_column",
    "row_sqnorms",
    "rows_as_columns",
    "sparse_dots",
    "DEFAULT_CHUNK",
]
