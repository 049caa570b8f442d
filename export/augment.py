"""Augmentation in numpy/OpenCV keeping boxes and keypoints on their objects: mirror, scale and crop, color shift."""

from __future__ import annotations

import cv2
import numpy as np

from edgepipe.export.data.keypoints import mirror_keypoints

MIN_KEPT = 0.6  # a box cut by the crop keeps its label only if at least this fraction of it stays in the image


def mirror(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flip left-right. image: (H, W, C) uint8; boxes: (N, 4) xyxy pixels. Returns new arrays."""
    w = image.shape[1]
    flipped = boxes.copy()
    flipped[:, [0, 2]] = w - boxes[:, [2, 0]]
    return np.ascontiguousarray(image[:, ::-1]), flipped


def scale_crop(image: np.ndarray, boxes: np.ndarray, class_ids: np.ndarray, rng: np.random.Generator,
               scale: tuple[float, float] = (0.7, 1.3)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zoom by a random factor about a random point, same output size; boxes follow, clipped; boxes mostly cut
    off are dropped. Returns image, boxes (M, 4), class ids (M,)."""
    image, boxes, class_ids, _ = _scale_crop(image, boxes, class_ids, None, rng, scale)
    return image, boxes, class_ids


def _scale_crop(image: np.ndarray, boxes: np.ndarray, class_ids: np.ndarray, keypoints: np.ndarray | None,
                rng: np.random.Generator, scale: tuple[float, float] = (0.7, 1.3)
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """scale_crop, with the kept objects' keypoints (N, K, 3) x, y, v moved too (v = 0 for a point moved out of the
    image) when given."""
    h, w = image.shape[:2]
    s = rng.uniform(*scale)
    tx, ty = rng.uniform(min(0, w - w * s), max(0, w - w * s)), rng.uniform(min(0, h - h * s), max(0, h - h * s))
    m = np.array([[s, 0, tx], [0, s, ty]], np.float32)
    out = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=(114, 114, 114))  # not reflected: mirrored objects would have no label
    moved = boxes * s + np.array([tx, ty, tx, ty], np.float32)
    clipped = np.clip(moved, 0, [w, h, w, h])
    area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
    kept_area = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = kept_area >= MIN_KEPT * np.maximum(area, 1e-6)
    if keypoints is not None:
        keypoints = keypoints[keep].copy()
        keypoints[:, :, :2] = keypoints[:, :, :2] * s + np.array([tx, ty], np.float32)
        outside = ((keypoints[:, :, :2] < 0) | (keypoints[:, :, :2] > [w, h])).any(axis=2)
        keypoints[:, :, 2][outside] = 0
    return out, clipped[keep].astype(np.float32), class_ids[keep], keypoints


def jitter(image: np.ndarray, rng: np.random.Generator, degrees: float = 10.0, shift: float = 0.08,
           scale: tuple[float, float] = (0.9, 1.1)) -> np.ndarray:
    """A small random rotation, scale and shift about the center (for classifiers: no boxes to follow)."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-degrees, degrees), rng.uniform(*scale))
    m[:, 2] += rng.uniform(-shift, shift, 2) * (w, h)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def color_shift(image: np.ndarray, rng: np.random.Generator, strength: float = 0.2) -> np.ndarray:
    """Per-channel gain and a brightness offset (the course's color shifting). Returns a new uint8 image."""
    gain = rng.uniform(1 - strength, 1 + strength, image.shape[2] if image.ndim == 3 else 1)
    offset = rng.uniform(-20, 20)
    return np.clip(image * gain + offset, 0, 255).astype(np.uint8)


def augment_detection(image: np.ndarray, boxes: np.ndarray, class_ids: np.ndarray, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mirror (p = 0.5), scale-crop (p = 0.5), color shift: the detector's training augmentation."""
    image, boxes, class_ids, _ = _augment(image, boxes, class_ids, None, rng)
    return image, boxes, class_ids


def augment_pose(image: np.ndarray, boxes: np.ndarray, class_ids: np.ndarray, keypoints: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """augment_detection with the objects' keypoints (N, K, 3) x, y, v following: mirrored ones swap their left and
    right slots (export.data.keypoints.mirror_keypoints), cropped-out ones get v = 0."""
    return _augment(image, boxes, class_ids, keypoints, rng)


def _augment(image: np.ndarray, boxes: np.ndarray, class_ids: np.ndarray, keypoints: np.ndarray | None,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The one augmentation of augment_detection and augment_pose (the same random draws for both)."""
    if rng.random() < 0.5:
        if keypoints is not None:
            keypoints = mirror_keypoints(keypoints, class_ids, image.shape[1])
        image, boxes = mirror(image, boxes)
    if rng.random() < 0.5:
        image, boxes, class_ids, keypoints = _scale_crop(image, boxes, class_ids, keypoints, rng)
    return color_shift(image, rng), boxes, class_ids, keypoints
