"""The README's Python examples run as written, in a folder holding the files they name (yolo.onnx, frame.jpg): with
the small course YOLO on a generated scene, and with an Ultralytics-style YOLOv8 file, whose metadata has no anchors.
"""

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from edgepipe.export.data.detection import CLASS_NAMES, render_scene
from tests.decode_refs import ref_iou
from tests.onnx_graphs import save, ultralytics_yolov8_model
from tests.test_layers import REPO

YOLO = REPO / "tests" / "assets" / "yolo-small.onnx"
SCENE_SEED = 10  # three shapes the small YOLO finds (IoU 0.86 to 0.92 with the truth), and nothing else


def python_blocks() -> list[str]:
    """The README's ```python blocks, as written."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```$", text, re.DOTALL | re.MULTILINE)


def run_examples(folder: Path) -> list[dict]:
    """Run every Python block as its own script in folder. Returns the detections they print (lines holding a list
    of dicts with boxes: detections[0].to_dicts())."""
    blocks = python_blocks()
    assert blocks, "README.md has no ```python block"
    printed = []
    for block in blocks:
        result = subprocess.run([sys.executable, "-c", block], cwd=folder, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"this README example failed:\n{block}\n{result.stderr}"
        printed += [ast.literal_eval(line) for line in result.stdout.splitlines() if line.startswith("[")]
    detections = [d for value in printed for d in value if isinstance(d, dict) and "xyxy" in d]
    assert printed, "no README example printed its detections"
    return detections


def test_the_examples_run_on_the_course_yolo(tmp_path):
    scene = render_scene(np.random.default_rng(SCENE_SEED), (480, 640), max_objects=3, min_size=64)
    cv2.imwrite(str(tmp_path / "frame.jpg"), scene.image)
    shutil.copy(YOLO, tmp_path / "yolo.onnx")
    detections = run_examples(tmp_path)
    truth = [(CLASS_NAMES[c], box.tolist()) for box, c in zip(scene.boxes, scene.class_ids, strict=True)]
    for name, box in truth:  # every shape found, in original-image pixels
        assert any(d["class_name"] == name and ref_iou(d["xyxy"], box) >= 0.5 for d in detections), (name, detections)
    for d in detections:  # and nothing else
        assert any(d["class_name"] == name and ref_iou(d["xyxy"], box) >= 0.5 for name, box in truth), d


def test_the_examples_run_on_an_ultralytics_yolov8_file(tmp_path):
    raw = np.zeros((1, 7, 2), np.float32)  # (1, 4 + C, N): cx, cy, w, h in the 64 x 64 input, then 3 class scores
    raw[0, :, 0] = [32, 32, 20, 10, 0.0, 0.0, 0.9]  # a car
    raw[0, :, 1] = [10, 50, 8, 8, 0.6, 0.0, 0.0]  # a person
    save(ultralytics_yolov8_model(raw, ("person", "bicycle", "car")), tmp_path / "yolo.onnx")
    cv2.imwrite(str(tmp_path / "frame.jpg"), np.full((96, 128, 3), 60, np.uint8))
    # The 96 x 128 frame is letterboxed into 64 x 64 at scale 0.5 with 8 px bands above and below: x / 0.5,
    # (y - 8) / 0.5 maps the boxes back, e.g. the car's x from 32 - 20 / 2 = 22 to 44.
    assert run_examples(tmp_path) == [
        {"xyxy": [44.0, 38.0, 84.0, 58.0], "score": 0.9, "class_id": 2, "class_name": "car"},
        {"xyxy": [12.0, 76.0, 28.0, 92.0], "score": 0.6, "class_id": 0, "class_name": "person"},
    ]
