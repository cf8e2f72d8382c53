"""How far a model's hallucinated labels can be trusted: chance-corrected held-out accuracy.

The variance term of Problem 2 credits labelling point ``j`` with removing ``sigma_j^2``,
computed under the label distribution ``P_j``. At a small temperature ``P_j`` is the model's
predicted label with certainty except on (near-)tied points, a belief that is only as good as
the model: a model at chance accuracy is as unsure of its "certain" points as of its tied ones,
and the variance term then singles out ties that carry no more information than any other
point. :func:`heldout_reliability` measures the trust as Cohen's chance correction of the
model's cross-validated accuracy on the labeled set,
``kappa = max(0, (acc - 1/K) / (1 - 1/K))`` (0 at chance, 1 when every held-out label is
predicted), for ``SparseApproxSampler(alpha_reliability="held-out")``, which multiplies
``alpha`` by it.

Like :func:`~sparse_query.embeddings.estimate_temperature` this only calls what it is handed:
``sklearn.base.clone``, ``fit`` and ``predict_proba`` (of every member, for a committee).
"""
from __future__ import annotations

import numpy as np

from .._utils import numpy_rng, preserved_global_rng
from ..adapters._refit import untrained

__all__ = ["heldout_reliability", "proba_reliability", "ReliabilityError"]

#: folds of the cross-validation (each labeled point is predicted once, by a clone that did
#: not see it)
N_FOLDS = 3


class ReliabilityError(ValueError):
    """The held-out accuracy could not be measured (the message says why and what to do)."""


def _take(X, idx):
    if hasattr(X, "iloc"):
        return X.iloc[idx]
    if isinstance(X, (list, tuple)):
        return [X[i] for i in idx]
    return X[idx]


def _fold_proba(members, X_tr, y_tr, X_te, classes, seed, column_labels):
    """Mean over ``members`` (unfitted clones) of their ``predict_proba`` on ``X_te``, fitted on
    ``(X_tr, y_tr)``, in the columns of ``classes`` (a class a clone never saw gets 0; a column
    whose label is not in ``classes`` is dropped)."""
    out = np.zeros((X_te.shape[0] if hasattr(X_te, "shape") else len(X_te), len(classes)))
    col = {c: i for i, c in enumerate(classes.tolist())}
    for m in members:
        # skorch / sklearn draw from the global RNGs in fit, and a torch DataLoader draws its
        # base seed from torch's in predict_proba: both run with the globals preserved
        with preserved_global_rng(seed):
            untrained(m)  # a torch module held as a parameter starts untrained
            m.fit(X_tr, y_tr)
            p = np.asarray(m.predict_proba(X_te), dtype=np.float64)
        seen = column_labels(m, p) if column_labels is not None else getattr(m, "classes_", None)
        seen = np.asarray(np.unique(y_tr) if seen is None else seen)
        if p.shape[1] != len(seen):
            raise ReliabilityError(
                f"a clone's predict_proba has {p.shape[1]} columns but it knows {len(seen)} "
                "classes; alpha_reliability='held-out' cannot map its predictions to labels.")
        for k, c in enumerate(seen.tolist()):
            if c in col:
                out[:, col[c]] += p[:, k]
    return out / len(members)


