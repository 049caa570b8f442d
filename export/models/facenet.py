"""A FaceNet-style encoder (image -> 128-d unit vector) and the course's Siamese verification head."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from export.models.init import init_weights
from export.models.resnet import BasicBlock


class FaceEncoder(nn.Module):
    """f(x): (B, 3, H, W) face crops (64x64 by default) -> (B, embedding_size) L2-normalized embeddings.

    A small residual CNN (stem, four stages of basic blocks, global average pooling, a linear layer), trained
    with the triplet loss so that ||f(A) - f(P)||^2 is small and ||f(A) - f(N)||^2 large.
    """

    def __init__(self, embedding_size: int = 128, widths: tuple[int, ...] = (32, 64, 128, 256),
                 input_size: tuple[int, int] = (64, 64)) -> None:
        super().__init__()
        self.embedding_size = embedding_size
        self.input_size = tuple(input_size)
        stages: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                   nn.ReLU(inplace=True)]
        c_in = widths[0]
        for i, width in enumerate(widths):
            stages.append(BasicBlock(c_in, width, 1 if i == 0 else 2))
            c_in = width
        self.backbone = nn.Sequential(*stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.embed = nn.Linear(c_in, embedding_size)
        init_weights(self, "he")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.embed(self.backbone(x)), dim=1)


class SiameseHead(nn.Module):
    """Verification as binary classification (the course): y_hat = sigmoid(w . |f(x1) - f(x2)| + b).

    Input two (B, D) embeddings; output (B,) probability that they show the same person.
    """

    def __init__(self, embedding_size: int = 128) -> None:
        super().__init__()
        self.linear = nn.Linear(embedding_size, 1)

    def forward(self, e1: torch.Tensor, e2: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear((e1 - e2).abs())).squeeze(1)


class Siamese(nn.Module):
    """The shared encoder applied to both images, then the Siamese head: (B, 3, H, W) x 2 -> (B,) probability."""

    def __init__(self, encoder: FaceEncoder | None = None) -> None:
        super().__init__()
        self.encoder = encoder or FaceEncoder()
        self.head = SiameseHead(self.encoder.embedding_size)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x1), self.encoder(x2))
