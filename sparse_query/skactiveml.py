"""A scikit-activeml pool query strategy that runs :class:`~sparse_query.SparseApproxSampler`.

scikit-activeml (``pip install scikit-activeml``, or the ``skactiveml`` extra of this package)
keeps the whole data set in ``X`` and marks unlabeled rows in ``y`` by ``missing_label``;
its pool strategies answer ``query(X, y, clf, ...)`` with indices into ``X`` (or into
``candidates``). :class:`SparseApproxQueryStrategy` translates that contract: the candidates
become the sampler's pool, the labeled rows of ``(X, y)`` its labeled set, and the fitted
scikit-learn estimator inside the scikit-activeml wrapper its model.

This module imports scikit-activeml; :mod:`sparse_query` itself never does.
"""
from __future__ import annotations

import warnings

import numpy as np

try:
    from skactiveml.base import SingleAnnotatorPoolQueryStrategy, SkactivemlClassifier
    from skactiveml.utils import (
        MISSING_LABEL,
        check_equal_missing_label,
        check_scalar,
        check_type,
        is_labeled,
        is_unlabeled,
    )
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without the extra
    raise ImportError(
        "sparse_query.skactiveml needs scikit-activeml; install it with "
        "`pip install scikit-activeml` (or `pip install '.[skactiveml]'` in a clone of "
        "sparse_query)."
    ) from exc

from sklearn.base import clone

from ._utils import numpy_rng
from .sampler import SparseApproxSampler

__all__ = ["SparseApproxQueryStrategy"]


