"""The course's models, built by name: `build("lenet5")`, `list_models()` for names, tasks, inputs, sizes."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from torch import nn

from edgepipe.export.models.alexnet import AlexNet
from edgepipe.export.models.basic import DeepNet, LogisticRegression, shallow_net, softmax_classifier
from edgepipe.export.models.facenet import FaceEncoder, Siamese, SiameseHead
from edgepipe.export.models.inception import GoogLeNet, Inception
from edgepipe.export.models.init import init_weights
from edgepipe.export.models.lenet import LeNet5
from edgepipe.export.models.resnet import ResNet
from edgepipe.export.models.vgg import VGG16
from edgepipe.export.models.windows import ConvWindows, WindowClassifier
from edgepipe.export.models.yolo import YOLO, yolo_large, yolo_pose, yolo_small
from edgepipe.postprocess.errors import UserError


@dataclass(frozen=True)
class ModelEntry:
    """A zoo model: name, family, task, the input shape it expects ((C, H, W) or (n_x,)) at its defaults,
    its builder (keyword arguments: num_classes, anchors, ...) and a one-line description."""

    name: str
    family: str
    task: str
    input_shape: tuple[int, ...]
    builder: Callable[..., nn.Module]
    description: str


@dataclass(frozen=True)
class ModelInfo:
    """What `edgepipe models` lists: input_shape (C, H, W) or (n_x,), parameter count at the defaults."""

    name: str
    family: str
    input_shape: tuple[int, ...]
    params: int
    task: str
    description: str


REGISTRY: dict[str, ModelEntry] = {
    e.name: e
    for e in [
        ModelEntry("logistic", "basic", "classify", (64,), LogisticRegression, "logistic regression, sigmoid(w.x + b)"),
        ModelEntry("shallow", "basic", "classify", (64,), shallow_net, "one hidden layer (tanh), softmax output"),
        ModelEntry("deep", "basic", "classify", (64,), DeepNet, "L-layer network (ReLU), softmax output"),
        ModelEntry("softmax", "basic", "classify", (64,), softmax_classifier, "softmax regression"),
        ModelEntry("lenet5", "lenet", "classify", (1, 32, 32), LeNet5, "LeNet-5 (tanh), about 60K parameters"),
        ModelEntry("alexnet", "alexnet", "classify", (3, 227, 227), AlexNet, "AlexNet, about 60M parameters"),
        ModelEntry("vgg16", "vgg", "classify", (3, 224, 224), VGG16, "VGG-16, about 138M parameters"),
        *[
            ModelEntry(f"resnet{d}", "resnet", "classify", (3, 224, 224), partial(ResNet, d),
                       f"ResNet-{d}, residual blocks with projection shortcuts")
            for d in (18, 34, 50, 101, 152)
        ],
        ModelEntry("googlenet", "inception", "classify", (3, 224, 224), GoogLeNet, "Inception v1, no aux heads, no BN"),
        ModelEntry("window", "windows", "classify", (3, 14, 14), WindowClassifier,
                   "the lecture's sliding-window classifier: 14x14 window, 3 shapes + background"),
        ModelEntry("window-conv", "windows", "detect", (3, 96, 96), ConvWindows,
                   "its convolutional form: every 14x14 window at stride 2, one pass"),
        ModelEntry("yolo-small", "yolo", "detect", (3, 160, 160), yolo_small, "course YOLO, 10x10 grid, 3 anchors"),
        ModelEntry("yolo-large", "yolo", "detect", (3, 416, 416), yolo_large, "course YOLO, 13x13 grid, 5 anchors"),
        ModelEntry("yolo-pose", "yolo", "detect", (3, 160, 160), yolo_pose,
                   "course YOLO + 4 landmarks per box (2 outputs each)"),
        ModelEntry("facenet", "facenet", "embed", (3, 96, 96), FaceEncoder, "FaceNet-style encoder, 128-d"),
        ModelEntry("siamese", "facenet", "verify", (3, 96, 96), Siamese, "encoder + logistic unit on |f1 - f2|"),
        ModelEntry("siamese-head", "facenet", "verify", (128,), SiameseHead,
                   "the logistic unit alone: two embeddings -> same-person probability"),
    ]
}


def build(name: str, **kwargs) -> nn.Module:
    """Build a zoo model by name with its builder's keyword arguments (num_classes=..., anchors=...).

    Unknown names and keyword arguments the builder does not take raise UserError listing the valid ones.
    """
    if name not in REGISTRY:
        raise UserError(f"model must be one of {sorted(REGISTRY)}, but got {name!r}")
    builder = REGISTRY[name].builder
    accepted = [p.name for p in inspect.signature(builder).parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD
                or p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise UserError(f"{name} takes the keyword arguments {accepted}, but got {unknown}")
    return builder(**kwargs)


def count_params(model: nn.Module) -> int:
    """Number of parameters (weights, biases, batch norm gamma and beta; not BN's running statistics)."""
    return sum(p.numel() for p in model.parameters())


def list_models() -> list[ModelInfo]:
    """Every zoo model with its parameter count, each built once on the meta device (no memory, no time)."""
    import torch

    infos = []
    for e in REGISTRY.values():
        with torch.device("meta"):
            params = count_params(e.builder())
        infos.append(ModelInfo(e.name, e.family, e.input_shape, params, e.task, e.description))
    return infos


__all__ = [
    "REGISTRY",
    "VGG16",
    "YOLO",
    "AlexNet",
    "ConvWindows",
    "DeepNet",
    "FaceEncoder",
    "GoogLeNet",
    "Inception",
    "LeNet5",
    "LogisticRegression",
    "ModelEntry",
    "ModelInfo",
    "ResNet",
    "Siamese",
    "SiameseHead",
    "WindowClassifier",
    "build",
    "count_params",
    "init_weights",
    "list_models",
    "yolo_large",
    "yolo_pose",
    "yolo_small",
]
