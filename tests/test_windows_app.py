"""The trained sliding-window detector (tests/assets/window.conv.onnx) in the apps: `edgepipe detect` finds the
generated shapes in their scenes at any input size, and `edgepipe eval` measures it on the held-out scenes."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepipe.apps.cli import main
from edgepipe.export.data.windows import window_scenes
from edgepipe.export.evaluate import evaluate
from edgepipe.export.options import EvalOptions
from edgepipe.postprocess.iou import box_iou
from edgepipe.runtime import load

CONV = Path(__file__).resolve().parent / "assets" / "window.conv.onnx"


def found(truth_boxes, truth_classes, detections) -> int:
    """How many true objects have a detection of their class with IoU >= 0.5."""
    boxes = np.array([d["xyxy"] for d in detections], np.float32).reshape(-1, 4)
    classes = np.array([d["class_id"] for d in detections])
    iou = box_iou(truth_boxes, boxes)
    return int(sum(((iou[i] >= 0.5) & (classes == c)).any() for i, c in enumerate(truth_classes)))


def frames(kind: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Test scenes as frames with their truth (image, boxes, class ids): "as is" (96 x 96, the model's input size),
    "mosaic" (2 x 2 scenes in one 192 x 192 frame, objects at their own scale) or "double" (each scene upscaled
    twice: the letterbox brings it back to 96)."""
    scenes = window_scenes("test", tiny=True)
    if kind == "as is":
        return [(s.image, s.boxes, s.class_ids) for s in scenes]
    if kind == "double":
        return [(cv2.resize(s.image, (192, 192), interpolation=cv2.INTER_NEAREST), s.boxes * 2, s.class_ids)
                for s in scenes]
    out = []
    for group in zip(*[iter(scenes)] * 4, strict=False):
        image = np.vstack([np.hstack([group[0].image, group[1].image]), np.hstack([group[2].image, group[3].image])])
        shifts = np.float32([[0, 0, 0, 0], [96, 0, 96, 0], [0, 96, 0, 96], [96, 96, 96, 96]])
        boxes = np.concatenate([s.boxes + shift for s, shift in zip(group, shifts, strict=True)])
        out.append((image, boxes, np.concatenate([s.class_ids for s in group])))
    return out


@pytest.mark.parametrize(("kind", "imgsz"), [("as is", []), ("mosaic", ["--imgsz", "192", "192"]), ("double", [])])
def test_detect_finds_the_shapes_in_held_out_scenes(tmp_path, kind, imgsz):
    cases = frames(kind)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, (image, _, _) in enumerate(cases):
        cv2.imwrite(str(folder / f"{i:02d}.png"), image)
    assert main(["detect", "--model", str(CONV), "--source", str(folder), "--provider", "cpu", "--no-show", "--conf",
                 "0.5", "--jsonl", str(tmp_path / "out.jsonl"), *imgsz]) == 0
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(records) == len(cases)
    hits = sum(found(boxes, classes, r["detections"]) for (_, boxes, classes), r in zip(cases, records, strict=True))
    truth = sum(len(boxes) for _, boxes, _ in cases)
    assert hits >= 0.9 * truth, (hits, truth)


def test_eval_of_the_convolutional_form_on_the_test_scenes():
    meta = load(CONV, providers="cpu").meta
    assert (meta.head, meta.window, meta.window_stride) == ("windows", (14, 14), 2)
    result = evaluate(EvalOptions(CONV))
    assert result["task"] == "detect" and result["map50"] > 0.8 and result["recall"] > 0.95
