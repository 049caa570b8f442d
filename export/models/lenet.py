"""LeNet-5 (LeCun 1998) as the course draws it."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from edgepipe.export.models._check import check_dropout, check_positive, make_activation
from edgepipe.export.models.init import init_weights


class LeNet5(nn.Module):
    """32x32x1 -conv5-> 28x28x6 -avgpool2-> 14x14x6 -conv5-> 10x10x16 -avgpool2-> 5x5x16 = 400 -> 120 -> 84 -> 10.

    Input (B, 1, 32, 32); output (B, num_classes) logits (softmax in the loss). tanh like the paper, or relu;
    Xavier init for tanh, He for relu. 61,706 parameters for 10 classes: the course's "about 60K". dropout > 0
    adds inverted dropout (p = 1 - keep_prob) after the two hidden fully connected layers.
    """

    def __init__(self, num_classes: int = 10, activation: str = "tanh", dropout: float = 0.0) -> None:
        super().__init__()
        check_positive("num_classes", num_classes)
        check_dropout(dropout)
        act = partial(make_activation, activation, ("tanh", "relu"))

        def drop() -> list[nn.Module]:
            return [nn.Dropout(dropout)] if dropout > 0 else []

        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5), act(), nn.AvgPool2d(2),  # (B, 6, 14, 14)
            nn.Conv2d(6, 16, 5), act(), nn.AvgPool2d(2),  # (B, 16, 5, 5)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(400, 120), act(), *drop(), nn.Linear(120, 84), act(), *drop(),
            nn.Linear(84, num_classes)
        )
        init_weights(self, "xavier" if activation == "tanh" else "he")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
