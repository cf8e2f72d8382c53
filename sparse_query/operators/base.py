"""The seam between the maths and the pool: :class:`PoolOperator`, the products the solvers need.

A pool of ``n`` points has embeddings ``e_1 ... e_n``. The solvers, the sketch and the
baselines never see them directly, only through the handful of products a
:class:`PoolOperator` offers (``sum_j u_j e_j``, ``<e_j, r>``, columns of the Gram matrix,
row norms). Where the embeddings live (a dense matrix, two factors, a sparse factor, a
committee's blocks, a cluster) is the operator's business; see the sibling modules.

This module also holds what every operator shares: the default chunk size and the checked
conversion of an input array to a tensor (:func:`_as_tensor`).
"""
from __future__ import annotations

import numpy as np
import torch

from .._utils import all_finite

__all__ = ["PoolOperator", "DEFAULT_CHUNK"]

DEFAULT_CHUNK = 32768


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
    """The pool's embeddings ``e_1, ..., e_n`` seen through the products the solvers need.

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
