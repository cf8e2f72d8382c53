"""Which embedding a fitted model gets: ``SparseApproxSampler(embedding="auto")`` per family.

One question, answered in one place from what the adapters can read off the model: tree
ensembles get their leaves as a last layer (``"leaf-gradient"``), committees whose members
all have last layers get ``"committee-gradient"``, models with a last linear layer get
``"gradient"``, models with posterior draws only get ``"posterior"``, and any other classifier
with ``predict_proba`` (an SVM, nearest neighbours, naive Bayes, histogram boosting, a
calibrated model, also as a pipeline's final step) gets ``"input-gradient"``. The choices rest
on the quality matrix (``BENCHMARKS.md``, "Quality matrix") and, for the input-gradient kind,
``benchmarks/results/proba_models.md``; a family that matrix says ``auto`` cannot serve well
(gradient boosting) is refused with the alternatives named. Every refusal names the model it
refuses (a pipeline's final step by name).
"""
from __future__ import annotations

from . import adapters
from .adapters._api import _why_not_draws
from .adapters._common import _final_name
from .adapters._proba_inputs import has_proba_inputs, proba_inputs
from .adapters._draws import committee_has_last_layers
from .adapters._trees import has_leaf_layer, is_boosting, leaf_last_layer

__all__ = ["choose_embedding", "leaf_logits", "proba_logits"]


def choose_embedding(est, embedding: str) -> str:
    """The embedding kind for the unwrapped estimator ``est``: ``embedding`` itself unless
    it is ``"auto"``. Raises :class:`~sparse_query.adapters.EmbeddingNotSupportedError`
    naming the models that work when no kind applies."""
    if embedding != "auto":
        return embedding
    if has_leaf_layer(est):  # tree ensembles: leaves are their last layer (issue 14)
        if is_boosting(est):
            raise adapters.EmbeddingNotSupportedError(
                "embedding='auto' does not serve GradientBoostingClassifier: in the quality "
                "matrix (BENCHMARKS.md, 'Quality matrix') its leaf-gradient embedding was "
                "5.2 AUC points behind modAL's uncertainty_batch_sampling on digits and no "
                "better than random sampling on MNIST-1D and the MNIST sample. Use "
                "modAL.batch.uncertainty_batch_sampling (best on digits, below random on "
                "the MNIST sample) or RandomSampling for this model, or pass "
                "embedding='leaf-gradient' to use the sparse approximation anyway."
            )
        return "leaf-gradient"
    if committee_has_last_layers(est):  # every member has a last layer or leaves
        return "committee-gradient"
    if adapters.has_last_layer(est):
        return "gradient"
    if adapters.has_posterior(est):
        return "posterior"
    if has_proba_inputs(est):  # any other classifier with predict_proba
        return "input-gradient"
    raise adapters.EmbeddingNotSupportedError(
        f"{_final_name(est)} has no predict_proba, no last linear layer (for "
        f"embedding='gradient') and no posterior draws (for embedding='posterior')"
        f"{_why_not_draws(est)}, so no embedding of its class probabilities exists. Fit it with "
        "probability=True (SVC / NuSVC) or wrap it in CalibratedClassifierCV (both then get "
        "embedding='input-gradient'), or use a LogisticRegression, MLPClassifier, a skorch "
        "net, a tree ensemble or a modAL Committee."
    )


def leaf_logits(estimator, X):
    """The leaf layer's logits of ``X`` as numpy (for temperature scaling on the leaves)."""
    return leaf_last_layer(estimator, X).logits.numpy()


def proba_logits(estimator, X):
    """``log(max(predict_proba, 1e-12))`` of ``X``, renormalised, as numpy: the logits of
    ``embedding="input-gradient"`` (for temperature scaling)."""
    return proba_inputs(estimator, X).logits.numpy()
