"""Deterministic classifiers for the experiments: :class:`LeNet5` and :class:`MLP` (optional
dropout, so MC dropout gives posterior draws). Both return logits and expose ``embed(x)`` and
``last_layer`` for the adapters."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .._utils import check_float, check_int

__all__ = ["LeNet5", "MLP"]


def _check_dropout(p) -> float:
    p = check_float(p, "dropout", min_val=0.0, max_val=1.0)
    if p == 1.0:
        raise ValueError(f"dropout={p} must be < 1 (1 drops every unit); use e.g. 0.25.")
    return p


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
