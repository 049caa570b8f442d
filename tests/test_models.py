"""The model zoo: parameter counts from per-layer formulas, shapes, the course's equations, ONNX parity."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from apps.cli import main
from export.models import REGISTRY, build, count_params
from export.models.facenet import SiameseHead
from export.models.inception import GOOGLENET, Inception
from export.models.resnet import BasicBlock
from export.models.vgg import VGG16_GROUPS


def conv(f: int, c_in: int, c_out: int, bias: bool = True) -> int:
    return f * f * c_in * c_out + (c_out if bias else 0)


def fc(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def bn(c: int) -> int:
    return 2 * c


def resnet_params(depth: int, classes: int = 1000) -> int:
    """torchvision's ResNet, counted layer by layer."""
    blocks = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}[depth]
    expansion = 1 if depth < 50 else 4
    total = conv(7, 3, 64, False) + bn(64)
    c_in = 64
    for stage, (width, n) in enumerate(zip((64, 128, 256, 512), blocks, strict=True)):
        for j in range(n):
            c_out = width * expansion
            if expansion == 1:
                total += conv(3, c_in, width, False) + bn(width) + conv(3, width, width, False) + bn(width)
            else:
                total += (conv(1, c_in, width, False) + bn(width) + conv(3, width, width, False) + bn(width)
                          + conv(1, width, c_out, False) + bn(c_out))
            if j == 0 and (stage > 0 or c_in != c_out):
                total += conv(1, c_in, c_out, False) + bn(c_out)  # W_s projection
            c_in = c_out
    return total + fc(c_in, classes)


def googlenet_params(classes: int = 1000) -> int:
    total = conv(7, 3, 64) + conv(1, 64, 64) + conv(3, 64, 192)
    c_in = 192
    for c1, c3r, c3, c5r, c5, pp in GOOGLENET.values():
        total += conv(1, c_in, c1) + conv(1, c_in, c3r) + conv(3, c3r, c3) + conv(1, c_in, c5r) + conv(5, c5r, c5)
        total += conv(1, c_in, pp)
        c_in = c1 + c3 + c5 + pp
    return total + fc(c_in, classes)


def vgg16_params() -> int:
    total, c_in = 0, 3
    for filters, n in VGG16_GROUPS:
        for _ in range(n):
            total += conv(3, c_in, filters)
            c_in = filters
    return total + fc(25088, 4096) + fc(4096, 4096) + fc(4096, 1000)


