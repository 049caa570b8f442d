"""The model zoo as `edgepipe models` lists it, without PyTorch: names, tasks, input shapes, parameter counts.

The counts are those of the built models at their defaults (tests/test_models.py builds each on the meta device
and checks them, and checks them against formulas from the layers' shapes), so listing the zoo builds nothing and
imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelInfo:
    """A zoo model: input_shape (C, H, W) or (n_x,) at its defaults, parameter count at the defaults (weights,
    biases, batch norm gamma and beta; not BN's running statistics)."""

    name: str
    family: str
    input_shape: tuple[int, ...]
    params: int
    task: str
    description: str


RESNET_PARAMS = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160, 152: 60_192_808}

ZOO: tuple[ModelInfo, ...] = (
    ModelInfo("logistic", "basic", (64,), 65, "classify", "logistic regression, sigmoid(w.x + b)"),
    ModelInfo("shallow", "basic", (64,), 2_410, "classify", "one hidden layer (tanh), softmax output"),
    ModelInfo("deep", "basic", (64,), 6_570, "classify", "L-layer network (ReLU), softmax output"),
    ModelInfo("softmax", "basic", (64,), 650, "classify", "softmax regression"),
    ModelInfo("lenet5", "lenet", (1, 32, 32), 61_706, "classify", "LeNet-5 (tanh), about 60K parameters"),
    ModelInfo("alexnet", "alexnet", (3, 227, 227), 62_378_344, "classify", "AlexNet, about 60M parameters"),
    ModelInfo("vgg16", "vgg", (3, 224, 224), 138_357_544, "classify", "VGG-16, about 138M parameters"),
    *(ModelInfo(f"resnet{d}", "resnet", (3, 224, 224), n, "classify",
                f"ResNet-{d}, residual blocks with projection shortcuts") for d, n in RESNET_PARAMS.items()),
    ModelInfo("googlenet", "inception", (3, 224, 224), 6_998_552, "classify", "Inception v1, no aux heads, no BN"),
    ModelInfo("window", "windows", (3, 14, 14), 323_620, "classify",
              "the lecture's sliding-window classifier: 14x14 window, 3 shapes + background"),
    ModelInfo("window-conv", "windows", (3, 96, 96), 323_620, "detect",
              "its convolutional form: every 14x14 window at stride 2, one pass"),
    ModelInfo("yolo-small", "yolo", (3, 160, 160), 399_272, "detect", "course YOLO, 10x10 grid, 3 anchors"),
    ModelInfo("yolo-large", "yolo", (3, 416, 416), 6_310_728, "detect", "course YOLO, 13x13 grid, 5 anchors"),
    ModelInfo("yolo-pose", "yolo", (3, 160, 160), 405_440, "detect",
              "course YOLO + 4 landmarks per box (2 outputs each)"),
    ModelInfo("facenet", "facenet", (3, 96, 96), 1_259_296, "embed", "FaceNet-style encoder, 128-d"),
    ModelInfo("siamese", "facenet", (3, 96, 96), 1_259_425, "verify", "encoder + logistic unit on |f1 - f2|"),
    ModelInfo("siamese-head", "facenet", (128,), 129, "verify",
              "the logistic unit alone: two embeddings -> same-person probability"),
)
