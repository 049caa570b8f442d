"""Intersection over union: the (N, M) matrix and the elementwise (N,) version, xyxy pixels."""

from __future__ import annotations

import numpy as np

from edgepipe.postprocess._check import as_boxes, check_xyxy
from edgepipe.postprocess.errors import UserError

# The smallest positive float32: max(union, TINY) is the union itself unless it is 0, where the intersection is 0 too.
TINY = np.finfo(np.float32).smallest_subnormal

# box_iou fills its (N, M) result a block of rows at a time, about this many elements per block (256 KiB of
# float32 temporaries): faster than the same formula on whole (N, M) temporaries, whose fresh pages cost more than
# the arithmetic. Chosen by measurement (benchmarks/postprocess.py; docs/benchmarks.md, "The switches in the code
# and the measurements behind them").
BLOCK_ELEMENTS = 2**16


def _columns(boxes: np.ndarray, name: str) -> np.ndarray:
    """Validate boxes and return them as (4, N) float32 contiguous rows x1, y1, x2, y2."""
    b = as_boxes(boxes, name)
    check_xyxy(b, name)
    return np.ascontiguousarray(b.T)


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU of every box in boxes1 with every box in boxes2 (torchvision's box_iou), computed in float32.

    boxes1: (N, 4) float or int xyxy pixels with x1 <= x2, y1 <= y2. boxes2: (M, 4) likewise.
    Returns: (N, M) float32 in [0, 1]; 0 for touching or disjoint boxes and for zero-area boxes (no division by
    zero: two identical zero-area boxes have IoU 0).
    """
    a, b = _columns(boxes1, "boxes1"), _columns(boxes2, "boxes2")
    n, m = a.shape[1], b.shape[1]
    out = np.zeros((n, m), dtype=np.float32)
    rows = max(1, BLOCK_ELEMENTS // max(m, 1))
    for start in range(0, n, rows):
        out[start : start + rows] = _iou_block(a[:, start : start + rows], b)
    return out


def _iou_block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a: (4, n) and b: (4, m) float32 rows x1, y1, x2, y2. Returns: (n, m) float32 IoU."""
    inter = _overlap(a[0][:, None], a[2][:, None], b[0][None, :], b[2][None, :])  # (n, m) widths
    inter *= _overlap(a[1][:, None], a[3][:, None], b[1][None, :], b[3][None, :])  # times heights
    union = _area(a)[:, None] + _area(b)[None, :]  # (n, m)
    union -= inter
    np.maximum(union, TINY, out=union)
    inter /= union
    return inter


def box_iou_pairwise(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU of boxes1[i] with boxes2[i] for each i, with box_iou's conventions.

    boxes1, boxes2: (N, 4) float or int xyxy pixels. Returns: (N,) float32 in [0, 1].
    """
    a, b = _columns(boxes1, "boxes1"), _columns(boxes2, "boxes2")
    if a.shape[1] != b.shape[1]:
        raise UserError(f"boxes2 must have as many rows as boxes1 ({a.shape[1]}), but got {b.shape[1]}")
    inter = _overlap(a[0], a[2], b[0], b[2]) * _overlap(a[1], a[3], b[1], b[3])  # (N,)
    union = _area(a) + _area(b) - inter
    return inter / np.maximum(union, TINY)


def _overlap(lo1: np.ndarray, hi1: np.ndarray, lo2: np.ndarray, hi2: np.ndarray) -> np.ndarray:
    """Length of [lo1, hi1] ∩ [lo2, hi2] along one axis, 0 when disjoint; broadcasts. Returns float32."""
    length = np.minimum(hi1, hi2)
    length -= np.maximum(lo1, lo2)
    np.maximum(length, 0, out=length)
    return length


def _area(columns: np.ndarray) -> np.ndarray:
    """columns: (4, N) float32 rows x1, y1, x2, y2. Returns: (N,) float32 areas."""
    return (columns[2] - columns[0]) * (columns[3] - columns[1])
