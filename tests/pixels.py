"""Helpers for tests of generated images and videos, whose labels are checked against their pixels.

Objects are drawn on a uniform-noise background, so the pixels that changed are exactly the drawn ones, and their
bounding boxes (computed here with plain loops) must equal the labels.
"""

import cv2
import numpy as np

SEEDS = range(24)  # random scenes per pixel-exact test


def noise(seed: int, size: tuple[int, int] = (128, 160)) -> np.ndarray:
    """A uniform-noise BGR background: a drawn pixel equals it in all three channels with odds ~1e-7."""
    return np.random.default_rng(10_000 + seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def changed(image: np.ndarray, background: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels that differ from the background in any channel."""
    return (image != background).any(axis=2)


def loop_bbox(mask: np.ndarray) -> list[int] | None:
    """Reference: [x1, y1, x2, y2] pixel edges of the True pixels by plain loops, None when there are none."""
    rows = [y for y in range(mask.shape[0]) if mask[y].any()]
    cols = [x for x in range(mask.shape[1]) if mask[:, x].any()]
    return [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1] if rows else None


def union_of_boxes(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: pixels inside any xyxy pixel-edge box."""
    inside = np.zeros(size, bool)
    for x1, y1, x2, y2 in np.asarray(boxes, int):
        inside[y1:y2, x1:x2] = True
    return inside


def read_frames(path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        ok, frame = cap.read()
        while ok:
            frames.append(frame)
            ok, frame = cap.read()
    finally:
        cap.release()
    return frames
