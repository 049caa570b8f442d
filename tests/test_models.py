"""The model zoo: parameter counts from per-layer formulas, shapes, the course's equations, ONNX parity."""

import json
import math

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch.nn import functional as F

from edgepipe.apps.cli import main
from edgepipe.export.models import REGISTRY, build, count_params, init_weights
from edgepipe.export.models.facenet import SiameseHead
from edgepipe.export.models.inception import GOOGLENET, Inception, conv1x1
from edgepipe.export.models.resnet import BasicBlock, Bottleneck
from edgepipe.export.models.vgg import VGG16_GROUPS
from edgepipe.export.models.yolo import YOLO
from edgepipe.postprocess.boxes import Transform
from edgepipe.postprocess.decoders import decode_course

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


def yolo_params(widths, neck, anchors: int, classes: int) -> int:
    """conv3 (no bias) + BN per block, then the 1x1 head with A*(5+C) outputs and biases."""
    total, c_in = 0, 3
    for width in (*widths, *neck):
        total += conv(3, c_in, width, False) + bn(width)
        c_in = width
    return total + conv(1, c_in, anchors * (5 + classes))


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
    "facenet": facenet_params(),  # 1,259,296
    "siamese": facenet_params() + fc(128, 1),  # the encoder, shared by both images, and one logistic unit
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
        inputs = [torch.empty(1, *REGISTRY[name].input_shape)] * (2 if name == "siamese" else 1)
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
        ("facenet", {}, (3, 3, 96, 96), (3, 128)),
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
# The course's equations, recomputed by hand.

NUMPY_G = {
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z: np.maximum(0.01 * z, z),
}


@pytest.mark.parametrize("seed", range(5))
def test_logistic_regression_is_sigmoid_of_wx_plus_b(seed):
    model = build("logistic", n_x=6)
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(model(x), torch.full((4, 1), 0.5))  # the course starts from w = 0, b = 0: a = 0.5
    torch.nn.init.normal_(model.linear.weight)
    torch.nn.init.normal_(model.linear.bias)
    w, b = model.linear.weight.detach().numpy()[0].astype(float), model.linear.bias.item()
    expected = [1 / (1 + math.exp(-(sum(w[k] * float(x[i, k]) for k in range(6)) + b))) for i in range(4)]
    np.testing.assert_allclose(model(x).detach().numpy()[:, 0], expected, rtol=1e-5)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("shallow", {"activation_name": "sigmoid"}),
        ("shallow", {"activation_name": "tanh"}),  # the default
        ("shallow", {"activation_name": "relu"}),
        ("shallow", {"activation_name": "leaky_relu"}),  # slope 0.01 for z < 0
        ("deep", {"layer_sizes": (16, 8, 8, 4), "activation_name": "relu"}),  # L = 5
        ("deep", {"layer_sizes": (5,), "activation_name": "leaky_relu"}),
        ("softmax", {}),  # no hidden layer
    ],
)
@pytest.mark.parametrize("seed", range(3))
def test_dense_nets_follow_the_course_forward_pass(name, kwargs, seed):
    torch.manual_seed(seed)
    model = build(name, n_x=12, num_classes=3, **kwargs)
    g = NUMPY_G[kwargs.get("activation_name", "tanh" if name == "shallow" else "relu")]
    x = torch.randn(6, 12) * 3
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    a = x.numpy().T.astype(np.float64)  # the course's layout: X is (n_x, m)
    for i, layer in enumerate(linears):
        w, b = layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy()
        z = w @ a + b[:, None]  # Z[l] = W[l] A[l-1] + b[l], W[l] is (n[l], n[l-1])
        a = z if i == len(linears) - 1 else g(z)  # the last layer gives the logits Z[L]
    with torch.no_grad():
        logits = model(x).double().numpy()
    np.testing.assert_allclose(logits, a.T, atol=1e-5)
    expected_softmax = np.exp(a) / np.exp(a).sum(axis=0)  # A = exp(Z) / sum(exp(Z)), per column
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(logits), 1).numpy(), expected_softmax.T, atol=1e-6)


