"""ResNet (He 2015): residual blocks a[l+2] = g(z[l+2] + a[l]), with a learned projection W_s when shapes differ."""

from __future__ import annotations

import torch
from torch import nn

from export.models.init import init_weights

DEPTHS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)),
          101: ("bottleneck", (3, 4, 23, 3)), 152: ("bottleneck", (3, 8, 36, 3))}


def conv_bn(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), nn.BatchNorm2d(c_out))


class BasicBlock(nn.Module):
    """Two 3x3 convs: z[l+2] = BN(W2 relu(BN(W1 a[l]))); output relu(z[l+2] + shortcut(a[l]))."""

    expansion = 1

    def __init__(self, c_in: int, c_mid: int, stride: int = 1) -> None:
        super().__init__()
        c_out = c_mid * self.expansion
        self.residual = nn.Sequential(conv_bn(c_in, c_mid, 3, stride), nn.ReLU(inplace=True), conv_bn(c_mid, c_out, 3))
        # W_s: a 1x1 projection when the shapes differ, the identity otherwise.
        self.shortcut = conv_bn(c_in, c_out, 1, stride) if stride != 1 or c_in != c_out else nn.Identity()

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.residual(a) + self.shortcut(a))


class Bottleneck(BasicBlock):
    """1x1 reduce, 3x3 (with the stride), 1x1 expand x4: the deeper ResNets' block."""

    expansion = 4

    def __init__(self, c_in: int, c_mid: int, stride: int = 1) -> None:
        super().__init__(c_in, c_mid, stride)
        self.residual = nn.Sequential(
            conv_bn(c_in, c_mid, 1), nn.ReLU(inplace=True),
            conv_bn(c_mid, c_mid, 3, stride), nn.ReLU(inplace=True),
            conv_bn(c_mid, c_mid * 4, 1),
        )


class ResNet(nn.Module):
    """ResNet-18/34/50/101/152 from one definition. Input (B, 3, H, W) (224 in the paper); output logits.

    Stem: conv7 s2, max-pool 3 s2; four stages of blocks (64, 128, 256, 512 channels; stride 2 from the second);
    global average pooling; fully connected. Parameter counts equal torchvision's.
    """

    def __init__(self, depth: int = 18, num_classes: int = 1000) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"depth must be one of {tuple(DEPTHS)}, but got {depth}")
        kind, counts = DEPTHS[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.stem = nn.Sequential(conv_bn(3, 64, 7, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        stages, c_in = [], 64
        for i, (width, n) in enumerate(zip((64, 128, 256, 512), counts, strict=True)):
            blocks = []
            for j in range(n):
                blocks.append(block(c_in, width, 2 if i > 0 and j == 0 else 1))
                c_in = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes))
        init_weights(self, "he")

    @property
    def backbone(self) -> nn.Module:
        """Everything but the classifier (what transfer learning freezes)."""
        return nn.Sequential(self.stem, self.stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))
