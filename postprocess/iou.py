"""Intersection over union: the (N, M) matrix and the elementwise (N,) version, xyxy pixels."""

from __future__ import annotations

import numpy as np

from postprocess._check import as_boxes, check_xyxy


def _xyxy(boxes: np.ndarray, name: str) -> np.ndarray:
    b = as_boxes(boxes, name)
    check_xyxy(b, name)
    return b


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU of every box in boxes1 with every box in boxes2 (torchvision's box_iou).

    boxes1: (N, 4) float xyxy with x1 <= x2, y1 <= y2. boxes2: (M, 4) float xyxy.
    Returns: (N, M) float32 in [0, 1]; 0 for touching, disjoint or zero-area boxes (never a division by zero).
    """
    a, b = _xyxy(boxes1, "boxes1"), _xyxy(boxes2, "boxes2")
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])  # (N,)
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # (M,)
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])  # (N, M)
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])  # (N, M)
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    return _divide(inter, area_a[:, None] + area_b[None, :] - inter)


def box_iou_pairwise(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU of boxes1[i] with boxes2[i] for each i.

    boxes1, boxes2: (N, 4) float xyxy. Returns: (N,) float32 in [0, 1].
    """
    a, b = _xyxy(boxes1, "boxes1"), _xyxy(boxes2, "boxes2")
    if len(a) != len(b):
        raise ValueError(f"boxes2 must have as many rows as boxes1 ({len(a)}), but got {len(b)}")
    w = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    h = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return _divide(inter, area_a + area_b - inter)


def _divide(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    """inter / union with 0 where the union is 0 (two zero-area boxes). Returns float32."""
    out = np.zeros(inter.shape, dtype=np.float32)
    np.divide(inter, union, out=out, where=union > 0)
    return out
