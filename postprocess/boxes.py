"""Box formats, areas, clipping and the map between original-image and network-input pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgepipe.postprocess._check import as_boxes, check_xyxy
from edgepipe.postprocess.errors import UserError

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


@dataclass(frozen=True)
class Transform:
    """How preprocessing mapped the original image onto the network input, per axis.

    x_input = x_original * scale_x + pad_x, y_input = y_original * scale_y + pad_y, in pixels.
    A letterbox has scale_x == scale_y and non-negative padding; a plain resize has no padding;
    a center crop has negative padding (the crop offset).
    src_size: (height, width) of the original image. dst_size: (height, width) of the network input.
    """

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    src_size: tuple[int, int]
    dst_size: tuple[int, int]

    @classmethod
    def identity(cls, size: tuple[int, int]) -> Transform:
        """The transform of an image fed to the network as it is. size: (height, width)."""
        return cls(1.0, 1.0, 0.0, 0.0, tuple(size), tuple(size))


def box_convert(boxes: np.ndarray, in_fmt: str, out_fmt: str) -> np.ndarray:
    """Convert boxes between formats (torchvision's names).

    boxes: (N, 4) float. in_fmt, out_fmt: "xyxy" (corners), "xywh" (top-left corner, width, height) or
    "cxcywh" (center, width, height: the course's bx, by, bw, bh).
    Returns: (N, 4) float32 in out_fmt, a new array.
    """
    for name, fmt in (("in_fmt", in_fmt), ("out_fmt", out_fmt)):
        if fmt not in BOX_FORMATS:
            raise UserError(f"{name} must be one of {BOX_FORMATS}, but got {fmt!r}")
    b = as_boxes(boxes)
    if in_fmt != "xyxy" and b.size and (b[:, 2:] < 0).any():
        raise UserError(f"boxes in {in_fmt} format must have width and height >= 0, but got a negative one")
    xyxy = _to_xyxy(b, in_fmt)
    return _from_xyxy(xyxy, out_fmt)


def _to_xyxy(b: np.ndarray, fmt: str) -> np.ndarray:
    """b: (N, 4) float32 in fmt. Returns: (N, 4) float32 xyxy, a new array."""
    if fmt == "xyxy":
        return b.copy()
    if fmt == "xywh":
        return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)
    half = b[:, 2:] / 2
    return np.concatenate([b[:, :2] - half, b[:, :2] + half], axis=1)


def _from_xyxy(b: np.ndarray, fmt: str) -> np.ndarray:
    """b: (N, 4) float32 xyxy, already a fresh array. Returns: (N, 4) float32 in fmt."""
    if fmt == "xyxy":
        return b
    wh = b[:, 2:] - b[:, :2]
    if fmt == "xywh":
        return np.concatenate([b[:, :2], wh], axis=1)
    return np.concatenate([b[:, :2] + wh / 2, wh], axis=1)


def normalize_boxes(boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Pixels to [0, 1] coordinates ((0, 0) top-left, (1, 1) bottom-right), any box format.

    boxes: (N, 4) float pixels. image_size: (height, width). Returns: (N, 4) float32.
    """
    h, w = _check_size(image_size)
    return as_boxes(boxes) / np.array([w, h, w, h], dtype=np.float32)


def denormalize_boxes(boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """[0, 1] coordinates to pixels, any box format.

    boxes: (N, 4) float normalized. image_size: (height, width). Returns: (N, 4) float32.
    """
    h, w = _check_size(image_size)
    return as_boxes(boxes) * np.array([w, h, w, h], dtype=np.float32)


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Area of each box.

    boxes: (N, 4) float xyxy with x1 <= x2 and y1 <= y2. Returns: (N,) float32.
    """
    b = as_boxes(boxes)
    check_xyxy(b)
    # float64 products: no overflow or precision loss for large pixel coordinates.
    area = (b[:, 2].astype(np.float64) - b[:, 0]) * (b[:, 3].astype(np.float64) - b[:, 1])
    return area.astype(np.float32)


def clip_boxes(boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Clip boxes to the image.

    boxes: (N, 4) float xyxy pixels. image_size: (height, width). Returns: (N, 4) float32 xyxy, a new array.
    """
    return _clip(as_boxes(boxes), _check_size(image_size))


def _clip(boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """boxes: (N, 4) float32 xyxy, checked. image_size: (height, width), checked. Returns a new clipped array."""
    h, w = image_size
    return np.clip(boxes, 0.0, np.array([w, h, w, h], dtype=np.float32))


def boxes_to_original(boxes: np.ndarray, transform: Transform, clip: bool = True) -> np.ndarray:
    """Map boxes from network-input pixels back to original-image pixels (inverse of preprocessing).

    boxes: (N, 4) float xyxy in network-input pixels. transform: what preprocessing returned.
    Returns: (N, 4) float32 xyxy in original-image pixels, clipped to the original image unless clip=False.
    """
    b = as_boxes(boxes)
    scale = np.array([transform.scale_x, transform.scale_y] * 2, dtype=np.float32)
    pad = np.array([transform.pad_x, transform.pad_y] * 2, dtype=np.float32)
    out = (b - pad) / scale
    return _clip(out, _check_size(transform.src_size)) if clip else out


def boxes_to_input(boxes: np.ndarray, transform: Transform) -> np.ndarray:
    """Map boxes from original-image pixels to network-input pixels (what preprocessing does to the image).

    boxes: (N, 4) float xyxy in original pixels. Returns: (N, 4) float32 xyxy in network-input pixels.
    """
    b = as_boxes(boxes)
    scale = np.array([transform.scale_x, transform.scale_y] * 2, dtype=np.float32)
    pad = np.array([transform.pad_x, transform.pad_y] * 2, dtype=np.float32)
    return b * scale + pad


def points_to_original(points: np.ndarray, transform: Transform) -> np.ndarray:
    """Map points (keypoints) from network-input pixels back to original-image pixels, not clipped.

    points: (..., 2) float x, y in network-input pixels. Returns: (..., 2) float32.
    """
    p = np.asarray(points, dtype=np.float32)
    return (p - np.float32([transform.pad_x, transform.pad_y])) / np.float32([transform.scale_x, transform.scale_y])


def points_to_input(points: np.ndarray, transform: Transform) -> np.ndarray:
    """Map points from original-image pixels to network-input pixels. points: (..., 2) float. Returns float32."""
    p = np.asarray(points, dtype=np.float32)
    return p * np.float32([transform.scale_x, transform.scale_y]) + np.float32([transform.pad_x, transform.pad_y])


def _check_size(image_size: tuple[int, int]) -> tuple[int, int]:
    if len(image_size) != 2 or min(image_size) <= 0:
        raise UserError(f"image_size must be (height, width) with both > 0, but got {image_size!r}")
    return int(image_size[0]), int(image_size[1])
