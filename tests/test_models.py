"""The model zoo: parameter counts from per-layer formulas, shapes, constructor errors, `edgepipe models`."""

import json

import pytest
import torch

from edgepipe.apps.cli import main
from edgepipe.export.models import REGISTRY, build, count_params, init_weights
from edgepipe.export.models.inception import GOOGLENET
from edgepipe.export.models.vgg import VGG16_GROUPS
from edgepipe.export.zoo import ZOO

# ---------------------------------------------------------------------------------------------------------------
# Parameter counts, layer by layer: a conv has f*f*c_in*c_out weights + c_out biases, a fully connected layer
# n_in*n_out + n_out, a batch norm gamma and beta (2c; its running statistics are buffers, not parameters).


def conv(f: int, c_in: int, c_out: int, bias: bool = True) -> int:
    return f * f * c_in * c_out + (c_out if bias else 0)


def fc(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def bn(c: int) -> int:
    return 2 * c


def basic_block(c_in: int, c_out: int, stride: int) -> int:
    """Two 3x3 conv + BN, and the 1x1 conv + BN projection W_s when the shapes differ."""
    projection = conv(1, c_in, c_out, False) + bn(c_out) if stride != 1 or c_in != c_out else 0
    return conv(3, c_in, c_out, False) + bn(c_out) + conv(3, c_out, c_out, False) + bn(c_out) + projection


def resnet_params(depth: int, classes: int = 1000) -> int:
    """torchvision's ResNet, counted layer by layer."""
    blocks = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}[depth]
    expansion = 1 if depth < 50 else 4
    total = conv(7, 3, 64, False) + bn(64)
    c_in = 64
    for stage, (width, n) in enumerate(zip((64, 128, 256, 512), blocks, strict=True)):
        for j in range(n):
            stride = 2 if stage > 0 and j == 0 else 1
            c_out = width * expansion
            if expansion == 1:
                total += basic_block(c_in, c_out, stride)
            else:
                total += (conv(1, c_in, width, False) + bn(width) + conv(3, width, width, False) + bn(width)
                          + conv(1, width, c_out, False) + bn(c_out))
                if j == 0:
                    total += conv(1, c_in, c_out, False) + bn(c_out)  # W_s projection: channels (and stride) differ
            c_in = c_out
    return total + fc(c_in, classes)


def googlenet_params(classes: int = 1000) -> int:
    """Stem conv7 64, 1x1 64, conv3 192; per module 1x1, 1x1 -> 3x3, 1x1 -> 5x5, pool -> 1x1; fc 1024 -> classes."""
    total = conv(7, 3, 64) + conv(1, 64, 64) + conv(3, 64, 192)
    c_in = 192
    for c1, c3r, c3, c5r, c5, pp in GOOGLENET.values():
        total += conv(1, c_in, c1) + conv(1, c_in, c3r) + conv(3, c3r, c3) + conv(1, c_in, c5r) + conv(5, c5r, c5)
        total += conv(1, c_in, pp)
        c_in = c1 + c3 + c5 + pp
    return total + fc(c_in, classes)


def vgg16_params() -> int:
    """13 conv3 layers (64 x2, 128 x2, 256 x3, 512 x3, 512 x3) and 3 fully connected: 16 weight layers."""
    total, c_in = 0, 3
    for filters, n in VGG16_GROUPS:
        for _ in range(n):
            total += conv(3, c_in, filters)
            c_in = filters
    return total + fc(25088, 4096) + fc(4096, 4096) + fc(4096, 1000)


def yolo_params(widths, neck, anchors: int, classes: int, keypoints: int = 0) -> int:
    """conv3 (no bias) + BN per block, then the 1x1 head with A*(5+C+2K) outputs and biases."""
    total, c_in = 0, 3
    for width in (*widths, *neck):
        total += conv(3, c_in, width, False) + bn(width)
        c_in = width
    return total + conv(1, c_in, anchors * (5 + classes + 2 * keypoints))


