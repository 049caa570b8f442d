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
STATUS_COLOR = (40, 40, 40)  # the status line's box
LABEL_PAD = 2  # px around a label's text
KEYPOINT_MIN_SCORE = 0.5  # keypoints less present than this (hidden, or a slot the class has not) are not drawn
# Crossing directions as the browser view (ARROWS) and the overlay's ASCII font (ASCII_ARROWS) show them.
ARROWS = {"left_to_right": "→", "right_to_left": "←", "top_to_bottom": "↓", "bottom_to_top": "↑"}
ASCII_ARROWS = {"left_to_right": "->", "right_to_left": "<-", "top_to_bottom": "v", "bottom_to_top": "^"}


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
    """A copy of image (H, W, 3) uint8 BGR with det's boxes (original-image pixels), keypoints, labels, a status
    line, and marks (labeled segments, e.g. counting lines). Labels stay inside the image and do not cover one
    another where there is room: the status line first, then the marks', then the boxes' by descending score."""
    out = image.copy()
    thickness = max(1, round(min(out.shape[:2]) / 320))
    scale = max(0.4, min(out.shape[:2]) / 900)
    texts: list[tuple[str, tuple[int, int], tuple[int, int, int], bool]] = []  # text, anchor, color, below
    if status:
        texts.append((status, (0, 0), STATUS_COLOR, True))
    for mark in marks:
        x1, y1, x2, y2 = mark.xyxy
        p1, p2 = (round(x1), round(y1)), (round(x2), round(y2))
        cv2.line(out, p1, p2, MARK_COLOR, thickness + 1, cv2.LINE_AA)
        texts.append((mark.text, p1, MARK_COLOR, True))
    for i in np.argsort(-det.scores, kind="stable"):
        color = class_color(int(det.class_ids[i]))
        x1, y1, x2, y2 = (round(float(v)) for v in det.xyxy[i])
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
        texts.append((f"{det.class_name(int(det.class_ids[i]))} {float(det.scores[i]):.2f}", (x1, y1), color, False))
    if det.keypoints is not None:
        draw_keypoints(out, det, thickness + 1)
    sizes = [_label_size(text, scale) for text, *_ in texts]
    places = place_labels(sizes, [(anchor, below) for _, anchor, _, below in texts], out.shape[:2])
    for (text, _, color, _), (x, y, x2, y2) in zip(texts, places, strict=True):
        cv2.rectangle(out, (x, y), (x2 - 1, y2 - 1), color, -1)
        ink = (0, 0, 0) if sum(color) > 380 else (255, 255, 255)
        baseline = cv2.getTextSize(text, FONT, scale, 1)[1]
        cv2.putText(out, text, (x + LABEL_PAD, y2 - baseline - LABEL_PAD), FONT, scale, ink, 1, cv2.LINE_AA)
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


def _label_size(text: str, scale: float) -> tuple[int, int]:
    """(width, height) in px of a label: the text and its padding."""
    (w, h), baseline = cv2.getTextSize(text, FONT, scale, 1)
    return w + 2 * LABEL_PAD, h + baseline + 2 * LABEL_PAD


def place_labels(
    sizes: Sequence[tuple[int, int]], anchors: Sequence[tuple[tuple[int, int], bool]], shape: tuple[int, int]
) -> list[tuple[int, int, int, int]]:
    """Where each label goes, in order: sizes (w, h) px; anchors ((x, y), below): a label's top-left corner wants
    to be at (x, y - h), above its anchor, or at (x, y) when below (or when there is no room above). Each one is
    kept inside the (H, W) image and moved down or up, a label height at a time, to the nearest place that covers
    none of the labels placed before it (where there is no such place, the preferred one). Returns (x1, y1, x2, y2)
    per label, x2 and y2 exclusive."""
    height, width = shape
    placed: list[tuple[int, int, int, int]] = []
    for (w, h), ((x, y), below) in zip(sizes, anchors, strict=True):
        x = min(max(x, 0), max(width - w, 0))
        first = y if below or y - h < 0 else y - h
        tops = [first] + [first + sign * k * h for k in range(1, height // max(h, 1) + 1) for sign in (1, -1)]
        spots = [(x, t, x + w, t + h) for t in (min(max(t, 0), max(height - h, 0)) for t in tops)]
        free = next((r for r in spots if not any(_overlap(r, q) for q in placed)), spots[0])
        placed.append(free)
    return placed


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
