"""What every query strategy shares: the pool and batch-size checks and modAL's call contract.

A strategy subclasses :class:`QueryStrategy` and implements two hooks:

``_validate_params(self)``
    check the hyper-parameters (called once at the start of :meth:`fit`);
``_fit(self, X_pool, estimator, X_labeled, y_labeled)``
    compute whatever depends on the pool and the model (features, embeddings, scores) and
    store it in attributes ending in ``_``;
``_query(self, n_instances) -> (indices, scores)``
    pick ``n_instances`` distinct pool indices; ``scores`` (same length, or ``None``) is what
    modAL 0.4.2.1 receives as its "metrics".

The base class turns that into the scikit-learn style ``fit(X_pool, estimator)`` /
``query(n_instances)`` / ``fit_query`` API and into a callable with modAL's query-strategy
signature ``strategy(classifier, X_pool, n_instances=1, **kwargs)``, answering in the form the
installed modAL release expects (bare indices for 0.4.1; ``(indices, metrics)`` for 0.4.2.1,
which otherwise calls the strategy twice or mis-reads a batch of two).

What is kept between calls. ``fit`` keeps what ``query`` needs (embeddings, features, scores:
pool-sized) on the object. ``fit_query`` and the modAL call work on a private copy (same
parameters, the same ``random_state`` object) and copy back only the small attributes a user
inspects (``_kept_attributes``: ``n_pool_``, ``indices_``, ``query_scores_`` and, per strategy,
weights, objective, timings); nothing pool-sized survives the call, and state from an earlier
``fit`` is dropped. So one ready-made object (``sparse_greedy``) can serve several learners
and threads at once: each call's batch is the one it would get alone.
"""
from __future__ import annotations

import inspect
import numbers
import threading

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ._utils import all_finite, check_int

__all__ = ["QueryStrategy", "check_pool", "check_labeled", "check_n_instances", "wants_metrics",
           "is_dask_array"]


def wants_metrics(learner) -> bool:
    """True when ``learner`` is a modAL >= 0.4.2 learner whose ``query`` expects ``(indices, metrics)``.

    modAL 0.4.2.1 added ``return_metrics`` to ``BaseLearner.query`` and ``BaseCommittee.query``
    and unpacks the strategy's answer as a pair; 0.4.1 expects bare indices.
    """
    query = getattr(type(learner), "query", None)
    if query is None or not type(learner).__module__.startswith("modAL"):
        return False
    try:
        return "return_metrics" in inspect.signature(query).parameters
    except (TypeError, ValueError):
        return False


def _num_samples(X) -> int:
    from .adapters._rows import _is_multi_input, _multi_len

    if _is_multi_input(X):  # skorch's dict / tuple pools: skorch's own get_len
        return _multi_len(X)
    if hasattr(X, "shape") and len(getattr(X, "shape", ())) > 0:
        return int(X.shape[0])
    if hasattr(X, "__len__"):
        return len(X)
    raise TypeError(
        f"X_pool must be an array-like with a first dimension (numpy array, torch tensor, "
        f"DataFrame, list); got {type(X).__name__}."
    )


def is_dask_array(X) -> bool:
    """True for a ``dask.array.Array`` (checked without importing dask)."""
    return type(X).__module__.startswith("dask") and hasattr(X, "chunks") and hasattr(X, "compute")


def _non_finite_row(X):
    """Index of the first row with NaN/inf in a numeric X, else None (non-numeric X: None).

    A dask array is not scanned here (that would compute the whole pool on the client).
    """
    if is_dask_array(X):
        return None
    from .adapters._rows import _is_multi_input

    if _is_multi_input(X):  # skorch's dict / tuple pools: every entry
        for v in (X.values() if hasattr(X, "values") else X):
            row = _non_finite_row(v)
            if row is not None:
                return row
        return None
    try:
        import torch

        if isinstance(X, torch.Tensor):
            if not X.is_floating_point() or all_finite(X):
                return None
            bad = ~torch.isfinite(X.reshape(X.shape[0], -1)).all(dim=1)
            return int(bad.nonzero()[0, 0]) if bool(bad.any()) else None
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    if hasattr(X, "tocsr"):  # scipy sparse
        data = X.tocsr()
        if not np.issubdtype(data.dtype, np.floating) or np.isfinite(data.data).all():
            return None
        rows = np.repeat(np.arange(data.shape[0]), np.diff(data.indptr))
        return int(rows[~np.isfinite(data.data)][0])
    try:
        arr = np.asarray(X)
    except Exception:  # ragged lists, exotic containers: nothing to check
        return None
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or arr.ndim == 0:
        return None
    if np.issubdtype(arr.dtype, np.integer) or all_finite(arr):
        return None
    bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
    return int(np.flatnonzero(bad)[0]) if bad.any() else None


