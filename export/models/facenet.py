"""A FaceNet-style encoder (image -> 128-d unit vector) and the course's Siamese verification head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from edgepipe.export.models._check import check_positive
from edgepipe.export.models.init import init_weights
from edgepipe.export.models.resnet import BasicBlock
from edgepipe.postprocess.errors import UserError


class FaceEncoder(nn.Module):
    """f(x): (B, 3, H, W) face crops, 96x96 by default (any H, W >= 16) -> (B, embedding_size) embeddings with
    ||f(x)|| = 1.

    A small residual CNN: conv3 stem, one ResNet basic block per stage (widths; stride 2 from the second
    stage), global average pooling, a linear layer, L2 normalization. 1,259,296 parameters by default. He init.
    Trained with the triplet loss so that ||f(A) - f(P)||^2 is small and ||f(A) - f(N)||^2 large.
    """

    def __init__(self, embedding_size: int = 128, widths: Sequence[int] = (32, 64, 128, 256)) -> None:
        super().__init__()
        check_positive("embedding_size", embedding_size)
        if len(widths) == 0:
            raise UserError(f"widths must hold at least one stage width, but got {widths!r}")
        for i, width in enumerate(widths):
            check_positive(f"widths[{i}]", width)
        self.embedding_size = embedding_size
        stages: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                   nn.ReLU(inplace=True)]
        c_in = widths[0]
        for i, width in enumerate(widths):
            stages.append(BasicBlock(c_in, width, 1 if i == 0 else 2))
            c_in = width
        self.backbone = nn.Sequential(*stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (B, widths[-1])
        self.embed = nn.Linear(c_in, embedding_size)
        init_weights(self, "he")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.embed(self.backbone(x)), dim=1)


class SiameseHead(nn.Module):
    """Verification as binary classification (the course): y_hat = sigmoid(sum_k w_k |f(x1)_k - f(x2)_k| + b).

    forward(e1, e2): two (B, embedding_size) embeddings -> (B,) probability that they show the same person.
    """

    def __init__(self, embedding_size: int = 128) -> None:
        super().__init__()
        check_positive("embedding_size", embedding_size)
        self.linear = nn.Linear(embedding_size, 1)

    def forward(self, e1: torch.Tensor, e2: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear((e1 - e2).abs())).squeeze(1)


class Siamese(nn.Module):
    """The same encoder f applied to both images, then the Siamese head: (B, 3, H, W) x 2 -> (B,) probability."""

    def __init__(self, encoder: FaceEncoder | None = None) -> None:
        super().__init__()
        self.encoder = FaceEncoder() if encoder is None else encoder
        self.head = SiameseHead(self.encoder.embedding_size)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x1), self.encoder(x2))
