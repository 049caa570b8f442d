"""The course's first networks: logistic regression, a shallow net, a deep L-layer net, a softmax classifier."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn

from edgepipe.export.models._check import ACTIVATIONS, check_choice, check_dropout, check_positive, make_activation
from edgepipe.export.models.init import init_weights


class LogisticRegression(nn.Module):
    """z = w^T x + b, a = sigmoid(z). Input (B, n_x) (64: 8x8 digits); output (B, 1) probabilities of class 1.

    The course starts logistic regression from w = 0, b = 0 (no symmetry to break with a single unit).
    """

    def __init__(self, n_x: int = 64) -> None:
        super().__init__()
        check_positive("n_x", n_x)
        self.linear = nn.Linear(n_x, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear(x))


class DeepNet(nn.Module):
    """An L-layer network: Z[l] = W[l] A[l-1] + b[l], A[l] = g(Z[l]); the last layer gives class logits.

    Input (B, n_x) (64: 8x8 digits). layer_sizes: hidden sizes n[1..L-1] (empty: softmax regression).
    Output (B, num_classes) logits Z[L]; the softmax A = exp(Z) / sum(exp(Z)) is in the loss or at inference.
    activation_name: sigmoid, tanh, relu or leaky_relu (slope 0.01). He init for relu-like activations, Xavier
    for sigmoid/tanh, as the course advises; dropout > 0 adds inverted dropout (p = 1 - keep_prob) after each g.
    """

    def __init__(self, n_x: int = 64, layer_sizes: Sequence[int] = (64, 32), num_classes: int = 10,
                 activation_name: str = "relu", dropout: float = 0.0) -> None:
        super().__init__()
        check_positive("n_x", n_x)
        for i, n in enumerate(layer_sizes):
            check_positive(f"layer_sizes[{i}]", n)
        check_positive("num_classes", num_classes)
        check_choice("activation_name", activation_name, tuple(ACTIVATIONS))
        check_dropout(dropout)
        layers: list[nn.Module] = []
        sizes = [n_x, *layer_sizes]
        for n_in, n_out in pairwise(sizes):
            layers += [nn.Linear(n_in, n_out), make_activation(activation_name)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-1], num_classes))
        self.layers = nn.Sequential(*layers)
        init_weights(self, "xavier" if activation_name in ("sigmoid", "tanh") else "he")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def shallow_net(n_x: int = 64, hidden: int = 32, num_classes: int = 10, activation_name: str = "tanh",
                dropout: float = 0.0) -> DeepNet:
    """The course's shallow network, one hidden layer: (B, n_x) -> (B, num_classes) logits; dropout as in DeepNet."""
    return DeepNet(n_x, (hidden,), num_classes, activation_name, dropout)


def softmax_classifier(n_x: int = 64, num_classes: int = 10) -> DeepNet:
    """Softmax regression, one linear layer: (B, n_x) -> (B, num_classes) logits Z; A = softmax(Z)."""
    return DeepNet(n_x, (), num_classes)
