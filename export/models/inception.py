"""1x1 convolutions, the Inception module and GoogLeNet (Szegedy 2014) built from it."""

from __future__ import annotations

import torch
from torch import nn

from edgepipe.export.models._check import check_dropout, check_positive
from edgepipe.export.models.init import init_weights

# GoogLeNet's modules: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj), from the paper's table 1.
GOOGLENET = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def conv_relu(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Sequential:
    """Conv k x k with SAME padding (bias, no batch norm, as the paper) then ReLU: (B, c_in, H, W) ->
    (B, c_out, H / stride, W / stride)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, k // 2), nn.ReLU(inplace=True))


def conv1x1(c_in: int, c_out: int) -> nn.Sequential:
    """A 1x1 convolution (network in network): at every pixel, a fully connected layer across the c_in channels
    and a ReLU, out[b, :, i, j] = relu(W x[b, :, i, j] + b). Shrinks or grows depth and adds a nonlinearity:
    (B, c_in, H, W) -> (B, c_out, H, W); W is (c_out, c_in)."""
    return conv_relu(c_in, c_out, 1)


class Inception(nn.Module):
    """Four branches concatenated on channels, in this order: 1x1; 1x1 bottleneck -> 3x3; 1x1 bottleneck -> 5x5;
    3x3 max-pool (stride 1, SAME) -> 1x1 projection. The 1x1 bottlenecks cut the 3x3/5x5 cost.

    Input (B, c_in, H, W); output (B, c1 + c3 + c5 + pool_proj, H, W).
    """

    def __init__(self, c_in: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int) -> None:
        super().__init__()
        self.branch1 = conv1x1(c_in, c1)
        self.branch3 = nn.Sequential(conv1x1(c_in, c3r), conv_relu(c3r, c3, 3))
        self.branch5 = nn.Sequential(conv1x1(c_in, c5r), conv_relu(c5r, c5, 5))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv1x1(c_in, pool_proj))
        self.out_channels = c1 + c3 + c5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], dim=1)


class GoogLeNet(nn.Module):
    """GoogLeNet (Inception v1) as in the paper: no batch norm, no auxiliary classifiers (training-only heads),
    local response normalization left out. 6,998,552 parameters for 1000 classes (weights and biases).

    224x224x3 -conv7 s2, maxpool3 s2-> 56x56x64 -1x1 64, conv3 192, maxpool3 s2-> 28x28x192 -3a, 3b, pool->
    14x14x480 -4a..4e, pool-> 7x7x832 -5a, 5b-> 7x7x1024 -avgpool, dropout 0.4-> 1024 -> num_classes.
    Input (B, 3, 224, 224); output (B, num_classes) logits. He init.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.4) -> None:
        super().__init__()
        check_positive("num_classes", num_classes)
        check_dropout(dropout)
        self.stem = nn.Sequential(
            conv_relu(3, 64, 7, 2), nn.MaxPool2d(3, 2, ceil_mode=True),  # (B, 64, 56, 56)
            conv1x1(64, 64), conv_relu(64, 192, 3), nn.MaxPool2d(3, 2, ceil_mode=True),  # (B, 192, 28, 28)
        )
        blocks: list[nn.Module] = []
        c_in = 192
        for name, cfg in GOOGLENET.items():
            if name in ("4a", "5a"):
                blocks.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            module = Inception(c_in, *cfg)
            blocks.append(module)
            c_in = module.out_channels
        self.inception = nn.Sequential(*blocks)  # (B, 1024, 7, 7)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(c_in, num_classes))
        init_weights(self, "he")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.inception(self.stem(x)))
