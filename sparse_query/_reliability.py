"""How far the variance term trusts the model: ``SparseApproxSampler(alpha_reliability=...)``.

``alpha_reliability``
    ``"auto"`` (the default) is :data:`AUTO_RULE` where the model holds held-out predictions of
    its own, and never refits it: ``"out-of-bag"`` (a bootstrap forest or bagging ensemble
    fitted on the labeled set: its out-of-bag accuracy) or ``"validation history"`` (a skorch
    net trained with a ``train_split``: the last epoch's ``valid_acc`` on 6 points or more).
    Any other model, or too small a labeled set, keeps ``alpha`` as given;
    ``reliability_source_`` then reads ``"fallback: <reason>"``.
    ``"held-out"`` multiplies ``alpha`` by ``kappa = max(0, (acc - 1/K) / (1 - 1/K))``, the
    model's chance-corrected 3-fold cross-validated accuracy on the labeled set (``K``: the
    classes there; :func:`~sparse_query.embeddings.reliability.heldout_reliability`, clones of
    the model -- of every member, for a committee): the variance term trusts the label
    distribution only as far as the model predicts labels it has not seen. ``"held-out-squared"``
    multiplies by ``kappa^2``: under the belief that the model's label is right with probability
    ``kappa`` beyond chance (``Q_j = kappa P_j + (1 - kappa) / K``) the variance bonus of a tied
    point over an untied one shrinks about like ``kappa^2`` (0.06 of its ``kappa = 1`` value at
    0.2, 0.41 at 0.5, 0.78 at 0.7, with 10 classes). The explicit rules cost three extra fits
    of untrained copies per query and need the labeled set (a modAL learner's, or
    ``X_labeled`` / ``y_labeled``; at least 6 points); they raise where ``"auto"`` falls back.

Measured on the quality matrix in ``benchmarks/results/quality/variance_variants.md``
(beside the rejected ``variance_temperature`` variants, whose code is not kept).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import adapters
from ._temperature_cache import (
    _RELIABILITIES,
    _cached_fit,
    _fit_key,
    _store_fit,
)

ALPHA_RELIABILITIES = ("auto", "held-out", "held-out-squared")

#: the rule ``alpha_reliability="auto"`` applies to a kappa the model already holds
#: (out-of-bag or validation predictions; benchmarks/results/quality_default.md)
AUTO_RULE = "held-out"

#: why ``alpha_reliability="auto"`` keeps ``alpha`` as given for a model without held-out
#: predictions of its own
NO_FREE_EVIDENCE = ("the model holds no held-out predictions (out-of-bag or a skorch "
                    "validation split) and 'auto' does not refit it; pass "
                    "alpha_reliability='held-out' to cross-validate copies of it")


def check_alpha_reliability(alpha_reliability) -> None:
    """Raise on a bad ``alpha_reliability`` (the message names the fix)."""
    if alpha_reliability is not None and (not isinstance(alpha_reliability, str)
                                          or alpha_reliability not in ALPHA_RELIABILITIES):
        raise ValueError(f"alpha_reliability={alpha_reliability!r} must be 'auto' (the "
                         f"default: {AUTO_RULE!r} when the labeled set allows it), None (alpha "
                         "as given), 'held-out' (alpha times the model's chance-corrected "
                         "cross-validated accuracy kappa) or 'held-out-squared' (times kappa^2).")


class Reliability(NamedTuple):
    """What :func:`labeled_reliability` measured (see there)."""
    rule: str | None
    kappa: float | None
    accuracy: float | None
    source: str | None
    n_labeled: int = 0


def labeled_reliability(alpha_reliability, est, classifier, X_labeled, y_labeled,
                        random_state) -> Reliability:
    """:class:`Reliability` of the (unwrapped) model ``est`` on the labeled set (given, or the
    modAL ``classifier``'s): ``rule`` is the resolved ``alpha_reliability`` (``"auto"`` ->
    :data:`AUTO_RULE`, or None when it fell back), ``kappa`` and ``accuracy`` those of
    :func:`~sparse_query.embeddings.reliability.heldout_reliability` (None without a rule),
    ``source`` ``"held-out"``, ``"fallback: <reason>"`` or None (nothing asked) and
    ``n_labeled`` the labeled points (0 when none were found). The explicit rules raise where
    ``"auto"`` falls back."""
    if alpha_reliability is None:
        return Reliability(None, None, None, None)
    from .adapters._common import _is_committee
    from .adapters._ensembles import _column_labels
    from .embeddings.reliability import ReliabilityError, heldout_reliability

    auto = alpha_reliability == "auto"
    rule = AUTO_RULE if auto else alpha_reliability
    if X_labeled is None or y_labeled is None:
        X_labeled, y_labeled = adapters.get_labeled_data(classifier)
    if X_labeled is None or y_labeled is None:
        if auto:
            return Reliability(None, None, None, "fallback: no labeled data was given")
        raise ValueError(f"alpha_reliability={alpha_reliability!r} needs the labeled set: "
                         "use a modAL learner (its X_training / y_training) or pass X_labeled "
                         "and y_labeled to fit, or pass alpha_reliability=None.")
    if auto and not _is_committee(est):  # the model's own held-out predictions
        from .adapters._trees import out_of_bag_proba
        from .embeddings.reliability import proba_reliability

        oob = out_of_bag_proba(est, X_labeled)
        if oob is not None:
            try:
                kappa, acc = proba_reliability(*oob, adapters.classes_of(est), y_labeled)
            except ReliabilityError as exc:
                return Reliability(None, None, None, f"fallback: {exc}", len(y_labeled))
            return Reliability(rule, kappa, acc, "out-of-bag", len(y_labeled))
        from .adapters._common import skorch_validation_accuracy
        from .embeddings.reliability import _chance_corrected

        valid = skorch_validation_accuracy(est)
        k = len(np.unique(np.asarray(y_labeled)))
        if valid is not None and valid[1] >= 6 and k >= 2:  # the net's own held-out split
            kappa, acc = _chance_corrected(valid[0], k)
            return Reliability(rule, kappa, acc, "validation history", len(y_labeled))
    if auto:  # no held-out predictions at hand: "auto" never refits the model
        return Reliability(None, None, None, "fallback: " + NO_FREE_EVIDENCE, len(y_labeled))
    members = ([adapters.unwrap_estimator(m) for m in est.learner_list]
               if _is_committee(est) else [est])
    # once per fitted model, labeled set and integer seed (like temperature="auto")
    key = _fit_key(est, X_labeled, y_labeled, None, random_state)
    hit = _cached_fit(est, key, cache=_RELIABILITIES)
    if hit is None:
        # chance 1 / (the classes of the labeled set), the classes the model was trained on;
        # random_state=None seeds the folds with 0: a deterministic model (and greedy) then
        # gives the same batch on every call
        hit = heldout_reliability(members, X_labeled, y_labeled,
                                  random_state=0 if random_state is None else random_state,
                                  column_labels=_column_labels)
        _store_fit(est, key, hit, cache=_RELIABILITIES)
    return Reliability(rule, *hit, "held-out", len(y_labeled))


#: A tree ensemble is *near chance* when its ``kappa`` is below :data:`TREE_NEAR_CHANCE_KAPPA`
#: measured on at least :data:`TREE_NEAR_CHANCE_MIN_LABELED` labels; ``embedding="auto"`` then
#: adds the trees' inputs to the leaves (``"leaf-input-gradient"``, weight
#: :data:`TREE_INPUT_WEIGHT`). The thresholds come from random labeled sets of forests, extra
#: trees and bagging, seeds 0-9 (``benchmarks/results/quality/kappa_trees.md``): at 60 and 90
#: labels MNIST-1D (where the leaf embedding is level with random sampling) gives 0.00-0.21,
#: below 0.2 in 56 of 60 states, and MNIST and digits (where it wins) 0.22 or more; at 30 labels
#: the 3-fold estimate is too noisy (MNIST 0.04-0.44, below 0.2 in 11 of 30 states). The
#: weight was chosen on the quality matrix (``benchmarks/results/quality/leaf_inputs.md``)
TREE_NEAR_CHANCE_KAPPA = 0.2
TREE_NEAR_CHANCE_MIN_LABELED = 60
TREE_INPUT_WEIGHT = 0.5


def tree_embedding(reliability) -> str:
    """``"leaf-input-gradient"`` for a tree ensemble near chance (``reliability``: what
    :func:`labeled_reliability` returned), ``"leaf-gradient"`` otherwise or unmeasured."""
    kappa, n = reliability.kappa, reliability.n_labeled
    near = (kappa is not None and kappa < TREE_NEAR_CHANCE_KAPPA
            and n >= TREE_NEAR_CHANCE_MIN_LABELED)
    return "leaf-input-gradient" if near else "leaf-gradient"


def reliability_factor(alpha_reliability, kappa) -> float:
    """The factor ``alpha`` is multiplied by: 1, ``kappa`` or ``kappa^2`` (``alpha_reliability``
    is the resolved rule: ``"held-out"``, ``"held-out-squared"`` or None)."""
    if alpha_reliability is None or kappa is None:
        return 1.0
    return kappa ** 2 if alpha_reliability == "held-out-squared" else kappa
