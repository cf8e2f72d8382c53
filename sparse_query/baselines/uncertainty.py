"""Random sampling and the top-b uncertainty baselines: entropy, margin, least confidence, BALD.

Score functions take class probabilities and return one score per pool point where *larger
means more informative*; the strategies return the ``b`` largest, ties broken by lower index.
"""
from __future__ import annotations

import torch

from .._utils import check_int, numpy_rng
from ._common import _BaselineStrategy, _check_probs, _top_k

__all__ = [
    "entropy_scores",
    "margin_scores",
    "least_confidence_scores",
    "bald_scores",
    "RandomSampling",
    "EntropySampling",
    "MarginSampling",
    "LeastConfidenceSampling",
    "BALD",
]


# -- scores ------------------------------------------------------------------------------
def _entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) over the last axis, with 0 log 0 = 0."""
    return 0.0 - torch.special.xlogy(p, p).sum(-1)  # 0.0 - x: no negative zeros


def entropy_scores(probs) -> torch.Tensor:
    """Predictive entropy ``H[p_j] = -sum_y p_j(y) log p_j(y)`` (nats) of each point.

    Parameters
    ----------
    probs : array-like or torch.Tensor of shape (n_samples, n_classes)
        Class probabilities (rows sum to 1).

    Returns
    -------
    torch.Tensor of shape (n_samples,)
        Entropies, on the device of ``probs``; ``0 log 0`` counts as 0.

    Examples
    --------
    >>> entropy_scores([[0.5, 0.5], [1.0, 0.0]])
    tensor([0.6931, 0.0000], dtype=torch.float64)
    """
    return _entropy(_check_probs(probs, ndim=2))


def margin_scores(probs) -> torch.Tensor:
    """One minus the margin between the two most likely classes: ``1 - (p_(1) - p_(2))``.

    Parameters
    ----------
    probs : array-like or torch.Tensor of shape (n_samples, n_classes)

    Returns
    -------
    torch.Tensor of shape (n_samples,)
        Values in ``[0, 1]``; 1 for a tie between the top two classes. With a single class the
        runner-up probability is taken as 0.
    """
    p = _check_probs(probs, ndim=2)
    if p.shape[1] == 1:
        return 1 - p[:, 0]
    top2 = torch.topk(p, 2, dim=1).values
    return 1 - (top2[:, 0] - top2[:, 1])


def least_confidence_scores(probs) -> torch.Tensor:
    """One minus the largest class probability: ``1 - max_y p_j(y)``.

    Parameters
    ----------
    probs : array-like or torch.Tensor of shape (n_samples, n_classes)

    Returns
    -------
    torch.Tensor of shape (n_samples,)
    """
    p = _check_probs(probs, ndim=2)
    return 1 - p.max(dim=1).values


def _bald(probs: torch.Tensor) -> torch.Tensor:
    mean_entropy = _entropy(probs).mean(0)
    return (_entropy(probs.mean(0)) - mean_entropy).clamp_min(0)


def bald_scores(probs) -> torch.Tensor:
    """BALD mutual information ``I[y_j; theta] = H[mean_i p_ij] - mean_i H[p_ij]`` (nats).

    Parameters
    ----------
    probs : array-like or torch.Tensor of shape (n_draws, n_samples, n_classes)
        Class probabilities of each pool point under each posterior draw (MC-dropout pass,
        ensemble or committee member).

    Returns
    -------
    torch.Tensor of shape (n_samples,)
        Non-negative scores (rounding below zero is clipped to 0).

    Examples
    --------
    >>> p = [[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.5, 0.5]]]
    >>> bald_scores(p)
    tensor([0.6931, 0.0000], dtype=torch.float64)
    """
    return _bald(_check_probs(probs, ndim=3))


# -- strategies ----------------------------------------------------------------------------
class RandomSampling(_BaselineStrategy):
    """Uniform sampling without replacement: the baseline every method must beat.

    Parameters
    ----------
    random_state : None, int or numpy Generator, default=None
        Seed of the local generator; the global seed is never touched.
    device : str or torch.device, default="auto"
        Accepted for a uniform signature; nothing here runs on it.

    Attributes
    ----------
    n_pool_ : int
    indices_ : ndarray of shape (n_instances,)

    Examples
    --------
    >>> import numpy as np
    >>> RandomSampling(random_state=0).fit(np.zeros((10, 2)), None).query(3).shape
    (3,)
    """

    def __init__(self, *, random_state=None, device="auto"):
        self.random_state = random_state
        self.device = device

    def _validate_params(self):
        self._check_common()

    def _fit(self, X_pool, estimator, X_labeled, y_labeled):
        pass  # nothing depends on the model

    def _query(self, n_instances):
        rng = numpy_rng(self.random_state)
        return rng.choice(self.n_pool_, size=n_instances, replace=False), None


class _UncertaintySampling(_BaselineStrategy):
    """Top-b of a score of the predictive probabilities (see subclasses)."""

    _score = staticmethod(entropy_scores)

    def __init__(self, *, n_posterior_samples=20, batch_size=1024, device="auto",
                 random_state=None):
        self.n_posterior_samples = n_posterior_samples
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state

    def _validate_params(self):
        self._check_common()
        check_int(self.n_posterior_samples, "n_posterior_samples", min_val=1)

    def _fit(self, X_pool, estimator, X_labeled, y_labeled):
        model, _, _ = self._model_and_labeled(estimator, X_labeled, y_labeled)
        probs = self._predictive_probs(model, X_pool)
        self.scores_ = type(self)._score(probs)

    def _query(self, n_instances):
        idx = _top_k(self.scores_, n_instances)
        return idx.cpu().numpy(), self.scores_[idx].cpu().numpy()


_UNCERTAINTY_DOC = """{title}

    Scores every pool point by {what} of the model's predictive probabilities and returns the
    ``n_instances`` highest, ties broken by lower index. For models with posterior draws (MC
    dropout, ensembles, committees) the predictive probabilities are the mean over
    ``n_posterior_samples`` draws, otherwise ``predict_proba``.

    Parameters
    ----------
    n_posterior_samples : int, default=20
        Posterior draws averaged for models that have them (ignored otherwise).
    batch_size : int, default=1024
        Inference batch size.
    device : str or torch.device, default="auto"
        Where the scores are computed (``"auto"``: CUDA when available).
    random_state : None, int or numpy Generator, default=None
        Seeds the posterior draws (MC-dropout masks).

    Attributes
    ----------
    What is kept: :meth:`fit` keeps the pool-sized attributes below for :meth:`query`;
    :meth:`fit_query` and modAL calls keep only ``n_pool_``, ``indices_`` and
    ``query_scores_``.

    scores_ : torch.Tensor of shape (n_pool,)
        The scores of the last :meth:`fit`.
    n_pool_ : int
    indices_ : ndarray of shape (n_instances,)
    query_scores_ : ndarray of shape (n_instances,)
        Scores of the selected points (what modAL 0.4.2.1 receives as metrics).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = LogisticRegression(max_iter=500).fit(X[::10], y[::10])
    >>> {name}(device="cpu").fit_query(X, clf, n_instances=5).shape
    (5,)
    """


class EntropySampling(_UncertaintySampling):
    __doc__ = _UNCERTAINTY_DOC.format(
        title="Top-b predictive entropy (Shannon 1948; Settles 2009).",
        what=":func:`entropy_scores`", name="EntropySampling")
    _score = staticmethod(entropy_scores)


class MarginSampling(_UncertaintySampling):
    __doc__ = _UNCERTAINTY_DOC.format(
        title="Top-b smallest margin between the two most likely classes (Scheffer et al. 2001).",
        what=":func:`margin_scores` (one minus the top-2 margin)", name="MarginSampling")
    _score = staticmethod(margin_scores)


class LeastConfidenceSampling(_UncertaintySampling):
    __doc__ = _UNCERTAINTY_DOC.format(
        title="Top-b least confidence (Lewis & Gale 1994).",
        what=":func:`least_confidence_scores` (one minus the top probability)",
        name="LeastConfidenceSampling")
    _score = staticmethod(least_confidence_scores)


class BALD(_UncertaintySampling):
    """Top-b BALD: mutual information between a point's label and the model (Houlsby et al. 2011).

    Needs a model with posterior draws (MC-dropout net, ensemble, random forest, modAL
    ``Committee``); see :func:`bald_scores`. Ties are broken by lower index.

    Parameters
    ----------
    n_posterior_samples : int, default=20
        Posterior draws (MC-dropout passes; ensembles use their members).
    batch_size : int, default=1024
        Inference batch size.
    device : str or torch.device, default="auto"
    random_state : None, int or numpy Generator, default=None
        Seeds the dropout masks.

    Attributes
    ----------
    What is kept: :meth:`fit` keeps the pool-sized attributes below for :meth:`query`;
    :meth:`fit_query` and modAL calls keep only ``n_pool_``, ``indices_`` and
    ``query_scores_``.

    scores_ : torch.Tensor of shape (n_pool,)
        Mutual information of every pool point (nats).
    n_pool_ : int
    indices_ : ndarray of shape (n_instances,)
    query_scores_ : ndarray of shape (n_instances,)

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> rf = RandomForestClassifier(10, random_state=0).fit(X[::10], y[::10])
    >>> BALD(device="cpu").fit_query(X, rf, n_instances=5).shape
    (5,)
    """

    def _fit(self, X_pool, estimator, X_labeled, y_labeled):
        model, _, _ = self._model_and_labeled(estimator, X_labeled, y_labeled)
        self.scores_ = bald_scores(self._posterior_draws(model, X_pool))

