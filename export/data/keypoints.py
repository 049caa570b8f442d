"""The generated shapes' landmarks: a triangle's 3 vertices, a square's 4 corners, a circle's top, bottom, left and
right points, as (x, y, v) in the boxes' pixel-edge coordinates, COCO-style.

v: 2 visible, 1 labeled but hidden under a later shape, 0 not labeled (the triangle's fourth slot, or a point a crop
moved out of the image). Every shape has NUM_KEYPOINTS slots so a model's output has one size; KEYPOINT_NAMES says
which point each slot is, per class (in CLASS_NAMES order: circle, square, triangle).
"""

from __future__ import annotations

import numpy as np

KEYPOINT_NAMES = (
    ("top", "bottom", "left", "right"),  # circle (an ellipse when stretched): its extreme points
    ("top_left", "top_right", "bottom_right", "bottom_left"),  # square (a rectangle): its corners, clockwise
    ("apex", "bottom_left", "bottom_right"),  # triangle: its vertices
)
NUM_KEYPOINTS = max(len(n) for n in KEYPOINT_NAMES)  # slots per shape
CLASS_KEYPOINTS = tuple(len(n) for n in KEYPOINT_NAMES)  # the labeled slots of each class, first
# Slot order after a left-right mirror, per class: left and right points swap, the others stay.
FLIP_INDEX = ((0, 1, 3, 2), (1, 0, 3, 2), (0, 2, 1, 3))
# COCO's OKS per-keypoint constants: corners and extreme points are sharp (COCO's eyes are 0.025, its hips 0.107).
KEYPOINT_SIGMA = 0.05


def shape_keypoints(class_id: int, x: int, y: int, w: int, h: int) -> np.ndarray:
    """The landmarks of a shape drawn by shape_mask in the w x h patch at (x, y): (NUM_KEYPOINTS, 3) float32 x, y, v
    with v 2 for the class's points and 0 for the unused slots."""
    if class_id == 0:
        points = [(x + w / 2, y), (x + w / 2, y + h), (x, y + h / 2), (x + w, y + h / 2)]
    elif class_id == 1:
        points = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
    else:
        points = [(x + (w - 1) // 2 + 0.5, y), (x, y + h), (x + w, y + h)]  # the apex pixel's top edge
    out = np.zeros((NUM_KEYPOINTS, 3), np.float32)
    out[: len(points), :2] = points
    out[: len(points), 2] = 2
    return out


def mark_hidden(keypoints: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """keypoints: (N, K, 3) of objects 0..N-1 in drawing order; owner: (H, W) the object shown at each pixel. A
    labeled point whose pixel (the one just inside the shape) shows a later object gets v = 1. Returns a copy."""
    out = keypoints.copy()
    h, w = owner.shape
    for i, points in enumerate(out):
        for p in points:
            if p[2] > 0:
                px, py = min(int(p[0]), w - 1), min(int(p[1]), h - 1)  # a point on a right or bottom edge: inside
                p[2] = 1 if owner[py, px] > i else 2
    return out


def mirror_keypoints(keypoints: np.ndarray, class_ids: np.ndarray, width: int) -> np.ndarray:
    """Keypoints (N, K, 3) of an image flipped left-right (width px): x -> width - x, and each class's left and right
    slots swapped (FLIP_INDEX). Returns a new array."""
    out = keypoints[np.arange(len(keypoints))[:, None], np.array(FLIP_INDEX)[class_ids]].copy()
    out[:, :, 0] = width - out[:, :, 0]
    return out


def coco_keypoint_fields(keypoints: np.ndarray) -> dict:
    """One annotation's COCO keypoint fields from (K, 3) x, y, v: "keypoints" [x1, y1, v1, ...], "num_keypoints"."""
    return {"keypoints": [round(float(v), 2) for v in keypoints.reshape(-1)],
            "num_keypoints": int((keypoints[:, 2] > 0).sum())}


def keypoints_of(coco: dict) -> list[np.ndarray]:
    """The keypoints of a COCO dict with keypoint annotations, per image in the order of coco["images"] and, within
    an image, of its annotations (as load_split reads the boxes): (N, K, 3) float32 each."""
    by_image: dict[int, list[list[float]]] = {img["id"]: [] for img in coco["images"]}
    for ann in coco["annotations"]:
        by_image[ann["image_id"]].append(ann["keypoints"])
    return [np.array(by_image[img["id"]], np.float32).reshape(-1, NUM_KEYPOINTS, 3) for img in coco["images"]]
