"""The variational last layer: :class:`VariationalLinear` (a mean-field Gaussian linear layer),
:func:`kl_divergence`, :class:`BayesianLastLayerNet` (a feature extractor under a variational
head) and :class:`ELBOLoss` (cross-entropy plus the scaled KL term)."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .._utils import check_float, check_int

__all__ = ["VariationalLinear", "kl_divergence", "BayesianLastLayerNet", "ELBOLoss"]


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
