"""Sliding windows: the convolutional form equals cropping every window and running the FC classifier (PyTorch and
ONNX), both files carry the window in their metadata, and the score map decodes as a loop over windows does."""

import json
import math

import numpy as np
import pytest
import torch

from edgepipe.export.models import build
from edgepipe.export.models.windows import ConvWindows, WindowClassifier
from edgepipe.export.onnx.pipeline import export_model
from edgepipe.export.options import ExportOptions
from edgepipe.postprocess.decoders import decode
from edgepipe.postprocess.windows import decode_windows
from edgepipe.runtime import load
from edgepipe.runtime.metadata import read_metadata
from tests.decode_refs import assert_matches, letterbox, ref_select

WINDOW, STRIDE = 14, 2


def each_window(image: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """(B, 3, H, W) -> (B * rows * cols, 3, 14, 14): the window at (2 col, 2 row), row-major per image."""
    return torch.stack([image[:, :, STRIDE * r : STRIDE * r + WINDOW, STRIDE * c : STRIDE * c + WINDOW]
                        for r in range(rows) for c in range(cols)], dim=1).flatten(0, 1)


@pytest.mark.parametrize(
    ("size", "grid"),
    [((14, 14), (1, 1)), ((16, 16), (2, 2)), ((28, 28), (8, 8)), ((21, 40), (4, 14))],  # the lecture's two, odd
)
def test_the_convolutional_form_is_the_classifier_at_every_window(size, grid):
    torch.manual_seed(0)
    classifier = WindowClassifier().eval()
    conv = ConvWindows.from_classifier(classifier)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        out = conv(x)  # (2, 4, rows, cols)
        expected = classifier(each_window(x, *grid)).view(2, *grid, 4).permute(0, 3, 1, 2)
    assert tuple(out.shape) == (2, 4, *grid)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_the_fc_layers_become_5x5x400_1x1x400_1x1x4_convolutions():
    conv = build("window-conv")
    shapes = [tuple(m.weight.shape) for m in conv.classifier if isinstance(m, torch.nn.Conv2d)]
    assert shapes == [(400, 16, 5, 5), (400, 400, 1, 1), (4, 400, 1, 1)]


def test_both_onnx_files_agree_window_by_window(tmp_path):
    torch.manual_seed(1)
    report = export_model(ExportOptions("window", tmp_path / "window.onnx", conv=True, imgsz=(64, 80)))
    assert [f.kind for f in report.files] == ["fp32", "conv"]
    classifier, conv = (load(f.path, providers="cpu") for f in report.files)
    assert (classifier.meta.window, classifier.meta.window_stride) == ((WINDOW, WINDOW), STRIDE)
    assert (conv.meta.window, conv.meta.window_stride, conv.meta.head) == ((WINDOW, WINDOW), STRIDE, "windows")
    assert conv.meta.class_names == ("circle", "square", "triangle")  # the background is the output's last channel
    assert conv.meta.preprocess.input_size == (64, 80)
    x = np.random.default_rng(0).uniform(0, 1, (1, 3, 28, 36)).astype(np.float32)  # any size: dynamic height, width
    (out,) = conv.run(x)
    assert out.shape == (1, 4, 8, 12)
    crops = each_window(torch.from_numpy(x), 8, 12).numpy()
    (expected,) = classifier.run(crops)
    np.testing.assert_allclose(out[0].transpose(1, 2, 0).reshape(-1, 4), expected, atol=1e-5, rtol=0)


def test_conv_export_needs_a_window_classifier(tmp_path):
    with pytest.raises(ValueError, match="--conv needs a window classifier"):
        export_model(ExportOptions("lenet5", tmp_path / "l.onnx", conv=True))
    assert not list(tmp_path.iterdir())  # refused before anything was written


def ref_windows(raw: np.ndarray) -> list:
    """raw: (C+1, S_h, S_w) of one image; loops: softmax per window in float64, its best object class."""
    cands = []
    c1, s_h, s_w = raw.shape
    for row in range(s_h):
        for col in range(s_w):
            logits = [float(v) for v in raw[:, row, col]]
            e = [math.exp(v - max(logits)) for v in logits]
            best = max(range(c1 - 1), key=lambda j: e[j])
            x, y = col * STRIDE, row * STRIDE
            cands.append(([x, y, x + WINDOW, y + WINDOW], e[best] / sum(e), best))
    return cands


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("conf", "iou", "agnostic"), [(0.25, 0.45, False), (0.6, 0.3, True), (0.0, 1.0, False)])
def test_decode_windows_matches_a_loop(seed, conf, iou, agnostic):
    rng = np.random.default_rng(seed)
    raw = rng.normal(0, 3, (2, 4, 9, 12)).astype(np.float32)  # two images, 3 classes + background, 9 x 12 windows
    t = letterbox((60, 45), (32, 38))  # windows reach 30 x 36 px of the 32 x 38 input
    names = ("circle", "square", "triangle")
    dets = decode_windows(raw, [t, t], (WINDOW, WINDOW), STRIDE, conf, iou, class_names=names, class_agnostic=agnostic)
    for det, image in zip(dets, raw, strict=True):
        assert_matches(det, ref_select(ref_windows(image), conf, iou, agnostic=agnostic), t)
    same = decode("windows", raw, [t, t], conf, iou, class_names=names, class_agnostic=agnostic, window=(14, 14),
                  window_stride=2)
    assert all(np.array_equal(a.xyxy, b.xyxy) for a, b in zip(dets, same, strict=True))


T = letterbox((32, 32), (32, 32))
RAW = np.zeros((1, 4, 10, 10), np.float32)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: decode_windows(RAW, [T]), r"window must be \(height, width\) in pixels >= 1"),  # no metadata
        (lambda: decode_windows(RAW, [T], (14, 14), 0), "window_stride must be an int >= 1"),
        (lambda: decode_windows(RAW, [T], (14, 14), 3), "windows of 14x14 px, 3 px apart, do not fit the 32x32"),
        (lambda: decode_windows(RAW, [T], (14, 14), 2, class_names=("a", "b")), r"C = 2 \(the number of class_names"),
        (lambda: decode_windows(RAW, [T], (14, 14), 2, anchors=[(1, 1)]), "anchors belong to the yolo-course head"),
        (lambda: decode("yolov8", np.zeros((1, 6, 4)), [T], window=(14, 14)), r"head 'yolov8' takes the options \(\)"),
    ],
)
def test_decode_windows_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_window_metadata_is_required_for_the_head_and_read_from_a_sidecar(tmp_path):
    base = {"task": "detect", "imgsz": [96, 96], "names": ["a"], "head": "windows"}
    with pytest.raises(ValueError, match=r"missing window \(\[height, width\] >= 1\) and window_stride"):
        read_metadata({}, overrides=base)
    (tmp_path / "m.json").write_text(json.dumps({**base, "window": 14, "window_stride": 2}))
    meta = read_metadata({}, tmp_path / "m.onnx")
    assert meta.decode_options() == {"anchors": (), "anchor_units": "grid", "window": (14, 14), "window_stride": 2}
