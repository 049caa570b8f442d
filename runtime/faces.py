"""Square face crops around detector boxes, the encoder's input (numpy + OpenCV, no torch).

A crop is the square of side max(w, h) * (1 + margin) centered on the box, cut at whole pixels: its left edge
is round(cx - side / 2) and its side round(side) (rounding half up). Where that square reaches past the frame,
the frame's border pixels are replicated (cv2.BORDER_REPLICATE): a face cut by the frame edge keeps skin-like
pixels next to it instead of a black band the encoder never saw in training. The square is then resized to the
requested size with cv2.INTER_AREA when it shrinks and cv2.INTER_LINEAR when it grows.
"""

from __future__ import annotations

import cv2
import numpy as np

from edgepipe.postprocess.errors import UserError


def face_crop(frame: np.ndarray, box: np.ndarray, size: tuple[int, int], margin: float = 0.2) -> np.ndarray:
    """The square crop of frame around box, resized.

    frame: (H, W, 3) uint8. box: (4,) xyxy pixel edges, x1 < x2 and y1 < y2, overlapping the frame.
    size: (height, width) of the result. margin: >= 0, the share of the box's longer side added to the square.
    Returns: (height, width, 3) uint8, a new array.
    """
    _check_frame(frame)
    out_h, out_w = _check_size(size)
    _check_margin(margin)
    x1, y1, x2, y2 = _check_box(np.asarray(box, np.float64), frame.shape[:2])
    side = max(x2 - x1, y2 - y1) * (1 + margin)
    left, top, n = _round(0.5 * (x1 + x2 - side)), _round(0.5 * (y1 + y2 - side)), max(1, _round(side))
    rows = np.clip(np.arange(top, top + n), 0, frame.shape[0] - 1)  # (n,) replicate the border
    cols = np.clip(np.arange(left, left + n), 0, frame.shape[1] - 1)  # (n,)
    square = frame[np.ix_(rows, cols)]  # (n, n, 3)
    shrinking = n > out_h or n > out_w
    return cv2.resize(square, (out_w, out_h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def face_crops(frame: np.ndarray, boxes: np.ndarray, size: tuple[int, int], margin: float = 0.2) -> list[np.ndarray]:
    """face_crop for each box. boxes: (N, 4) xyxy pixel edges. Returns N arrays (height, width, 3) uint8."""
    arr = np.asarray(boxes, np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise UserError(f"boxes must be an (N, 4) xyxy array, but got shape {arr.shape}: stack one row per box")
    return [face_crop(frame, b, size, margin) for b in arr]


def _round(v: float) -> int:
    """v rounded half up (not to even): the crop grid moves by one pixel exactly when the box crosses a half."""
    return int(np.floor(v + 0.5))


def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        got = (frame.shape, frame.dtype) if isinstance(frame, np.ndarray) else type(frame).__name__
        raise UserError(f"frame must be an (H, W, 3) uint8 BGR image, but got {got}: pass the camera frame as read")
    if min(frame.shape[:2]) < 1:
        raise UserError(f"frame must not be empty, but got shape {frame.shape}")


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    if len(size) != 2 or any(int(v) != v or v < 1 for v in size):
        raise UserError(f"size must be (height, width) with positive integers, but got {size!r}")
    return int(size[0]), int(size[1])


def _check_margin(margin: float) -> None:
    if not np.isfinite(margin) or margin < 0:
        raise UserError(f"margin must be a finite number >= 0, but got {margin!r}: 0.2 adds 20% around the face")


def _check_box(box: np.ndarray, frame_size: tuple[int, int]) -> tuple[float, float, float, float]:
    """The box as four floats, or UserError naming it: not (4,), not finite, empty, or outside the frame."""
    if box.shape != (4,):
        raise UserError(f"box must be (4,) xyxy, but got shape {box.shape}")
    if not np.isfinite(box).all():
        raise UserError(f"box {box.tolist()} has a non-finite coordinate: drop it before cropping")
    x1, y1, x2, y2 = (float(v) for v in box)
    if x2 <= x1 or y2 <= y1:
        raise UserError(f"box {box.tolist()} must have x1 < x2 and y1 < y2 (xyxy pixels): is it xywh?")
    h, w = frame_size
    if x2 <= 0 or y2 <= 0 or x1 >= w or y1 >= h:
        raise UserError(f"box {box.tolist()} lies outside the {w}x{h} frame: boxes must be in this frame's pixels")
    return x1, y1, x2, y2