def facenet_params(widths=(32, 64, 128, 256), embedding: int = 128) -> int:
    """conv3 stem + BN, one basic block per stage (stride 2 from the second), fc to the embedding."""
    total = conv(3, 3, widths[0], False) + bn(widths[0])
    c_in = widths[0]
    for i, width in enumerate(widths):
        total += basic_block(c_in, width, 1 if i == 0 else 2)
        c_in = width
    return total + fc(c_in, embedding)


EXPECTED = {
    "logistic": fc(64, 1),  # 65
    "softmax": fc(64, 10),  # 650
    "shallow": fc(64, 32) + fc(32, 10),  # 2,410
    "deep": fc(64, 64) + fc(64, 32) + fc(32, 10),  # 6,570
    # 156 + 2,416 + 48,120 + 10,164 + 850 = 61,706
    "lenet5": conv(5, 1, 6) + conv(5, 6, 16) + fc(400, 120) + fc(120, 84) + fc(84, 10),
    # 34,944 + 614,656 + 885,120 + 1,327,488 + 884,992 + 37,752,832 + 16,781,312 + 4,097,000 = 62,378,344
    "alexnet": conv(11, 3, 96) + conv(5, 96, 256) + conv(3, 256, 384) + conv(3, 384, 384) + conv(3, 384, 256)
    + fc(9216, 4096) + fc(4096, 4096) + fc(4096, 1000),
    "vgg16": vgg16_params(),  # 138,357,544
    "resnet18": resnet_params(18), "resnet34": resnet_params(34), "resnet50": resnet_params(50),
    "resnet101": resnet_params(101), "resnet152": resnet_params(152),
    "googlenet": googlenet_params(),  # 6,998,552
    "yolo-small": yolo_params((16, 32, 64, 128), (256,), 3, 3),  # 399,272
    "yolo-large": yolo_params((32, 64, 128, 256, 512), (512, 512), 5, 3),  # 6,310,728
    "yolo-pose": yolo_params((16, 32, 64, 128), (256,), 3, 3, keypoints=4),  # 405,440: 2 outputs per landmark
    "facenet": facenet_params(),  # 1,259,296
    "siamese": facenet_params() + fc(128, 1),  # the encoder, shared by both images, and one logistic unit
    "siamese-head": fc(128, 1),  # the logistic unit alone: w . |e1 - e2| + b
    # the lecture's window classifier: conv 5x5 to 16, FC 400, FC 400, FC 4 (three shapes and the background)
    "window": conv(5, 3, 16) + fc(400, 400) + fc(400, 400) + fc(400, 4),  # 323,620
    # its convolutional form: the same weights as 5x5x400, 1x1x400 and 1x1x4 convolutions
    "window-conv": conv(5, 3, 16) + conv(5, 16, 400) + conv(1, 400, 400) + conv(1, 400, 4),
}


def test_every_zoo_model_has_a_formula():
    assert set(EXPECTED) == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parameter_counts_match_the_architecture(name):
    with torch.device("meta"):
        assert count_params(build(name)) == EXPECTED[name]


def test_well_known_figures():
    # The published counts (torchvision's for ResNet): the formulas above agree with them.
    assert EXPECTED["lenet5"] == 61_706
    assert EXPECTED["alexnet"] == 62_378_344
    assert EXPECTED["vgg16"] == 138_357_544
    assert EXPECTED["window"] == EXPECTED["window-conv"] == 323_620  # the same weights, reshaped
    assert [EXPECTED[f"resnet{d}"] for d in (18, 34, 50, 101, 152)] == [
        11_689_512, 21_797_672, 25_557_032, 44_549_160, 60_192_808]


def test_parameter_counts_follow_num_classes():
    with torch.device("meta"):
        assert count_params(build("resnet50", num_classes=10)) == resnet_params(50, classes=10)
        assert count_params(build("googlenet", num_classes=5)) == googlenet_params(classes=5)
        assert count_params(build("yolo-small", num_classes=1)) == yolo_params((16, 32, 64, 128), (256,), 3, 1)


