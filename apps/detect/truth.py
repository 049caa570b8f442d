"""Score the app's JSON Lines against a generated video's ground truth: recall and precision, line crossings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepipe.postprocess.iou import box_iou


@dataclass(frozen=True)
class Match:
    """truth: objects in the ground truth; found: those matched by a detection of the same class at IoU >= iou;
    detections: detections in all; recall = found / truth, precision = matched detections / detections."""

    truth: int
    found: int
    detections: int
    recall: float
    precision: float


def read_jsonl(path: str | Path) -> list[dict]:
    """The records of a JSON Lines file, in order."""
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def match(predicted: list[dict], truth: list[dict], iou: float = 0.5) -> Match:
    """predicted: the app's records ({"frame", "detections": [{"xyxy", "score", "class_id"}]}); truth: the
    video's ({"frame", "boxes", "class_ids"}). Greedy matching per frame and class, highest score first."""
    by_frame = {r["frame"]: r["detections"] for r in predicted}
    n_truth = found = n_det = matched = 0
    for record in truth:
        dets = by_frame.get(record["frame"], [])
        boxes = np.array(record["boxes"], np.float32).reshape(-1, 4)
        classes = np.array(record["class_ids"], np.int64)
        n_truth += len(boxes)
        n_det += len(dets)
        taken = np.zeros(len(boxes), bool)
        for d in sorted(dets, key=lambda d: -d["score"]):
            if not len(boxes):
                break
            overlap = box_iou(np.array([d["xyxy"]], np.float32), boxes)[0]
            overlap[(classes != d["class_id"]) | taken] = -1.0
            best = int(overlap.argmax())
            if overlap[best] >= iou:
                taken[best] = True
                matched += 1
        found += int(taken.sum())
    return Match(n_truth, found, n_det, found / max(n_truth, 1), matched / max(n_det, 1))


def truth_crossings(truth: list[dict], x: float) -> dict[str, int]:
    """Crossings of the vertical line at x by a generated video's objects, from the ids in its ground truth: each
    object's box center frame to frame (the objects cross the whole frame, so the line's ends never matter)."""
    side_of: dict[int, float] = {}
    out = {"left_to_right": 0, "right_to_left": 0}
    for record in truth:
        for box, obj in zip(record["boxes"], record["ids"], strict=True):
            side = float(np.sign((box[0] + box[2]) / 2 - x))
            if side and side_of.get(obj, side) != side:
                out["left_to_right" if side > 0 else "right_to_left"] += 1
            side_of[obj] = side or side_of.get(obj, 0.0)
    return out
