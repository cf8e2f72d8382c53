"""k-Center greedy (Sener and Savarese, 2018): furthest-first traversal in feature space.

Each step adds the pool point whose squared Euclidean distance to its nearest centre (labeled
points and points chosen so far) is largest. Greedy furthest-first is a 2-approximation of
the k-center problem (Gonzalez 1985) whatever the first centre. Distances use
``||x||^2 + ||c||^2 - 2 x.c`` in chunks (memory bounded by the chunk, not ``n``); values
below a rounding tolerance relative to the norms are set to exactly 0 so that copies of a
centre are recognised as such.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from .._base import check_n_instances
from .._utils import check_int, check_option, numpy_rng, resolve_device
from ..adapters._rows import _num_rows
from ..operators.sparse import as_csr, is_sparse
from ._common import _CHUNK_ELEMENTS, SelectionResult, _BaselineStrategy, _to_tensor
from ._sparse import _kcenter_greedy_sparse

__all__ = ["kcenter_greedy", "KCenterGreedy"]


def _sqdist(x, x_sq, c, c_sq) -> torch.Tensor:
    """Squared distances (n, m) between rows of x (n, d) and c (m, d); rounding zeroed."""
    d = x_sq[:, None] + c_sq[None, :] - 2 * (x @ c.T)
    tol = 64 * torch.finfo(x.dtype).eps * (x_sq[:, None] + c_sq[None, :])
    return torch.where(d <= tol, torch.zeros_like(d), d)


def _min_sqdist(x, x_sq, centres) -> torch.Tensor:
    """``min_c ||x_i - c||^2`` over the rows of ``centres``, chunked over the centres."""
    n = x.shape[0]
    out = torch.full((n,), torch.inf, dtype=x.dtype, device=x.device)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, n))
    for start in range(0, centres.shape[0], chunk):
        c = centres[start:start + chunk]
        out = torch.minimum(out, _sqdist(x, x_sq, c, (c * c).sum(1)).amin(1))
    return out


def _kcenter_greedy(x, n_instances: int, labeled, first: int | None) -> SelectionResult:
    """Unchecked kernel: x (n, d), labeled (n_l, d) or None, first used only without labeled."""
    n = x.shape[0]
    x_sq = (x * x).sum(1)
    available = torch.ones(n, dtype=torch.bool, device=x.device)
    chosen, scores = [], []
    if labeled is not None and labeled.shape[0] > 0:
        min_d = _min_sqdist(x, x_sq, labeled)
    else:
        if first is None:  # the point nearest the pool mean
            first = int(torch.argmin(_min_sqdist(x, x_sq, x.mean(0, keepdim=True))))
        chosen.append(first)
        scores.append(torch.inf)  # no centre to measure against yet
        available[first] = False
        min_d = _sqdist(x, x_sq, x[first:first + 1], x_sq[first:first + 1])[:, 0]
    # chosen points sit at -inf, so the argmax never returns them and no mask is needed
    min_d = min_d.masked_fill(~available, -torch.inf)
    tol_factor = 64 * torch.finfo(x.dtype).eps
    s = torch.empty_like(x_sq)
    dist = torch.empty_like(x_sq)
    while len(chosen) < n_instances:
        i = int(torch.argmax(min_d))
        chosen.append(i)
        scores.append(float(min_d[i].sqrt()))
        # the update of _sqdist for one centre, fused and in place (5 passes over n)
        torch.add(x_sq, x_sq[i], out=s)
        torch.addmv(s, x, x[i], alpha=-2.0, out=dist)
        dist.masked_fill_(dist <= tol_factor * s, 0.0)
        torch.minimum(min_d, dist, out=min_d)
        min_d[i] = -torch.inf
    return SelectionResult(
        torch.tensor(chosen, dtype=torch.long, device=x.device),
        torch.tensor(scores, dtype=x.dtype, device=x.device),
    )


def kcenter_greedy(features, n_instances: int, labeled_features=None, *, first=None,
                   device=None) -> SelectionResult:
    """Furthest-first traversal: a 2-approximate k-center batch.

    Parameters
    ----------
    features : array-like, torch.Tensor or scipy.sparse matrix of shape (n_samples, n_features)
        Pool features (e.g. penultimate-layer activations). Sparse features (TF-IDF rows)
        stay sparse: each step costs one ``O(nnz)`` pass, distances as in the dense kernel.
    n_instances : int
        Batch size ``b``, ``1 <= b <= n_samples``.
    labeled_features : array-like or torch.Tensor of shape (n_labeled, n_features), optional
        Existing centres. When given (and non-empty), every pool point starts at its squared
        distance to the nearest labeled point and ``first`` is ignored.
    first : int, optional
        Index of the first centre when there is no labeled set. Default: the pool point
        nearest the pool mean (ties: lower index), so the result is deterministic.
    device : str or torch.device, optional
        Where to compute; defaults to the device of ``features``.

    Returns
    -------
    SelectionResult
        ``indices`` (b,) in selection order; ``scores`` (b,): each point's Euclidean distance
        to its nearest centre when it was picked (``inf`` for a first centre chosen without a
        labeled set). Once every remaining point coincides with a centre, the rest are taken in
        index order and a ``UserWarning`` says so.

    Examples
    --------
    >>> kcenter_greedy([[0.0], [1.0], [10.0]], 2, labeled_features=[[0.0]]).indices
    tensor([2, 1])
    """
    if is_sparse(features):  # TF-IDF / one-hot features: distances in sparse form
        return _kcenter_sparse_checked(features, n_instances, labeled_features, first, device)
    x = _to_tensor(features, "features", ndim=2)
    dev = x.device if device is None else resolve_device(device)
    x = x.to(dev)
    n = x.shape[0]
    n_instances = check_n_instances(n_instances, n)
    labeled = None
    if labeled_features is not None:
        if is_sparse(labeled_features):  # a dense pool with a sparse labeled set: the labeled
            labeled_features = labeled_features.toarray()  # set is small, densify only it
        labeled = _to_tensor(labeled_features, "labeled_features", ndim=2, device=dev,
                             dtype=x.dtype)
        _check_width(labeled, x)
    first = _check_first(first, n)
    with torch.no_grad():
        res = _kcenter_greedy(x, n_instances, labeled, first)
    _warn_coinciding(res, n_instances, stacklevel=3)
    return res


def _check_width(labeled, x) -> None:
    if labeled.shape[0] and labeled.shape[1] != x.shape[1]:
        raise ValueError(
            f"labeled_features has {labeled.shape[1]} features but features has "
            f"{x.shape[1]}; pass both from the same feature extractor."
        )


def _check_first(first, n: int):
    if first is None:
        return None
    return check_int(first, "first", min_val=0, max_val=n - 1,
                     max_hint=f"It must index the pool of {n} points.")


def _warn_coinciding(res, n_instances: int, stacklevel: int) -> None:
    n_zero = int((res.scores == 0).sum())
    if n_zero:
        warnings.warn(
            f"kcenter_greedy: {n_zero} of the {n_instances} points coincide with an existing "
            "centre (the pool has too few distinct points); they were taken in index order.",
            UserWarning, stacklevel=stacklevel,
        )


def _kcenter_sparse_checked(features, n_instances, labeled_features, first, device):
    """:func:`kcenter_greedy` for sparse ``features``: same checks, the sparse kernel."""
    x = as_csr(features, name="features")
    dtype = torch.float32 if x.dtype == np.float32 else torch.float64
    dev = torch.device("cpu") if device is None else resolve_device(device)
    n = x.shape[0]
    n_instances = check_n_instances(n_instances, n)
    labeled = labeled_features
    if labeled is not None:
        if not is_sparse(labeled):
            labeled = _to_tensor(labeled, "labeled_features", ndim=2, dtype=dtype).cpu().numpy()
        _check_width(labeled, x)
    first = _check_first(first, n)
    with torch.no_grad():
        res = _kcenter_greedy_sparse(x, n_instances, labeled, first, dtype, dev)
    _warn_coinciding(res, n_instances, stacklevel=4)
    return res


class KCenterGreedy(_BaselineStrategy):
    """k-Center greedy (core-set) batch in the model's penultimate features.

    Features come from ``adapters.last_layer_outputs``. The traversal starts from the labeled
    set (``X_labeled``, or a modAL learner's ``X_training``); without labeled data the first
    centre is the point nearest the pool mean (``init="mean"``) or a seeded random point
    (``init="random"``). See :func:`kcenter_greedy`.

    Parameters
    ----------
    init : {"mean", "random"}, default="mean"
        First centre when there is no labeled data.
    batch_size : int, default=1024
        Inference batch size for the feature extraction.
    device : str or torch.device, default="auto"
    random_state : None, int or numpy Generator, default=None
        Seeds ``init="random"`` (and any stochastic layers during feature extraction).

    Attributes
    ----------
    What is kept: :meth:`fit` keeps the pool-sized attributes below for :meth:`query`;
    :meth:`fit_query` and modAL calls keep only ``n_pool_``, ``indices_`` and
    ``query_scores_``.

    features_ : torch.Tensor or scipy.sparse.csr_matrix of shape (n_pool, n_features)
        CSR for a linear model on a sparse pool (distances then run in sparse form).
    labeled_features_ : torch.Tensor, csr_matrix of shape (n_labeled, n_features), or None
    n_pool_ : int
    indices_ : ndarray of shape (n_instances,)
    query_scores_ : ndarray of shape (n_instances,)
        Distance of each selected point to its nearest centre at selection time.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = LogisticRegression(max_iter=500).fit(X[::10], y[::10])
    >>> KCenterGreedy(device="cpu").fit_query(X, clf, 5, X_labeled=X[::10]).shape
    (5,)
    """

    def __init__(self, *, init="mean", batch_size=1024, device="auto", random_state=None):
        self.init = init
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state

    def _validate_params(self):
        self._check_common()
        check_option(self.init, "init", {"mean", "random"})

    _labels_optional = True  # the labeled inputs are centres; their labels are not used

    def _fit(self, X_pool, estimator, X_labeled, y_labeled):
        from .. import adapters

        model, X_labeled, _ = self._model_and_labeled(estimator, X_labeled, y_labeled)
        kw = dict(batch_size=self.batch_size, device=self.device_)
        self.features_ = adapters.last_layer_outputs(model, X_pool, **kw).features
        self.labeled_features_ = None
        if X_labeled is not None and _num_rows(X_labeled) > 0:
            self.labeled_features_ = adapters.last_layer_outputs(model, X_labeled, **kw).features

    def _query(self, n_instances):
        first = None
        if self.labeled_features_ is None and self.init == "random":
            first = int(numpy_rng(self.random_state).integers(self.n_pool_))
        res = kcenter_greedy(self.features_, n_instances, self.labeled_features_, first=first,
                             device=self.device_)
        return res.indices.cpu().numpy(), res.scores.cpu().numpy()
