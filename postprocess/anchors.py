"""Anchor boxes: YOLOv2 dimension clusters (k-means with 1 - IoU) and the assignment of objects to cells and anchors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgepipe.postprocess._check import as_boxes, check_xyxy
from edgepipe.postprocess.errors import UserError

ANCHOR_UNITS = ("grid", "pixels")
# A box of zero width or height is given this size (in anchor units) so that it still gets an anchor and a finite
# log-size target.
MIN_SIZE = 1e-6
# The largest float32 below 1: the upper end of a center offset inside its cell, [0, 1).
BELOW_ONE = float(np.nextafter(np.float32(1), np.float32(0)))


@dataclass(frozen=True)
class AnchorResult:
    """anchors: (k, 2) float32 (w, h) sorted by area ascending, in the units of the sizes clustered.
    mean_iou: mean over the boxes of their best shape IoU with the anchors.
    assignments: (N,) int64 index of each box's best anchor (into the sorted anchors)."""

    anchors: np.ndarray
    mean_iou: float
    assignments: np.ndarray


@dataclass(frozen=True)
class TargetAssignment:
    """Where each ground-truth box goes in the course's YOLO output, and its regression targets.

    rows, cols: (N,) int64 grid cell holding the box center (clipped to the grid). anchor_ids: (N,) int64 the
    anchor with the best shape IoU (the lower index on ties). offsets: (N, 2) float32 (x, y) center inside its cell
    in grid cells, in [0, 1): what sigmoid(tx), sigmoid(ty) should give. log_wh: (N, 2) float32
    log(w / anchor_w), log(h / anchor_h) with w, h in the anchors' units: the targets for tw, th.
    """

    rows: np.ndarray
    cols: np.ndarray
    anchor_ids: np.ndarray
    offsets: np.ndarray
    log_wh: np.ndarray


def shape_iou(wh1: np.ndarray, wh2: np.ndarray) -> np.ndarray:
    """IoU of box sizes aligned at a common center: min(w) * min(h) / (area1 + area2 - min(w) * min(h)).

    wh1: (N, 2) float (w, h) > 0. wh2: (M, 2) float (w, h) > 0, same units. Returns: (N, M) float32 in (0, 1].
    """
    return _shape_iou(_check_wh(wh1, "wh1"), _check_wh(wh2, "wh2")).astype(np.float32)


