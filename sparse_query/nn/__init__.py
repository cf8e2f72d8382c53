"""Small torch modules for the experiments: LeNet-5, an MLP, a variational last layer.

Every classifier here returns logits (no softmax) and has

* ``embed(x)`` -- the input of its last layer (penultimate features), and
* ``last_layer`` -- that last layer (``nn.Linear`` or :class:`VariationalLinear`),

so the adapters find features and last-layer weights by duck typing. Train them with
skorch's ``NeuralNetClassifier(..., criterion=torch.nn.CrossEntropyLoss)`` so that
``predict_proba`` applies the softmax; the variational model trains with
:class:`VariationalNetClassifier` and :class:`ELBOLoss` (a ``CrossEntropyLoss`` subclass, so the
same holds). Only torch is needed to import this module; skorch is imported the first time
``VariationalNetClassifier`` is accessed.

Where each lives: :mod:`~sparse_query.nn.nets` (:class:`LeNet5`, :class:`MLP`) and
:mod:`~sparse_query.nn.variational` (:class:`VariationalLinear`, :func:`kl_divergence`,
:class:`BayesianLastLayerNet`, :class:`ELBOLoss`). The skorch class is built here, in the
package itself, so that it is created lazily (a module ``__getattr__``) and pickles by its
name ``sparse_query.nn.VariationalNetClassifier``.
"""
from __future__ import annotations

import torch

from .nets import MLP, LeNet5
from .variational import BayesianLastLayerNet, ELBOLoss, VariationalLinear, kl_divergence

__all__ = [
    "LeNet5",
    "MLP",
    "VariationalLinear",
    "BayesianLastLayerNet",
    "ELBOLoss",
    "kl_divergence",
    "VariationalNetClassifier",
]


# --------------------------------------------------------------------------------------------
# skorch integration (skorch is imported lazily, on first access of VariationalNetClassifier)
# --------------------------------------------------------------------------------------------
_VARIATIONAL_NET_CLASSIFIER = None


def _make_variational_net_classifier():
    try:
        from skorch import NeuralNetClassifier
        from skorch.dataset import get_len
    except ImportError as exc:  # pragma: no cover - exercised only without skorch
        raise ImportError("VariationalNetClassifier needs skorch: pip install skorch "
                          "(or pip install '.[skorch]' in a clone of sparse_query).") from exc

    class VariationalNetClassifier(NeuralNetClassifier):
        """skorch ``NeuralNetClassifier`` that trains variational layers by the ELBO.

        Identical to ``NeuralNetClassifier`` except that the default criterion is
        :class:`ELBOLoss` and, in training, ``get_loss`` adds ``kl_weight * KL / n_train``:
        ``KL`` is the summed :meth:`VariationalLinear.kl_divergence` of the module and
        ``n_train`` the size of the training split of the current ``fit`` (unless
        ``criterion__n_train`` fixes it). Validation loss is the plain cross-entropy.
        ``predict_proba`` returns softmax probabilities.

        Examples
        --------
        >>> import numpy as np, torch
        >>> from sparse_query.nn import MLP, BayesianLastLayerNet, VariationalNetClassifier
        >>> X = np.random.default_rng(0).normal(size=(40, 5)).astype(np.float32)
        >>> y = (X[:, 0] > 0).astype(np.int64)
        >>> net = VariationalNetClassifier(BayesianLastLayerNet, module__feature_extractor=
        ...     torch.nn.Identity(), module__feature_dim=5, module__n_classes=2,
        ...     module__hidden=8, max_epochs=2, train_split=None, verbose=0).fit(X, y)
        >>> net.predict_proba(X).shape
        (40, 2)
        """

        def __init__(self, module, *args, criterion=ELBOLoss, **kwargs):
            super().__init__(module, *args, criterion=criterion, **kwargs)

        def get_split_datasets(self, X, y=None, **fit_params):
            dataset_train, dataset_valid = super().get_split_datasets(X, y, **fit_params)
            self.n_train_ = get_len(dataset_train)
            return dataset_train, dataset_valid

        def get_loss(self, y_pred, y_true, X=None, training=False):
            if not training or not isinstance(self.criterion_, ELBOLoss):
                return super().get_loss(y_pred, y_true, X=X, training=training)
            y_true = torch.as_tensor(y_true, device=y_pred.device)
            kl = kl_divergence(self.module_)
            return self.criterion_(y_pred, y_true, kl=kl,
                                   n_train=getattr(self, "n_train_", None) or len(y_true))

    VariationalNetClassifier.__module__ = __name__
    VariationalNetClassifier.__qualname__ = "VariationalNetClassifier"   # picklable by name
    return VariationalNetClassifier


def __getattr__(name: str):
    global _VARIATIONAL_NET_CLASSIFIER
    if name == "VariationalNetClassifier":
        if _VARIATIONAL_NET_CLASSIFIER is None:
            _VARIATIONAL_NET_CLASSIFIER = _make_variational_net_classifier()
        return _VARIATIONAL_NET_CLASSIFIER
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
