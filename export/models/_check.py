"""Argument checks shared by the zoo's constructors: UserError naming the argument, expected vs got."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from edgepipe.postprocess.errors import UserError

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.01)}


def check_choice(name: str, value: object, allowed: Sequence[object]) -> None:
    """value must be one of allowed (activation names, init schemes, ResNet depths)."""
    if value not in allowed:
        raise UserError(f"{name} must be one of {tuple(allowed)}, but got {value!r}")


def make_activation(name: str, allowed: Sequence[str] = tuple(ACTIVATIONS)) -> nn.Module:
    """A new activation layer by the course's name: sigmoid, tanh, relu, leaky_relu (max(0.01 z, z))."""
    check_choice("activation", name, allowed)
    return ACTIVATIONS[name]()


def check_positive(name: str, value: int) -> None:
    """A size (features, channels, classes) must be an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{name} must be an integer >= 1, but got {value!r}")


def check_dropout(p: float) -> None:
    """Dropout drops with probability p = 1 - keep_prob, in [0, 1)."""
    if not 0 <= p < 1:
        raise UserError(f"dropout must be in [0, 1), but got {p}")
