"""Weight initialization from the course: He for ReLU networks, Xavier for tanh/sigmoid ones."""

from __future__ import annotations

from torch import nn

from edgepipe.export.models._check import check_choice

SCHEMES = ("he", "xavier")


def init_weights(module: nn.Module, scheme: str = "he") -> nn.Module:
    """Initialize every conv and linear layer of module in place and return module.

    Weights W[l] ~ N(0, var) with fan_in n[l-1] (in_features, or c_in * f * f for a conv): "he" var = 2 / n[l-1]
    (for ReLU), "xavier" var = 1 / n[l-1] (the course's Xavier, for tanh). Biases 0; batch norm gamma 1, beta 0.
    A module built on the meta device (shapes only, to count parameters) has no values to initialize: left as is.
    """
    check_choice("scheme", scheme, SCHEMES)
    if any(p.is_meta for p in module.parameters()):
        return module
    nonlinearity = "relu" if scheme == "he" else "linear"  # gain sqrt(2) or 1: std = gain / sqrt(n[l-1])
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity=nonlinearity)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module
