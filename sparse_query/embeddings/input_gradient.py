"""The input-space gradient embedding: ``embedding="input-gradient"``.

For a classifier with ``predict_proba`` but no last linear layer (an SVM, nearest neighbours,
naive Bayes, histogram boosting, a calibrated model), this is the gradient embedding of a
linear softmax head that reads the model's inputs ``x~_j`` (centred, under one scale) and
whose output is the model's own ``log p_j``::

    e_j     = (p_j - P_j) (outer) x~_j / r_x
    sigma_j = (1/n) (||x~_j|| / r_x) sum_y P_j(y) ||P_j - onehot(y)||

``p_j`` are the model's probabilities and ``P_j = softmax(log p_j / T)``. ``x~`` centres every
column over the pool (dense inputs; sparse ones stay CSR, uncentred) and keeps the columns'
relative scales -- the geometry the final step reads -- and ``r_x`` is the root-mean-square
row norm of ``x~`` over the pool, so the block has unit mean squared norm. (On digits, in the
modAL loop, scaling every column to unit variance instead was 1 AUC point lower on average
over five models; ``benchmarks/results/proba_models.md``.) It is the gradient of the
cross-entropy of ``z = log p + W x~ / r_x`` with respect to ``W`` at ``W = 0``, in expectation
over ``y ~ P_j`` (paper eq. 14 without a bias column).

The same block, with every column scaled to unit variance, sits beside a tree ensemble's
leaves in :mod:`~sparse_query.embeddings.leaf_inputs` (there at a weight against the leaves);
both build it with :func:`input_block`. Memory: one float32 copy of the (dense) inputs, built chunk by
chunk with no float64 temporaries of the pool's size.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from .._utils import check_float
from ..operators import FactoredOperator
from ._gradient_core import _class_factors
from ._inputs import _as_float_tensor
from .gradient import gradient_embedding

__all__ = ["standardized_inputs", "input_block", "input_gradient_embedding"]

_CHUNK = 16384

#: ``max_j (1 - max_k p_jk)`` below this: the model's probabilities are one-hot on the whole
#: pool, so ``e_j`` and ``sigma_j`` are (numerically) zero at every temperature; the sampler
#: then returns a uniformly random batch (``sparse_query.backends.memory``)
SATURATED = 1e-6


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


def standardized_inputs(X):
    """``x~``: dense columns centred and scaled to unit variance, sparse ones scaled to unit
    root mean square (kept CSR); constant (or all-zero) columns become zero. float32."""
    return _scaled(X, *_column_stats(X))


def input_block(logits: torch.Tensor, inputs, *, temperature: float, weight: float,
                per_column: bool = True):
    """The block ``(p - P) (outer) w x~ / r_x`` and its ``sigma`` (unchecked; shared by
    :func:`input_gradient_embedding` and the leaf-and-input embedding).

    Parameters
    ----------
    logits : torch.Tensor of shape (n, K)
        Finite logits whose softmax is the model's ``p`` (float32 or float64).
    inputs : ndarray or scipy.sparse matrix of shape (n, d)
        What the model reads.
    temperature : float
        ``T >= 0`` of the label distribution ``P``.
    weight : float
        ``w > 0``.
    per_column : bool, default=True
        True: ``x~`` scales every column to unit variance (dense; unit root mean square when
        sparse). False: one scale for every column, so ``x~`` keeps the relative scales of
        the columns the model reads. Either way the block has unit mean squared row norm
        before ``w``; dense columns are centred, sparse ones not.

    Returns
    -------
    operator : FactoredOperator, SparseFactoredOperator or None
        The block (float32 for dense inputs); None when every input column is constant.
    sigma : torch.Tensor of shape (n,) or None
        The block's spread, in the dtype of ``logits``.
    """
    centre, scale = _column_stats(inputs)
    active = scale > 0
    if not active.any():
        return None, None
    if per_column:  # each active column of x~ has mean square 1: r_x^2 = their number
        scale = scale * (weight / np.sqrt(np.count_nonzero(active)))
    else:           # r_x^2 = the sum of the columns' mean squares (variances when centred)
        spread = np.divide(1.0, scale, out=np.zeros_like(scale), where=active)
        scale = np.where(active, weight / np.sqrt(np.sum(spread ** 2)), 0.0)
    x = _scaled(inputs, centre, scale)  # w x~ / r_x, one pass
    if sp.issparse(x):
        emb = gradient_embedding(logits, x, temperature=temperature, bias=False)
        return emb.operator(), emb.sigma.to(logits.dtype)
    a, _, dist = _class_factors(logits, temperature, _CHUNK)
    h = torch.from_numpy(x)
    sigma, chunk = torch.empty_like(dist), _chunk_rows(x)
    for i in range(0, x.shape[0], chunk):
        norm = torch.linalg.vector_norm(h[i:i + chunk].to(dist.dtype), dim=1)
        sigma[i:i + chunk] = norm * dist[i:i + chunk] / x.shape[0]
    return FactoredOperator(a.to(h.dtype), h), sigma


def input_gradient_embedding(logits, inputs, *, temperature: float, weight: float = 1.0,
                             per_column: bool = False):
    """The embedding of the module docstring: ``(operator, sigma)``.

    Parameters
    ----------
    logits : torch.Tensor or ndarray of shape (n_samples, n_classes)
        Logits whose softmax is the model's ``predict_proba`` (``log p`` will do),
        ``n_classes >= 2``.
    inputs : ndarray or scipy.sparse matrix of shape (n_samples, n_features)
        What the model's final step reads (a pipeline's transformed pool), numeric.
    temperature : float
        ``T >= 0`` of the label distribution ``P_j = softmax(z_j / T)`` (0: one-hot).
    weight : float, default=1.0
        ``w > 0``: the block is ``(p - P) (outer) w x~ / r_x`` (a global scale of ``e`` and
        ``sigma`` against the solver's ``beta``).
    per_column : bool, default=False
        False: ``x~`` is the centred inputs (sparse: uncentred) under one scale for every
        column, so the head reads the geometry the model reads. True: every column scaled to
        unit variance (sparse: unit root mean square), as beside a tree ensemble's leaves.

    Returns
    -------
    operator : FactoredOperator or SparseFactoredOperator
        ``e_j`` in factored form, float32 factors for dense inputs; sparse inputs give a CSR
        feature factor.
    sigma : torch.Tensor of shape (n_samples,)
        In the dtype of ``logits`` (float64 stays float64).

    Raises
    ------
    ValueError
        When the shapes disagree, there are fewer than two classes, or every input column is
        constant over the pool (``x~ = 0``: no embedding).

    Examples
    --------
    >>> import numpy as np
    >>> from sparse_query.embeddings.input_gradient import input_gradient_embedding
    >>> rng = np.random.default_rng(0)
    >>> p = rng.dirichlet(np.ones(3), size=6)
    >>> op, sigma = input_gradient_embedding(np.log(p), rng.normal(size=(6, 4)), temperature=0.1)
    >>> tuple(op.dense().shape), tuple(sigma.shape)
    ((6, 12), (6,))
    """
    if isinstance(temperature, str):
        raise TypeError(f"temperature={temperature!r} must be a number >= 0 here; resolve "
                        "'auto' with sparse_query.embeddings.estimate_temperature first.")
    T = check_float(temperature, "temperature", min_val=0.0)
    w = check_float(weight, "weight", min_val=0.0, min_inclusive=False)
    z = _as_float_tensor(logits, "logits", 2)
    n, K = z.shape
    if K < 2:
        raise ValueError(f"logits has {K} column(s); need n_classes >= 2.")
    if not sp.issparse(inputs):
        inputs = np.asarray(inputs)
        if inputs.ndim != 2 or not (np.issubdtype(inputs.dtype, np.number)
                                     or inputs.dtype == np.bool_):
            raise ValueError(f"inputs must be a 2-D numeric array or sparse matrix; got shape "
                             f"{inputs.shape} and dtype {inputs.dtype}.")
        if not np.isfinite(inputs).all():
            raise ValueError("inputs contains NaN or inf; impute those values (or query with a "
                             "Pipeline whose first step does) before querying.")
    if inputs.shape[0] != n:
        raise ValueError(f"inputs has {inputs.shape[0]} rows but logits has {n}; both must "
                         "describe the same pool, in the same order.")
    if not isinstance(per_column, (bool, np.bool_)):
        raise TypeError(f"per_column must be True or False; got {per_column!r}.")
    op, sigma = input_block(z, inputs, temperature=float(T), weight=float(w),
                            per_column=bool(per_column))
    if op is None:
        raise ValueError(
            f"every one of the {inputs.shape[1]} input columns is constant over the pool, so "
            "the standardized inputs are zero and embedding='input-gradient' has nothing to "
            "embed; query a pool whose rows differ, or use a baseline such as RandomSampling.")
    return op, sigma
