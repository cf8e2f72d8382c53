"""Models of the benchmark: each round trains a fresh one from scratch.

=============  ===========================================================  =========
name           what                                                         Bayesian
=============  ===========================================================  =========
logreg         StandardScaler + LogisticRegression (lbfgs, C=1)             no
mlp            scikit-learn MLPClassifier, one hidden layer of 128 (Adam)   no
lenet          LeNet-5 through skorch, the paper's MNIST setting: SGD lr    no
               0.01, momentum 0.9, weight decay 5e-4, batch 32
lenet-dropout  the same LeNet-5 with dropout 0.25 (MC dropout)              yes
lenet-adam     the same LeNet-5 with Adam lr 1e-3, weight decay 5e-4,      no
               batch 32, max(20 epochs, 200 steps): the CPU-budget variant
lenet-adam-    lenet-adam with dropout 0.25 (MC dropout)                    yes
dropout
torch-mlp      sparse_query.nn.MLP (128 hidden) through skorch, Adam 1e-3   no
mlp-dropout    the same with dropout 0.25 (MC dropout)                      yes
=============  ===========================================================  =========

With their default epochs, torch models train for
``max(epochs, ceil(min_steps / batches_per_epoch))`` epochs, so tiny labeled sets still get
enough gradient steps; an explicit ``epochs`` is used as given. Training is seeded without
touching the global generators: module initialisation and shuffling run inside ``torch.random.fork_rng``, which puts
torch's global state back afterwards.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["MODELS", "ModelSpec", "make_model", "fit_model"]


@dataclass(frozen=True)
class ModelSpec:
    """Description of a benchmark model (see the module table)."""

    name: str
    kind: str  # "sklearn" or "skorch"
    bayesian: bool
    default_epochs: int
    min_steps: int = 0
    datasets: tuple = ("digits", "mnist", "mnist1d")


MODELS = {
    "logreg": ModelSpec("logreg", "sklearn", False, 0),
    "mlp": ModelSpec("mlp", "sklearn", False, 300),
    "lenet": ModelSpec("lenet", "skorch", False, 30, min_steps=400, datasets=("mnist",)),
    "lenet-dropout": ModelSpec("lenet-dropout", "skorch", True, 30, min_steps=400,
                               datasets=("mnist",)),
    "lenet-adam": ModelSpec("lenet-adam", "skorch", False, 20, min_steps=200, datasets=("mnist",)),
    "lenet-adam-dropout": ModelSpec("lenet-adam-dropout", "skorch", True, 20, min_steps=200,
                                    datasets=("mnist",)),
    "torch-mlp": ModelSpec("torch-mlp", "skorch", False, 50, min_steps=300),
    "mlp-dropout": ModelSpec("mlp-dropout", "skorch", True, 50, min_steps=300),
}


def _check_model(name, dataset):
    if name not in MODELS:
        raise ValueError(f"model={name!r} is not one of {sorted(MODELS)}.")
    spec = MODELS[name]
    if dataset is not None and dataset not in spec.datasets:
        raise ValueError(f"model={name!r} does not fit dataset={dataset!r}; it works on "
                         f"{list(spec.datasets)}.")
    return spec


def make_model(name: str, n_features: int, n_classes: int, n_train: int, *, epochs=None,
               seed: int = 0, device: str = "cpu", dataset: str | None = None):
    """A fresh, unfitted estimator.

    Parameters
    ----------
    name : str
        One of :data:`MODELS`.
    n_features, n_classes : int
    n_train : int
        Size of the labeled set it will be trained on (sets the epoch count of torch models).
    epochs : int, optional
        Epochs (torch, used as given) or ``max_iter`` (``mlp``); defaults to the model's
        (torch: at least ``min_steps`` gradient steps).
    seed : int
        ``random_state`` of scikit-learn models (torch models are seeded in :func:`fit_model`).
    device : str
        skorch's device.
    dataset : str, optional
        Checked against the datasets the model fits.
    """
    spec = _check_model(name, dataset)
    explicit = epochs is not None
    epochs = spec.default_epochs if epochs is None else int(epochs)
    if name == "logreg":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    if name == "mlp":
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(hidden_layer_sizes=(128,), max_iter=max(epochs, 1),
                             random_state=seed)
    import torch
    from skorch import NeuralNetClassifier

    from sparse_query.nn import MLP, LeNet5

    if explicit:
        n_epochs = max(epochs, 1)
    else:
        batches = max(1, math.ceil(n_train / 32))
        n_epochs = max(epochs, math.ceil(spec.min_steps / batches), 1)
    dropout = 0.25 if spec.bayesian else 0.0
    common = dict(max_epochs=n_epochs, batch_size=32, train_split=None, verbose=0,
                  device=device, criterion=torch.nn.CrossEntropyLoss)
    if name.startswith("lenet-adam"):
        return NeuralNetClassifier(
            LeNet5, module__n_classes=n_classes, module__dropout=dropout,
            optimizer=torch.optim.Adam, lr=1e-3, optimizer__weight_decay=5e-4, **common,
        )
    if name.startswith("lenet"):
        return NeuralNetClassifier(
            LeNet5, module__n_classes=n_classes, module__dropout=dropout,
            optimizer=torch.optim.SGD, lr=0.01, optimizer__momentum=0.9,
            optimizer__weight_decay=5e-4, **common,
        )
    return NeuralNetClassifier(
        MLP, module__n_features=n_features, module__n_classes=n_classes,
        module__hidden=(128,), module__dropout=dropout, optimizer=torch.optim.Adam, lr=1e-3,
        **common,
    )


def fit_model(model, X, y, seed: int):
    """Fit ``model`` on ``(X, y)``; torch models are seeded without touching global state.

    skorch nets (and ``sparse_query.nn``'s skorch subclass) get float32 inputs and int64 labels.
    """
    if type(model).__module__.startswith(("skorch", "sparse_query")):
        import torch

        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            model.fit(np.asarray(X, dtype=np.float32), np.asarray(y, dtype=np.int64))
        return model
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return model
