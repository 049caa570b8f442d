"""The course's first networks: logistic regression, a shallow net, a deep L-layer net, a softmax classifier."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn

from export.models.init import init_weights

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.01)}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, but got {name!r}")
    return ACTIVATIONS[name]()


class LogisticRegression(nn.Module):
    """z = w^T x + b, a = sigmoid(z). Input (B, n_x); output (B, 1) probabilities of the positive class."""

    def __init__(self, n_x: int = 64) -> None:
        super().__init__()
        self.linear = nn.Linear(n_x, 1)
        nn.init.zeros_(self.linear.weight)  # the course starts logistic regression from zeros
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear(x))


class DeepNet(nn.Module):
    """An L-layer network: Z[l] = W[l] A[l-1] + b[l], A[l] = g(Z[l]); the last layer gives class logits.

    Input (B, n_x). layer_sizes: hidden sizes n[1..L-1]. Output (B, num_classes) logits (softmax in the loss).
    He init for ReLU-like activations, Xavier for sigmoid/tanh, as the course advises; optional inverted dropout.
    """

    def __init__(self, n_x: int = 64, layer_sizes: Sequence[int] = (64, 32), num_classes: int = 10,
                 activation_name: str = "relu", dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        sizes = [n_x, *layer_sizes]
        for n_in, n_out in pairwise(sizes):
            layers += [nn.Linear(n_in, n_out), activation(activation_name)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-1], num_classes))
        self.layers = nn.Sequential(*layers)
        init_weights(self, "xavier" if activation_name in ("sigmoid", "tanh") else "he")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def shallow_net(n_x: int = 64, hidden: int = 32, num_classes: int = 10, activation_name: str = "tanh") -> DeepNet:
    """One hidden layer (the course's shallow network): (B, n_x) -> (B, num_classes) logits."""
    return DeepNet(n_x, (hidden,), num_classes, activation_name)


def softmax_classifier(n_x: int = 64, num_classes: int = 10) -> DeepNet:
    """Softmax regression: one linear layer to C logits, A = exp(Z) / sum(exp(Z)) in the loss / at inference."""
    return DeepNet(n_x, (), num_classes)
