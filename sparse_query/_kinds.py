"""Which embedding a fitted model gets: ``SparseApproxSampler(embedding="auto")`` per family.

One question, answered in one place from what the adapters can read off the model: tree
ensembles get their leaves as a last layer (``"leaf-gradient"``), committees whose members
all have last layers get ``"committee-gradient"``, models with a last linear layer get
``"gradient"``, models with posterior draws only get ``"posterior"``. The choices rest on the
quality matrix (``BENCHMARKS.md``, "Quality matrix"); a family that matrix says ``auto``
cannot serve well (gradient boosting) is refused with the alternatives named.
"""
from __future__ import annotations

from . import adapters
from .adapters._api import _why_not_draws
from .adapters._draws import committee_has_last_layers
from .adapters._trees import has_leaf_layer, is_boosting, leaf_last_layer

__all__ = ["choose_embedding", "leaf_logits"]


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
    raise adapters.EmbeddingNotSupportedError(
        f"{type(est).__name__} offers neither a last linear layer (for embedding='gradient') "
        f"nor posterior draws (for embedding='posterior'){_why_not_draws(est)}"
        f"{_why_no_leaves(est)}. Use a "
        "LogisticRegression, "
        "SGDClassifier(loss='log_loss'), MLPClassifier, a skorch net or torch module ending "
        "in nn.Linear, a tree ensemble (RandomForestClassifier, ExtraTreesClassifier, "
        "GradientBoostingClassifier), a BaggingClassifier or soft VotingClassifier, a modAL "
        "Committee, or a net with dropout / a variational last layer (sparse_query.nn)."
    )


def _why_no_leaves(est) -> str:
    if type(est).__name__.startswith("HistGradientBoosting"):
        return (" (a HistGradientBoosting model has no public apply(), so its leaves cannot "
                "serve as a last layer; use GradientBoostingClassifier or a forest)")
    return ""


def leaf_logits(estimator, X):
    """The leaf layer's logits of ``X`` as numpy (for temperature scaling on the leaves)."""
    return leaf_last_layer(estimator, X).logits.numpy()