def _expected_n_features(estimator):
    """``n_features_in_`` of the (possibly wrapped) fitted estimator, or None."""
    seen = 0
    while estimator is not None and seen < 5:
        n = getattr(estimator, "n_features_in_", None)
        if isinstance(n, numbers.Integral):
            return int(n)
        if hasattr(estimator, "learner_list") and estimator.learner_list:
            estimator = estimator.learner_list[0]
        else:
            estimator = getattr(estimator, "estimator", None)
        seen += 1
    return None


def _reads_frame_as_numbers(X, estimator) -> bool:
    """A DataFrame pool with object columns, for a model that is not a pipeline (a pipeline's
    first steps may encode strings; any other model reads the frame as numbers)."""
    if not (hasattr(X, "dtypes") and hasattr(X, "columns")):
        return False
    if not any(d == object or str(d).startswith("string") for d in X.dtypes):  # not category
        return False
    from .adapters._common import _is_pipeline, unwrap_estimator

    return not _is_pipeline(unwrap_estimator(estimator))


def check_pool(X_pool, estimator=None, name: str = "X_pool") -> int:
    """Validate the pool and return its size.

    Raises a ``ValueError`` for an empty pool, for NaN/inf in a numeric pool (naming the first
    bad row) and, when the fitted estimator records ``n_features_in_``, for a pool with a
    different number of features.
    """
    if X_pool is None:
        raise ValueError(f"{name} is None; pass the unlabeled pool as an array-like.")
    n = _num_samples(X_pool)
    if n == 0:
        raise ValueError(f"{name} is empty: there is nothing to query. Pass at least one sample.")
    row = _non_finite_row(X_pool)
    if row is not None:
        raise ValueError(
            f"{name} contains NaN or infinity (first at row {row}); impute or drop those rows "
            "before querying."
        )
    if estimator is not None and _reads_frame_as_numbers(X_pool, estimator):
        from .adapters._rows import _non_numeric_column

        err = _non_numeric_column(X_pool)
        if err is not None:
            raise err
    expected = _expected_n_features(estimator) if estimator is not None else None
    shape = getattr(X_pool, "shape", None)
    if expected is not None and shape is not None and len(shape) == 2 and shape[1] != expected:
        raise ValueError(
            f"{name} has {shape[1]} features but the estimator was fitted with {expected}; "
            "pass a pool with the same columns as the training data."
        )
    return n


def check_labeled(X_labeled, y_labeled, X_pool=None, *, labels_optional=False):
    """Validate the labeled set given beside a pool; return ``(X_labeled, y_labeled)``.

    Both or neither must be given (``X_labeled`` alone too when ``labels_optional``, for a
    strategy that uses the labeled inputs only); ``y_labeled`` is 1-D with one label per row of
    ``X_labeled`` and no missing (NaN) label; a 2-D ``X_labeled`` has the pool's columns.
    """
    if X_labeled is None and y_labeled is None:
        return None, None
    if y_labeled is None and not labels_optional:
        raise ValueError(
            "X_labeled was given without y_labeled; pass its labels as y_labeled, or neither "
            "(a modAL learner's X_training / y_training are used then).")
    if X_labeled is None:
        raise ValueError(
            "y_labeled was given without X_labeled; pass the labeled rows as X_labeled, or "
            "neither (a modAL learner's X_training / y_training are used then).")
    shape, pool_shape = getattr(X_labeled, "shape", None), getattr(X_pool, "shape", None)
    if (shape is not None and pool_shape is not None and len(shape) == 2
            and len(pool_shape) == 2 and shape[1] != pool_shape[1]):
        raise ValueError(f"X_labeled has {shape[1]} features but X_pool has {pool_shape[1]}; "
                         "pass labeled rows with the pool's columns.")
    if y_labeled is None:
        return X_labeled, None
    y = y_labeled.detach().cpu().numpy() if hasattr(y_labeled, "detach") else np.asarray(
        y_labeled)
    if y.ndim != 1:
        raise ValueError(f"y_labeled must be 1-D (one label per row); got shape {y.shape}. "
                         "Pass y.ravel() for a column of labels.")
    n = _num_samples(X_labeled)
    if n != y.shape[0]:
        raise ValueError(f"X_labeled has {n} rows but y_labeled has {y.shape[0]} labels; pass "
                         "one label per labeled row.")
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ValueError(
            f"y_labeled has a missing (NaN) label at row {int(np.flatnonzero(np.isnan(y))[0])}; "
            "pass only the labeled rows (X_labeled[mask], y_labeled[mask]).")
    return X_labeled, y_labeled