def heldout_reliability(members, X_labeled, y_labeled, *, n_classes: int | None = None,
                        random_state=None, column_labels=None) -> tuple[float, float]:
    """Cross-validated accuracy of clones of ``members`` on the labeled set, chance-corrected.

    Parameters
    ----------
    members : list of estimator
        The model's estimators: one for a single model, every member for a committee (whose
        prediction is the mean of the members' ``predict_proba``). Each is cloned with
        ``sklearn.base.clone`` per fold; the originals are not touched.
    X_labeled : array-like of shape (n_labeled, ...)
    y_labeled : array-like of shape (n_labeled,)
    n_classes : int or None, default=None
        ``K`` of the chance level ``1/K``; None: the number of distinct labels in
        ``y_labeled`` (the classes the model was trained on).
    random_state : None, int or numpy Generator, default=None
        Seeds the folds and the clones' fits (global generators restored afterwards).
    column_labels : callable ``(fitted_clone, proba) -> labels`` or None, default=None
        The label of each ``predict_proba`` column (supplied by the adapters: a net with more
        output units than the classes it saw has one column per unit); None: ``classes_``.

    Returns
    -------
    (kappa, accuracy) : (float, float)
        ``kappa = max(0, (accuracy - 1/K) / (1 - 1/K))`` in ``[0, 1]``, and the accuracy of
        the held-out predictions (each labeled point predicted once, ``3``-fold).

    Raises
    ------
    ReliabilityError
        Fewer than 6 labeled points, a single labeled class, or a clone that cannot be fitted
        or predicted.
    """
    from sklearn.base import clone
    from sklearn.model_selection import KFold

    y = np.asarray(y_labeled)
    n = int(y.shape[0])
    if n < 2 * N_FOLDS:
        raise ReliabilityError(
            f"alpha_reliability='held-out' needs at least {2 * N_FOLDS} labeled points for "
            f"{N_FOLDS}-fold cross-validation; got {n}. Pass alpha_reliability=None until "
            "more points are labeled.")
    classes = np.unique(y)
    if len(classes) < 2:
        raise ReliabilityError(
            "alpha_reliability='held-out' needs a labeled set with at least 2 classes; got "
            f"only {classes.tolist()!r}. Pass alpha_reliability=None until another class is "
            "labeled.")
    seed = int(numpy_rng(random_state).integers(0, 2**31 - 1))
    hits = 0
    for train, test in KFold(N_FOLDS, shuffle=True, random_state=seed).split(np.zeros((n, 1))):
        try:
            clones = [clone(m) for m in members]
        except Exception as exc:  # noqa: BLE001 - not a scikit-learn estimator (get_params)
            raise ReliabilityError(
                "alpha_reliability='held-out' needs a model that sklearn.base.clone can copy "
                f"and refit; cloning {type(members[0]).__name__} failed ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:160]}). Pass alpha_reliability=None.") from exc
        try:
            p = _fold_proba(clones, _take(X_labeled, train), y[train], _take(X_labeled, test),
                            classes, seed, column_labels)
        except ReliabilityError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of a user model: say so, stop
            raise ReliabilityError(
                "alpha_reliability='held-out' could not fit or predict a clone of the model "
                f"on a fold of the labeled set ({type(exc).__name__}: {exc}). Pass "
                "alpha_reliability=None.") from exc
        hits += int((classes[p.argmax(axis=1)] == y[test]).sum())
    return _chance_corrected(hits / n, len(classes) if n_classes is None else n_classes)


def _chance_corrected(acc, n_classes):
    chance = 1.0 / n_classes
    kappa = max(0.0, (acc - chance) / (1.0 - chance))
    return float(min(kappa, 1.0)), float(acc)


def proba_reliability(proba, covered, classes, y_labeled):
    """``(kappa, accuracy)`` of held-out probabilities already at hand (out-of-bag ones).

    ``proba`` (n_labeled, n_classes) in the columns of ``classes``; only the ``covered`` rows
    count. Chance is ``1 / K`` with ``K`` the distinct labels of ``y_labeled``, as in
    :func:`heldout_reliability`. Raises :class:`ReliabilityError` with fewer than 6 covered rows
    or a single labeled class.
    """
    y = np.asarray(y_labeled)[covered]
    k = len(np.unique(np.asarray(y_labeled)))
    if y.shape[0] < 2 * N_FOLDS or k < 2:
        raise ReliabilityError(
            f"out-of-bag predictions cover {y.shape[0]} labeled points of {k} class(es); "
            f"at least {2 * N_FOLDS} points of 2 classes are needed")
    pred = np.asarray(classes)[np.asarray(proba)[covered].argmax(axis=1)]
    return _chance_corrected(float((pred == y).mean()), k)
