"""Weight initialization from the course: He for ReLU networks, Xavier for tanh/sigmoid ones."""

from __future__ import annotations

from torch import nn

SCHEMES = ("he", "xavier")


def init_weights(module: nn.Module, scheme: str = "he") -> nn.Module:
    """Initialize every conv and linear layer in place; biases to zero; batch norm to identity. Returns module.

    "he": N(0, 2 / fan_in) (Var[W] = 2/n[l-1], for ReLU). "xavier": Var[W] = 1/n[l-1] style (for tanh).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, but got {scheme!r}")
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if scheme == "he":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            else:
                nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module
