"""BADGE (Ash et al., 2020): k-means++ seeding on hallucinated-label gradient embeddings.

The embedding of pool point ``j`` is ``e_j = a_j (outer) h_j`` with ``a_j = p_j - onehot(argmax p_j)``
and ``h_j`` the (bias-augmented) penultimate features; it is never materialised. Distances use
the factored form

    ||a_i (x) h_i - a_c (x) h_c||^2 = ||a_i||^2 ||h_i||^2 + ||a_c||^2 ||h_c||^2 - 2 (a_i.a_c)(h_i.h_c)

so each selected centre costs one ``O(n (K + d))`` pass. The first centre is the point with the
largest embedding norm (ties: lower index); every next one is drawn with probability
proportional to its squared distance ``D^2`` to the nearest centre. Chosen points have
``D^2 = 0`` and so are never drawn again; values below a rounding tolerance are set to exactly
0, so copies of a centre are never drawn either. When every remaining point has ``D^2 = 0``
(duplicates, all-zero embeddings), the rest of the batch is drawn uniformly without
replacement from the remaining points with the same generator, and a ``UserWarning`` says so.
Only chosen points are ever centres (no implicit centre at the origin).
"""
from __future__ import annotations

import warnings

import torch

from .._base import check_n_instances
from .._utils import resolve_device, torch_generator
from ..operators.sparse import is_sparse
from ._common import (
    SelectionResult, _BaselineStrategy, _generator_for, _to_tensor, kmeanspp_d2,
)
from ._sparse import _badge_kmeanspp_sparse

__all__ = ["badge_kmeanspp", "BADGE"]


def _factored_sqdist(a, h, sq, a_c, h_c, sq_c) -> torch.Tensor:
    """``||a_i (x) h_i - a_c (x) h_c||^2`` for all i (n,), given ``sq_i = ||a_i||^2 ||h_i||^2``."""
    d = sq + sq_c - 2 * (a @ a_c) * (h @ h_c)
    tol = 64 * torch.finfo(a.dtype).eps * (sq + sq_c)
    return torch.where(d <= tol, torch.zeros_like(d), d)


def _badge_kmeanspp(a, h, n_instances: int, gen) -> SelectionResult:
    """Unchecked kernel: a (n, K), h (n, d) on one device, same dtype."""
    sq = (a * a).sum(1) * (h * h).sum(1)
    return kmeanspp_d2(sq, lambda i: _factored_sqdist(a, h, sq, a[i], h[i], sq[i]),
                       n_instances, gen)


