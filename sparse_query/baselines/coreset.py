"""Bayesian Coreset active learning (Pinsler et al., 2019), Frank-Wolfe on projected log-likelihoods.

From posterior draws ``p_mn`` (draw ``m``, pool point ``n``) and the predictive mean
``P_n = mean_m p_mn``, the expected log-likelihood of point ``n`` under draw ``m`` is

    L_n(theta_m) = sum_y P_n(y) log p_mn(y)

(probabilities clamped away from 0). The ``M`` draws serve as the random projection:
``L^_n = [L_n(theta_1), ..., L_n(theta_M)] / sqrt(M)``. With ``centering="mean"`` each point's
mean over the draws is subtracted first (the weighted L2 inner product of Hilbert coresets,
Campbell and Broderick 2019, which ignores parameter-independent offsets: a point on which all
draws agree has ``L^_n = 0`` and is never chosen by Frank-Wolfe); ``centering="none"`` keeps the
raw values as in Pinsler et al.'s reference implementation.

Frank-Wolfe then approximates ``L = sum_n L^_n`` by ``L(w) = sum_n w_n L^_n`` over the polytope
``{w >= 0, sum_n sigma_n w_n = sigma}`` with ``sigma_n = ||L^_n||``, ``sigma = sum_n sigma_n``:
each iteration picks ``f = argmax_n <L - L(w), L^_n> / sigma_n`` and moves towards the vertex
``(sigma / sigma_f) e_f`` with the exact line-search step (clipped to ``[0, 1]``).

Frank-Wolfe may pick the same point again, so ``b`` iterations give fewer than ``b`` points.
Following the paper under reproduction, iterations continue until the weights have ``b``
non-zero entries, the step vanishes, or ``max_iter`` is reached. If the batch is still short
it is **padded**, as expected behaviour and without a warning, with the remaining points of
largest ``sigma_n`` (ties: lower index); the number of padded points is reported.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .._base import check_n_instances
from .._utils import check_int, check_option, resolve_device
from ._common import _BaselineStrategy, _check_probs, _top_k

__all__ = ["coreset_projections", "bayesian_coreset", "BayesianCoreset", "CoresetResult"]

_CENTERINGS = {"mean", "none"}


class CoresetResult(NamedTuple):
    """Result of :func:`bayesian_coreset`.

    Attributes
    ----------
    indices : torch.LongTensor of shape (n_instances,)
        Frank-Wolfe's support in the order points entered it, then the padding.
    scores : torch.Tensor of shape (n_instances,)
        Frank-Wolfe weight of each returned point (0 for padded points).
    weights : torch.Tensor of shape (n_samples,)
        Final Frank-Wolfe weights over the whole pool.
    n_padded : int
        How many of the returned points are padding.
    n_iter : int
        Frank-Wolfe iterations run.
    """

    indices: torch.Tensor
    scores: torch.Tensor
    weights: torch.Tensor
    n_padded: int
    n_iter: int


def _projections(probs: torch.Tensor, centering: str) -> torch.Tensor:
    M = probs.shape[0]
    eps = torch.finfo(probs.dtype).tiny ** 0.5
    pred = probs.mean(0)  # (n, K)
    ll = torch.einsum("nk,mnk->nm", pred, probs.clamp_min(eps).log())
    if centering == "mean":
        ll = ll - ll.mean(1, keepdim=True)
    return ll / math.sqrt(M)


def coreset_projections(probs, *, centering: str = "mean") -> torch.Tensor:
    """Projected expected log-likelihoods ``L^_n`` (see the module docstring).

    Parameters
    ----------
    probs : array-like or torch.Tensor of shape (n_draws, n_samples, n_classes)
    centering : {"mean", "none"}, default="mean"

    Returns
    -------
    torch.Tensor of shape (n_samples, n_draws)
    """
    check_option(centering, "centering", _CENTERINGS)
    return _projections(_check_probs(probs, ndim=3), centering)


def _frank_wolfe(proj: torch.Tensor, n_instances: int, max_iter: int) -> CoresetResult:
    n = proj.shape[0]
    dev, dtype = proj.device, proj.dtype
    sig = proj.norm(dim=1)
    usable = sig > 64 * torch.finfo(dtype).eps * sig.max().clamp_min(torch.finfo(dtype).tiny)
    sigma = sig[usable].sum()
    target = proj.sum(0)
    w = torch.zeros(n, dtype=dtype, device=dev)
    lw = torch.zeros_like(target)
    never = max_iter + 1  # "entered" value of points never picked
    entered = torch.full((n,), never, dtype=torch.long, device=dev)
    n_iter = 0
    if bool(usable.any()):
        safe_sig = torch.where(usable, sig, torch.ones_like(sig))
        for it in range(max_iter):
            resid = target - lw
            scores = (proj @ resid / safe_sig).masked_fill(~usable, -torch.inf)
            f = int(torch.argmax(scores))
            vertex = (sigma / sig[f]) * proj[f]
            d = vertex - lw
            dd = d @ d
            if float(dd) <= torch.finfo(dtype).tiny:
                break  # already at that vertex
            gamma = float((d @ resid) / dd)
            if gamma <= 0:
                break  # no descent direction left
            gamma = min(gamma, 1.0)
            n_iter = it + 1
            w = w * (1 - gamma)
            w[f] += gamma * sigma / sig[f]
            lw = (1 - gamma) * lw + gamma * vertex
            if int(entered[f]) == never:
                entered[f] = it
            if int((w > 0).sum()) >= n_instances:
                break
    support = torch.nonzero(w > 0).squeeze(1)
    support = support[torch.argsort(entered[support], stable=True)][:n_instances]
    n_padded = n_instances - support.shape[0]
    if n_padded:
        rest = sig.masked_fill(w > 0, -torch.inf)
        support = torch.cat([support, _top_k(rest, n_padded)])
    return CoresetResult(support, w[support], w, n_padded, n_iter)


def bayesian_coreset(probs, n_instances: int, *, centering: str = "mean", max_iter=None,
                     device=None) -> CoresetResult:
    """Bayesian Coreset batch (ACS-FW with random projections) from posterior draws.

    Parameters
    ----------
    probs : array-like or torch.Tensor of shape (n_draws, n_samples, n_classes)
        Class probabilities of each pool point under each posterior draw.
    n_instances : int
        Batch size ``b``, ``1 <= b <= n_samples``.
    centering : {"mean", "none"}, default="mean"
        Subtract each point's mean over the draws from its projection (see module docstring).
    max_iter : int, optional
        Frank-Wolfe iteration cap; default ``10 * n_instances``.
    device : str or torch.device, optional
        Where to compute; defaults to the device of ``probs``.

    Returns
    -------
    CoresetResult
        Exactly ``b`` distinct ``indices`` (padding by largest projection norm when
        Frank-Wolfe's support is smaller), weights, ``n_padded`` and ``n_iter``.

    Examples
    --------
    >>> import torch
    >>> probs = torch.softmax(torch.randn(10, 50, 3, generator=torch.Generator().manual_seed(0)), -1)
    >>> bayesian_coreset(probs, 5).indices.shape
    torch.Size([5])
    """
    p = _check_probs(probs, ndim=3)
    dev = p.device if device is None else resolve_device(device)
    n_instances = check_n_instances(n_instances, p.shape[1])
    check_option(centering, "centering", _CENTERINGS)
    max_iter = 10 * n_instances if max_iter is None else check_int(max_iter, "max_iter", min_val=1)
    with torch.no_grad():
        proj = _projections(p.to(dev, torch.float64), centering)
        return _frank_wolfe(proj, n_instances, max_iter)


class BayesianCoreset(_BaselineStrategy):
    """Bayesian batch active learning as sparse subset approximation (Pinsler et al. 2019).

    Needs a model with posterior draws (MC-dropout net, ensemble, random forest, modAL
    ``Committee``). See :func:`bayesian_coreset`; Frank-Wolfe's support is padded to exactly
    ``n_instances`` points by largest projection norm, and ``n_padded_`` says by how many.

    Parameters
    ----------
    n_posterior_samples : int, default=20
        Posterior draws ``M``, which are also the projection dimension.
    centering : {"mean", "none"}, default="mean"
    max_iter : int or None, default=None
        Frank-Wolfe iteration cap (``None``: ``10 * n_instances``).
    batch_size : int, default=1024
    device : str or torch.device, default="auto"
    random_state : None, int or numpy Generator, default=None
        Seeds the dropout masks.

    Attributes
    ----------
    What is kept: :meth:`fit` keeps the pool-sized attributes below for :meth:`query`;
    :meth:`fit_query` and modAL calls keep only ``n_pool_``, ``indices_`` and
    ``query_scores_`` (plus ``n_padded_`` and ``n_iter_``).

    projections_ : torch.Tensor of shape (n_pool, n_draws)
    weights_ : torch.Tensor of shape (n_pool,)
        Frank-Wolfe weights of the last query.
    n_padded_ : int
        Points of the last batch that are padding rather than Frank-Wolfe's support.
    n_iter_ : int
    n_pool_ : int
    indices_ : ndarray of shape (n_instances,)
    query_scores_ : ndarray of shape (n_instances,)
        Frank-Wolfe weight of each selected point (0 for padding).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> rf = RandomForestClassifier(10, random_state=0).fit(X[::10], y[::10])
    >>> BayesianCoreset(device="cpu").fit_query(X, rf, n_instances=5).shape
    (5,)
    """

    _kept_attributes = _BaselineStrategy._kept_attributes + ("n_padded_", "n_iter_")

    def __init__(self, *, n_posterior_samples=20, centering="mean", max_iter=None,
                 batch_size=1024, device="auto", random_state=None):
        self.n_posterior_samples = n_posterior_samples
        self.centering = centering
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state

    def _validate_params(self):
        self._check_common()
        check_int(self.n_posterior_samples, "n_posterior_samples", min_val=1)
        check_option(self.centering, "centering", _CENTERINGS)
        if self.max_iter is not None:
            check_int(self.max_iter, "max_iter", min_val=1)

    def _fit(self, X_pool, estimator, X_labeled, y_labeled):
        model, _, _ = self._model_and_labeled(estimator, X_labeled, y_labeled)
        probs = self._posterior_draws(model, X_pool)
        self.projections_ = coreset_projections(probs.to(torch.float64), centering=self.centering)

    def _query(self, n_instances):
        max_iter = 10 * n_instances if self.max_iter is None else self.max_iter
        with torch.no_grad():
            res = _frank_wolfe(self.projections_, n_instances, max_iter)
        self.weights_, self.n_padded_, self.n_iter_ = res.weights, res.n_padded, res.n_iter
        return res.indices.cpu().numpy(), res.scores.cpu().numpy()
