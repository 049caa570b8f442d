"""`edgepipe demo`: decode a generated course-YOLO output with known objects and print the detections."""

from __future__ import annotations

import argparse
import json

import numpy as np

from postprocess import Transform, assign_targets, box_iou, decode

CLASS_NAMES = ("circle", "square", "triangle")
ANCHORS = ((1.0, 1.0), (2.0, 3.0), (3.5, 2.0), (5.0, 5.0), (9.0, 8.0))  # grid cells
INPUT_SIZE = (416, 416)
GRID = 13


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the postprocess pipeline on a generated detector output")
    p.add_argument("--objects", type=int, default=5, help="objects in the generated scene")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--conf", type=float, default=0.25, help="score threshold")
    p.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold")
    p.add_argument("--json", action="store_true", help="print the detections as JSON")
    p.set_defaults(func=run)


def generated_scene(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n objects in a 640x480 frame. Returns boxes (n, 4) float32 xyxy pixels and class ids (n,) int64."""
    centers = rng.uniform([60, 60], [580, 420], (n, 2))
    sizes = rng.uniform(30, 160, (n, 2))
    boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=1)
    return np.clip(boxes, 0, [640, 480, 640, 480]).astype(np.float32), rng.integers(0, len(CLASS_NAMES), n)


def synthetic_output(boxes_in: np.ndarray, class_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a trained course YOLO would output for these objects: (1, A*(5+C), S, S).

    boxes_in: (N, 4) float32 xyxy network-input pixels. Each object's responsible cell and anchor (the course's
    assignment) gets a confident prediction; the anchor next to it a weaker, shifted duplicate for NMS to remove.
    """
    a, c = len(ANCHORS), len(CLASS_NAMES)
    raw = np.zeros((a, 5 + c, GRID, GRID), dtype=np.float32)
    raw[:, 4] = -9.0  # background: objectness ~ 1e-4
    t = assign_targets(boxes_in, np.array(ANCHORS), GRID, INPUT_SIZE)
    offsets = np.clip(t.offsets, 0.02, 0.98)
    for i in range(len(boxes_in)):
        for k, (conf, jitter) in ((t.anchor_ids[i], (4.0, 0.0)), ((t.anchor_ids[i] + 1) % a, (1.0, 0.15))):
            cell = raw[k, :, t.rows[i], t.cols[i]]
            cell[:2] = np.log(offsets[i] / (1 - offsets[i])) + rng.normal(0, jitter, 2)
            cell[2:4] = np.log((boxes_in[i, 2:] - boxes_in[i, :2]) / (np.array(ANCHORS[k]) * 32))
            cell[4] = conf
            cell[5 + class_ids[i]] = 5.0
    return raw.reshape(1, a * (5 + c), GRID, GRID)


def run(args: argparse.Namespace) -> int:
    rng = np.random.default_rng(args.seed)
    truth, truth_classes = generated_scene(rng, args.objects)
    scale = min(INPUT_SIZE[0] / 480, INPUT_SIZE[1] / 640)  # 640x480 letterboxed into 416x416
    transform = Transform(scale, scale, 0.0, (INPUT_SIZE[0] - 480 * scale) / 2, (480, 640), INPUT_SIZE)
    boxes_in = truth * scale + np.array([0, transform.pad_y, 0, transform.pad_y], dtype=np.float32)
    raw = synthetic_output(boxes_in, truth_classes, rng)
    det = decode("yolo-course", raw, [transform], args.conf, args.iou, class_names=CLASS_NAMES, anchors=ANCHORS)[0]
    if args.json:
        print(json.dumps({"detections": det.to_dicts(), "truth": truth.round(1).tolist()}))
        return 0
    print(f"generated {len(truth)} objects in a 640x480 frame; decoded {raw.shape} course-YOLO output "
          f"({GRID}x{GRID} grid, {len(ANCHORS)} anchors, {len(CLASS_NAMES)} classes) with NMS at IoU {args.iou}")
    best_iou = box_iou(det.xyxy, truth).max(axis=1) if len(truth) else np.zeros(len(det))
    for d, iou in zip(det.to_dicts(), best_iou, strict=True):
        print(f"  {d['class_name']:<9} score {d['score']:.3f}  xyxy {d['xyxy']}  IoU with truth {iou:.3f}")
    print(f"{len(det)} detections for {len(truth)} objects")
    return 0
