"""The apps' overlay: boxes with class names and scores (and keypoints) in stable per-class colors, a status line."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edgepipe.postprocess.detections import Detections

FONT = cv2.FONT_HERSHEY_SIMPLEX
MARK_COLOR = (0, 215, 255)  # BGR amber: counting lines, apart from the class colors
KEYPOINT_MIN_SCORE = 0.5  # keypoints less present than this (hidden, or a slot the class has not) are not drawn
# Crossing directions as the browser view (ARROWS) and the overlay's ASCII font (ASCII_ARROWS) show them.
ARROWS = {"left_to_right": "→", "right_to_left": "←", "top_to_bottom": "↓", "bottom_to_top": "↑"}
ASCII_ARROWS = {"left_to_right": ">", "right_to_left": "<", "top_to_bottom": "v", "bottom_to_top": "^"}


@dataclass(frozen=True)
class Mark:
    """A labeled segment on the overlay (a counting line): xyxy, its two ends in frame pixels; text, at the first."""

    xyxy: tuple[float, float, float, float]
    text: str


def class_color(class_id: int) -> tuple[int, int, int]:
    """A BGR color for a class id: the same id always gets the same color, neighbours get distant hues."""
    hue = (int(class_id) * 0.618033988749895) % 1.0  # golden-ratio steps spread hues evenly
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_detections(
    image: np.ndarray,
    det: Detections,
    status: str = "",
    marks: Sequence[Mark] = (),
) -> np.ndarray:
    """A copy of image (H, W, 3) uint8 BGR with det's boxes (original-image pixels), labels, keypoints, a status
    line, and marks (labeled segments, e.g. counting lines)."""
    out = image.copy()
    thickness = max(1, round(min(out.shape[:2]) / 320))
    scale = max(0.4, min(out.shape[:2]) / 900)
    for mark in marks:
        x1, y1, x2, y2 = mark.xyxy
        p1, p2 = (round(x1), round(y1)), (round(x2), round(y2))
        cv2.line(out, p1, p2, MARK_COLOR, thickness + 1, cv2.LINE_AA)
        label(out, mark.text, p1, MARK_COLOR, scale, below=True)
    for box, score, cid in zip(det.xyxy, det.scores, det.class_ids, strict=True):
        color = class_color(int(cid))
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
        label(out, f"{det.class_name(int(cid))} {float(score):.2f}", (x1, y1), color, scale)
    if det.keypoints is not None:
        draw_keypoints(out, det, thickness + 1)
    if status:
        label(out, status, (0, 0), (40, 40, 40), scale, below=True)
    return out


def draw_keypoints(image: np.ndarray, det: Detections, radius: int) -> None:
    """Draw det's keypoints (original-image pixels) on image in place: a dot in the class color with a dark rim,
    for each keypoint whose score is at least KEYPOINT_MIN_SCORE (all of them when the model gives no scores)."""
    scores = det.keypoint_scores if det.keypoint_scores is not None else np.ones(det.keypoints.shape[:2], np.float32)
    for points, shown, cid in zip(det.keypoints, scores >= KEYPOINT_MIN_SCORE, det.class_ids, strict=True):
        for x, y in points[shown]:
            center = (round(float(x)), round(float(y)))
            cv2.circle(image, center, radius + 1, (20, 20, 20), -1, cv2.LINE_AA)
            cv2.circle(image, center, radius, class_color(int(cid)), -1, cv2.LINE_AA)


def label(image: np.ndarray, text: str, corner: tuple[int, int], color: tuple[int, int, int], scale: float,
          below: bool = False) -> None:
    """Draw text on a filled box at corner (x, y): above it, or below it when it would leave the image."""
    (w, h), base = cv2.getTextSize(text, FONT, scale, 1)
    x, y = corner
    top = y if below or y - h - base - 4 < 0 else y - h - base - 4
    cv2.rectangle(image, (x, top), (x + w + 4, top + h + base + 4), color, -1)
    ink = (0, 0, 0) if sum(color) > 380 else (255, 255, 255)
    cv2.putText(image, text, (x + 2, top + h + 2), FONT, scale, ink, 1, cv2.LINE_AA)
