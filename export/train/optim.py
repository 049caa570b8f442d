"""The course's optimizers (SGD, momentum, RMSprop, Adam) and learning-rate decay, by name."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from edgepipe.export.options import DECAYS, OPTIMIZERS
from edgepipe.postprocess.errors import UserError


def make_optimizer(
    name: str,
    params: Iterable[torch.nn.Parameter],
    learning_rate: float,
    beta: float = 0.9,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """An optimizer with the course's names: momentum v = beta v + (1 - beta) dW is torch's SGD momentum up to a
    rescaling of the learning rate; RMSprop S = beta S + (1 - beta) dW^2; Adam with bias correction (beta1, beta2).
    weight_decay: L2 regularization (lambda)."""
    if name not in OPTIMIZERS:
        raise UserError(f"optimizer must be one of {OPTIMIZERS}, but got {name!r}")
    if learning_rate <= 0:
        raise UserError(f"learning_rate must be > 0, but got {learning_rate}")
    if name == "sgd":
        return torch.optim.SGD(params, lr=learning_rate, weight_decay=weight_decay)
    if name == "momentum":
        return torch.optim.SGD(params, lr=learning_rate, momentum=beta, weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=learning_rate, alpha=beta2, eps=epsilon, weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=learning_rate, betas=(beta1, beta2), eps=epsilon, weight_decay=weight_decay)


def decayed_rate(learning_rate: float, epoch: int, decay: str = "none", decay_rate: float = 1.0,
                 epochs: int = 1) -> float:
    """The course's decay: inverse_time alpha0 / (1 + decay_rate * epoch); exponential alpha0 * decay_rate^epoch;
    cosine alpha0 * (1 + cos(pi * epoch / epochs)) / 2; none alpha0."""
    if decay not in DECAYS:
        raise UserError(f"decay must be one of {DECAYS}, but got {decay!r}")
    if decay == "inverse_time":
        return learning_rate / (1.0 + decay_rate * epoch)
    if decay == "exponential":
        return learning_rate * decay_rate**epoch
    if decay == "cosine":
        return learning_rate * (1 + torch.cos(torch.tensor(torch.pi * epoch / max(1, epochs))).item()) / 2
    return learning_rate


def set_rate(optimizer: torch.optim.Optimizer, rate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = rate