# ---------------------------------------------------------------------------------------------------------------
# Shapes: the registry's input shape is what each model takes; big models run on the meta device (shapes only).


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registry_input_shape_is_what_the_model_takes(name):
    with torch.device("meta"):
        model = build(name).eval()
        inputs = [torch.empty(1, *REGISTRY[name].input_shape)] * (2 if REGISTRY[name].task == "verify" else 1)
        assert model(*inputs).shape[0] == 1


@pytest.mark.parametrize(
    ("name", "kwargs", "shape", "out"),
    [
        ("logistic", {}, (2, 64), (2, 1)),  # one probability per example
        ("shallow", {"num_classes": 4}, (3, 64), (3, 4)),  # num_classes logits
        ("deep", {"layer_sizes": (7, 5, 3)}, (2, 64), (2, 10)),  # any depth
        ("softmax", {}, (2, 64), (2, 10)),
        ("lenet5", {}, (2, 1, 32, 32), (2, 10)),
        ("alexnet", {}, (1, 3, 227, 227), (1, 1000)),
        ("vgg16", {}, (1, 3, 224, 224), (1, 1000)),
        ("resnet152", {}, (1, 3, 224, 224), (1, 1000)),
        ("resnet18", {"num_classes": 7}, (1, 3, 96, 96), (1, 7)),  # another input size and class count
        ("googlenet", {}, (1, 3, 224, 224), (1, 1000)),
        ("yolo-small", {}, (2, 3, 160, 160), (2, 3 * 8, 10, 10)),  # A*(5+C) channels on the S x S grid
        ("yolo-large", {}, (1, 3, 416, 416), (1, 5 * 8, 13, 13)),  # YOLOv2's 13x13
        ("yolo-large", {"input_size": (640, 640), "num_classes": 80}, (1, 3, 640, 640), (1, 5 * 85, 20, 20)),
        ("yolo-large", {"input_size": (320, 640)}, (1, 3, 320, 640), (1, 5 * 8, 10, 20)),  # not square
        ("yolo-pose", {}, (2, 3, 160, 160), (2, 3 * (8 + 2 * 4), 10, 10)),  # A*(5+C+2K): 2 numbers per landmark
        ("facenet", {}, (3, 3, 96, 96), (3, 128)),
        ("window", {}, (2, 3, 14, 14), (2, 4)),  # one window: three shapes and the background
        ("window-conv", {}, (1, 3, 16, 16), (1, 4, 2, 2)),  # the lecture's 16x16 input: 2x2 windows
        ("window-conv", {}, (1, 3, 28, 28), (1, 4, 8, 8)),  # 28x28: 8x8
    ],
)
def test_output_shapes(name, kwargs, shape, out):
    with torch.device("meta"):
        model = build(name, **kwargs).eval()
        assert tuple(model(torch.empty(shape)).shape) == out


def layer_outputs(layers: torch.nn.Sequential, x: torch.Tensor, kinds: tuple) -> list[tuple[int, ...]]:
    """(C, H, W) after each layer of the given kinds."""
    shapes = []
    for layer in layers:
        x = layer(x)
        if isinstance(layer, kinds):
            shapes.append(tuple(x.shape[1:]))
    return shapes


def test_course_feature_map_sizes():
    conv_pool = (torch.nn.Conv2d, torch.nn.MaxPool2d, torch.nn.AvgPool2d)
    with torch.device("meta"):
        lenet = layer_outputs(build("lenet5").features, torch.empty(1, 1, 32, 32), conv_pool)
        alexnet = layer_outputs(build("alexnet").features, torch.empty(1, 3, 227, 227), conv_pool)
        vgg = layer_outputs(build("vgg16").features, torch.empty(1, 3, 224, 224), (torch.nn.MaxPool2d,))
    assert lenet == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5)]
    assert alexnet == [(96, 55, 55), (96, 27, 27), (256, 27, 27), (256, 13, 13), (384, 13, 13), (384, 13, 13),
                       (256, 13, 13), (256, 6, 6)]
    assert vgg == [(64, 112, 112), (128, 56, 56), (256, 28, 28), (512, 14, 14), (512, 7, 7)]


