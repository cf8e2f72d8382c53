"""The last-layer gradient embedding (paper eq. 14): :func:`gradient_embedding`, the checked
public function. It validates its inputs and hands dense features to the core in
:mod:`~sparse_query.embeddings._gradient_core`, sparse ones to
:mod:`~sparse_query.embeddings.gradient_sparse`.
"""
from __future__ import annotations

import numpy as np
import torch

from .._utils import check_float
from ._gradient_core import GradientEmbedding, _gradient_embedding
from ._inputs import _as_float_tensor, _check_chunk_size, _is_sparse
from .gradient_sparse import _sparse_gradient_embedding


def gradient_embedding(logits, features, *, temperature: float = 1.0, bias: bool = True,
                       chunk_size: int = 65536, _implicit_bias: bool = False) -> GradientEmbedding:
    """Expected last-layer cross-entropy gradients and their spread (paper eq. 14).

    For a model with penultimate features ``h_j``, logits ``z_j = W h_j + c`` and
    probabilities ``p_j = softmax(z_j)``, the gradient of the cross-entropy for label ``y``
    w.r.t. ``(W, c)`` is ``g_j(y) = (p_j - onehot(y)) (outer) [h_j, 1]``. With the label
    distribution ``P_j = softmax(z_j / T)``::

        e_j     = E_{y~P_j} g_j(y) = (p_j - P_j) (outer) [h_j, 1]
        sigma_j = (1/n) E_{y~P_j} ||g_j(y) - e_j||
                = (1/n) ||[h_j, 1]|| sum_y P_j(y) ||P_j - onehot(y)||

    ``e_j`` is returned factored (``a_j = p_j - P_j`` and ``h~_j = [h_j, 1]``), never as an
    ``n x K(d+1)`` matrix.

    The two limits of the temperature:

    * ``T = 1``: ``P_j = p_j``, so every ``e_j = 0`` and only ``sigma`` is informative -- the
      method reduces to pure uncertainty sampling (top-``b`` by ``sigma``);
    * ``T -> 0`` (``temperature=0``): ``P_j = onehot(argmax p_j)``, so ``e_j`` is BADGE's
      embedding ``(p_j - onehot(yhat_j)) (outer) h~_j`` and ``sigma_j = 0`` -- pure
      representation.

    Parameters
    ----------
    logits : torch.Tensor or ndarray of shape (n_samples, n_classes)
        The model's last-layer outputs ``z_j`` (before the softmax), ``n_classes >= 2``.
    features : torch.Tensor, ndarray or sparse matrix of shape (n_samples, n_features)
        The inputs ``h_j`` of the last linear layer. A ``scipy.sparse`` matrix (or a torch
        sparse tensor) stays sparse: the result is a
        :class:`~sparse_query.embeddings.gradient_sparse.SparseGradientEmbedding` whose ``h`` is CSR
        (the bias column appended as explicit entries), and
        ``sparse_query.operators.sparse.factored_operator(emb.a, emb.h)`` (or
        ``SparseApproxProblem((emb.a, emb.h), ...)``) solves on it without densifying.
    temperature : float, default=1.0
        ``T >= 0`` used for ``P_j`` only (``p_j`` is always the model's own softmax).
        ``0`` means the one-hot limit (ties go to the lowest class index). Resolve
        ``"auto"`` with :func:`estimate_temperature` before calling.
    bias : bool, default=True
        Whether the last layer has a bias; if so ``h~_j = [h_j, 1]``, else ``h~_j = h_j``.
    chunk_size : int, default=65536
        Rows processed at once; bounds the temporary memory.

    Returns
    -------
    GradientEmbedding
        ``a (n, K)``, ``h (n, d+1)``, ``sigma (n,)``, ``probs (n, K)``. float64 when the
        inputs are float64 (either of them), float32 otherwise, on the inputs' device.

    Examples
    --------
    >>> import torch
    >>> from sparse_query.embeddings import gradient_embedding
    >>> emb = gradient_embedding(torch.randn(5, 3), torch.randn(5, 4), temperature=0.1)
    >>> emb.a.shape, emb.h.shape, emb.sigma.shape, emb.dense().shape
    (torch.Size([5, 3]), torch.Size([5, 5]), torch.Size([5]), torch.Size([5, 15]))
    """
    if isinstance(temperature, str):
        raise TypeError(f"temperature={temperature!r} must be a number >= 0 here; resolve "
                        "'auto' with sparse_query.embeddings.estimate_temperature first.")
    temperature = check_float(temperature, "temperature", min_val=0.0)
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be True or False; got {bias!r}.")
    chunk_size = _check_chunk_size(chunk_size)
    z = _as_float_tensor(logits, "logits", 2)
    if _is_sparse(features):  # wide sparse features: keep H sparse (embeddings.gradient_sparse)
        if z.shape[0] == 0:
            raise ValueError("logits has no rows; the pool must hold at least one sample.")
        if z.shape[1] < 2:
            raise ValueError(f"logits has {z.shape[1]} column(s); need n_classes >= 2.")
        return _sparse_gradient_embedding(z, features, float(temperature), bool(bias),
                                          chunk_size)
    h = _as_float_tensor(features, "features", 2)
    n, K = z.shape
    if n == 0:
        raise ValueError("logits has no rows; the pool must hold at least one sample.")
    if h.shape[0] != n:
        raise ValueError(f"features has {h.shape[0]} rows but logits has {n}; both must "
                         "describe the same pool points, in the same order.")
    if K < 2:
        raise ValueError(f"logits has {K} column(s); need n_classes >= 2. For a binary model "
                         "with a single logit s, pass torch.stack([-s / 2, s / 2], 1) or [0, s].")
    if h.device != z.device:
        raise ValueError(f"logits is on {z.device} but features on {h.device}; move them to "
                         "the same device.")
    dtype = torch.float64 if torch.float64 in (z.dtype, h.dtype) else torch.float32
    z = z.to(dtype)
    if not (_implicit_bias and bias):  # an implicit bias column keeps h as given: no copy
        h = h.to(dtype)
    return _gradient_embedding(z, h, float(temperature), bool(bias), chunk_size,
                               implicit_bias=bool(_implicit_bias))
