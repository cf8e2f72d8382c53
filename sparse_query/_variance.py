"""How the variance term enters :class:`~sparse_query.SparseApproxSampler`: two opt-in knobs.

``variance_temperature=T_v``
    ``sigma_j`` is taken under ``Q_j = softmax(z_j / T_v)`` while ``e_j`` keeps
    ``P_j = softmax(z_j / T)``. ``None`` (the paper's eq. 14) takes it under ``P_j``; at the
    default ``T = 0.01`` that is zero except on points whose top two logits are within a few
    ``T`` (ties), so the variance term picks ties. ``T_v = 1`` is the spread of the last-layer
    gradient under the model's own probabilities, non-zero wherever the model is unsure
    (:func:`~sparse_query.embeddings.gradient_embedding`). Served by the gradient,
    leaf-gradient and committee-gradient embeddings (a committee: ``softmax(log P_j / T_v)``
    of its mean probabilities) and by a Dask pool; the posterior embedding has no temperature
    and refuses it. ``sigma``'s scale changes with it, so ``alpha`` needs its own value.

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

Both are measured on the quality matrix in ``benchmarks/results/quality/variance_variants.md``.
"""
from __future__ import annotations

from . import adapters
from ._utils import check_float

ALPHA_RELIABILITIES = ("held-out", "held-out-squared")


def check_variance_params(alpha_reliability, variance_temperature) -> None:
    """Raise on a bad ``alpha_reliability`` or ``variance_temperature`` (message names the fix)."""
    if alpha_reliability is not None and (not isinstance(alpha_reliability, str)
                                          or alpha_reliability not in ALPHA_RELIABILITIES):
        raise ValueError(f"alpha_reliability={alpha_reliability!r} must be None (alpha as "
                         "given), 'held-out' (alpha times the model's chance-corrected "
                         "cross-validated accuracy kappa) or 'held-out-squared' (times kappa^2).")
    if variance_temperature is not None:
        if isinstance(variance_temperature, str):
            raise ValueError(
                f"variance_temperature={variance_temperature!r} must be None (sigma under the "
                "label distribution of `temperature`) or a number >= 0 (1: the model's own "
                "probabilities); 'auto' is not supported for it.")
        check_float(variance_temperature, "variance_temperature", min_val=0.0)


def resolve_variance_temperature(kind: str, variance_temperature):
    """``variance_temperature`` as a float (or None) for embedding ``kind``; the posterior
    embedding (no temperature) refuses a number."""
    if variance_temperature is None:
        return None
    if kind == "posterior":
        raise ValueError(
            f"variance_temperature={variance_temperature!r} applies to the gradient, "
            "leaf-gradient and committee-gradient embeddings only; this model's embedding is "
            "'posterior' (no temperature). Pass variance_temperature=None, or "
            "embedding='gradient' for a model with a last linear layer.")
    return float(variance_temperature)


def labeled_reliability(est, classifier, X_labeled, y_labeled, random_state):
    """``(kappa, accuracy)`` of :func:`heldout_reliability` for the (unwrapped) model ``est``
    on the labeled set (given, or the modAL ``classifier``'s)."""
    from .adapters._common import _is_committee
    from .adapters._ensembles import _column_labels
    from .embeddings.reliability import heldout_reliability

    if X_labeled is None or y_labeled is None:
        X_labeled, y_labeled = adapters.get_labeled_data(classifier)
    if X_labeled is None or y_labeled is None:
        raise ValueError("alpha_reliability='held-out' needs the labeled set: use a modAL "
                         "learner (its X_training / y_training) or pass X_labeled and "
                         "y_labeled to fit, or pass alpha_reliability=None.")
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