# ---------------------------------------------------------------------------------------------------------------
# Errors: ValueError naming the argument, expected vs got.


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("lenet6", {}, r"model must be one of \[.*'lenet5'.*'yolo-small'.*\], but got 'lenet6'"),  # unknown name
        ("resnet18", {"depth": 50}, r"resnet18 takes the keyword arguments \['num_classes'\], but got \['depth'\]"),
        ("lenet5", {"activation": "sigmoid"}, r"activation must be one of \('tanh', 'relu'\), but got 'sigmoid'"),
        ("shallow", {"activation_name": "elu"}, r"activation_name must be one of .*'leaky_relu'.*, but got 'elu'"),
        ("deep", {"layer_sizes": (8, 0)}, r"layer_sizes\[1\] must be an integer >= 1, but got 0"),  # empty layer
        ("deep", {"dropout": 1.0}, r"dropout must be in \[0, 1\), but got 1.0"),  # keep_prob 0 drops everything
        ("logistic", {"n_x": 0}, r"n_x must be an integer >= 1, but got 0"),
        ("vgg16", {"num_classes": 0}, r"num_classes must be an integer >= 1, but got 0"),
        ("yolo-small", {"input_size": (250, 250)}, r"multiples of the stride 16, but got \(250, 250\)"),
        ("yolo-large", {"input_size": (0, 416)}, r"positive multiples of the stride 32, but got \(0, 416\)"),
        ("yolo-small", {"anchors": []}, r"anchors must be one or more \(w, h\) pairs > 0"),  # no anchor
        ("yolo-small", {"anchors": [(1.0, -2.0)]}, r"anchors must be .* but got \[\(1.0, -2.0\)\]"),  # negative
        ("yolo-small", {"anchors": [(1.0, 2.0, 3.0)]}, r"anchors must be one or more \(w, h\) pairs"),  # not a pair
        ("facenet", {"embedding_size": 0}, r"embedding_size must be an integer >= 1, but got 0"),
    ],
)
def test_build_errors(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(name, **kwargs)


def test_other_constructor_errors():
    from edgepipe.export.models import ResNet

    with pytest.raises(ValueError, match=r"depth must be one of \(18, 34, 50, 101, 152\), but got 20"):
        ResNet(20)
    with pytest.raises(ValueError, match=r"scheme must be one of \('he', 'xavier'\), but got 'lecun'"):
        init_weights(torch.nn.Linear(2, 2), "lecun")


# ---------------------------------------------------------------------------------------------------------------
# `edgepipe models`


@pytest.mark.parametrize("info", ZOO, ids=[i.name for i in ZOO])
def test_the_zoo_table_counts_what_the_built_model_has(info):
    # `edgepipe models` builds nothing (export/zoo.py): its counts, shapes and tasks are those of the models built
    with torch.device("meta"):
        assert count_params(build(info.name)) == info.params
    entry = REGISTRY[info.name]
    assert (entry.family, entry.task, entry.input_shape, entry.description) == (info.family, info.task,
                                                                                info.input_shape, info.description)


def test_models_command_json_and_table(capsys):
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(REGISTRY)
    assert {k: rows["lenet5"][k] for k in ("family", "input_shape", "params", "task")} == {
        "family": "lenet", "input_shape": [1, 32, 32], "params": 61_706, "task": "classify"}
    assert all(rows[n]["params"] == EXPECTED[n] for n in REGISTRY)
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["name", "task", "input", "parameters"]
    table = {line.split()[0]: line.split()[1:4] for line in lines[1:]}
    assert table["vgg16"] == ["classify", "3x224x224", "138,357,544"]
    assert table["logistic"] == ["classify", "64", "65"]
    assert len(table) == len(REGISTRY)
