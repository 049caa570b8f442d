"""ResNet (He 2015): residual blocks a[l+2] = g(z[l+2] + a[l]), with a learned projection W_s when shapes differ."""

from __future__ import annotations

import torch
from torch import nn

from edgepipe.export.models._check import check_choice, check_positive
from edgepipe.export.models.init import init_weights

# depth -> (block, blocks per stage); the stages have 64, 128, 256 and 512 channels (x4 out for bottlenecks).
DEPTHS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)),
          101: ("bottleneck", (3, 4, 23, 3)), 152: ("bottleneck", (3, 8, 36, 3))}


def conv_bn(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Sequential:
    """Conv k x k (SAME padding, no bias: batch norm's beta replaces it) then batch norm: (B, c_in, H, W) ->
    (B, c_out, H / stride, W / stride)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), nn.BatchNorm2d(c_out))


class ResidualBlock(nn.Module):
    """a[l+2] = g(z[l+2] + W_s a[l]), g = ReLU: (B, c_in, H, W) -> (B, c_out, H / stride, W / stride).

    residual: the main path computing z[l+2] (its last batch norm included, no final ReLU). W_s is a 1x1 conv
    + batch norm when the shapes differ (stride != 1 or c_in != c_out), the identity otherwise.
    """

    def __init__(self, residual: nn.Sequential, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.residual = residual
        self.shortcut = conv_bn(c_in, c_out, 1, stride) if stride != 1 or c_in != c_out else nn.Identity()

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.residual(a) + self.shortcut(a))


class BasicBlock(ResidualBlock):
    """ResNet-18/34's block, two 3x3 convs: z[l+2] = BN(W2 relu(BN(W1 a[l]))); c_out = c_mid."""

    expansion = 1

    def __init__(self, c_in: int, c_mid: int, stride: int = 1) -> None:
        residual = nn.Sequential(conv_bn(c_in, c_mid, 3, stride), nn.ReLU(inplace=True), conv_bn(c_mid, c_mid, 3))
        super().__init__(residual, c_in, c_mid, stride)


class Bottleneck(ResidualBlock):
    """ResNet-50/101/152's block: 1x1 reduce to c_mid, 3x3 (with the stride), 1x1 expand to c_out = 4 c_mid."""

    expansion = 4

    def __init__(self, c_in: int, c_mid: int, stride: int = 1) -> None:
        c_out = c_mid * self.expansion
        residual = nn.Sequential(
            conv_bn(c_in, c_mid, 1), nn.ReLU(inplace=True),
            conv_bn(c_mid, c_mid, 3, stride), nn.ReLU(inplace=True),
            conv_bn(c_mid, c_out, 1),
        )
        super().__init__(residual, c_in, c_out, stride)


class ResNet(nn.Module):
    """ResNet-18/34/50/101/152 from one definition. Input (B, 3, H, W), 224x224 in the paper, any H, W >= 32
    (global average pooling); output (B, num_classes) logits.

    Stem: conv7 s2 + BN + ReLU, max-pool 3 s2; four stages of blocks (64, 128, 256, 512 channels; the first
    block of stages 2-4 has stride 2); global average pooling; fully connected. He init. Parameter counts equal
    torchvision's: 11,689,512 / 21,797,672 / 25,557,032 / 44,549,160 / 60,192,808 for 1000 classes.
    """

    def __init__(self, depth: int = 18, num_classes: int = 1000) -> None:
        super().__init__()
        check_choice("depth", depth, tuple(DEPTHS))
        check_positive("num_classes", num_classes)
        kind, counts = DEPTHS[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        # (B, 64, H/4, W/4)
        self.stem = nn.Sequential(conv_bn(3, 64, 7, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        stages, c_in = [], 64
        for i, (width, n) in enumerate(zip((64, 128, 256, 512), counts, strict=True)):
            blocks = []
            for j in range(n):
                blocks.append(block(c_in, width, 2 if i > 0 and j == 0 else 1))
                c_in = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)  # (B, 512 * expansion, H/32, W/32)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes))
        init_weights(self, "he")
        for block in self.stages.modules():
            if isinstance(block, ResidualBlock):
                # z[l+2] starts at 0, so each block starts as the identity the course says is easy to learn;
                # without it an untrained ResNet-152's activations grow to ~1e7 and overflow fp16.
                nn.init.zeros_(block.residual[-1][1].weight)

    @property
    def backbone(self) -> nn.Module:
        """Everything but the classifier (what transfer learning freezes)."""
        return nn.Sequential(self.stem, self.stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))

