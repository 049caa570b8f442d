"""Writes the tiny Ultralytics YOLOv8 exports the re-targeting tests compare against (run in an Ultralytics venv).

python tests/assets/ultralytics/make.py, with `ultralytics` installed (e.g. runs/ultralytics-venv, made by
python -m benchmarks.ultralytics). One fresh YOLOv8 with 3 classes and widths 1/16 of YOLOv8n's (seeded), exported
by Ultralytics itself at 96x96 (the file edgepipe re-targets; simplified, Ultralytics' default, and plain) and at
64x96 (what Ultralytics writes for that size: the reference). Batch norm is calibrated on noise images and the
class layers get random weights, so that scores spread over (0, 1). Needs onnxslim for the simplified files.
"""

import os
import shutil
from pathlib import Path

import torch
from ultralytics import YOLO

HERE = Path(__file__).resolve().parent
CONFIG = """
nc: 3
scales:
  t: [0.33, 0.0625, 1024]
backbone:
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 1, Conv, [128, 3, 2]]
  - [-1, 3, C2f, [128, True]]
  - [-1, 1, Conv, [256, 3, 2]]
  - [-1, 6, C2f, [256, True]]
  - [-1, 1, Conv, [512, 3, 2]]
  - [-1, 6, C2f, [512, True]]
  - [-1, 1, Conv, [1024, 3, 2]]
  - [-1, 3, C2f, [1024, True]]
  - [-1, 1, SPPF, [1024, 5]]
head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 6], 1, Concat, [1]]
  - [-1, 3, C2f, [512]]
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 4], 1, Concat, [1]]
  - [-1, 3, C2f, [256]]
  - [-1, 1, Conv, [256, 3, 2]]
  - [[-1, 12], 1, Concat, [1]]
  - [-1, 3, C2f, [512]]
  - [-1, 1, Conv, [512, 3, 2]]
  - [[-1, 9], 1, Concat, [1]]
  - [-1, 3, C2f, [1024]]
  - [[15, 18, 21], 1, Detect, [nc]]
"""


def main() -> None:
    os.environ["YOLO_OFFLINE"] = "1"
    torch.manual_seed(0)
    work = HERE / "work"
    work.mkdir(exist_ok=True)
    (work / "yolov8t.yaml").write_text(CONFIG)
    model = YOLO(str(work / "yolov8t.yaml"))
    net = model.model
    for m in net.modules():  # batch norm statistics from noise images, so that activations keep their scale
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    with torch.no_grad():
        for _ in range(4):
            net(torch.rand(8, 3, 96, 96))
    net.eval()
    with torch.no_grad():
        for branch in net.model[-1].cv3:
            branch[-1].bias.fill_(-2.0)
            branch[-1].weight.normal_(0.0, 2.0)
    for size, simplify in (((96, 96), True), ((64, 96), True), ((96, 96), False)):
        path = model.export(format="onnx", imgsz=list(size), simplify=simplify, dynamic=False, opset=17)
        name = f"yolov8t-{size[0]}x{size[1]}{'' if simplify else '-plain'}.onnx"
        shutil.move(path, HERE / name)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
