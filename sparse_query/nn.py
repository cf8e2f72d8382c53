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
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ._utils import check_float, check_int

__all__ = [
    "LeNet5",
    "MLP",
    "VariationalLinear",
    "BayesianLastLayerNet",
    "ELBOLoss",
    "kl_divergence",
    "VariationalNetClassifier",
]


def _check_dropout(p) -> float:
    p = check_float(p, "dropout", min_val=0.0, max_val=1.0)
    if p == 1.0:
        raise ValueError(f"dropout={p} must be < 1 (1 drops every unit); use e.g. 0.25.")
    return p


# --------------------------------------------------------------------------------------------
# deterministic networks
# --------------------------------------------------------------------------------------------
class LeNet5(nn.Module):
    """LeNet-5 for 28x28 images, returning logits.

    ``conv 6@5x5 (pad 2) -> ReLU -> maxpool 2 -> conv 16@5x5 -> ReLU -> maxpool 2 ->
    fc 400->120 -> ReLU -> fc 120->84 -> ReLU -> [dropout] -> fc3 84->n_classes``.
    (ReLU and max pooling, the usual modern reading of LeCun et al. 1998.)

    Parameters
    ----------
    n_classes : int, default=10
    in_channels : int, default=1
    dropout : float, default=0.0
        Dropout probability before ``fc1`` and ``fc3`` (enables MC dropout); 0 disables it.

    Attributes
    ----------
    fc3 : nn.Linear
        The last layer (also ``last_layer``); ``embed`` returns its input, shape (N, 84).

    Examples
    --------
    >>> import torch
    >>> net = LeNet5()
    >>> net(torch.zeros(2, 784)).shape, net.embed(torch.zeros(2, 1, 28, 28)).shape
    (torch.Size([2, 10]), torch.Size([2, 84]))
    """

    def __init__(self, n_classes: int = 10, in_channels: int = 1, dropout: float = 0.0):
        super().__init__()
        self.n_classes = check_int(n_classes, "n_classes", min_val=2)
        self.in_channels = check_int(in_channels, "in_channels", min_val=1)
        self.dropout = _check_dropout(dropout)
        self.conv1 = nn.Conv2d(self.in_channels, 6, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.drop = nn.Dropout(self.dropout)
        self.fc3 = nn.Linear(84, self.n_classes)

    @property
    def last_layer(self) -> nn.Linear:
        """The final ``nn.Linear`` (``fc3``)."""
        return self.fc3

    def _as_images(self, x: torch.Tensor) -> torch.Tensor:
        c = self.in_channels
        if x.dim() == 2 and x.shape[1] == c * 28 * 28:
            x = x.reshape(x.shape[0], c, 28, 28)
        elif x.dim() == 3 and c == 1 and tuple(x.shape[1:]) == (28, 28):
            x = x.unsqueeze(1)
        elif not (x.dim() == 4 and tuple(x.shape[1:]) == (c, 28, 28)):
            raise ValueError(f"LeNet5 expects input of shape (N, {c * 784}) or (N, {c}, 28, 28); "
                             f"got {tuple(x.shape)}.")
        return x.to(self.fc3.weight.dtype)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (the input of ``fc3``), shape (N, 84)."""
        x = self._as_images(x)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.drop(torch.flatten(x, 1))
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.drop(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape (N, n_classes)."""
        return self.fc3(self.embed(x))


class MLP(nn.Module):
    """ReLU multi-layer perceptron returning logits.

    ``[Linear -> ReLU -> Dropout] * len(hidden) -> output``; ``hidden=()`` is multinomial
    logistic regression (``embed`` is then the input itself).

    Parameters
    ----------
    n_features : int
    n_classes : int
    hidden : sequence of int, default=(128,)
    dropout : float, default=0.0
        Dropout after every hidden layer (MC dropout when kept active at query time).

    Attributes
    ----------
    output : nn.Linear
        The last layer (also ``last_layer``); ``embed`` returns its input.

    Examples
    --------
    >>> import torch
    >>> net = MLP(40, 10, hidden=(64, 32))
    >>> net(torch.zeros(3, 40)).shape, net.embed(torch.zeros(3, 40)).shape
    (torch.Size([3, 10]), torch.Size([3, 32]))
    """

    def __init__(self, n_features: int, n_classes: int, hidden: Sequence[int] = (128,),
                 dropout: float = 0.0):
        super().__init__()
        self.n_features = check_int(n_features, "n_features", min_val=1)
        self.n_classes = check_int(n_classes, "n_classes", min_val=2)
        if isinstance(hidden, int):
            hidden = (hidden,)
        self.hidden = tuple(check_int(h, f"hidden[{i}]", min_val=1) for i, h in enumerate(hidden))
        self.dropout = _check_dropout(dropout)
        layers, width = [], self.n_features
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(self.dropout)]
            width = h
        self.body = nn.Sequential(*layers)
        self.output = nn.Linear(width, self.n_classes)

    @property
    def last_layer(self) -> nn.Linear:
        """The final ``nn.Linear`` (``output``)."""
        return self.output

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (the input of ``output``), shape (N, hidden[-1])."""
        x = x.reshape(x.shape[0], -1).to(self.output.weight.dtype)
        if x.shape[1] != self.n_features:
            raise ValueError(f"MLP expects {self.n_features} input features; got "
                             f"{x.shape[1]} (input shape {tuple(x.shape)}).")
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape (N, n_classes)."""
        return self.output(self.embed(x))


