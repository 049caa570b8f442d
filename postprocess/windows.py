"""The sliding windows' decoder: the convolutional form's score map to boxes (one window each), then NMS."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgepipe.postprocess.boxes import Transform
from edgepipe.postprocess.decoders import (
    _check_classes,
    _check_no_anchors,
    _check_output,
    _check_transforms,
    _selection,
)
from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.errors import UserError


def decode_windows(
    outputs: np.ndarray,
    transforms: Sequence[Transform],
    window: Sequence[int] = (),
    window_stride: int = 0,
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_det: int = 300,
    class_names: Sequence[str] = (),
    class_agnostic: bool = False,
    anchors: Sequence[Sequence[float]] | np.ndarray = (),
) -> list[Detections]:
    """The convolutional implementation of sliding windows: a window classifier's logits at every window position.

    outputs: float (B, C+1, S_h, S_w): at (row, col), the logits of the window whose top-left corner is
    (x, y) = (col * window_stride, row * window_stride) in network-input pixels, over C classes then the
    background (the last channel). window: (height, width) in input pixels; window_stride: the pixels between
    neighbouring windows (both from the model's metadata, required). Class probabilities by softmax; a window's
    score is its best object class's probability; windows with score < conf_threshold are dropped, then
    class-aware NMS (across classes if class_agnostic) and the max_det best. Each box is its window.
    anchors: () only (this head has none). Returns: one Detections per image, boxes xyxy in original-image pixels,
    by descending score.
    """
    selection = _selection(conf_threshold, iou_threshold, max_det, class_names, class_agnostic)
    _check_no_anchors(anchors, "windows")
    win_h, win_w, stride = _check_window(window, window_stride)
    layout = "(B, C+1, S_h, S_w)"
    out = _check_output(outputs, 4, layout)
    _check_classes(out.shape[1] - 1, selection.class_names, layout, out.shape)
    _check_transforms(transforms, len(out))
    results = []
    for image, t in zip(out, transforms, strict=True):
        s_h, s_w = image.shape[1:]
        if (s_h - 1) * stride + win_h > t.dst_size[0] or (s_w - 1) * stride + win_w > t.dst_size[1]:
            raise UserError(f"outputs' {s_h}x{s_w} windows of {win_h}x{win_w} px, {stride} px apart, do not fit the "
                             f"{t.dst_size[0]}x{t.dst_size[1]} input: the metadata's window or window_stride is wrong")
        logits = image - image.max(axis=0)  # (C+1, S_h, S_w), stable softmax
        probs = np.exp(logits)
        probs /= probs.sum(axis=0)
        objects = probs[:-1]  # (C, S_h, S_w): the background is the last channel
        scores = objects.max(axis=0)
        row, col = np.nonzero(scores >= selection.conf)
        corner = np.stack([col, row], axis=1).astype(np.float32) * stride  # (K, 2) x, y
        boxes = np.concatenate([corner, corner + np.array([win_w, win_h], np.float32)], axis=1)  # (K, 4) xyxy
        results.append(selection(boxes, scores[row, col], objects[:, row, col].argmax(axis=0), t))
    return results


def _check_window(window: Sequence[int], stride: int) -> tuple[int, int, int]:
    """window: (height, width) ints >= 1; stride: an int >= 1. Returns (height, width, stride)."""
    size = tuple(window) if isinstance(window, (list, tuple, np.ndarray)) else ()
    if len(size) != 2 or any(int(v) != v or v < 1 for v in size):
        raise UserError(f"window must be (height, width) in pixels >= 1 (the model's metadata), but got {window!r}")
    if isinstance(stride, bool) or int(stride) != stride or stride < 1:
        raise UserError(f"window_stride must be an int >= 1 (the model's metadata), but got {stride!r}")
    return int(size[0]), int(size[1]), int(stride)
