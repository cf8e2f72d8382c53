"""Leaves and inputs as one last layer: ``embedding="leaf-input-gradient"`` (issue 14).

A tree ensemble fitted on few labels near chance has coarse, arbitrary leaves: points that
share them need not be alike, so the leaf gradient embedding says little about which points
represent the pool. This embedding widens the last layer with the trees' own inputs, as if a
linear head read both the leaf indicators ``l_j`` and the standardized inputs ``x~_j``::

    h_j     = [ l_j / r_l ,  w * x~_j / r_x ]
    e_j     = (p_j - P_j) (outer) h_j
    sigma_j = (1/n) ||h_j|| sum_y P_j(y) ||P_j - onehot(y)||

``p_j`` are the ensemble's own probabilities and ``P_j = softmax(log p_j / T)`` as in the leaf
embedding; ``r_l`` and ``r_x`` are the root-mean-square row norms of the two blocks over the
pool, so each block has unit mean squared norm before the weight ``w`` (``input_weight``).
``x~`` centres and scales every column to unit variance over the pool (dense inputs) or scales
it to unit root mean square without centring (sparse inputs, which stay sparse); a constant
column is zero. With ``w = 0`` this is the leaf embedding with its features divided by ``r_l``.

The two blocks share ``p_j - P_j``, so ``e_j`` is their concatenation and
``sigma_j^2 = sigma_j(l)^2 + sigma_j(x)^2``; each block stays factored (the leaves CSR) inside
a :class:`~sparse_query.operators.ConcatOperator`.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from .._utils import check_float
from ..operators import ConcatOperator, FactoredOperator
from ._gradient_core import _class_factors
from .gradient import gradient_embedding

__all__ = ["standardized_inputs", "leaf_input_gradient_embedding"]


_CHUNK = 16384


def _chunk_rows(X) -> int:
    """Rows per chunk: about 2^20 values (8 MB of float64 temporaries)."""
    return max(1, 2 ** 20 // max(1, X.shape[1]))


def _rows64(X, start, count):
    """Rows ``start:start+count`` as float64, through float32 (the values the trees compare)."""
    return np.asarray(X[start:start + count], dtype=np.float32).astype(np.float64)


def _column_stats(X):
    """``(centre, scale)`` per column: ``x~ = (x - centre) * scale``. Dense: the mean and one over
    the standard deviation (rows shifted by the first row and summed in float64, chunk by
    chunk: no float64 copy of the pool); sparse: no centre and one over the root mean square.
    A constant (or all-zero) column gets scale 0."""
    n, chunk = X.shape[0], _chunk_rows(X)
    if sp.issparse(X):
        sq = np.asarray(X.multiply(X).sum(axis=0), dtype=np.float64).ravel() / n
        rms = np.sqrt(sq)
        return None, np.divide(1.0, rms, out=np.zeros_like(rms), where=rms > 0)
    shift = _rows64(X, 0, 1)[0]
    s1 = np.zeros(X.shape[1]); s2 = np.zeros(X.shape[1])
    for i in range(0, n, chunk):
        c = _rows64(X, i, chunk) - shift
        s1 += c.sum(0)
        s2 += (c * c).sum(0)
    m = s1 / n
    sd = np.sqrt(np.maximum(s2 / n - m * m, 0.0))
    return shift + m, np.divide(1.0, sd, out=np.zeros_like(sd), where=sd > 0)


def _scaled(X, centre, scale):
    """``(X - centre) * scale`` as float32 (dense, filled chunk by chunk) or CSR."""
    if sp.issparse(X):
        return sp.csr_matrix(sp.csr_matrix(X, dtype=np.float64) @ sp.diags(scale),
                             dtype=np.float32)
    out, chunk = np.empty(X.shape, dtype=np.float32), _chunk_rows(X)
    for i in range(0, X.shape[0], chunk):
        out[i:i + chunk] = (_rows64(X, i, chunk) - centre) * scale
    return out


def _rms_row_norm(H) -> float:
    """``sqrt(mean_j ||H_j||^2)`` of a sparse matrix."""
    return float(np.sqrt(np.asarray(H.multiply(H).sum(axis=1), dtype=np.float64).mean()))


def standardized_inputs(X):
    """``x~``: dense columns centred and scaled to unit variance, sparse ones scaled to unit
    root mean square (kept CSR); constant (or all-zero) columns become zero. float32."""
    return _scaled(X, *_column_stats(X))


def leaf_input_gradient_embedding(logits, leaves, inputs, *, temperature: float,
                                  input_weight: float, bias: bool = False):
    """The embedding of the module docstring: ``(operator, sigma)``.

    Parameters
    ----------
    logits : torch.Tensor of shape (n, K)
        The ensemble's logits (``log p_j`` for forests).
    leaves : scipy.sparse matrix of shape (n, n_leaves)
        The one-hot leaf indicators.
    inputs : ndarray or scipy.sparse matrix of shape (n, d)
        What the trees split on.
    temperature : float
        ``T`` of the label distribution ``P_j``.
    input_weight : float
        ``w >= 0``, the inputs' weight against the leaves (each block at unit mean squared norm).
    bias : bool, default=False
        Whether the leaf block carries a bias column (boosting's constant term).

    Returns
    -------
    operator : ConcatOperator
        Blocks ``(p - P) (outer) l / r_l`` and ``(p - P) (outer) w x~ / r_x`` (the second left
        out when ``w = 0`` or every input column is constant).
    sigma : torch.Tensor of shape (n,)
    """
    w = check_float(input_weight, "input_weight", min_val=0.0)
    if inputs.shape[0] != leaves.shape[0]:
        raise ValueError(f"inputs has {inputs.shape[0]} rows but leaves has {leaves.shape[0]}; "
                         "both must describe the same pool.")
    r_l = _rms_row_norm(leaves)
    emb = gradient_embedding(logits, sp.csr_matrix(leaves * (1.0 / r_l), dtype=np.float32),
                             temperature=temperature, bias=bias)
    blocks, sigma2 = [emb.operator()], emb.sigma.double() ** 2
    centre, scale = _column_stats(inputs)
    active = int(np.count_nonzero(scale))  # each such column of x~ has mean square 1: r_x^2
    if w > 0 and active > 0:
        x = _scaled(inputs, centre, scale * (w / np.sqrt(active)))  # w x~ / r_x, one pass
        if sp.issparse(x):
            emb_x = gradient_embedding(logits, x, temperature=temperature, bias=False)
            blocks.append(emb_x.operator())
            sigma_x = emb_x.sigma
        else:  # the dense block: x itself beside the leaves' a = p - P (no float64 copy of x)
            z = emb.a.new_tensor(logits) if not isinstance(logits, torch.Tensor) else logits
            _, _, dist = _class_factors(z.to(emb.a.dtype), temperature, _CHUNK)
            h = torch.from_numpy(x)
            sigma_x, chunk = torch.empty_like(dist), _chunk_rows(x)
            for i in range(0, x.shape[0], chunk):
                norm = torch.linalg.vector_norm(h[i:i + chunk].to(dist.dtype), dim=1)
                sigma_x[i:i + chunk] = norm * dist[i:i + chunk] / x.shape[0]
            blocks.append(FactoredOperator(emb.a.to(h.dtype), h))
        sigma2 = sigma2 + sigma_x.double() ** 2
    return ConcatOperator(blocks), sigma2.sqrt().to(emb.sigma.dtype)
