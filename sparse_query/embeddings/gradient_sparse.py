"""The last-layer gradient embedding for sparse features (TF-IDF rows, one-hot, leaf indicators).

:func:`sparse_query.embeddings.gradient_embedding` dispatches here when ``features`` is a
``scipy.sparse`` matrix or a torch sparse tensor. The class factor ``a_j = p_j - P_j`` and the
label distribution are computed exactly as for dense features; the feature factor stays a
CSR matrix ``h~_j = [h_j, 1]`` (the bias column is ``n`` explicit non-zeros) and
``sigma_j = (1/n) ||h~_j|| sum_y P_j(y) ||P_j - onehot(y)||`` takes ``||h~_j||`` from the
sparse row norms. Memory: ``O(n K)`` plus one copy of the features (for the bias column).
Feed the result to :func:`sparse_query.operators.sparse.factored_operator` (or
``SparseApproxProblem((emb.a, emb.h), emb.sigma, b)``) to solve on it without densifying.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..operators.sparse import append_ones_column, as_csr, factored_operator, row_sqnorms
from ._gradient_core import GradientEmbedding, _class_factors

__all__ = ["SparseGradientEmbedding"]


@dataclass
class SparseGradientEmbedding(GradientEmbedding):
    """:class:`~sparse_query.embeddings.GradientEmbedding` whose ``h`` is a CSR matrix.

    Attributes
    ----------
    a : torch.Tensor of shape (n_samples, n_classes)
    h : scipy.sparse.csr_matrix of shape (n_samples, n_features + 1) or (n_samples, n_features)
        ``[h_j, 1]`` (or ``h_j`` when ``bias=False``), same float dtype as ``a``.
    sigma, probs, temperature :
        As for the dense embedding.
    """

    def dense(self) -> torch.Tensor:
        """Materialise ``e`` as ``(n, K * h.shape[1])`` (tests and tiny pools only)."""
        h = torch.from_numpy(self.h.toarray()).to(self.a.device)
        return (self.a[:, :, None] * h[:, None, :]).reshape(self.a.shape[0], -1)

    def to(self, device) -> "SparseGradientEmbedding":
        """A copy with the dense tensors on ``device`` (``h`` stays a CPU CSR matrix)."""
        return SparseGradientEmbedding(self.a.to(device), self.h, self.sigma.to(device),
                                       self.probs.to(device), self.temperature)

    def operator(self, **kw):
        """The :class:`~sparse_query.operators.sparse.SparseFactoredOperator` of this embedding."""
        return factored_operator(self.a, self.h, **kw)


def _sparse_gradient_embedding(z: torch.Tensor, features, temperature: float, bias: bool,
                               chunk_size: int) -> SparseGradientEmbedding:
    """Core of :func:`gradient_embedding` for sparse ``features``; ``z`` checked, finite."""
    n, K = z.shape
    src64 = (features.dtype == torch.float64 if isinstance(features, torch.Tensor)
             else np.dtype(features.dtype) == np.float64)
    H = as_csr(features, name="features")
    if H.shape[0] != n:
        raise ValueError(f"features has {H.shape[0]} rows but logits has {n}; both must "
                         "describe the same pool points, in the same order.")
    # as for dense features: float64 when either input is float64, float32 otherwise
    dtype = torch.float64 if (z.dtype == torch.float64 or src64) else torch.float32
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    z = z.to(dtype)
    H = H.astype(np_dtype) if H.dtype != np_dtype else H
    if bias:
        H = append_ones_column(H)
    hnorm = torch.from_numpy(np.sqrt(row_sqnorms(H))).to(dtype=dtype, device=z.device)
    a, P_out, dist = _class_factors(z, temperature, chunk_size)
    sigma = hnorm * dist / n
    return SparseGradientEmbedding(a=a, h=H, sigma=sigma, probs=P_out, temperature=temperature)
