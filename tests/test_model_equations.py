"""The course's equations recomputed by hand for each zoo model's layers, and ONNX parity of the models."""

import math

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch.nn import functional as F

from edgepipe.export.models import REGISTRY, build, init_weights
from edgepipe.export.models.facenet import SiameseHead
from edgepipe.export.models.inception import Inception, conv1x1
from edgepipe.export.models.resnet import BasicBlock, Bottleneck
from edgepipe.export.models.yolo import YOLO
from edgepipe.postprocess.boxes import Transform
from edgepipe.postprocess.decoders import decode_course

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