# --------------------------------------------------------------------------------------------
# variational last layer
# --------------------------------------------------------------------------------------------
class VariationalLinear(nn.Module):
    """Linear layer with mean-field Gaussian weights and bias (Blundell et al. 2015).

    ``W ~ N(weight_mu, exp(weight_log_std)^2)`` and ``b ~ N(bias_mu, exp(bias_log_std)^2)``
    element-wise, prior ``N(0, prior_std^2)``. In training mode ``forward`` uses the local
    reparameterisation trick (Kingma et al. 2015): it samples the pre-activations,
    independently per row, from ``N(x mu_W^T + mu_b, x^2 var_W^T + var_b)``. In eval mode it
    uses the mean weights (deterministic). :meth:`sample_parameters` draws whole weight
    matrices, for posterior draws shared by every pool point.

    Parameters
    ----------
    in_features, out_features : int
    prior_std : float, default=1.0
        Standard deviation of the zero-mean Gaussian prior, > 0.
    init_log_std : float, default=-5.0
        Initial log standard deviation of every weight (small: starts near a point estimate).
    bias : bool, default=True

    Attributes
    ----------
    weight_mu, weight_log_std : nn.Parameter of shape (out_features, in_features)
    bias_mu, bias_log_std : nn.Parameter of shape (out_features,) or None
    is_variational : bool
        Class attribute ``True``: adapters detect the layer by duck typing.

    Examples
    --------
    >>> import torch
    >>> layer = VariationalLinear(4, 3)
    >>> W, b = layer.sample_parameters(10)
    >>> W.shape, b.shape, float(layer.kl_divergence().detach()) > 0
    (torch.Size([10, 3, 4]), torch.Size([10, 3]), True)
    """

    is_variational = True

    def __init__(self, in_features: int, out_features: int, prior_std: float = 1.0,
                 init_log_std: float = -5.0, bias: bool = True):
        super().__init__()
        self.in_features = check_int(in_features, "in_features", min_val=1)
        self.out_features = check_int(out_features, "out_features", min_val=1)
        self.prior_std = check_float(prior_std, "prior_std", min_val=0.0, min_inclusive=False)
        self.init_log_std = check_float(init_log_std, "init_log_std")
        self.weight_mu = nn.Parameter(torch.empty(self.out_features, self.in_features))
        self.weight_log_std = nn.Parameter(torch.empty(self.out_features, self.in_features))
        if bias:
            self.bias_mu = nn.Parameter(torch.empty(self.out_features))
            self.bias_log_std = nn.Parameter(torch.empty(self.out_features))
        else:
            self.register_parameter("bias_mu", None)
            self.register_parameter("bias_log_std", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Means as ``nn.Linear`` initialises weights; log std at ``init_log_std``."""
        nn.init.kaiming_uniform_(self.weight_mu, a=math.sqrt(5))
        nn.init.constant_(self.weight_log_std, self.init_log_std)
        if self.bias_mu is not None:
            bound = 1.0 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias_mu, -bound, bound)
            nn.init.constant_(self.bias_log_std, self.init_log_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_features) -> (N, out_features)``; stochastic in training mode only."""
        mean = F.linear(x, self.weight_mu, self.bias_mu)
        if not self.training:
            return mean
        var_b = None if self.bias_log_std is None else torch.exp(2.0 * self.bias_log_std)
        var = F.linear(x * x, torch.exp(2.0 * self.weight_log_std), var_b)
        return mean + torch.sqrt(var.clamp_min(1e-16)) * torch.randn_like(mean)

    def kl_divergence(self) -> torch.Tensor:
        """``KL(q || N(0, prior_std^2))`` summed over all weights and biases (closed form), >= 0."""
        kl = _gaussian_kl(self.weight_mu, self.weight_log_std, self.prior_std)
        if self.bias_mu is not None:
            kl = kl + _gaussian_kl(self.bias_mu, self.bias_log_std, self.prior_std)
        return kl

    @torch.no_grad()
    def sample_parameters(self, n_samples: int, generator: torch.Generator | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``n_samples`` full weight sets from the variational posterior.

        Parameters
        ----------
        n_samples : int
            Number of draws ``M >= 1``.
        generator : torch.Generator or None
            On the layer's device; ``None`` uses torch's default generator.

        Returns
        -------
        W : torch.Tensor of shape (n_samples, out_features, in_features)
        b : torch.Tensor of shape (n_samples, out_features)
            Zeros when the layer has no bias.
        """
        n_samples = check_int(n_samples, "n_samples", min_val=1)
        mu, std = self.weight_mu, torch.exp(self.weight_log_std)
        W = mu + std * torch.randn((n_samples, *mu.shape), generator=generator,
                                   device=mu.device, dtype=mu.dtype)
        if self.bias_mu is None:
            b = torch.zeros((n_samples, self.out_features), device=mu.device, dtype=mu.dtype)
        else:
            b = self.bias_mu + torch.exp(self.bias_log_std) * torch.randn(
                (n_samples, self.out_features), generator=generator, device=mu.device,
                dtype=mu.dtype)
        return W, b

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"prior_std={self.prior_std}, bias={self.bias_mu is not None}")


def _gaussian_kl(mu: torch.Tensor, log_std: torch.Tensor, prior_std: float) -> torch.Tensor:
    """Sum of ``KL(N(mu, s^2) || N(0, p^2)) = log(p/s) + (s^2 + mu^2) / (2 p^2) - 1/2``."""
    var_ratio = torch.exp(2.0 * log_std) / prior_std**2
    return 0.5 * (var_ratio + mu * mu / prior_std**2 - 1.0 - torch.log(var_ratio)).sum()


def kl_divergence(module: nn.Module) -> torch.Tensor:
    """Sum of ``kl_divergence()`` over every variational submodule of ``module`` (0 if none)."""
    total = None
    for m in module.modules():
        if getattr(m, "is_variational", False) and hasattr(m, "kl_divergence"):
            kl = m.kl_divergence()
            total = kl if total is None else total + kl
    if total is None:
        p = next(module.parameters(), None)
        return torch.zeros((), device=None if p is None else p.device)
    return total


class BayesianLastLayerNet(nn.Module):
    """The paper's Bayesian classifier: ``feature_extractor -> Linear + ReLU -> VariationalLinear``.

    Parameters
    ----------
    feature_extractor : nn.Module
        Maps inputs to ``(N, feature_dim)`` (e.g. a ResNet trunk, ``nn.Flatten()``, an MLP body).
    feature_dim : int
    n_classes : int
    hidden : int, default=128
    prior_std, init_log_std : float
        Passed to :class:`VariationalLinear`.

    Attributes
    ----------
    output : VariationalLinear
        The last layer (also ``last_layer``); ``embed`` returns its input, shape (N, hidden).

    Examples
    --------
    >>> import torch
    >>> net = BayesianLastLayerNet(torch.nn.Flatten(), 784, 10, hidden=32)
    >>> net.eval()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, feature_extractor: nn.Module, feature_dim: int, n_classes: int,
                 hidden: int = 128, prior_std: float = 1.0, init_log_std: float = -5.0):
        super().__init__()
        if not isinstance(feature_extractor, nn.Module):
            raise TypeError(f"feature_extractor must be a torch.nn.Module; got "
                            f"{type(feature_extractor).__name__}.")
        self.feature_dim = check_int(feature_dim, "feature_dim", min_val=1)
        self.n_classes = check_int(n_classes, "n_classes", min_val=2)
        self.hidden_dim = check_int(hidden, "hidden", min_val=1)
        self.feature_extractor = feature_extractor
        self.hidden = nn.Sequential(nn.Linear(self.feature_dim, self.hidden_dim), nn.ReLU())
        self.output = VariationalLinear(self.hidden_dim, self.n_classes, prior_std=prior_std,
                                        init_log_std=init_log_std)

    @property
    def last_layer(self) -> VariationalLinear:
        """The variational output layer."""
        return self.output

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The input of the variational layer, shape (N, hidden)."""
        x = x.to(self.output.weight_mu.dtype)
        f = self.feature_extractor(x)
        f = f.reshape(f.shape[0], -1)
        if f.shape[1] != self.feature_dim:
            raise ValueError(f"feature_extractor returned {f.shape[1]} features per sample but "
                             f"feature_dim={self.feature_dim}.")
        return self.hidden(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape (N, n_classes); stochastic in training mode."""
        return self.output(self.embed(x))


class ELBOLoss(nn.CrossEntropyLoss):
    """Negative ELBO per example: ``cross_entropy(logits, y) + kl_weight * KL / n_train``.

    A ``CrossEntropyLoss`` subclass, so skorch applies the softmax in ``predict_proba``. Called
    as ``loss(logits, y)`` it is the plain cross-entropy; the KL term is added when ``kl`` is
    passed, which :class:`VariationalNetClassifier` does in training (with ``kl`` the summed KL
    of every :class:`VariationalLinear` of the module and ``n_train`` the size of its training
    split unless given here).

    Parameters
    ----------
    n_train : int or None, default=None
        Size of the training set the KL is spread over; ``None``: supplied per call.
    kl_weight : float, default=1.0
        Multiplier of the KL term (``>= 0``; < 1 "tempers" the posterior).
    **kwargs
        Passed to ``torch.nn.CrossEntropyLoss`` (``reduction`` must stay ``"mean"``).

    Examples
    --------
    >>> import torch
    >>> layer = VariationalLinear(4, 3)
    >>> loss = ELBOLoss(n_train=100)
    >>> x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    >>> value = loss(layer(x), y, kl=layer.kl_divergence())
    >>> value.shape
    torch.Size([])
    """

    def __init__(self, n_train: int | None = None, kl_weight: float = 1.0, **kwargs):
        if kwargs.get("reduction", "mean") != "mean":
            raise ValueError(f"reduction={kwargs['reduction']!r} is not supported by ELBOLoss; "
                             "the KL is scaled per example, so use reduction='mean'.")
        super().__init__(**kwargs)
        self.n_train = None if n_train is None else check_int(n_train, "n_train", min_val=1)
        self.kl_weight = check_float(kl_weight, "kl_weight", min_val=0.0)

    def forward(self, input: torch.Tensor, target: torch.Tensor, kl: torch.Tensor | None = None,
                n_train: int | None = None) -> torch.Tensor:
        nll = super().forward(input, target)
        if kl is None or self.kl_weight == 0.0:
            return nll
        n = self.n_train if self.n_train is not None else n_train
        if n is None:
            raise ValueError("ELBOLoss needs n_train to scale the KL: set ELBOLoss(n_train=...) "
                             "(criterion__n_train in skorch) or pass n_train to the call.")
        return nll + self.kl_weight * kl / n


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
                          "(or sparse_query[skorch]).") from exc

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
