"""Shared helpers of the adapters: errors, wrappers, labeled data, fitted checks, classes, and
the :class:`LastLayer` result type. Reading the pool in chunks is in ``_rows``."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted


_LAST_LAYER_HELP = (
    "Use embedding='posterior' (its members are posterior draws), embedding='leaf-gradient' "
    "for a tree ensemble (its leaves are a last layer), embedding='committee-gradient' for a "
    "committee whose members have last layers, or a LogisticRegression / MLPClassifier / "
    "skorch net."
)
_GRADIENT_USERS = (
    "Use a LogisticRegression, SGDClassifier(loss='log_loss'), MLPClassifier, or a skorch net / "
    "torch module whose logits come from a final nn.Linear."
)
_POSTERIOR_HELP = (
    "Posterior draws come from ensembles (RandomForestClassifier, ExtraTreesClassifier, "
    "BaggingClassifier, soft VotingClassifier), a modAL Committee, or a skorch net / torch module "
    "with nn.Dropout layers (MC dropout) or a variational last layer (sparse_query.nn). "
    "Use embedding='gradient' for single models with a last linear layer."
)


class EmbeddingNotSupportedError(TypeError):
    """The estimator offers neither the features nor the posterior draws that were asked for.

    The message says what is needed and which estimators provide it.
    """


# ---------------------------------------------------------------------------------------------
# Recognising wrappers
# ---------------------------------------------------------------------------------------------
def _is_committee(obj) -> bool:
    return hasattr(obj, "learner_list") and isinstance(getattr(obj, "learner_list"), (list, tuple))


def _is_learner(obj) -> bool:
    return (not _is_committee(obj)) and hasattr(obj, "estimator") and hasattr(obj, "query_strategy")


def _is_skorch_net(obj) -> bool:
    cls = type(obj)
    return all(hasattr(cls, name) for name in ("initialize", "get_iterator", "infer")) and hasattr(
        obj, "module"
    )


def _is_pipeline(obj) -> bool:
    return hasattr(obj, "steps") and isinstance(getattr(obj, "steps"), list) and hasattr(
        obj, "__getitem__"
    )


def _name(obj) -> str:
    return type(obj).__name__


def unwrap_estimator(obj):
    """Return the estimator a modAL ``ActiveLearner`` wraps (recursively).

    Parameters
    ----------
    obj : object
        Any object with ``.estimator`` and ``.query_strategy`` (a modAL learner), or anything else.

    Returns
    -------
    estimator : object
        ``obj.estimator`` (unwrapped again while it is itself a learner). A modAL ``Committee`` and
        every other object are returned as they are: a committee's members are posterior draws.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> clf = LogisticRegression()
    >>> unwrap_estimator(clf) is clf
    True
    """
    seen = 0
    while seen < 16:
        if _is_learner(obj):
            obj = obj.estimator
        elif _is_fitted_search(obj):
            obj = _best_estimator(obj)
        else:
            break
        seen += 1
    return obj


def _is_fitted_search(obj) -> bool:
    """A fitted ``GridSearchCV`` / ``RandomizedSearchCV`` (or any ``BaseSearchCV``)."""
    try:
        from sklearn.model_selection._search import BaseSearchCV
    except ImportError:  # pragma: no cover - private location moved
        BaseSearchCV = ()
    return isinstance(obj, BaseSearchCV) and hasattr(obj, "cv_results_")


def _best_estimator(search):
    """``search.best_estimator_``; a search fitted with ``refit=False`` has none: refuse."""
    best = getattr(search, "best_estimator_", None)
    if best is None:
        raise EmbeddingNotSupportedError(
            f"{_name(search)} was fitted with refit={search.refit!r}, so it has no "
            "best_estimator_ to query with. Fit it with refit=True (the default), or pass the "
            "refitted best model itself."
        )
    return best


def _resolve(estimator):
    """``(transforms, final)``: pipeline prefixes to apply to ``X``, then the final estimator."""
    transforms = []
    est = unwrap_estimator(estimator)
    for _ in range(16):
        if _is_pipeline(est):
            if len(est.steps) > 1:
                transforms.append(est[:-1])
            est = unwrap_estimator(est.steps[-1][1])
        else:
            break
    return transforms, est


def _apply(transforms, X):
    for t in transforms:
        X = t.transform(X)
    return X


def _members(committee):
    return [unwrap_estimator(m) for m in committee.learner_list]


# ---------------------------------------------------------------------------------------------
# Labeled data, fitted checks, classes
# ---------------------------------------------------------------------------------------------
def _concat(parts):
    if all(isinstance(p, torch.Tensor) for p in parts):
        return torch.cat(parts)
    if all(hasattr(p, "tocsr") for p in parts):
        import scipy.sparse as sp

        return sp.vstack(parts).tocsr()
    return np.concatenate([np.asarray(p) for p in parts])


def get_labeled_data(obj):
    """The labeled data a modAL learner or committee holds.

    Parameters
    ----------
    obj : object
        A modAL ``ActiveLearner`` (``X_training`` / ``y_training``), a modAL ``Committee`` (its own
        ``X_training`` when set, otherwise the union of its members' labeled data, duplicates
        removed for numeric arrays) or anything else.

    Returns
    -------
    X : array-like of shape (n_labeled, ...) or None
    y : array-like of shape (n_labeled,) or None
        ``(None, None)`` when ``obj`` holds no labeled data.
    """
    if _is_committee(obj):
        X, y = getattr(obj, "X_training", None), getattr(obj, "y_training", None)
        if X is not None and y is not None:
            return X, y
        Xs, ys = [], []
        for learner in obj.learner_list:
            Xi, yi = get_labeled_data(learner)
            if Xi is not None and yi is not None:
                Xs.append(Xi)
                ys.append(yi)
        if not Xs:
            return None, None
        X, y = _concat(Xs), _concat(ys)
        if isinstance(X, np.ndarray) and isinstance(y, np.ndarray) and X.dtype != object:
            flat = X.reshape(X.shape[0], -1)
            key = np.concatenate([flat, y.reshape(y.shape[0], -1).astype(flat.dtype, copy=False)],
                                 axis=1) if np.issubdtype(y.dtype, np.number) else flat
            _, first = np.unique(key, axis=0, return_index=True)
            keep = np.sort(first)
            X, y = X[keep], y[keep]
        return X, y
    if _is_learner(obj):
        X, y = getattr(obj, "X_training", None), getattr(obj, "y_training", None)
        if X is None or y is None:
            return None, None
        return X, y
    return None, None


def check_fitted(estimator) -> None:
    """Raise ``NotFittedError`` when the (unwrapped) estimator is not fitted.

    scikit-learn estimators and pipelines use :func:`sklearn.utils.validation.check_is_fitted`;
    skorch nets raise skorch's ``NotInitializedError`` (a ``NotFittedError`` subclass) unless
    initialized; a committee checks every member; a plain ``torch.nn.Module`` always passes.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        With a message naming the estimator and telling to fit it first.
    """
    if _is_committee(estimator):
        if not estimator.learner_list:
            raise NotFittedError("The modAL Committee has no members; add fitted learners first.")
        for i, member in enumerate(_members(estimator)):
            try:
                check_fitted(member)
            except NotFittedError as err:
                raise type(err)(f"Committee member {i} is not fitted: {err}") from None
        return
    est = unwrap_estimator(estimator)
    _check_classifier(est)
    if isinstance(est, torch.nn.Module):
        return
    if _is_skorch_net(est):
        if not getattr(est, "initialized_", False) or not hasattr(est, "module_"):
            from skorch.exceptions import NotInitializedError

            raise NotInitializedError(
                f"This {_name(est)} is not initialized yet; call 'fit' (or 'initialize') on it "
                "before querying."
            )
        _check_net_device(est)
        return
    if not hasattr(est, "fit"):
        return
    for _, step in (est.steps if _is_pipeline(est) else ()):  # a net inside a pipeline
        if _is_skorch_net(unwrap_estimator(step)):
            _check_net_device(unwrap_estimator(step))
    try:
        check_is_fitted(est)
    except NotFittedError:
        raise NotFittedError(
            f"This {_name(est)} is not fitted yet; call 'fit' with the labeled data before "
            "querying (a modAL ActiveLearner fits it when given X_training / y_training)."
        ) from None


def skorch_validation_accuracy(net):
    """``(accuracy, n_valid)`` of a skorch net's last epoch on its own validation split, or
    None (not a skorch net, trained without ``train_split``, or no ``valid_acc`` recorded)."""
    if not _is_skorch_net(net) or not getattr(net, "history_", None):
        return None
    last = net.history_[-1]
    acc = last.get("valid_acc") if hasattr(last, "get") else None
    batches = last.get("batches") or []
    n_valid = sum(int(b.get("valid_batch_size", 0)) for b in batches)
    if acc is None or n_valid == 0:
        return None
    return float(acc), n_valid


def _check_net_device(net) -> None:
    """A skorch net whose ``device`` this machine lacks is refused with the fix named."""
    device = getattr(net, "device", None)
    if device is None:
        return
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError, ValueError, TypeError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ValueError(
            f"The {_name(net)}'s device={device!r} is not available on this machine "
            f"({reason}); move the net with net.set_params(device='cpu') (or to a device that "
            "exists) before querying.") from None


def _is_regressor(est) -> bool:
    """scikit-learn's ``is_regressor`` (pipelines: their last step), skorch's regressors too."""
    for _ in range(16):  # a pipeline is a regressor when its last step is
        if _is_pipeline(est):
            est = unwrap_estimator(est.steps[-1][1])
        else:
            break
    if getattr(est, "_estimator_type", None) == "regressor":
        return True
    if not hasattr(est, "fit") or isinstance(est, torch.nn.Module):
        return False
    try:
        from sklearn.base import is_regressor

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bool(is_regressor(est))
    except Exception:  # noqa: BLE001 - objects without scikit-learn tags are not regressors
        return False


def _final_name(estimator) -> str:
    """The final step's class name, with the pipeline it sits in: ``"SVC (the final step of
    the Pipeline)"``; the estimator's own name when it is not a pipeline."""
    transforms, est = _resolve(estimator)
    outer = unwrap_estimator(estimator)
    if transforms or est is not outer:
        return f"{_name(est)} (the final step of the {_name(outer)})"
    return _name(est)


