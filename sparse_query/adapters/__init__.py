"""Features, logits, probabilities and posterior draws from fitted estimators.

This module is the only place that knows what a skorch net, a scikit-learn pipeline, an
ensemble or a modAL learner looks like. Everything above it (embeddings, strategies) sees
numpy arrays and torch tensors.

What is found where (duck typing; skorch, modAL and tqdm are imported lazily, if at all):

- ``torch.nn.Module`` / skorch net: last layer = input and output of the last executed
  ``nn.Linear`` (or ``module.last_layer``), checked on every chunk to be the class head (its
  softmax is the net's ``predict_proba``; otherwise ``EmbeddingNotSupportedError`` says how to
  declare the head); posterior draws = MC dropout with fixed masks, or a variational layer's
  weight samples.
- ``LogisticRegression``, ``SGDClassifier`` and other linear classifiers: last layer = ``X`` and
  ``coef_`` / ``intercept_``.
- ``MLPClassifier``: last layer = the last hidden activations and the output layer.
- ``Pipeline``: the final step's, on ``X`` transformed by the other steps.
- forests, bagging, unweighted soft voting, a modAL ``Committee``: posterior draws = the
  members. One-vs-rest / one-vs-one, boosting, stacking and weighted voting are refused as
  posterior draws.
- ``GridSearchCV`` / ``RandomizedSearchCV``: their ``best_estimator_``. Regressors: refused.
- forests, extra trees, bagging of trees, gradient boosting: also a last layer = the one-hot
  leaf indicators (``_trees``: sparse CSR, logits whose softmax is ``predict_proba``).
- MC dropout whose only dropout feeds the last ``nn.Linear``: draws on cached features
  (``_dropout``); committee members' last layers for the committee gradient embedding (``_draws``).
- any scikit-learn classifier with ``predict_proba`` (``SVC(probability=True)``, nearest
  neighbours, naive Bayes, histogram boosting, a calibrated model), also as a pipeline's final
  step: its own probabilities and the inputs it reads (``proba_inputs``), for
  ``embedding="input-gradient"``.
- modAL ``ActiveLearner``: whatever its ``.estimator`` offers.

Every function that touches the pool works in chunks of ``batch_size`` rows, and every change
to a torch module (eval mode, hooks, device) is undone in ``finally``.

Layout: ``_common`` (errors, wrappers, labeled data, fitted checks, classes), ``_rows``
(chunking, conversion, progress bars),
``_torch`` (torch modules and skorch nets: last layer, head check), ``_torch_draws`` (their
MC-dropout and variational draws), ``_sklearn`` (linear models, ``MLPClassifier``),
``_ensembles`` (forests, bagging, voting, committees: members and class alignment), ``_trees``
(leaf indicators), ``_dropout`` (cached MC-dropout draws), ``_draws`` (committee last layers),
``_proba_inputs`` (a classifier's probabilities and the inputs its final step reads) and
``_api`` (the other public functions). No submodule imports one that imports it back.
Import the public names from ``sparse_query.adapters``; the submodules are private.
"""
from ._api import (
    has_last_layer, has_posterior, last_layer_outputs, logits_fn, posterior_probas, predict_proba,
)
from ._proba_inputs import ProbaInputs, has_proba_inputs, proba_inputs
from ._common import (
    EmbeddingNotSupportedError, LastLayer, check_fitted, classes_of, get_labeled_data,
    unwrap_estimator,
)
from ._trees import LeafLayer, has_leaf_layer, leaf_last_layer

__all__ = [
    "EmbeddingNotSupportedError",
    "LastLayer",
    "unwrap_estimator",
    "get_labeled_data",
    "check_fitted",
    "classes_of",
    "predict_proba",
    "has_last_layer",
    "last_layer_outputs",
    "has_posterior",
    "posterior_probas",
    "logits_fn",
    "ProbaInputs",
    "has_proba_inputs",
    "proba_inputs",
    "LeafLayer",
    "has_leaf_layer",
    "leaf_last_layer",
]
