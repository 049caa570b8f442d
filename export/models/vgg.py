"""VGG-16 (Simonyan & Zisserman 2014): only 3x3 SAME convolutions and 2x2 max-pools."""

from __future__ import annotations

import torch
from torch import nn

from edgepipe.export.models._check import check_dropout, check_positive
from edgepipe.export.models.init import init_weights

VGG16_GROUPS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (filters, convs) per group, a pool after each


class VGG16(nn.Module):
    """224x224x3 -> [conv3 64 x2, pool] [128 x2, pool] [256 x3, pool] [512 x3, pool] [512 x3, pool] = 7x7x512
    = 25088 -> 4096 -> 4096 -> num_classes. 16 weight layers; 138,357,544 parameters for 1000 classes.

    Input (B, 3, 224, 224); output (B, num_classes) logits. ReLU (He init), dropout in the classifier.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        check_positive("num_classes", num_classes)
        check_dropout(dropout)
        layers: list[nn.Module] = []
        c_in = 3
        for filters, convs in VGG16_GROUPS:
            for _ in range(convs):
                layers += [nn.Conv2d(c_in, filters, 3, padding=1), nn.ReLU(inplace=True)]
                c_in = filters
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(4096, num_classes),
        )
        init_weights(self, "he")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
