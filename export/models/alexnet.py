"""AlexNet (Krizhevsky 2012) in the course's single-tower layout."""

from __future__ import annotations

import torch
from torch import nn

from edgepipe.export.models._check import check_dropout, check_positive
from edgepipe.export.models.init import init_weights


class AlexNet(nn.Module):
    """227x227x3 -conv11 s4-> 55x55x96 -maxpool3 s2-> 27x27x96 -conv5 SAME-> 27x27x256 -maxpool3 s2-> 13x13x256
    -conv3 SAME-> 384 -conv3-> 384 -conv3-> 256 -maxpool3 s2-> 6x6x256 = 9216 -> 4096 -> 4096 -> num_classes.

    Input (B, 3, 227, 227); output (B, num_classes) logits. ReLU (He init), dropout before the two hidden fully
    connected layers, no local response normalization (the course drops it) and one tower instead of two GPUs.
    62,378,344 parameters for 1000 classes (the course's "about 60M").
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        check_positive("num_classes", num_classes)
        check_dropout(dropout)
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),  # (B, 96, 27, 27)
            nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),  # (B, 256, 13, 13)
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),  # (B, 256, 6, 6)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(9216, 4096), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Linear(4096, num_classes),
        )
        init_weights(self, "he")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