def badge_kmeanspp(a, h, n_instances: int, *, generator=None, device=None) -> SelectionResult:
    """k-means++ seeding on factored embeddings ``e_j = a_j (outer) h_j``.

    Parameters
    ----------
    a : array-like or torch.Tensor of shape (n_samples, n_classes)
        Class factors; for BADGE ``p_j - onehot(argmax p_j)`` (``gradient_embedding(...,
        temperature=0).a``).
    h : array-like, torch.Tensor or scipy.sparse matrix of shape (n_samples, n_features)
        Feature factors (penultimate features, with a trailing 1 for the bias). A sparse ``h``
        (TF-IDF rows) stays sparse: each centre costs one ``O(nnz + n K)`` pass.
    n_instances : int
        Batch size ``b``, ``1 <= b <= n_samples``.
    generator : torch.Generator, optional
        Source of the D^2 draws (on ``device``); fresh and unseeded when omitted.
    device : str or torch.device, optional
        Where to compute; defaults to the device of ``a``.

    Returns
    -------
    SelectionResult
        ``indices`` (b,) in selection order; ``scores`` (b,): the first centre's squared norm,
        then each point's ``D^2`` when drawn (0 for points filled uniformly, see the module
        docstring).

    Examples
    --------
    >>> import torch
    >>> a = torch.tensor([[0.1, -0.1], [0.5, -0.5], [0.2, -0.2]])
    >>> h = torch.ones(3, 2)
    >>> int(badge_kmeanspp(a, h, 2, generator=torch.Generator().manual_seed(0)).indices[0])
    1
    """
    a_t = _to_tensor(a, "a", ndim=2)
    dev = a_t.device if device is None else resolve_device(device)
    a_t = a_t.to(dev)
    h_sparse = is_sparse(h)  # TF-IDF / one-hot features: distances in sparse form
    h_t = h if h_sparse else _to_tensor(h, "h", ndim=2, device=dev)
    if h_t.shape[0] != a_t.shape[0]:
        raise ValueError(
            f"a has {a_t.shape[0]} rows but h has {h_t.shape[0]}; pass one row per pool point."
        )
    dtype = a_t.dtype if h_sparse else torch.promote_types(a_t.dtype, h_t.dtype)
    n_instances = check_n_instances(n_instances, a_t.shape[0])
    gen = _generator_for(generator, dev)
    with torch.no_grad():
        if h_sparse:
            res = _badge_kmeanspp_sparse(a_t, h_t, n_instances, gen)
        else:
            res = _badge_kmeanspp(a_t.to(dtype), h_t.to(dtype), n_instances, gen)
    n_zero = int((res.scores[1:] == 0).sum())
    if n_zero:
        warnings.warn(
            f"badge_kmeanspp: {n_zero} of the {n_instances} points were drawn uniformly because "
            "every remaining gradient embedding coincides with a chosen centre (too few "
            "distinct embeddings, e.g. duplicates or fully confident predictions).",
            UserWarning, stacklevel=2,
        )
    return res


class BADGE(_BaselineStrategy):
    """BADGE: k-means++ seeding on last-layer gradient embeddings with the predicted label.

    Features and logits come from ``adapters.last_layer_outputs``; the embedding is
    ``embeddings.gradient_embedding(logits, features, temperature=0)`` (factored, never
    ``n x K d``). See :func:`badge_kmeanspp`.

    Parameters
    ----------
    batch_size : int, default=1024
        Inference batch size.
    device : str or torch.device, default="auto"
    random_state : None, int or numpy Generator, default=None
        Seeds the D^2 sampling: same seed, same batch.

    Attributes
    ----------
    What is kept: :meth:`fit` keeps the pool-sized attributes below for :meth:`query`;
    :meth:`fit_query` and modAL calls keep only ``n_pool_``, ``indices_`` and
    ``query_scores_``.

    a_ : torch.Tensor of shape (n_pool, n_classes)
        ``p_j - onehot(argmax p_j)``.
    h_ : torch.Tensor or scipy.sparse.csr_matrix of shape (n_pool, n_features + 1)
        Bias-augmented penultimate features (CSR for a linear model on a sparse pool).
    n_pool_ : int
    indices_ : ndarray of shape (n_instances,)
    query_scores_ : ndarray of shape (n_instances,)
        ``D^2`` of each selected point when drawn (the first: its squared norm).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = LogisticRegression(max_iter=500).fit(X[::10], y[::10])
    >>> BADGE(device="cpu", random_state=0).fit_query(X, clf, n_instances=5).shape
    (5,)
    """

    def __init__(self, *, batch_size=1024, device="auto", random_state=None):
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state

    def _validate_params(self):
        self._check_common()

    def _fit(self, X_pool, estimator, X_labeled, y_labeled):
        from .. import adapters, embeddings

        model, _, _ = self._model_and_labeled(estimator, X_labeled, y_labeled)
        out = adapters.last_layer_outputs(model, X_pool, batch_size=self.batch_size,
                                          device=self.device_)
        emb = embeddings.gradient_embedding(out.logits, out.features, temperature=0,
                                            bias=out.bias)
        self.a_, self.h_ = emb.a, emb.h

    def _query(self, n_instances):
        gen = torch_generator(self.random_state, self.device_)
        res = badge_kmeanspp(self.a_, self.h_, n_instances, generator=gen, device=self.device_)
        return res.indices.cpu().numpy(), res.scores.cpu().numpy()
