"""Input validation shared by postprocess: clear UserErrors that name the argument, expected and got."""

from __future__ import annotations

import numpy as np

from edgepipe.postprocess.errors import UserError

FLOAT_DTYPES = (np.float16, np.float32, np.float64)


def as_boxes(boxes: np.ndarray, name: str = "boxes") -> np.ndarray:
    """Check and convert boxes to float32 without touching the caller's array.

    boxes: (N, 4) float array, any of the four box formats.
    Returns: (N, 4) float32 (a copy when the dtype changes; never written to).
    """
    arr = np.asarray(boxes)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise UserError(f"{name} must be a 2D array with shape (N, 4), but got shape {arr.shape}")
    if arr.dtype not in FLOAT_DTYPES and not np.issubdtype(arr.dtype, np.integer):
        raise UserError(f"{name} must be a float or integer array, but got dtype {arr.dtype}")
    out = arr.astype(np.float32, copy=False)
    if not np.isfinite(out).all():
        raise UserError(f"{name} must be finite, but got NaN or inf at rows {_bad_rows(out)}")
    return out


def check_xyxy(boxes: np.ndarray, name: str = "boxes") -> None:
    """Raise when a box has x2 < x1 or y2 < y1 (a negative width or height).

    boxes: (N, 4) float32 xyxy.
    """
    bad = np.flatnonzero((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))
    if bad.size:
        raise UserError(
            f"{name} must be xyxy with x1 <= x2 and y1 <= y2, but row {int(bad[0])} is "
            f"{boxes[bad[0]].tolist()} (negative width or height; wrong box format?)"
        )


def as_scores(scores: np.ndarray, n: int, name: str = "scores") -> np.ndarray:
    """Check scores against N boxes.

    scores: (N,) float. Returns: (N,) float32.
    """
    arr = np.asarray(scores)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise UserError(f"{name} must have shape ({n},) to match the boxes, but got shape {arr.shape}")
    if arr.dtype not in FLOAT_DTYPES and not np.issubdtype(arr.dtype, np.integer):
        raise UserError(f"{name} must be a float array, but got dtype {arr.dtype}")
    out = arr.astype(np.float32, copy=False)
    if not np.isfinite(out).all():
        raise UserError(f"{name} must be finite, but got NaN or inf at index {_bad_rows(out)}")
    return out


def as_class_ids(class_ids: np.ndarray, n: int, name: str = "class_ids") -> np.ndarray:
    """Check class ids against N boxes.

    class_ids: (N,) integer. Returns: (N,) int64.
    """
    arr = np.asarray(class_ids)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise UserError(f"{name} must have shape ({n},) to match the boxes, but got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise UserError(f"{name} must be an integer array, but got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise UserError(f"{name} must be >= 0, but got {int(arr.min())}")
    return arr.astype(np.int64, copy=False)


def check_unit(value: float, name: str) -> float:
    """Raise unless value is a finite number in [0, 1]; return it as float."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number in [0, 1], but got {value!r}") from None
    if not 0.0 <= v <= 1.0:
        raise UserError(f"{name} must be in [0, 1], but got {value!r}")
    return v


def check_max_det(max_det: int) -> int:
    """Raise unless max_det is an int >= 1 (detections kept per image); return it as int."""
    if isinstance(max_det, bool) or not isinstance(max_det, (int, np.integer)) or max_det < 1:
        raise UserError(f"max_det must be an int >= 1, but got {max_det!r}")
    return int(max_det)


def _bad_rows(arr: np.ndarray) -> list[int]:
    bad = ~np.isfinite(arr)
    rows = np.flatnonzero(bad.reshape(len(arr), -1).any(axis=1)) if arr.ndim > 1 else np.flatnonzero(bad)
    return rows[:5].tolist()