def _check_classifier(est) -> None:
    """Refuse regressors: every embedding and baseline needs class probabilities."""
    if _is_regressor(est):
        raise EmbeddingNotSupportedError(
            f"{_final_name(est)} is a regressor; only classifiers are supported (every query "
            "strategy here needs class probabilities). Use a classifier such as "
            "LogisticRegression or skorch's NeuralNetClassifier, or RandomSampling, which needs "
            "no model."
        )


def _check_feature_names(est, X) -> None:
    """scikit-learn's feature-name check, for the paths that compute ``X @ coef_`` themselves.

    A DataFrame pool must have exactly the columns ``est`` was fitted on (``feature_names_in_``),
    in the same order. Pools without column names are taken positionally, as scikit-learn does.
    """
    fitted = getattr(est, "feature_names_in_", None)
    columns = getattr(X, "columns", None)
    if fitted is None or columns is None:
        return
    columns = np.asarray([str(c) for c in columns], dtype=object)
    fitted = np.asarray(fitted, dtype=object)
    if columns.shape == fitted.shape and np.all(columns == fitted):
        return
    missing = [c for c in fitted.tolist() if c not in set(columns.tolist())]
    unseen = [c for c in columns.tolist() if c not in set(fitted.tolist())]
    detail = []
    if unseen:
        detail.append(f"names unseen at fit time: {unseen[:5]}")
    if missing:
        detail.append(f"names seen at fit time, yet now missing: {missing[:5]}")
    if not detail:
        detail.append("the same names in a different order")
    raise ValueError(
        f"The pool's feature names should match those {_name(est)} was fitted with ("
        + "; ".join(detail) + f"). Pass X[{fitted.tolist()[:5]}{'...' if len(fitted) > 5 else ''}"
        "] with the training columns in the training order."
    )