EXPECTED = {
    "logistic": fc(64, 1),
    "softmax": fc(64, 10),
    "shallow": fc(64, 32) + fc(32, 10),
    "deep": fc(64, 64) + fc(64, 32) + fc(32, 10),
    # 156 + 2,416 + 48,120 + 10,164 + 850 = 61,706
    "lenet5": conv(5, 1, 6) + conv(5, 6, 16) + fc(400, 120) + fc(120, 84) + fc(84, 10),
    # 34,944 + 614,656 + 885,120 + 1,327,488 + 884,992 + 37,752,832 + 16,781,312 + 4,097,000 = 62,378,344
    "alexnet": conv(11, 3, 96) + conv(5, 96, 256) + conv(3, 256, 384) + conv(3, 384, 384) + conv(3, 384, 256)
    + fc(9216, 4096) + fc(4096, 4096) + fc(4096, 1000),
    "vgg16": vgg16_params(),  # 138,357,544
    "resnet18": resnet_params(18), "resnet34": resnet_params(34), "resnet50": resnet_params(50),
    "resnet101": resnet_params(101), "resnet152": resnet_params(152),
    "googlenet": googlenet_params(),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parameter_counts_match_the_architecture(name):
    with torch.device("meta"):
        assert count_params(build(name)) == EXPECTED[name]


def test_well_known_figures():
    # The published counts (torchvision's for ResNet): the formulas above agree with them.
    assert EXPECTED["lenet5"] == 61_706
    assert EXPECTED["vgg16"] == 138_357_544
    assert [EXPECTED[f"resnet{d}"] for d in (18, 34, 50, 101, 152)] == [
        11_689_512, 21_797_672, 25_557_032, 44_549_160, 60_192_808]


@pytest.mark.parametrize(
    ("name", "shape", "out"),
    [
        ("logistic", (2, 64), (2, 1)),
        ("deep", (2, 64), (2, 10)),
        ("lenet5", (2, 1, 32, 32), (2, 10)),
        ("alexnet", (1, 3, 227, 227), (1, 1000)),
        ("resnet18", (1, 3, 96, 96), (1, 1000)),
        ("googlenet", (1, 3, 224, 224), (1, 1000)),
        ("yolo-small", (2, 3, 160, 160), (2, 3 * 8, 10, 10)),
        ("yolo-large", (1, 3, 416, 416), (1, 5 * 8, 13, 13)),
        ("facenet", (3, 3, 64, 64), (3, 128)),
    ],
)
def test_output_shapes(name, shape, out):
    model = build(name).eval()
    with torch.no_grad():
        assert tuple(model(torch.randn(shape)).shape) == out


def test_vgg16_feature_map_is_7x7x512():
    with torch.device("meta"):
        assert tuple(build("vgg16").features(torch.empty(1, 3, 224, 224)).shape) == (1, 512, 7, 7)


def test_yolo_sizes_and_objectness_prior():
    model = build("yolo-large", input_size=(640, 640))
    assert model.grid_size == (20, 20) and model.stride == 32
    bias = model.head.bias.view(5, 8)[:, 4]
    assert torch.sigmoid(bias).allclose(torch.tensor(0.01))
    with pytest.raises(ValueError, match=r"multiple of the stride 16"):
        build("yolo-small", input_size=(250, 250))


def test_residual_block_is_relu_of_z_plus_shortcut():
    torch.manual_seed(0)
    block = BasicBlock(8, 16, stride=2).eval()
    a = torch.randn(2, 8, 10, 10)
    r = block.residual
    z = r[2](r[1](r[0](a)))  # BN(W2 relu(BN(W1 a)))
    ws = block.shortcut(a)  # the learned projection W_s: shapes differ
    assert ws.shape == z.shape == (2, 16, 5, 5)
    assert torch.allclose(block(a), torch.relu(z + ws))
    same = BasicBlock(8, 8).eval()
    assert isinstance(same.shortcut, torch.nn.Identity)


def test_inception_module_concatenates_branches():
    module = Inception(192, 64, 96, 128, 16, 32, 32)  # GoogLeNet's 3a
    x = torch.randn(1, 192, 28, 28)
    out = module(x)
    assert out.shape == (1, 256, 28, 28)
    branches = [module.branch1(x), module.branch3(x), module.branch5(x), module.branch_pool(x)]
    assert [b.shape[1] for b in branches] == [64, 128, 32, 32]
    assert torch.equal(out, torch.cat(branches, dim=1))


def test_facenet_embeddings_are_unit_vectors_and_siamese_head_is_logistic():
    emb = build("facenet").eval()(torch.randn(4, 3, 64, 64))
    assert torch.allclose(emb.norm(dim=1), torch.ones(4), atol=1e-5)
    head = SiameseHead(128)
    e1, e2 = torch.randn(3, 128), torch.randn(3, 128)
    w, b = head.linear.weight[0], head.linear.bias[0]
    by_hand = torch.stack([torch.sigmoid((w * (e1[i] - e2[i]).abs()).sum() + b) for i in range(3)])
    assert torch.allclose(head(e1, e2), by_hand, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "shape", "kwargs"),
    [("lenet5", (2, 1, 32, 32), {}), ("yolo-small", (2, 3, 160, 160), {}), ("resnet18", (2, 3, 64, 64), {}),
     ("facenet", (2, 3, 64, 64), {})],
)
def test_onnx_export_parity(tmp_path, name, shape, kwargs):
    torch.manual_seed(0)
    model = build(name, **kwargs).eval()
    x = torch.randn(shape)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(model, (x,), str(path), input_names=["images"], output_names=["output"], opset_version=17,
                      dynamic_axes={"images": {0: "batch"}}, dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(session.run(None, {"images": x.numpy()})[0], expected, atol=1e-4)


def test_registry_errors_and_cli(capsys):
    with pytest.raises(ValueError, match=r"model must be one of \[.*'lenet5'.*\], but got 'lenet6'"):
        build("lenet6")
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(REGISTRY)
    assert rows["lenet5"]["params"] == 61_706 and rows["vgg16"]["input_shape"] == [3, 224, 224]
