"""Anchor boxes: YOLOv2 dimension clusters (k-means with 1 - IoU) and the assignment of objects to cells/anchors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from postprocess._check import as_boxes, check_xyxy
from postprocess.decode import ANCHOR_UNITS


@dataclass(frozen=True)
class AnchorResult:
    """anchors: (k, 2) float32 (w, h) sorted by area ascending. mean_iou: mean best shape IoU of the boxes.
    assignments: (N,) int64 index of each box's anchor (into the sorted anchors)."""

    anchors: np.ndarray
    mean_iou: float
    assignments: np.ndarray


@dataclass(frozen=True)
class TargetAssignment:
    """Where each ground-truth box goes in the course's YOLO output, and its regression targets.

    rows, cols: (N,) int64 grid cell holding the box center. anchor_ids: (N,) int64 anchor with the best shape IoU.
    offsets: (N, 2) float32 center inside its cell in [0, 1) (x, y): sigmoid(tx), sigmoid(ty) should match them.
    log_wh: (N, 2) float32 log(w / anchor_w), log(h / anchor_h): the targets for tw, th.
    """

    rows: np.ndarray
    cols: np.ndarray
    anchor_ids: np.ndarray
    offsets: np.ndarray
    log_wh: np.ndarray


def shape_iou(wh1: np.ndarray, wh2: np.ndarray) -> np.ndarray:
    """IoU of box sizes aligned at a common center.

    wh1: (N, 2) float (w, h) > 0. wh2: (M, 2) float (w, h) > 0. Returns: (N, M) float32.
    """
    a, b = _check_wh(wh1, "wh1"), _check_wh(wh2, "wh2")
    inter = np.minimum(a[:, None, 0], b[None, :, 0]) * np.minimum(a[:, None, 1], b[None, :, 1])
    union = (a[:, 0] * a[:, 1])[:, None] + (b[:, 0] * b[:, 1])[None, :] - inter
    return (inter / union).astype(np.float32)


def kmeans_anchors(wh: np.ndarray, k: int, seed: int = 0, max_iter: int = 300, n_init: int = 10) -> AnchorResult:
    """YOLOv2 dimension clusters: k-means over box sizes with the distance d = 1 - IoU(box, centroid).

    wh: (N, 2) float (w, h) > 0 of the ground-truth boxes. k: number of anchors, 1 <= k <= distinct sizes.
    n_init runs, each seeded k-means++ style from the data, keep the best mean IoU; deterministic for a seed.
    Returns: AnchorResult with anchors in the units of wh, sorted by area.
    """
    sizes = _check_wh(wh, "wh")
    distinct = len(np.unique(sizes, axis=0))
    if not 1 <= k <= distinct:
        raise ValueError(f"k must be in [1, {distinct}] (the number of distinct box sizes), but got {k}")
    rng = np.random.default_rng(seed)
    runs = [_kmeans(sizes, _kmeanspp_init(sizes, k, rng), max_iter) for _ in range(max(1, n_init))]
    centroids = max(runs, key=lambda c: shape_iou(sizes, c).max(axis=1).mean())
    centroids = centroids[np.argsort(centroids[:, 0] * centroids[:, 1], kind="stable")]
    iou = shape_iou(sizes, centroids)
    return AnchorResult(centroids.astype(np.float32), float(iou.max(axis=1).mean()), iou.argmax(axis=1))


def _kmeans(sizes: np.ndarray, centroids: np.ndarray, max_iter: int) -> np.ndarray:
    """Lloyd iterations with the 1 - IoU distance. sizes: (N, 2). centroids: (k, 2). Returns: (k, 2)."""
    k = len(centroids)
    for _ in range(max_iter):
        assign = shape_iou(sizes, centroids).argmax(axis=1)
        updated = np.array([sizes[assign == j].mean(axis=0) if (assign == j).any() else centroids[j] for j in range(k)])
        if np.allclose(updated, centroids):
            break
        centroids = updated
    return centroids


def _kmeanspp_init(sizes: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding with the 1 - IoU distance. sizes: (N, 2). Returns: (k, 2)."""
    centroids = [sizes[rng.integers(len(sizes))]]
    for _ in range(1, k):
        d = 1.0 - shape_iou(sizes, np.array(centroids)).max(axis=1).astype(np.float64)
        p = d**2
        p = p / p.sum() if p.sum() > 0 else np.full(len(sizes), 1 / len(sizes))
        centroids.append(sizes[rng.choice(len(sizes), p=p)])
    return np.array(centroids)


def assign_targets(
    boxes: np.ndarray,
    anchors: np.ndarray,
    grid_size: int | tuple[int, int],
    image_size: tuple[int, int],
    anchor_units: str = "grid",
) -> TargetAssignment:
    """Assign each ground-truth box to the cell containing its center and to its best anchor by shape IoU.

    boxes: (N, 4) float xyxy in network-input pixels. anchors: (A, 2) (w, h) in grid cells ("grid") or
    input pixels ("pixels"). grid_size: S or (S_h, S_w). image_size: network input (height, width).
    Returns: TargetAssignment; empty arrays for no boxes.
    """
    b = as_boxes(boxes)
    check_xyxy(b)
    if anchor_units not in ANCHOR_UNITS:
        raise ValueError(f"anchor_units must be one of {ANCHOR_UNITS}, but got {anchor_units!r}")
    a = _check_wh(anchors, "anchors")
    s_h, s_w = (grid_size, grid_size) if isinstance(grid_size, int) else grid_size
    h_in, w_in = image_size
    center = np.stack([(b[:, 0] + b[:, 2]) / 2 / w_in * s_w, (b[:, 1] + b[:, 3]) / 2 / h_in * s_h], 1)  # grid units
    cols = np.clip(np.floor(center[:, 0]), 0, s_w - 1).astype(np.int64)
    rows = np.clip(np.floor(center[:, 1]), 0, s_h - 1).astype(np.int64)
    offsets = np.clip(center - np.stack([cols, rows], 1), 0.0, np.nextafter(np.float32(1), np.float32(0)))
    wh = b[:, 2:] - b[:, :2]
    if anchor_units == "grid":
        wh = wh / np.array([w_in / s_w, h_in / s_h], dtype=np.float32)
    wh = np.maximum(wh, 1e-6)  # a zero-size box still gets an anchor and a finite target
    anchor_ids = shape_iou(wh, a).argmax(axis=1) if len(b) else np.zeros(0, np.int64)
    log_wh = np.log(wh / a[anchor_ids]) if len(b) else np.zeros((0, 2))
    return TargetAssignment(
        rows, cols, anchor_ids.astype(np.int64), offsets.astype(np.float32), log_wh.astype(np.float32)
    )


def _check_wh(wh: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(wh, dtype=np.float64) if np.asarray(wh).dtype != object else None
    if arr is None or arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must be an (N, 2) array of (w, h), but got shape {np.shape(wh)}")
    if not np.isfinite(arr).all() or (arr <= 0).any():
        raise ValueError(f"{name} must hold finite sizes > 0, but got {arr[~(np.isfinite(arr) & (arr > 0))][:3]}")
    return arr
