"""Ensembles and modAL committees: members as posterior draws, aligned on the classes."""
from __future__ import annotations

import numpy as np

from ._common import _is_committee, _name, classes_of


def _index_space(est) -> bool:
    """True for ensembles that fit members on label indices ``0..K-1`` (not on the labels)."""
    from sklearn.ensemble import (
        BaggingClassifier, ExtraTreesClassifier, RandomForestClassifier, VotingClassifier,
    )

    return isinstance(est, (RandomForestClassifier, ExtraTreesClassifier, BaggingClassifier,
                            VotingClassifier))


def _ensemble_members(est):
    members = getattr(est, "estimators_", None)
    if members is None or _is_committee(est):
        return None
    if isinstance(members, np.ndarray):
        members = list(members.ravel())
    if not isinstance(members, (list, tuple)) or len(members) == 0:
        return None
    if not all(hasattr(m, "predict_proba") for m in members):
        return None
    if _not_draws_reason(est) is not None:
        return None
    return list(members)


def _align(proba, member_classes, classes, index_space, who):
    """Put a member's columns into the parent's class order; unseen classes get probability 0."""
    proba = np.asarray(proba, dtype=np.float64)
    K = len(classes)
    if member_classes is None:
        if proba.shape[1] != K:
            raise ValueError(f"{who} gives {proba.shape[1]} columns but has no classes_ to align "
                             f"them with the {K} classes.")
        return proba
    member_classes = np.asarray(member_classes)
    if proba.shape[1] != len(member_classes):
        raise ValueError(f"{who}: predict_proba has {proba.shape[1]} columns but classes_ has "
                         f"{len(member_classes)} entries.")
    if not index_space:
        pos = {c: i for i, c in enumerate(classes.tolist())}
        if all(c in pos for c in member_classes.tolist()):
            cols = np.array([pos[c] for c in member_classes.tolist()], dtype=np.int64)
        else:
            index_space = True
    if index_space:
        idx = np.asarray(member_classes)
        ok = np.issubdtype(idx.dtype, np.number) and np.all(idx == np.round(idx)) and (
            idx.size == 0 or (idx.min() >= 0 and idx.max() < K))
        if not ok:
            raise ValueError(f"{who} has classes {member_classes!r} that are neither among the "
                             f"ensemble's classes {classes!r} nor indices into them.")
        cols = idx.astype(np.int64)
    if len(cols) == K and np.array_equal(cols, np.arange(K)):
        return proba
    full = np.zeros((proba.shape[0], K))
    full[:, cols] = proba
    return full


def _column_labels(member, proba):
    """The labels of a member's ``predict_proba`` columns.

    Usually its ``classes_``. A net (skorch) with more output units than the classes it saw
    (a member trained on a subset of the classes) gives one column per output unit; its labels
    are then the unit indices ``0..W-1``, which its ``classes_`` must be a subset of.
    """
    mc = classes_of(member)
    width = np.asarray(proba).shape[1]
    if mc is None or len(mc) >= width:
        return mc
    mc = np.asarray(mc)
    if (np.issubdtype(mc.dtype, np.number) and np.all(mc == np.round(mc))
            and mc.min() >= 0 and mc.max() < width):
        return np.arange(width)
    return mc


def _not_draws_reason(est):
    """Why the members of ``est`` are not posterior draws (a sentence), or None when they are.

    Posterior draws are members whose plain average is the ensemble's ``predict_proba`` and
    which are exchangeable samples of one model: forests, bagging and unweighted soft voting.
    Everything else with ``estimators_`` is refused by name rather than averaged.
    """
    from sklearn.ensemble import BaggingClassifier, VotingClassifier
    from sklearn.ensemble._forest import BaseForest

    if isinstance(est, (BaseForest, BaggingClassifier)):
        return None
    if isinstance(est, VotingClassifier):
        if est.voting != "soft":
            return (f"VotingClassifier(voting={est.voting!r}) has no predict_proba to match; "
                    "use voting='soft'")
        w = est.weights
        if w is not None and len(set(np.asarray(w, dtype=float).tolist())) > 1:
            return ("a weighted VotingClassifier averages its members with weights "
                    f"{list(w)!r}, not as equally likely posterior draws")
        return None
    name = _name(est)
    if name in ("OneVsRestClassifier", "OneVsOneClassifier", "OutputCodeClassifier"):
        return (f"the members of {name} are binary sub-problems (one per class or pair), not "
                "posterior draws over the classes; use the base classifier directly (e.g. "
                "LogisticRegression is multinomial and has a last layer)")
    if "Boost" in name or name.startswith("GradientBoosting") or name.startswith("HistGradient"):
        return (f"the members of {name} are boosting stages that correct each other, not "
                "posterior draws; its predict_proba is not their average")
    if name.startswith("Stacking"):
        return (f"the members of {name} are base models feeding a final estimator, not "
                "posterior draws; its predict_proba is not their average")
    return (f"the members of {name} are not known to be posterior draws (only forests, bagging "
            "and unweighted soft voting are)")
