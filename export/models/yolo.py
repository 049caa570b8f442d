"""The course's YOLO: a conv backbone to an S x S grid, A anchor boxes per cell, (5 + C) numbers per anchor."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from edgepipe.export.models._check import check_positive
from edgepipe.postprocess.errors import UserError

SMALL_ANCHORS = ((1.0, 1.0), (2.2, 2.0), (4.5, 4.0))  # grid cells; training replaces them by k-means anchors
LARGE_ANCHORS = ((0.6, 0.8), (1.5, 1.6), (2.6, 3.2), (4.5, 4.2), (8.0, 7.5))


def conv_bn_leaky(c_in: int, c_out: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    """Conv k x k (SAME padding, no bias) + batch norm + LeakyReLU(0.1), YOLO's block: (B, c_in, H, W) ->
    (B, c_out, H / stride, W / stride)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), nn.BatchNorm2d(c_out),
                         nn.LeakyReLU(0.1, inplace=True))


class YOLO(nn.Module):
    """YOLOv2-style detector. Input (B, 3, H, W) with H, W multiples of the stride; output (B, A*(5+C), S_h, S_w)
    with S = size / stride and, per anchor, the channels tx, ty, tw, th, to, then C class logits: viewed as
    (B, A, 5 + C, S_h, S_w). Stored: .num_classes (C), .anchors ((w, h) in grid cells, A pairs), .input_size
    (H, W), .grid_size (S_h, S_w), .stride.

    postprocess's "yolo-course" head decodes it: bx = (sigmoid(tx) + col) / S_w, bw = anchor_w * exp(tw) with
    anchors in grid cells, Pc = sigmoid(to), class probabilities by softmax.
    widths: channels of the backbone's blocks (a stride-2 conv3x3-BN-LeakyReLU each, so the stride is
    2 ** len(widths); stride-2 convolutions instead of YOLOv2's max-pools halve the CPU training time, measured);
    neck: channels of the stride-1 3x3 convs after them. Convs keep PyTorch's init (batch norm follows each);
    the objectness bias starts at logit(0.01), as YOLO's prior, the other head biases at 0.
    keypoints: K landmarks per box, the course's 2 outputs per landmark after the class logits (5 + C + 2K channels
    per anchor: kx1, ky1, ..., kxK, kyK), decoded by postprocess's "yolo-course-pose" head as an offset from the
    box's center in units of its width and height. Stored as .keypoints.
    """

    def __init__(
        self,
        num_classes: int = 3,
        anchors: Sequence[Sequence[float]] = SMALL_ANCHORS,
        input_size: tuple[int, int] = (256, 256),
        widths: Sequence[int] = (16, 32, 64, 128),
        neck: Sequence[int] = (256,),
        keypoints: int = 0,
    ) -> None:
        super().__init__()
        check_positive("num_classes", num_classes)
        if isinstance(keypoints, bool) or not isinstance(keypoints, int) or keypoints < 0:
            raise UserError(f"keypoints must be an integer >= 0, but got {keypoints!r}")
        self.keypoints = keypoints
        self.stride = 2 ** len(widths)
        self.num_classes = num_classes
        self.anchors = _anchor_pairs(anchors)
        self.input_size = _checked_size(input_size, self.stride)
        self.grid_size = (self.input_size[0] // self.stride, self.input_size[1] // self.stride)
        layers: list[nn.Module] = []
        c_in = 3
        for width in widths:
            layers.append(conv_bn_leaky(c_in, width, stride=2))
            c_in = width
        for width in neck:
            layers.append(conv_bn_leaky(c_in, width))
            c_in = width
        self.backbone = nn.Sequential(*layers)
        a, per = len(self.anchors), 5 + num_classes + 2 * keypoints
        self.head = nn.Conv2d(c_in, a * per, 1)
        with torch.no_grad():  # objectness starts at ~1%: most cells hold no object (stable early training)
            bias = self.head.bias.view(a, per)
            bias.zero_()
            bias[:, 4] = math.log(0.01 / 0.99)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))  # (B, A*(5+C), S_h, S_w)


def _anchor_pairs(anchors: Sequence[Sequence[float]]) -> tuple[tuple[float, float], ...]:
    """anchors: (A, 2) (w, h) in grid cells, A >= 1, all > 0; returned as a tuple of float pairs."""
    if len(anchors) == 0 or any(len(a) != 2 or min(a) <= 0 for a in anchors):
        raise UserError(f"anchors must be one or more (w, h) pairs > 0 in grid cells, but got {anchors!r}")
    return tuple((float(w), float(h)) for w, h in anchors)


def _checked_size(input_size: Sequence[int], stride: int) -> tuple[int, int]:
    """input_size: (H, W), positive multiples of the stride."""
    if len(input_size) != 2 or min(input_size) < stride or input_size[0] % stride or input_size[1] % stride:
        raise UserError(f"input_size must be (H, W), positive multiples of the stride {stride}, but got "
                         f"{tuple(input_size)}")
    return int(input_size[0]), int(input_size[1])


def yolo_small(num_classes: int = 3, anchors: Sequence[Sequence[float]] = SMALL_ANCHORS,
               input_size: tuple[int, int] = (160, 160)) -> YOLO:
    """Trains on 2 CPU cores in minutes: 160x160 -> 10x10 grid (stride 16), 3 anchors; 399,272 parameters for 3
    classes."""
    return YOLO(num_classes, anchors, input_size, (16, 32, 64, 128), (256,))


def yolo_large(num_classes: int = 3, anchors: Sequence[Sequence[float]] = LARGE_ANCHORS,
               input_size: tuple[int, int] = (416, 416)) -> YOLO:
    """For real use, like YOLOv2: 416x416 -> 13x13 grid (stride 32), 5 anchors; 640x640 -> 20x20. 6,310,728
    parameters for 3 classes."""
    return YOLO(num_classes, anchors, input_size, (32, 64, 128, 256, 512), (512, 512))


def yolo_pose(num_classes: int = 3, anchors: Sequence[Sequence[float]] = SMALL_ANCHORS,
              input_size: tuple[int, int] = (160, 160), keypoints: int = 4) -> YOLO:
    """yolo_small with K landmarks per box (2 outputs each): the shapes' 4 keypoint slots by default; 405,440
    parameters for 3 classes and 4 keypoints (its backbone is yolo_small's, so a trained yolo-small can start it)."""
    return YOLO(num_classes, anchors, input_size, (16, 32, 64, 128), (256,), keypoints)
