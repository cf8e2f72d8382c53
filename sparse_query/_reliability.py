"""How far the variance term trusts the model: ``SparseApproxSampler(alpha_reliability=...)``.

``alpha_reliability``
    ``"held-out"`` multiplies ``alpha`` by ``kappa = max(0, (acc - 1/K) / (1 - 1/K))``, the
    model's chance-corrected 3-fold cross-validated accuracy on the labeled set (``K``: the
    classes there; :func:`~sparse_query.embeddings.reliability.heldout_reliability`, clones of
    the model -- of every member, for a committee): the variance term trusts the label
    distribution only as far as the model predicts labels it has not seen. ``"held-out-squared"``
    multiplies by ``kappa^2``: under the belief that the model's label is right with probability
    ``kappa`` beyond chance (``Q_j = kappa P_j + (1 - kappa) / K``) the variance bonus of a tied
    point over an untied one shrinks about like ``kappa^2`` (0.06 of its ``kappa = 1`` value at
    0.2, 0.41 at 0.5, 0.78 at 0.7, with 10 classes). Three extra fits per query; needs the
    labeled set (a modAL learner's, or ``X_labeled`` / ``y_labeled``; at least 6 points).

Measured on the quality matrix in ``benchmarks/results/quality/variance_variants.md``
(beside the rejected ``variance_temperature`` variants, whose code is not kept).
"""
from __future__ import annotations

from . import adapters

ALPHA_RELIABILITIES = ("held-out", "held-out-squared")


def check_alpha_reliability(alpha_reliability) -> None:
    """Raise on a bad ``alpha_reliability`` (the message names the fix)."""
    if alpha_reliability is not None and (not isinstance(alpha_reliability, str)
                                          or alpha_reliability not in ALPHA_RELIABILITIES):
        raise ValueError(f"alpha_reliability={alpha_reliability!r} must be None (alpha as "
                         "given), 'held-out' (alpha times the model's chance-corrected "
                         "cross-validated accuracy kappa) or 'held-out-squared' (times kappa^2).")


def labeled_reliability(alpha_reliability, est, classifier, X_labeled, y_labeled,
                        random_state):
    """``(kappa, accuracy)`` of :func:`heldout_reliability` for the (unwrapped) model ``est``
    on the labeled set (given, or the modAL ``classifier``'s); ``(None, None)`` when
    ``alpha_reliability`` is None (nothing is fitted)."""
    if alpha_reliability is None:
        return None, None
    from .adapters._common import _is_committee
    from .adapters._ensembles import _column_labels
    from .embeddings.reliability import heldout_reliability

    if X_labeled is None or y_labeled is None:
        X_labeled, y_labeled = adapters.get_labeled_data(classifier)
    if X_labeled is None or y_labeled is None:
        raise ValueError(f"alpha_reliability={alpha_reliability!r} needs the labeled set: "
                         "use a modAL learner (its X_training / y_training) or pass X_labeled "
                         "and y_labeled to fit, or pass alpha_reliability=None.")
    members = ([adapters.unwrap_estimator(m) for m in est.learner_list]
               if _is_committee(est) else [est])
    # chance 1 / (the classes of the labeled set), the classes the model was trained on
    return heldout_reliability(members, X_labeled, y_labeled, random_state=random_state,
                               column_labels=_column_labels)


def reliability_factor(alpha_reliability, kappa) -> float:
    """The factor ``alpha`` is multiplied by: 1, ``kappa`` or ``kappa^2``."""
    if alpha_reliability is None or kappa is None:
        return 1.0
    return kappa ** 2 if alpha_reliability == "held-out-squared" else kappa
