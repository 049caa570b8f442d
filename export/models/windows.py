"""The lecture's sliding-window classifier and its convolutional implementation (the FC layers as convolutions)."""

from __future__ import annotations

import torch
from torch import nn

from edgepipe.export.models._check import check_dropout, check_positive
from edgepipe.export.models.init import init_weights

WINDOW = 14  # the lecture's window side, pixels
WINDOW_STRIDE = 2  # the max pool's stride: the convolutional form's neighbouring windows are this many pixels apart
FEATURES = (16, 5)  # channels and side of the feature map a window becomes: 14x14x3 -conv5-> 10x10x16 -pool2-> 5x5x16
HIDDEN = 400


def _features() -> nn.Sequential:
    """conv 5x5 to 16 channels, ReLU, max pool 2x2: (B, 3, H, W) -> (B, 16, (H - 4) // 2, (W - 4) // 2)."""
    return nn.Sequential(nn.Conv2d(3, FEATURES[0], 5), nn.ReLU(inplace=True), nn.MaxPool2d(2))


class WindowClassifier(nn.Module):
    """The lecture's window classifier: 14x14x3 -conv5-> 10x10x16 -maxpool2-> 5x5x16 = 400 -FC-> 400 -FC-> 400 -FC->
    num_classes (softmax in the loss or at inference).

    Input (B, 3, 14, 14); output (B, num_classes) logits: the three shapes and the background by default. ReLU, He
    init; dropout > 0 adds inverted dropout (p = 1 - keep_prob) after both hidden FC layers. 323,620 parameters.
    """

    def __init__(self, num_classes: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        check_positive("num_classes", num_classes)
        check_dropout(dropout)

        def drop() -> list[nn.Module]:
            return [nn.Dropout(dropout)] if dropout > 0 else []

        c, side = FEATURES
        self.features = _features()
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c * side * side, HIDDEN), nn.ReLU(inplace=True), *drop(),
            nn.Linear(HIDDEN, HIDDEN), nn.ReLU(inplace=True), *drop(), nn.Linear(HIDDEN, num_classes),
        )
        init_weights(self, "he")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class ConvWindows(nn.Module):
    """The convolutional implementation of sliding windows: the classifier's FC layers become a 5x5x400 convolution
    and two 1x1 ones (400, then num_classes), so one pass over a larger image classifies every 14x14 window at once.

    Input (B, 3, H, W) with H, W >= 14; output (B, num_classes, (H - 14) // 2 + 1, (W - 14) // 2 + 1) logits: at
    (row, col), the classifier's output for the window whose top-left corner is (x, y) = (2 col, 2 row). A 16x16
    input gives 2x2 outputs, 28x28 gives 8x8. Build it from a trained classifier with from_classifier.
    """

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        check_positive("num_classes", num_classes)
        c, side = FEATURES
        self.features = _features()
        self.classifier = nn.Sequential(
            nn.Conv2d(c, HIDDEN, side), nn.ReLU(inplace=True), nn.Conv2d(HIDDEN, HIDDEN, 1), nn.ReLU(inplace=True),
            nn.Conv2d(HIDDEN, num_classes, 1),
        )
        init_weights(self, "he")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    @classmethod
    def from_classifier(cls, classifier: WindowClassifier) -> ConvWindows:
        """The same weights as convolutions: FC (400, 16*5*5) -> conv (400, 16, 5, 5) (Flatten's order is channel,
        row, column), FC (n_out, n_in) -> conv 1x1 (n_out, n_in, 1, 1); biases unchanged. In eval mode."""
        linears = [m for m in classifier.classifier if isinstance(m, nn.Linear)]
        model = cls(linears[-1].out_features)
        convs = [m for m in model.classifier if isinstance(m, nn.Conv2d)]
        with torch.no_grad():
            model.features.load_state_dict(classifier.features.state_dict())
            for fc, conv in zip(linears, convs, strict=True):
                conv.weight.copy_(fc.weight.view(conv.weight.shape))
                conv.bias.copy_(fc.bias)
        return model.eval()
