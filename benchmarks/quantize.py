"""`edgepipe quantize` on Ultralytics-style YOLOv8 files: int8 (head in fp32) against fp32, speed and agreement.

Two files, since no weights can be downloaded here:
- a YOLOv8n-shaped graph (the architecture of yolov8n.yaml: C2f, SPPF, the decoupled head with DFL; 3.2M parameters)
  with fresh weights, at 640x640, exported with Ultralytics' output (1, 84, 8400) and metadata keys: its speed
  through the same int8 path `quantize` takes (fresh weights detect nothing, so it has no agreement to measure);
- the trained course YOLO rewritten as a YOLOv8 export (tests/onnx_graphs.py, course_as_yolov8): `edgepipe quantize`
  itself on generated scenes, with its agreement against the model's own detections.

Run from the project root: python -m benchmarks.quantize [--runs 200]. Results go in docs/export.md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
import onnx
import torch
from torch import nn

from edgepipe.apps.quantize import QuantizeOptions, quantize
from edgepipe.export.data.detection import render_scene
from edgepipe.runtime import load, preprocess
from edgepipe.runtime.bench import measure
from edgepipe.runtime.variants import int8_model, save_model
from tests.onnx_graphs import course_as_yolov8

ASSET = Path("tests/assets/yolo-small.onnx")


class Conv(nn.Module):
    """Conv2d + BatchNorm + SiLU (fused into the Conv before export)."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c: int, shortcut: bool) -> None:
        super().__init__()
        self.cv1, self.cv2, self.add = Conv(c, c, 3), Conv(c, c, 3), shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    def __init__(self, c1: int, c2: int, n: int, shortcut: bool) -> None:
        super().__init__()
        self.c = c2 // 2
        self.cv1, self.cv2 = Conv(c1, 2 * self.c, 1), Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, c1: int, c2: int) -> None:
        super().__init__()
        self.cv1, self.cv2, self.m = Conv(c1, c1 // 2, 1), Conv(c1 * 2, c2, 1), nn.MaxPool2d(5, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        y.extend(self.m(y[-1]) for _ in range(3))
        return self.cv2(torch.cat(y, 1))


class YOLOv8n(nn.Module):
    """yolov8n.yaml at width 0.25, depth 0.33; forward gives Ultralytics' exported output (B, 4 + nc, anchors):
    cx, cy, w, h in input pixels (DFL over 16 bins), then the class scores after sigmoid."""

    def __init__(self, nc: int = 80, size: int = 640) -> None:
        super().__init__()
        self.backbone = nn.ModuleList([Conv(3, 16, 3, 2), Conv(16, 32, 3, 2), C2f(32, 32, 1, True),
                                       Conv(32, 64, 3, 2), C2f(64, 64, 2, True), Conv(64, 128, 3, 2),
                                       C2f(128, 128, 2, True), Conv(128, 256, 3, 2), C2f(256, 256, 1, True),
                                       SPPF(256, 256)])
        self.up = nn.Upsample(scale_factor=2.0, mode="nearest")
        self.h1, self.h2 = C2f(384, 128, 1, False), C2f(192, 64, 1, False)
        self.d1, self.h3 = Conv(64, 64, 3, 2), C2f(192, 128, 1, False)
        self.d2, self.h4 = Conv(128, 128, 3, 2), C2f(384, 256, 1, False)
        self.box = nn.ModuleList(nn.Sequential(Conv(c, 64, 3), Conv(64, 64, 3), nn.Conv2d(64, 64, 1))
                                 for c in (64, 128, 256))
        self.cls = nn.ModuleList(nn.Sequential(Conv(c, 80, 3), Conv(80, 80, 3), nn.Conv2d(80, nc, 1))
                                 for c in (64, 128, 256))
        for stride, b, c in zip((8, 16, 32), self.box, self.cls, strict=True):  # Ultralytics' bias init
            nn.init.constant_(b[-1].bias, 1.0)
            nn.init.constant_(c[-1].bias, float(np.log(5 / nc / (640 / stride) ** 2)))
        anchors, strides = [], []
        for s in (8, 16, 32):
            g = size // s
            yy, xx = torch.meshgrid(torch.arange(g) + 0.5, torch.arange(g) + 0.5, indexing="ij")
            anchors.append(torch.stack([xx.ravel(), yy.ravel()]))
            strides.append(torch.full((g * g,), float(s)))
        self.register_buffer("anchors", torch.cat(anchors, 1)[None])  # (1, 2, A)
        self.register_buffer("strides", torch.cat(strides)[None, None])  # (1, 1, A)
        self.register_buffer("bins", torch.arange(16, dtype=torch.float32).view(1, 16, 1, 1))
        self.nc = nc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        for i, layer in enumerate(self.backbone):
            x = layer(x)
            if i in (4, 6):
                feats.append(x)
        p3, p4 = feats
        h1 = self.h1(torch.cat([self.up(x), p4], 1))
        out3 = self.h2(torch.cat([self.up(h1), p3], 1))
        out4 = self.h3(torch.cat([self.d1(out3), h1], 1))
        out5 = self.h4(torch.cat([self.d2(out4), x], 1))
        b = x.shape[0]
        raw = torch.cat([torch.cat([bx(f), cl(f)], 1).view(b, 64 + self.nc, -1)
                         for f, bx, cl in zip((out3, out4, out5), self.box, self.cls, strict=True)], 2)
        box, cls = raw.split((64, self.nc), 1)
        dist = (box.view(b, 4, 16, -1).transpose(2, 1).softmax(1) * self.bins).sum(1)  # DFL: (B, 4, A)
        lt, rb = dist.chunk(2, 1)
        xy1, xy2 = self.anchors - lt, self.anchors + rb
        xywh = torch.cat([(xy1 + xy2) / 2, xy2 - xy1], 1) * self.strides
        return torch.cat([xywh, cls.sigmoid()], 1)


def yolov8n_onnx(path: Path, size: int = 640) -> Path:
    """The YOLOv8n-shaped model, BatchNorm fused into its convolutions, as Ultralytics exports it."""
    torch.manual_seed(0)
    model = YOLOv8n(size=size).eval()
    for module in model.modules():
        if isinstance(module, Conv):
            module.conv = torch.nn.utils.fusion.fuse_conv_bn_eval(module.conv, module.bn)
            module.bn = nn.Identity()
    print(f"YOLOv8n-shaped model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")
    torch.onnx.export(model, (torch.zeros(1, 3, size, size),), str(path), input_names=["images"],
                      output_names=["output0"], opset_version=17, dynamo=False)
    proto = onnx.load(str(path))
    names = {i: f"class{i}" for i in range(80)}
    for key, value in {"author": "Ultralytics", "task": "detect", "stride": "32", "imgsz": f"[{size}, {size}]",
                       "names": str(names)}.items():
        proto.metadata_props.add(key=key, value=value)
    return save_model(proto, path)


def speed(tmp: Path, runs: int) -> None:
    fp32 = yolov8n_onnx(tmp / "yolov8n.onnx")
    model = load(fp32, providers="cpu")
    rng = np.random.default_rng(0)
    frames = [render_scene(rng, (480, 640)).image for _ in range(33)]
    calibration = preprocess(frames[:32], model.spec).batch
    int8 = save_model(int8_model(fp32, calibration), tmp / "yolov8n.int8.onnx")
    batch = preprocess(frames[32], model.spec).batch
    for threads in (0, 1):
        sessions = {name: load(p, providers="cpu", intra_op_threads=threads, spin=False) for name, p in
                    (("fp32", fp32), ("int8", int8))}
        t = measure({n: (lambda m=m: m.run(batch)) for n, m in sessions.items()}, 1, runs, 5)
        what = "onnxruntime's default threads" if threads == 0 else "one intra-op thread"
        print(f"YOLOv8n-shaped, 640x640, {what}: fp32 p50 {t['fp32'].p50:.1f} ms, int8 (head fp32) p50 "
              f"{t['int8'].p50:.1f} ms: {t['fp32'].p50 / t['int8'].p50:.2f}x; sizes {fp32.stat().st_size / 2**20:.1f}"
              f" / {int8.stat().st_size / 2**20:.1f} MB")


def agreement(tmp: Path, runs: int) -> None:
    v8 = save_model(course_as_yolov8(onnx.load(str(ASSET)), ["circle", "square", "triangle"], 160),
                    tmp / "course-v8.onnx")
    calib = tmp / "calib"
    calib.mkdir()
    rng = np.random.default_rng(7)
    for i in range(96):  # 64 calibrate, the last 32 are held back
        cv2.imwrite(str(calib / f"{i:03d}.png"), render_scene(rng).image)
    report = quantize(QuantizeOptions(v8, str(calib), holdout=32, fp16=True, uint8_input=True, bench_runs=runs,
                                      keep_failed=True))
    print("\n".join(report.lines()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200, help="interleaved timed runs per model")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        speed(Path(tmp), args.runs)
        agreement(Path(tmp), args.runs)


if __name__ == "__main__":
    main()