def test_shallow_net_has_one_hidden_layer_and_deep_net_its_layer_sizes():
    shallow = [m.out_features for m in build("shallow", hidden=9).modules() if isinstance(m, torch.nn.Linear)]
    deep = [m.out_features for m in build("deep", layer_sizes=[20, 10, 5]).modules() if isinstance(m, torch.nn.Linear)]
    assert shallow == [9, 10]
    assert deep == [20, 10, 5, 10]


def test_dropout_is_inverted_and_off_in_eval():
    model = build("deep", layer_sizes=(4000,), dropout=0.2)
    hidden = torch.nn.Sequential(*list(model.layers)[:3])  # linear, relu, dropout
    x = torch.randn(1, 64)
    kept = hidden.eval()(x)
    dropped = hidden.train()(x)
    active = kept != 0  # units the ReLU lets through
    on = active & (dropped != 0)
    assert 0.75 < on.sum() / active.sum() < 0.85  # keep_prob = 0.8
    torch.testing.assert_close(dropped[on], kept[on] / 0.8)  # a /= keep_prob


def randomize_batch_norm(module: torch.nn.Module) -> None:
    """Non-trivial running statistics, gamma and beta, so that eval-mode batch norm is not the identity."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_()
                m.bias.normal_()


def conv_bn_by_hand(x: torch.Tensor, conv_bn: torch.nn.Sequential) -> torch.Tensor:
    """BN(W * x): the convolution by F.conv2d, batch norm by its formula gamma (x - mu) / sqrt(var + eps) + beta."""
    c, b = conv_bn
    z = F.conv2d(x, c.weight, None, c.stride, c.padding)
    shape = (1, -1, 1, 1)
    return (z - b.running_mean.view(shape)) / torch.sqrt(b.running_var.view(shape) + b.eps) * b.weight.view(
        shape) + b.bias.view(shape)


@pytest.mark.parametrize(
    ("block", "c_in", "c_mid", "stride", "projection"),
    [
        (BasicBlock, 8, 8, 1, False),  # same shape: identity shortcut a[l]
        (BasicBlock, 8, 16, 1, True),  # channels differ: W_s a[l]
        (BasicBlock, 8, 16, 2, True),  # channels and size differ
        (BasicBlock, 8, 8, 2, True),  # only the size differs
        (Bottleneck, 16, 4, 1, False),  # 16 -> 4 -> 4 -> 16: identity
        (Bottleneck, 8, 4, 1, True),  # 8 in, 16 out
        (Bottleneck, 16, 8, 2, True),  # the first block of a stage
    ],
)
@pytest.mark.parametrize("seed", range(3))
def test_residual_block_is_g_of_z_plus_a(block, c_in, c_mid, stride, projection, seed):
    torch.manual_seed(seed)
    module = block(c_in, c_mid, stride).eval()
    randomize_batch_norm(module)
    a = torch.randn(2, c_in, 9, 9)
    r = module.residual
    if block is BasicBlock:
        z = conv_bn_by_hand(torch.relu(conv_bn_by_hand(a, r[0])), r[2])
    else:
        z = conv_bn_by_hand(torch.relu(conv_bn_by_hand(torch.relu(conv_bn_by_hand(a, r[0])), r[2])), r[4])
    shortcut = conv_bn_by_hand(a, module.shortcut) if projection else a
    assert isinstance(module.shortcut, torch.nn.Identity) != projection
    with torch.no_grad():
        torch.testing.assert_close(module(a), torch.relu(z + shortcut), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_1x1_convolution_is_a_fully_connected_layer_per_pixel(seed):
    torch.manual_seed(seed)
    layer = conv1x1(6, 4)
    x = torch.randn(2, 6, 5, 7)
    w, b = layer[0].weight[:, :, 0, 0], layer[0].bias
    by_hand = torch.empty(2, 4, 5, 7)
    for n in range(2):
        for i in range(5):
            for j in range(7):
                by_hand[n, :, i, j] = torch.relu(w @ x[n, :, i, j] + b)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), by_hand)


@pytest.mark.parametrize(
    ("cfg", "size"),
    [
        ((192, 64, 96, 128, 16, 32, 32), 28),  # GoogLeNet's 3a: 64 + 128 + 32 + 32 = 256 channels
        ((832, 384, 192, 384, 48, 128, 128), 7),  # 5b: 1024 channels
        ((3, 1, 1, 1, 1, 1, 1), 1),  # one pixel, one channel per branch
    ],
)
def test_inception_module_concatenates_branches(cfg, size):
    torch.manual_seed(0)
    module = Inception(*cfg)
    x = torch.randn(1, cfg[0], size, size)
    with torch.no_grad():
        out = module(x)
        branches = [module.branch1(x), module.branch3(x), module.branch5(x), module.branch_pool(x)]
    c1, _, c3, _, c5, pool_proj = cfg[1:]
    assert out.shape == (1, c1 + c3 + c5 + pool_proj, size, size)
    assert [b.shape[1] for b in branches] == [c1, c3, c5, pool_proj]
    assert torch.equal(out, torch.cat(branches, dim=1))


@pytest.mark.parametrize("seed", range(5))
def test_siamese_head_is_a_logistic_unit_on_the_absolute_difference(seed):
    torch.manual_seed(seed)
    head = SiameseHead(16)
    e1, e2 = torch.randn(3, 16), torch.randn(3, 16)
    w, b = head.linear.weight[0].tolist(), head.linear.bias.item()
    by_hand = [1 / (1 + math.exp(-(sum(w[k] * abs(float(e1[i, k] - e2[i, k])) for k in range(16)) + b)))
               for i in range(3)]
    with torch.no_grad():
        np.testing.assert_allclose(head(e1, e2).numpy(), by_hand, rtol=1e-5)
        torch.testing.assert_close(head(e1, e2), head(e2, e1))  # symmetric in the two faces


def test_facenet_embeddings_are_unit_vectors_and_siamese_shares_the_encoder():
    torch.manual_seed(0)
    siamese = build("siamese").eval()
    x1, x2 = torch.randn(2, 3, 96, 96), torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        e1, e2 = siamese.encoder(x1), siamese.encoder(x2)
        torch.testing.assert_close(e1.norm(dim=1), torch.ones(2))
        torch.testing.assert_close(siamese(x1, x2), siamese.head(e1, e2))
        torch.testing.assert_close(build("facenet").eval()(torch.randn(1, 3, 64, 48)).norm(), torch.tensor(1.0))


def test_yolo_output_layout_is_what_the_course_decoder_reads():
    # Head weights 0: every cell outputs the head's biases. Only anchor 1 is on: tx, ty, tw, th, to, 3 classes.
    anchors = ((1.0, 1.0), (2.0, 2.0), (3.0, 3.0))
    model = YOLO(3, anchors, (64, 64), widths=(8, 8, 8, 8), neck=()).eval()  # stride 16: S = 4
    with torch.no_grad():
        model.head.weight.zero_()
        bias = model.head.bias.view(3, 8)
        bias[:, 4] = -20.0
        bias[1] = torch.tensor([math.log(0.25 / 0.75), math.log(0.75 / 0.25), math.log(0.5 / 2), math.log(0.25 / 2),
                                20.0, 0.0, 5.0, 0.0])
        out = model(torch.randn(1, 3, 64, 64)).numpy()
    det = decode_course(out, [Transform.identity((64, 64))], anchors, conf_threshold=0.5, iou_threshold=0.5)[0]
    # bx = (sigmoid(tx) + col) / S = (0.25 + col) / 4, by = (0.75 + row) / 4, bw = 2 exp(tw) = 0.5 cells (8 px),
    # bh = 0.25 cells (4 px); class 1 with probability e^5 / (e^5 + 2) times Pc = sigmoid(20).
    expected = sorted([(0.25 + col) * 16 - 4, (0.75 + row) * 16 - 2, (0.25 + col) * 16 + 4, (0.75 + row) * 16 + 2]
                      for row in range(4) for col in range(4))
    np.testing.assert_allclose(sorted(det.xyxy.tolist()), expected, atol=1e-3)
    assert det.class_ids.tolist() == [1] * 16
    np.testing.assert_allclose(det.scores, math.exp(5) / (math.exp(5) + 2) / (1 + math.exp(-20)), rtol=1e-5)


@pytest.mark.parametrize(
    ("name", "kwargs", "grid", "stride"),
    [
        ("yolo-small", {}, (10, 10), 16),  # 160 / 16
        ("yolo-small", {"input_size": (256, 256)}, (16, 16), 16),
        ("yolo-large", {}, (13, 13), 32),  # YOLOv2: 416 / 32
        ("yolo-large", {"input_size": (640, 640)}, (20, 20), 32),
    ],
)
def test_yolo_stores_its_geometry_and_starts_with_a_low_objectness_prior(name, kwargs, grid, stride):
    model = build(name, num_classes=2, **kwargs)
    assert model.grid_size == grid and model.stride == stride and model.num_classes == 2
    assert model.input_size == kwargs.get("input_size", REGISTRY[name].input_shape[1:])
    a = len(model.anchors)
    bias = model.head.bias.detach().view(a, 7)  # (A, 5 + C)
    torch.testing.assert_close(torch.sigmoid(bias[:, 4]), torch.full((a,), 0.01))  # Pc about 1% everywhere
    assert torch.equal(bias[:, [0, 1, 2, 3, 5, 6]], torch.zeros(a, 6))


@pytest.mark.parametrize(
    ("scheme", "variance"),
    [
        ("he", 2.0),  # Var[W] = 2 / n[l-1], for ReLU
        ("xavier", 1.0),  # Var[W] = 1 / n[l-1], for tanh
    ],
)
def test_init_weights_scales_by_fan_in(scheme, variance):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(1000, 2000), torch.nn.Conv2d(40, 500, 5), torch.nn.BatchNorm2d(500))
    with torch.no_grad():
        net[2].weight.fill_(3.0)
        net[2].bias.fill_(3.0)
    assert init_weights(net, scheme) is net
    for layer, fan_in in ((net[0], 1000), (net[1], 40 * 5 * 5)):
        assert abs(layer.weight.var().item() * fan_in / variance - 1) < 0.02  # 2M / 0.5M samples
        assert abs(layer.weight.mean().item()) < 0.01 * math.sqrt(variance / fan_in)
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    assert torch.equal(net[2].weight, torch.ones(500)) and torch.equal(net[2].bias, torch.zeros(500))


# ---------------------------------------------------------------------------------------------------------------
# ONNX export: standard ops only, onnxruntime CPU equals PyTorch.


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("lenet5", (2, 1, 32, 32)),
        ("yolo-small", (2, 3, 160, 160)),
        ("resnet18", (2, 3, 64, 64)),  # a small input: the global average pooling takes any size
        ("facenet", (2, 3, 96, 96)),
    ],
)
def test_onnx_export_parity(tmp_path, name, shape):
    torch.manual_seed(0)
    model = build(name).eval()
    randomize_batch_norm(model)
    x = torch.randn(shape)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(model, (x,), str(path), input_names=["images"], output_names=["output"], opset_version=17,
                      dynamic_axes={"images": {0: "batch"}}, dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(session.run(None, {"images": x.numpy()})[0], expected, atol=1e-4)


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
