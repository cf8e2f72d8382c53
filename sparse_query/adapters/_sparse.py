"""Sparse pools into linear scikit-learn models: the last layer's input stays ``scipy.sparse``.

A linear classifier on a ``scipy.sparse`` pool (or a pipeline whose last transform yields
one: ``TfidfVectorizer``, ``HashingVectorizer``, ``OneHotEncoder``) has the pool rows
themselves as last-layer features. Densifying them costs ``n x d`` floats (3.5 GB for
10,000 documents over 20,000 words); here they stay CSR, and the logits are the sparse
product ``X @ coef_.T + intercept_``. :func:`sparse_query.embeddings.gradient_embedding`
and the solvers take the CSR features as they are (:mod:`sparse_query.operators.sparse`).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._common import _name


def _is_scipy_sparse(x) -> bool:
    return sp.issparse(x)


def _sparse_linear_last_layer(est, coef: np.ndarray, chunk):
    """``(features CSR, logits, bias)`` of a linear model on a sparse chunk, never densified."""
    from ._rows import _two_columns

    x = sp.csr_matrix(chunk)
    dtype = np.result_type(coef.dtype, np.float32)
    if x.dtype != dtype:
        x = x.astype(dtype)
    if x.shape[1] != coef.shape[1]:
        raise ValueError(
            f"X has rows of shape ({x.shape[1]},) but {_name(est)} was fitted on "
            f"{coef.shape[1]} features; pass a pool with the same columns as the training data."
        )
    z = np.asarray(x @ coef.T, dtype=dtype) + np.asarray(est.intercept_, dtype=dtype)
    return x, _two_columns(z), bool(getattr(est, "fit_intercept", True))


def _cat_features(parts):
    """Stack per-chunk features: CSR chunks into one CSR matrix, tensors with ``torch.cat``."""
    import torch

    if parts and all(sp.issparse(p) for p in parts):
        return sp.vstack(parts, format="csr")
    return torch.cat([p if isinstance(p, torch.Tensor)
                      else torch.from_numpy(np.ascontiguousarray(p)) for p in parts])
