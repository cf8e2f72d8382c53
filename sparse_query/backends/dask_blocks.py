"""The model over a Dask pool's row blocks: last-layer outputs and the gradient embedding.

:func:`dask_last_layer` runs :func:`sparse_query.adapters.last_layer_outputs` on every row
block of a ``dask.array`` pool, on the workers (``map_blocks``; the estimator travels to them
once per block), and :func:`dask_gradient_embedding` turns the blocks' features and logits
into the factors ``A``, ``H`` and ``sigma`` of :func:`sparse_query.embeddings.gradient_embedding`
with the pool's global ``1/n``. Everything stays lazy (dask arrays) until
:class:`~sparse_query.backends.dask_operator.DaskOperator` computes it into chunks.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from .._utils import check_float, check_int
from .dask_cluster import align_rows, import_dask

__all__ = ["dask_last_layer", "dask_gradient_embedding"]


def _last_layer_block(X, estimator, d, K, batch_size):
    from ..adapters import last_layer_outputs

    # a worker runs its tasks in threads that may share one deserialized estimator (always on
    # an in-process cluster); the last-layer hooks live on the shared module, so two blocks'
    # forward passes would see each other's outputs: every block works on its own copy
    estimator = copy.deepcopy(estimator)
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
    _, da, _ = import_dask()
    from ..adapters import last_layer_outputs

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
    from ..embeddings import _expected_onehot_distance, gradient_embedding

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
    _, da, _ = import_dask()
    if isinstance(temperature, str):
        raise TypeError(f"temperature={temperature!r} must be a number >= 0 here; resolve 'auto' "
                        "with sparse_query.embeddings.estimate_temperature first.")
    temperature = check_float(temperature, "temperature", min_val=0.0)
    (F, Z), _ = align_rows((features, logits), ("features", "logits"))
    n, d = F.shape
    K = Z.shape[1]
    dh = d + (1 if bias else 0)
    out = da.map_blocks(_embed_block, F, Z, temperature, bool(bias), n, dtype=F.dtype,
                        chunks=(F.chunks[0], (K + dh + 1,)), meta=np.empty((0, 0), F.dtype))
    return out[:, :K], out[:, K:K + dh], out[:, K + dh]
