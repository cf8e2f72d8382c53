"""Turning embeddings into operators: :func:`as_operator` (checked conversion of a matrix, a
pair of factors or an operator) and :func:`sketch` (a random sketch that preserves inner
products in expectation).
"""
from __future__ import annotations

import math

import torch

from .._utils import check_int, resolve_device, resolve_dtype
from .base import DEFAULT_CHUNK, PoolOperator, _as_tensor
from .dense import DenseOperator, FactoredOperator
from .sparse import _operator_from_pair, is_sparse

__all__ = ["as_operator", "sketch"]


def as_operator(embedding, *, device=None, dtype=torch.float32, chunk_size=DEFAULT_CHUNK,
                name="embedding") -> PoolOperator:
    """Turn a dense ``(n, m)`` array, a pair ``(A, H)`` or a :class:`PoolOperator` into an operator.

    Validates shapes and finiteness and moves everything to ``device``/``dtype``.
    """
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    dtype = resolve_dtype(dtype)
    chunk_size = check_int(chunk_size, "chunk_size", min_val=1)
    if isinstance(embedding, DenseOperator):
        return DenseOperator(_as_tensor(embedding.E, name, device, dtype), chunk_size=chunk_size)
    if isinstance(embedding, FactoredOperator):
        return FactoredOperator(
            _as_tensor(embedding.A, f"{name} factor A", device, dtype),
            _as_tensor(embedding.H, f"{name} factor H", device, dtype),
            chunk_size=chunk_size, ones_column=embedding.ones_column,
        )
    convert = getattr(embedding, "_as_operator", None)
    if isinstance(embedding, PoolOperator) and convert is not None:  # e.g. the sparse operator
        return convert(device=device, dtype=dtype, chunk_size=chunk_size, name=name)
    if isinstance(embedding, PoolOperator):  # a user-defined operator: trust it
        return embedding
    if isinstance(embedding, (tuple, list)) and len(embedding) == 2:
        if is_sparse(embedding[1]):  # a wide sparse feature factor (TF-IDF, one-hot, leaves)
            return _operator_from_pair(embedding[0], embedding[1], device=device, dtype=dtype,
                                       chunk_size=chunk_size, name=name)
        A = _as_tensor(embedding[0], f"{name} factor A", device, dtype)
        H = _as_tensor(embedding[1], f"{name} factor H", device, dtype)
        return FactoredOperator(A, H, chunk_size=chunk_size)
    E = _as_tensor(embedding, name, device, dtype)
    if E.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (n, m) or a pair (A, H) of 2-D factors; got shape "
            f"{tuple(E.shape)}."
        )
    return DenseOperator(E, chunk_size=chunk_size)


def sketch(operator: PoolOperator, sketch_dim: int, *, generator: torch.Generator | None = None,
           chunk_size: int | None = None) -> DenseOperator:
    """A random sketch of the embeddings that preserves inner products in expectation.

    For a :class:`FactoredOperator` this is the Khatri-Rao (tensor) sketch
    ``e_j -> (Omega1 a_j) * (Omega2 h_j) / sqrt(m')`` with Gaussian ``Omega1 (m', K)`` and
    ``Omega2 (m', d)``, which never forms the ``K*d`` vector (an operator with a ``_sketch``
    method, such as :class:`~sparse_query.operators.sparse.SparseFactoredOperator`, builds the same
    sketch itself); for a :class:`DenseOperator` it is a
    Gaussian projection ``e_j -> Omega e_j / sqrt(m')``. Built in chunks.

    Parameters
    ----------
    operator : PoolOperator
        The exact embeddings.
    sketch_dim : int
        ``m'``, the sketch dimension.
    generator : torch.Generator, optional
        Source of randomness (on the CPU); the same seed gives the same sketch on any device.
    """
    sketch_dim = check_int(sketch_dim, "sketch_dim", min_val=1)
    chunk = chunk_size or operator.chunk_size
    hook = getattr(operator, "_sketch", None)
    if hook is not None:  # an operator that sketches itself (operators.sparse)
        return hook(sketch_dim, generator, chunk)
    dev, dt = operator.device, operator.dtype
    scale = 1.0 / math.sqrt(sketch_dim)
    out = torch.empty((operator.n, sketch_dim), dtype=dt, device=dev)
    if isinstance(operator, FactoredOperator):
        K, d = operator.space_shape
        om1 = torch.randn((K, sketch_dim), generator=generator, dtype=torch.float64).to(dev, dt)
        om2 = torch.randn((d, sketch_dim), generator=generator, dtype=torch.float64).to(dev, dt)
        om1 = om1 * scale
        for s in range(0, operator.n, chunk):
            e = min(s + chunk, operator.n)
            if operator.ones_column:  # [h, 1] @ om2 without forming [h, 1]
                hs = torch.addmm(om2[-1], operator.H[s:e], om2[:-1])
            else:
                hs = operator.H[s:e] @ om2
            out[s:e] = (operator.A[s:e] @ om1) * hs
    elif isinstance(operator, DenseOperator):
        m = operator.space_shape[0]
        om = torch.randn((m, sketch_dim), generator=generator, dtype=torch.float64).to(dev, dt)
        for s in range(0, operator.n, chunk):
            e = min(s + chunk, operator.n)
            out[s:e] = (operator.E[s:e] @ om) * scale
    else:
        raise TypeError(f"cannot sketch a {type(operator).__name__}; use a dense or factored embedding.")
    return DenseOperator(out, chunk_size=operator.chunk_size)