def pool_fingerprint(X):
    """A cheap summary of the pool's values: it changes when the pool is edited in place.

    A torch tensor gives its version counter (bumped by every in-place operation); a numpy
    array (or memmap), a DataFrame of one numeric dtype or a scipy.sparse matrix a CRC-32 of
    its values (one fast pass, about 0.15 s per GB); anything else (mixed-dtype DataFrames,
    lists: copied when converted; Dask arrays: read anew) gives None: not checked.
    """
    try:
        import torch

        if isinstance(X, torch.Tensor):
            return ("tensor", X.data_ptr(), tuple(X.shape), X._version)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    if hasattr(X, "indptr") and hasattr(X, "data"):  # scipy CSR / CSC
        arrays = (X.data, X.indices, X.indptr)
    elif isinstance(X, np.ndarray) and X.dtype != object:
        arrays = (X,)
    elif hasattr(X, "dtypes") and hasattr(X, "to_numpy") and getattr(X, "ndim", 0) == 2 \
            and len(set(map(str, X.dtypes))) == 1 and X.dtypes.iloc[0].kind in "biuf":
        X = X.to_numpy()  # one block: a view of the frame's memory
        arrays = (X,)
    else:
        return None
    import zlib

    crc = 0
    for a in arrays:
        flat = a.reshape(-1) if a.flags.c_contiguous else a.ravel(order="K")
        step = max(1, (1 << 24) // max(1, flat.itemsize))  # 16 MB at a time: no large copy
        for start in range(0, flat.shape[0], step):
            crc = zlib.crc32(np.ascontiguousarray(flat[start:start + step]).view(np.uint8), crc)
    return ("buffer", tuple(X.shape), str(X.dtype), crc)


def check_n_instances(n_instances, n_pool: int) -> int:
    """``n_instances`` must be an integer in ``[1, n_pool]``."""
    return check_int(
        n_instances, "n_instances", min_val=1, max_val=n_pool,
        max_hint=f"It exceeds the pool size {n_pool}; ask for at most {n_pool}.",
    )


class QueryStrategy(BaseEstimator):
    """Base class: scikit-learn style ``fit``/``query`` plus modAL's strategy signature.

    Learned attributes set by every strategy: ``n_pool_`` (pool size seen by ``fit``) and
    ``indices_`` (the last batch, numpy ``int64``). ``fit`` keeps the pool-sized state that
    ``query`` needs; ``fit_query`` and the modAL call keep only ``_kept_attributes`` (see the
    module docstring), so a shared strategy object is safe across learners and threads.
    """

    #: Learned attributes ``fit_query`` / the modAL call copy back from their private copy;
    #: every other learned or private attribute (pool-sized state) is dropped.
    _kept_attributes: tuple = ("n_pool_", "indices_", "query_scores_")
    #: True for a strategy that uses the labeled inputs without their labels (``X_labeled``
    #: alone is then accepted)
    _labels_optional = False
    _adopt_lock = threading.Lock()

    def _fresh(self):
        """A copy with the same parameters (the same objects: a Generator keeps advancing)."""
        return type(self)(**self.get_params(deep=False))

    def _adopt(self, work) -> None:
        """Keep the small results of ``work``; drop the rest of what fitting sets (atomically).

        ``work`` started with nothing but the parameters, so what it holds beyond them is
        exactly the state ``fit`` / ``query`` create: those names are removed from ``self``
        (also when an earlier ``fit`` left them) and the kept ones copied over. Attributes a
        user set on the object themselves are left alone.
        """
        params = set(self.get_params(deep=False))
        with self._adopt_lock:
            drop = set(work.__dict__) | set(self.__dict__.get("_state_names", ()))
            drop |= {k for k in self.__dict__ if k.endswith("_") and not k.startswith("__")}
            for name in drop - params:
                self.__dict__.pop(name, None)
            for name in self._kept_attributes:
                if name in work.__dict__:
                    self.__dict__[name] = work.__dict__[name]

    # -- hooks -------------------------------------------------------------------------
    def _validate_params(self):  # pragma: no cover - overridden
        pass

    def _fit(self, X_pool, estimator, X_labeled, y_labeled):  # pragma: no cover - overridden
        raise NotImplementedError

    def _query(self, n_instances):  # pragma: no cover - overridden
        raise NotImplementedError

    # -- scikit-learn style API ---------------------------------------------------------
    def fit(self, X_pool, estimator, *, X_labeled=None, y_labeled=None):
        """Compute everything the query needs from the pool and the fitted ``estimator``.

        Parameters
        ----------
        X_pool : array-like of shape (n_samples, ...)
            The unlabeled pool.
        estimator : object
            A fitted classifier (scikit-learn estimator, pipeline, ensemble, skorch net, modAL
            ``ActiveLearner`` or ``Committee``).
        X_labeled, y_labeled : array-like, optional
            Labeled data; when omitted it is taken from a modAL learner (``X_training``).

        Returns
        -------
        self
        """
        self._fit_pool(X_pool, estimator, X_labeled, y_labeled)
        # the embedding may read the pool's memory (a tensor, a numpy array): query checks
        # that it was not edited in place since
        self._pool_fingerprint = (X_pool, pool_fingerprint(X_pool))
        self._state_names = self._state_names | {"_pool_fingerprint"}
        return self

    def _fit_pool(self, X_pool, estimator, X_labeled, y_labeled):
        before = set(self.__dict__)
        self._validate_params()
        self.n_pool_ = check_pool(X_pool, estimator)
        X_labeled, y_labeled = check_labeled(X_labeled, y_labeled, X_pool,
                                             labels_optional=self._labels_optional)
        self._has_pool = False
        self._fit(X_pool, estimator, X_labeled, y_labeled)
        self._has_pool = True
        self._state_names = (set(self.__dict__) - before) | set(
            self.__dict__.get("_state_names", ()))

    def query(self, n_instances: int = 1) -> np.ndarray:
        """Return ``n_instances`` distinct pool indices (numpy ``int64``) after :meth:`fit`."""
        check_is_fitted(self, "n_pool_")
        if not self.__dict__.get("_has_pool", False):
            raise NotFittedError(
                f"This {type(self).__name__} holds no pool: fit_query and modAL calls keep only "
                "their results. Call fit(X_pool, estimator) before query(n_instances)."
            )
        n_instances = check_n_instances(n_instances, self.n_pool_)
        pool, fingerprint = self.__dict__.get("_pool_fingerprint", (None, None))
        if fingerprint is not None and pool_fingerprint(pool) != fingerprint:
            raise ValueError(
                "X_pool was modified in place after fit: the embedding describes the pool as "
                "it was then. Call fit(X_pool, estimator) again on the edited pool (or pass a "
                "copy to fit if the pool must change).")
        indices, scores = self._query(n_instances)
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if (
            indices.shape[0] != n_instances
            or np.unique(indices).shape[0] != n_instances
            or indices.min() < 0
            or indices.max() >= self.n_pool_
        ):  # an internal bug, never the user's fault: fail loudly rather than mislabel data
            raise RuntimeError(
                f"{type(self).__name__} produced an invalid batch {indices!r}; please report this."
            )
        self.indices_ = indices
        self.query_scores_ = (
            np.full(n_instances, np.nan) if scores is None else np.asarray(scores, dtype=float)
        )
        return indices

    def fit_query(self, X_pool, estimator, n_instances: int = 1, *, X_labeled=None,
                  y_labeled=None) -> np.ndarray:
        """:meth:`fit` then :meth:`query` on a private copy; ``n_instances`` is checked first.

        Afterwards the object holds only ``_kept_attributes`` (indices, scores of the batch,
        weights, objective, timings), never the pool's embedding: safe to share.
        """
        return self._fit_query(X_pool, estimator, n_instances, X_labeled, y_labeled)[0]

    def _fit_query(self, X_pool, estimator, n_instances, X_labeled, y_labeled):
        check_n_instances(n_instances, check_pool(X_pool))
        check_labeled(X_labeled, y_labeled, X_pool, labels_optional=self._labels_optional)
        work = self._fresh()
        work._fit_pool(X_pool, estimator, X_labeled, y_labeled)  # queried at once: no check
        indices = work.query(n_instances)
        self._adopt(work)
        return indices, work

    # -- modAL ----------------------------------------------------------------------------
    def __call__(self, classifier, X_pool, n_instances: int = 1, **kwargs):
        """modAL's query-strategy signature.

        Returns bare indices for modAL 0.4.1 (and for any non-modAL caller) and
        ``(indices, metrics)`` for modAL 0.4.2.x learners, so ``learner.query`` calls the
        strategy exactly once in both releases.
        """
        unknown = set(kwargs) - {"X_labeled", "y_labeled"}
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unexpected keyword argument(s) {sorted(unknown)}; "
                "it accepts n_instances, X_labeled and y_labeled."
            )
        indices, work = self._fit_query(X_pool, classifier, n_instances,
                                        kwargs.get("X_labeled"), kwargs.get("y_labeled"))
        if wants_metrics(classifier):
            return indices, work.query_scores_
        return indices