class SparseApproxQueryStrategy(SingleAnnotatorPoolQueryStrategy):
    """Batch active learning by sparse approximation as a scikit-activeml pool strategy.

    Each :meth:`query` validates its inputs the way scikit-activeml's own strategies do
    (``Badge`` is the model), fits a clone of ``clf`` when ``fit_clf=True``, and calls
    ``sampler.fit_query(pool, estimator, batch_size, X_labeled=..., y_labeled=...)`` on a
    clone of ``sampler``: the pool is the unlabeled candidates, the labeled set is the rows
    of ``y`` that are not ``missing_label``, and the estimator is the scikit-learn model a
    :class:`skactiveml.classifier.SklearnClassifier` wraps (``clf.estimator_``; any other
    classifier is handed over as it is). The batch is the sampler's.

    Parameters
    ----------
    sampler : SparseApproxSampler or None, default=None
        The sampler to run, cloned at every query; ``None`` is ``SparseApproxSampler()``.
    missing_label : scalar, str, np.nan or None, default=np.nan
        Value marking an unlabeled entry of ``y``; must equal the classifier's
        ``missing_label``.
    random_state : None, int or numpy.random.RandomState, default=None
        ``None``: the sampler's own ``random_state`` is used. Otherwise a seed is drawn, as
        scikit-activeml draws it (from ``random_state`` and the number of unlabeled rows,
        ``skactiveml.utils.check_random_state``), and given to the sampler's clone: the same
        state gives the same batch, and each cycle of a loop draws anew.

    Attributes
    ----------
    sampler_ : SparseApproxSampler
        The clone that chose the last batch, with its small learned attributes
        (``weights_``, ``objective_``, ``solver_``, ``embedding_kind_``, ...); None when the
        last query returned a random batch or no batch.
    missing_label_ : scalar, str, np.nan or None
        The ``missing_label`` the last query used.
    random_state_ : numpy.random.RandomState
        The random state the last query drew its seed from.

    Notes
    -----
    ``candidates`` given as indices are restricted to the unlabeled ones (as
    ``skactiveml.pool.Badge`` does); when fewer unlabeled candidates than ``batch_size``
    remain, the batch shrinks to all of them, with a warning. ``return_utilities=True`` is
    refused: the batch is chosen jointly, so there is no utility per candidate.

    A ``SklearnClassifier`` whose estimator could not be fitted (no labels yet, or one class
    for a model that needs two) predicts label frequencies, which carry no embedding: the
    query warns (``UserWarning``) and returns a uniformly random batch seeded as above, so a
    loop that starts from no labels can continue.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skactiveml.classifier import SklearnClassifier
    >>> from skactiveml.utils import MISSING_LABEL
    >>> from sparse_query import SparseApproxSampler
    >>> from sparse_query.skactiveml import SparseApproxQueryStrategy
    >>> X, y_true = load_digits(return_X_y=True)
    >>> y = np.full(len(X), MISSING_LABEL)
    >>> y[:50] = y_true[:50]
    >>> clf = SklearnClassifier(LogisticRegression(max_iter=500), classes=np.arange(10))
    >>> qs = SparseApproxQueryStrategy(SparseApproxSampler(device="cpu"), random_state=0)
    >>> idx = qs.query(X, y, clf, batch_size=10)
    >>> idx.shape, bool(np.isnan(y[idx]).all())
    ((10,), True)
    """

    def __init__(self, sampler=None, missing_label=MISSING_LABEL, random_state=None):
        super().__init__(missing_label=missing_label, random_state=random_state)
        self.sampler = sampler

    def query(self, X, y, clf, fit_clf=True, sample_weight=None, candidates=None,
              batch_size=1, return_utilities=False):
        """Choose the candidates whose labels to query.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data set, labeled and unlabeled rows.
        y : array-like of shape (n_samples,)
            Labels of ``X``; unlabeled rows hold ``missing_label``.
        clf : skactiveml.base.SkactivemlClassifier
            Usually a :class:`skactiveml.classifier.SklearnClassifier` around a model the
            sampler supports (last linear layer, tree ensemble, ...).
        fit_clf : bool, default=True
            Fit a clone of ``clf`` on ``(X, y, sample_weight)`` first; ``False`` uses ``clf``
            as it is (already fitted).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows of ``X`` for that fit.
        candidates : None, array-like of shape (n_candidates,) of int, or array-like of \
shape (n_candidates, n_features), default=None
            ``None``: the unlabeled rows of ``X``. Indices: those rows of ``X`` (the labeled
            ones among them are left out). Samples: the pool itself.
        batch_size : int, default=1
            Number of candidates to choose.
        return_utilities : bool, default=False
            Must be False (see Notes of the class).

        Returns
        -------
        query_indices : ndarray of shape (batch_size,), int64
            Indices into ``X`` when ``candidates`` is None or indices, into ``candidates``
            when it holds samples.
        """
        X, y, candidates, batch_size, return_utilities = self._validate_data(
            X, y, candidates, batch_size, return_utilities, reset=True
        )
        if return_utilities:
            raise ValueError(
                "return_utilities=True is not supported by SparseApproxQueryStrategy: the "
                "sparse approximation chooses the batch jointly, so no candidate has a utility "
                "of its own. Call query(..., return_utilities=False); the batch's weights are in "
                "strategy.sampler_.weights_ afterwards."
            )
        check_type(clf, "clf", SkactivemlClassifier)
        check_equal_missing_label(clf.missing_label, self.missing_label_)
        check_scalar(fit_clf, "fit_clf", bool)
        sampler = SparseApproxSampler() if self.sampler is None else self.sampler
        if not isinstance(sampler, SparseApproxSampler):
            raise TypeError(
                f"sampler must be a sparse_query.SparseApproxSampler or None; got "
                f"{type(sampler).__name__}. Pass SparseApproxSampler(...) with the solver "
                "parameters you want."
            )
        self.sampler_ = None

        X_cand, mapping = self._transform_candidates(candidates, X, y)
        if candidates is not None and mapping is not None:  # indices: the unlabeled ones
            keep = is_unlabeled(y[mapping], missing_label=self.missing_label_)
            X_cand, mapping = X_cand[keep], mapping[keep]
        if len(X_cand) < batch_size:
            warnings.warn(
                f"batch_size={batch_size} is larger than the {len(X_cand)} unlabeled "
                f"candidates; the batch holds all {len(X_cand)} of them.", UserWarning,
                stacklevel=2,
            )
            batch_size = len(X_cand)
        if batch_size == 0:
            return np.empty(0, dtype=np.int64)

        if fit_clf:
            clf = clone(clf)
            clf = clf.fit(X, y) if sample_weight is None else clf.fit(X, y, sample_weight)
        seed = (sampler.random_state if self.random_state is None
                else int(self.random_state_.randint(2**31 - 1)))
        estimator = getattr(clf, "estimator_", clf)
        if getattr(clf, "is_fitted_", True) is False:
            warnings.warn(
                f"{type(clf).__name__}'s estimator could not be fitted (it predicts label "
                "frequencies), so there is no model to embed the candidates with; returning a "
                "uniformly random batch. Label points of at least two classes to use the "
                "sparse approximation.", UserWarning, stacklevel=2,
            )
            idx = numpy_rng(seed).choice(len(X_cand), batch_size, replace=False)
        else:
            labeled = is_labeled(y, missing_label=self.missing_label_)
            known = dict(X_labeled=X[labeled], y_labeled=y[labeled]) if labeled.any() else {}
            self.sampler_ = clone(sampler).set_params(random_state=seed)
            idx = self.sampler_.fit_query(X_cand, estimator, batch_size, **known)
        idx = np.asarray(idx, dtype=np.int64)
        return idx if mapping is None else np.asarray(mapping, dtype=np.int64)[idx]