def _shape_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a: (N, 2), b: (M, 2) float64 sizes > 0. Returns: (N, M) float64."""
    inter = np.minimum(a[:, 0:1], b[:, 0]) * np.minimum(a[:, 1:2], b[:, 1])  # (N, M)
    union = a[:, 0:1] * a[:, 1:2] + b[:, 0] * b[:, 1]  # (N, M) sum of the areas
    union -= inter
    inter /= union
    return inter


def kmeans_anchors(wh: np.ndarray, k: int, seed: int = 0, max_iter: int = 300, n_init: int = 10) -> AnchorResult:
    """YOLOv2 dimension clusters: k-means over box sizes with the distance d = 1 - IoU(size, centroid).

    wh: (N, 2) float (w, h) > 0 of the ground-truth boxes, N >= 1. k: number of anchors, 1 <= k <= the number of
    distinct sizes. Each of n_init runs starts k-means++ style from the data (the next seed drawn with probability
    proportional to d^2) and alternates nearest-centroid assignment and update (each cluster's median size) until
    nothing changes or max_iter rounds; the run with the best mean IoU wins. Deterministic for a seed.
    Returns: AnchorResult; anchors in the units of wh.
    """
    sizes = _check_wh(wh, "wh", min_rows=1)
    distinct = len(np.unique(sizes, axis=0))
    _check_int(k, "k", 1, distinct, f" (the number of distinct box sizes is {distinct})")
    _check_int(max_iter, "max_iter", 1)
    _check_int(n_init, "n_init", 1)
    rng = np.random.default_rng(seed)
    runs = [_lloyd(sizes, _kmeanspp_init(sizes, k, rng), max_iter) for _ in range(n_init)]
    best = max(runs, key=lambda c: _shape_iou(sizes, c).max(axis=1).mean())  # the first of equal runs
    anchors = best[np.argsort(best[:, 0] * best[:, 1], kind="stable")].astype(np.float32)
    iou = _shape_iou(sizes, anchors.astype(np.float64))  # (N, k)
    return AnchorResult(anchors, float(iou.max(axis=1).mean()), iou.argmax(axis=1).astype(np.int64))


def _lloyd(sizes: np.ndarray, centroids: np.ndarray, max_iter: int) -> np.ndarray:
    """k-means rounds with the 1 - IoU distance. sizes: (N, 2) float64. centroids: (k, 2). Returns: (k, 2) float64.

    The update is each cluster's median size, not its mean: the mean of sizes is not the minimizer of 1 - IoU, and
    the median reached the higher mean IoU when measured (docs/benchmarks.md, "Postprocess: k-means anchors").
    A cluster left empty keeps its centroid. Stops when a round changes nothing.
    """
    for _ in range(max_iter):
        assign = _shape_iou(sizes, centroids).argmax(axis=1)  # (N,) nearest centroid: highest IoU
        updated = np.array(
            [np.median(sizes[assign == j], axis=0) if (assign == j).any() else c for j, c in enumerate(centroids)]
        )
        if np.array_equal(updated, centroids):
            break
        centroids = updated
    return centroids


def _kmeanspp_init(sizes: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding with the 1 - IoU distance. sizes: (N, 2) float64. Returns: (k, 2) float64 data points."""
    chosen = [int(rng.integers(len(sizes)))]
    for _ in range(1, k):
        d = 1.0 - _shape_iou(sizes, sizes[chosen]).max(axis=1)  # (N,) distance to the nearest chosen size
        weights = d**2
        total = weights.sum()
        chosen.append(int(rng.choice(len(sizes), p=weights / total)) if total > 0 else int(rng.integers(len(sizes))))
    return sizes[chosen]


def assign_targets(
    boxes: np.ndarray,
    anchors: np.ndarray,
    grid_size: int | tuple[int, int],
    image_size: tuple[int, int],
    anchor_units: str = "grid",
) -> TargetAssignment:
    """The course's assignment: each object goes to the cell holding its center and to the anchor whose shape has
    the highest IoU with it; with the regression targets for that cell and anchor.

    boxes: (N, 4) float xyxy in network-input pixels. anchors: (A, 2) (w, h) > 0 in grid cells ("grid", YOLOv2)
    or network-input pixels ("pixels"). grid_size: S or (S_h, S_w). image_size: network input (height, width).
    A center outside the image goes to the nearest edge cell, its offset clipped to [0, 1). A box of zero width or
    height counts as MIN_SIZE (anchor units) wide or high.
    Returns: TargetAssignment; arrays of length 0 for no boxes.
    """
    b = as_boxes(boxes)
    check_xyxy(b)
    anchor_wh = check_anchors(anchors, anchor_units)
    s_h, s_w = _check_grid(grid_size)
    h_in, w_in = _check_image_size(image_size)
    cell = np.array([w_in / s_w, h_in / s_h])  # (2,) cell width and height in input pixels
    center = (b[:, :2].astype(np.float64) + b[:, 2:]) / 2 / cell  # (N, 2) x, y in grid cells
    col_row = np.clip(np.floor(center), 0, [s_w - 1, s_h - 1]).astype(np.int64)  # (N, 2)
    offsets = np.clip(center - col_row, 0.0, BELOW_ONE)
    wh = (b[:, 2:].astype(np.float64) - b[:, :2]) / (cell if anchor_units == "grid" else 1.0)  # (N, 2) anchor units
    wh = np.maximum(wh, MIN_SIZE)
    anchor_ids = _shape_iou(wh, anchor_wh).argmax(axis=1).astype(np.int64)  # the first maximum: lower index on ties
    log_wh = np.log(wh / anchor_wh[anchor_ids])
    return TargetAssignment(
        col_row[:, 1], col_row[:, 0], anchor_ids, offsets.astype(np.float32), log_wh.astype(np.float32)
    )


def no_anchors(anchors: object) -> bool:
    """Whether anchors is empty (a sequence or array without elements, like ModelMeta's default ()): the one way
    to say "no anchors"; None is not one."""
    if isinstance(anchors, np.ndarray):
        return anchors.size == 0
    return isinstance(anchors, Sequence) and len(anchors) == 0


def check_anchors(anchors: Sequence[Sequence[float]] | np.ndarray, anchor_units: str) -> np.ndarray:
    """Validate anchors and their units. anchors: (A, 2) (w, h) > 0, A >= 1. Returns: (A, 2) float64."""
    if anchor_units not in ANCHOR_UNITS:
        raise UserError(f"anchor_units must be one of {ANCHOR_UNITS}, but got {anchor_units!r}")
    if no_anchors(anchors):
        raise UserError("anchors must be given as an (A, 2) array of (w, h) with A >= 1, but got none (empty): "
                        "the course YOLO head needs its anchors (a model's metadata holds them)")
    return _check_wh(anchors, "anchors", min_rows=1)


def _check_wh(wh: np.ndarray, name: str, min_rows: int = 0) -> np.ndarray:
    """Validate sizes: (N, 2) finite (w, h) > 0 with N >= min_rows. Returns: (N, 2) float64, a new array."""
    try:
        arr = np.array(wh, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be an (N, 2) array of (w, h) numbers, but got {type(wh).__name__}") from None
    if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) < min_rows:
        rows = "N" if min_rows == 0 else f"N >= {min_rows}"
        raise UserError(f"{name} must be an (N, 2) array of (w, h) with {rows}, but got shape {arr.shape}")
    bad = np.flatnonzero(~(np.isfinite(arr) & (arr > 0)).all(axis=1))
    if bad.size:
        raise UserError(f"{name} must hold finite sizes > 0, but row {int(bad[0])} is {arr[bad[0]].tolist()}")
    return arr


def _check_int(value: int, name: str, low: int, high: int | None = None, note: str = "") -> None:
    """Raise unless value is an int in [low, high] (no upper bound when high is None)."""
    bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UserError(f"{name} must be an int {bounds}, but got {value!r}")
    if value < low or (high is not None and value > high):
        raise UserError(f"{name} must be {bounds}{note}, but got {value}")


def _check_grid(grid_size: int | tuple[int, int]) -> tuple[int, int]:
    """grid_size: S or (S_h, S_w), ints >= 1. Returns (S_h, S_w)."""
    pair = tuple(grid_size) if isinstance(grid_size, (tuple, list)) else (grid_size, grid_size)
    if len(pair) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in pair):
        raise UserError(f"grid_size must be an int >= 1 or a pair (S_h, S_w) of them, but got {grid_size!r}")
    return int(pair[0]), int(pair[1])


def _check_image_size(image_size: tuple[int, int]) -> tuple[float, float]:
    """image_size: (height, width) > 0. Returns them as floats."""
    size = tuple(image_size) if isinstance(image_size, (tuple, list)) else ()
    if len(size) != 2 or not all(isinstance(v, (int, float, np.number)) and v > 0 for v in size):
        raise UserError(f"image_size must be (height, width) with both > 0, but got {image_size!r}")
    return float(size[0]), float(size[1])
