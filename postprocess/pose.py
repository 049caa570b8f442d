"""Pose heads: boxes with landmarks, the course YOLO's (2 numbers per landmark) and Ultralytics YOLOv8/YOLO11 pose."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgepipe.postprocess.anchors import check_anchors
from edgepipe.postprocess.boxes import Transform
from edgepipe.postprocess.decoders import (
    COURSE_LAYOUTS,
    _check_classes,
    _check_no_anchors,
    _check_output,
    _check_transforms,
    _course_candidates,
    _course_raw,
    _selection,
    _sigmoid,
    _yolov8_candidates,
)
from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.errors import UserError


def decode_course_pose(
    outputs: np.ndarray,
    transforms: Sequence[Transform],
    anchors: Sequence[Sequence[float]] | np.ndarray = (),
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_det: int = 300,
    class_names: Sequence[str] = (),
    anchor_units: str = "grid",
    class_agnostic: bool = False,
    layout: str = "channels",
    kpt_shape: Sequence[int] = (),
    class_keypoints: Sequence[int] = (),
) -> list[Detections]:
    """The course's YOLO head with landmarks: per anchor tx, ty, tw, th, to, C class logits, then K pairs (kx, ky),
    the course's 2 outputs per landmark.

    outputs: float, layout "channels" (B, A*(5+C+2K), S_h, S_w) or "cells" (B, S_h, S_w, A, 5+C+2K). Boxes, scores
    and classes as decode_course. A box's landmark k is at (bx + kx * bw, by + ky * bh) input pixels: an offset from
    the decoded box's center (bx, by) in units of its width and height. kpt_shape: (K, 2) (the metadata's,
    required). class_keypoints: how many of the K slots each class uses, the first ones (the rest get keypoint score
    0); () when all do.
    Returns: one Detections per image with keypoints (N, K, 2) in original-image pixels and keypoint_scores (N, K).
    """
    selection = _selection(conf_threshold, iou_threshold, max_det, class_names, class_agnostic)
    k, _ = _check_kpt_shape(kpt_shape, (2,))
    anchor_wh = check_anchors(anchors, anchor_units)
    raw = _course_raw(outputs, len(anchor_wh), layout, ())  # (B, A, 5+C+2K, S_h, S_w)
    c = raw.shape[2] - 5 - 2 * k
    _check_classes(c, selection.class_names, f"{COURSE_LAYOUTS.get(layout)} with 5+C+2K channels per anchor, K = {k}",
                   raw.shape)
    counts = _class_counts(class_keypoints, c, k)
    _check_transforms(transforms, len(raw))
    results = []
    for image, t in zip(raw, transforms, strict=True):
        cell = (t.dst_size[0] / image.shape[2], t.dst_size[1] / image.shape[3])  # (h, w) input pixels
        anchors_px = anchor_wh * ((cell[1], cell[0]) if anchor_units == "grid" else (1.0, 1.0))  # (A, 2)
        boxes, scores, best = _course_candidates(image[:, : 5 + c], anchors_px, cell, selection.conf)
        a_idx, row, col = np.nonzero(_sigmoid(image[:, 4]) >= selection.conf)  # the candidates, in the same order
        offsets = image[a_idx, 5 + c :, row, col].reshape(-1, k, 2)  # (K', K, 2) in box sizes
        center, size = (boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]  # (K', 2) input pixels
        points = (center[:, None] + offsets * size[:, None]).astype(np.float32)  # (K', K, 2)
        present = (np.arange(k) < counts[best][:, None]).astype(np.float32)  # (K', K)
        results.append(selection(boxes, scores, best, t, points, present))
    return results


def decode_yolov8_pose(
    outputs: np.ndarray,
    transforms: Sequence[Transform],
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_det: int = 300,
    class_names: Sequence[str] = (),
    class_agnostic: bool = False,
    anchors: Sequence[Sequence[float]] | np.ndarray = (),
    kpt_shape: Sequence[int] = (),
) -> list[Detections]:
    """Ultralytics YOLOv8 / YOLO11 pose, as exported to ONNX.

    outputs: float (B, 4+C+K*D, N): rows cx, cy, w, h in network-input pixels, C class scores after sigmoid, then
    per keypoint its x, y in network-input pixels and, when D = 3, its visibility after sigmoid. kpt_shape: (K, D)
    (the metadata's kpt_shape, required). Boxes and scores as decode_yolov8; keypoint_scores are the visibilities
    (1 when D = 2). anchors: () only. Returns: one Detections per image with keypoints (N, K, 2) in original-image
    pixels and keypoint_scores (N, K).
    """
    selection = _selection(conf_threshold, iou_threshold, max_det, class_names, class_agnostic)
    _check_no_anchors(anchors, "yolov8-pose")
    k, d = _check_kpt_shape(kpt_shape, (2, 3))
    layout = f"(B, 4+C+K*D, N) with K*D = {k * d}"
    out = _check_output(outputs, 3, layout)
    c = out.shape[1] - 4 - k * d
    _check_classes(c, selection.class_names, layout, out.shape)
    _check_transforms(transforms, len(out))
    results = []
    for image, t in zip(out, transforms, strict=True):
        boxes, scores, classes, extra = _yolov8_candidates(image, c, selection.conf, layout)
        points = extra.reshape(k, d, -1).transpose(2, 0, 1)  # (N', K, D)
        visible = points[:, :, 2] if d == 3 else np.ones(points.shape[:2], np.float32)
        results.append(selection(boxes, scores, classes, t, np.ascontiguousarray(points[:, :, :2]), visible))
    return results


def _check_kpt_shape(kpt_shape: Sequence[int], dims: tuple[int, ...]) -> tuple[int, int]:
    """kpt_shape: (K, D) ints with K >= 1 and D in dims. Returns (K, D)."""
    shape = tuple(kpt_shape) if isinstance(kpt_shape, (list, tuple, np.ndarray)) else ()
    if len(shape) != 2 or shape[0] < 1 or shape[1] not in dims or any(int(v) != v for v in shape):
        raise UserError(f"kpt_shape must be (K, D) with K >= 1 landmarks and D in {dims} numbers each (the model's "
                        f"metadata), but got {kpt_shape!r}")
    return int(shape[0]), int(shape[1])


def _class_counts(class_keypoints: Sequence[int], c: int, k: int) -> np.ndarray:
    """The keypoint slots each of C classes uses: class_keypoints, or K for every class when it is ()."""
    if len(class_keypoints) == 0:
        return np.full(c, k)
    counts = np.asarray(class_keypoints)
    if counts.shape != (c,) or counts.min() < 0 or counts.max() > k:
        raise UserError(f"class_keypoints must be one count in [0, {k}] per class ({c}), but got {class_keypoints!r}")
    return counts.astype(np.int64)
