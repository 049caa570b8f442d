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
from edgepipe.export.zoo import RESNET_PARAMS, ZOO, ModelInfo
from edgepipe.postprocess.errors import UserError


@dataclass(frozen=True)
class ModelEntry:
    """A zoo model: name, family, task, the input shape it expects ((C, H, W) or (n_x,)) at its defaults,
    its builder (keyword arguments: num_classes, anchors, ...) and a one-line description (from export/zoo.py)."""

    name: str
    family: str
    task: str
    input_shape: tuple[int, ...]
    builder: Callable[..., nn.Module]
    description: str


BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "logistic": LogisticRegression, "shallow": shallow_net, "deep": DeepNet, "softmax": softmax_classifier,
    "lenet5": LeNet5, "alexnet": AlexNet, "vgg16": VGG16, **{f"resnet{d}": partial(ResNet, d) for d in RESNET_PARAMS},
    "googlenet": GoogLeNet, "window": WindowClassifier, "window-conv": ConvWindows, "yolo-small": yolo_small,
    "yolo-large": yolo_large, "yolo-pose": yolo_pose, "facenet": FaceEncoder, "siamese": Siamese,
    "siamese-head": SiameseHead,
}
REGISTRY: dict[str, ModelEntry] = {
    i.name: ModelEntry(i.name, i.family, i.task, i.input_shape, BUILDERS[i.name], i.description) for i in ZOO
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
    """Every zoo model with its parameter count (export/zoo.py: nothing is built)."""
    return list(ZOO)


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