def classes_of(estimator):
    """The class labels in the column order of :func:`predict_proba`, or ``None`` if unknown.

    For a modAL ``Committee``: its ``classes_`` or the sorted union of the members' classes; for
    a plain torch module: ``None``. (:func:`last_layer_outputs` reports ``classes=None`` when a
    skorch net's module has more outputs than the classes it saw, e.g. a seed set missing a
    class, since the columns are then output indices.)

    Returns
    -------
    classes : ndarray of shape (n_classes,) or None
    """
    if _is_committee(estimator):
        classes = getattr(estimator, "classes_", None)
        if classes is not None:
            return np.asarray(classes)
        known = [classes_of(m) for m in _members(estimator)]
        known = [c for c in known if c is not None]
        return np.unique(np.concatenate(known)) if known else None
    est = unwrap_estimator(estimator)
    if isinstance(est, torch.nn.Module):
        return None
    try:
        classes = est.classes_
    except (AttributeError, NotFittedError):
        return None
    return None if classes is None else np.asarray(classes)


# ---------------------------------------------------------------------------------------------
# Result type
# ---------------------------------------------------------------------------------------------
@dataclass
class LastLayer:
    """What the last linear layer of a model sees and produces on a pool.

    Attributes
    ----------
    features : torch.Tensor or scipy.sparse.csr_matrix of shape (n_samples, n_features)
        The input of the last linear layer (CPU; float32, or float64 if the model is). CSR
        when a linear model reads a sparse pool (see :mod:`sparse_query.operators.sparse`).
    logits : torch.Tensor of shape (n_samples, n_classes)
        Its output, ``features @ W.T + c``. A binary model with a single output column ``z``
        (scikit-learn's binary ``coef_``, a logistic MLP output, a 1-unit head) gets the two
        columns ``[0, z]``, so ``softmax(logits)`` is its class probability.
    bias : bool
        Whether the last layer has a bias ``c``.
    classes : ndarray of shape (n_classes,) or None
        The class labels of the logits' columns, when known.
    """

    features: torch.Tensor
    logits: torch.Tensor
    bias: bool
    classes: np.ndarray | None
