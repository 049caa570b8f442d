"""YOLO decoders (the course's YOLOv2 head, YOLOv5, YOLOv8) to Detections per image, and the HEADS table of all."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from edgepipe.postprocess._check import FLOAT_DTYPES, check_max_det, check_unit
from edgepipe.postprocess.anchors import check_anchors, no_anchors
from edgepipe.postprocess.boxes import Transform, boxes_to_original, points_to_original
from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.errors import UserError
from edgepipe.postprocess.nms_output import NMS_HEAD, decode_nms
from edgepipe.postprocess.suppression import select_indices

# The course head's raw output in two layouts: the convolution's channels, or the course's S x S x A x (5 + C).
COURSE_LAYOUTS = {"channels": "(B, A*(5+C), S_h, S_w)", "cells": "(B, S_h, S_w, A, 5+C)"}
# tw, th are clipped to this before exp: exp(20) anchors is far larger than any image, exp(89) overflows float32.
MAX_LOG_SIZE = 20.0


@dataclass(frozen=True)
class _Selection:
    """The last step shared by the heads, its settings checked once: score threshold, NMS, max_det, original pixels."""

    conf: float
    iou: float
    max_det: int
    class_names: tuple[str, ...]
    class_agnostic: bool

    def __call__(
        self, boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, transform: Transform,
        keypoints: np.ndarray | None = None, keypoint_scores: np.ndarray | None = None,
    ) -> Detections:
        """boxes: (K, 4) float32 xyxy network-input pixels. scores: (K,) float32. class_ids: (K,) int64.
        keypoints: (K, P, 2) float32 network-input pixels and keypoint_scores (K, P), or None (the pose heads).
        NMS runs in network-input pixels; the kept boxes are then mapped to (and clipped to) the original image, their
        keypoints mapped (not clipped)."""
        keep = select_indices(boxes, scores, class_ids, self.conf, self.iou, self.max_det, self.class_agnostic)
        points = None if keypoints is None else points_to_original(keypoints[keep], transform)
        points_scores = None if keypoint_scores is None else keypoint_scores[keep]
        return Detections(boxes_to_original(boxes[keep], transform), scores[keep], class_ids[keep], self.class_names,
                          points, keypoint_scores=points_scores)


def _selection(
    conf_threshold: float, iou_threshold: float, max_det: int, class_names: Sequence[str], class_agnostic: bool
) -> _Selection:
    """Check the settings every head shares, before any work."""
    conf = check_unit(conf_threshold, "conf_threshold")
    iou = check_unit(iou_threshold, "iou_threshold")
    return _Selection(conf, iou, check_max_det(max_det), tuple(str(c) for c in class_names), bool(class_agnostic))


def _check_output(outputs: np.ndarray, ndim: int, layout: str) -> np.ndarray:
    """A model output: float16/32/64 with ndim axes (layout names them), finite. Returns it as float32."""
    out = np.asarray(outputs)
    if out.dtype not in FLOAT_DTYPES:
        raise UserError(f"outputs must be a float16, float32 or float64 array {layout}, but got dtype {out.dtype}")
    if out.ndim != ndim:
        raise UserError(f"outputs must be {layout}, a {ndim}-D array, but got shape {out.shape}")
    out = out.astype(np.float32, copy=False)
    if not np.isfinite(out).all():
        raise UserError("outputs must be finite, but got NaN or inf (a broken model or wrong input scaling?)")
    return out


def _check_classes(found: int, class_names: tuple[str, ...], layout: str, shape: tuple[int, ...]) -> None:
    """found: the class count C that the output's shape implies; it must be >= 1 and match class_names if given."""
    if found < 1 or (class_names and found != len(class_names)):
        want = f"C = {len(class_names)} (the number of class_names)" if class_names else "C >= 1"
        raise UserError(f"outputs must be {layout} with {want}, but got shape {shape}, so C = {found}")


def _check_no_anchors(anchors: Sequence[Sequence[float]] | np.ndarray, head: str) -> None:
    """The decoded heads have no anchors: () (ModelMeta's default for them) passes, anything else is refused."""
    if not no_anchors(anchors):
        shown = anchors.tolist() if isinstance(anchors, np.ndarray) else anchors  # one line, like every UserError
        raise UserError(f"anchors belong to the yolo-course head, but got anchors={shown!r} for head {head!r}: "
                        "give anchors=() (the default: no anchors), or decode with the yolo-course head")


def _check_transforms(transforms: Sequence[Transform], batch: int) -> None:
    """transforms: one Transform per image of the batch (B of them)."""
    if len(transforms) != batch:
        raise UserError(f"transforms must have one Transform per image ({batch}), but got {len(transforms)}")
    for i, t in enumerate(transforms):
        if not isinstance(t, Transform):
            raise UserError(f"transforms[{i}] must be a Transform, but got {type(t).__name__}")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Elementwise logistic function, float32; exp(-x) may overflow to inf for x < -88, giving exactly 0."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def _xyxy(cx: np.ndarray, cy: np.ndarray, w: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Centers and sizes, four (K,) arrays, to (K, 4) float32 xyxy."""
    half_w, half_h = w / 2, h / 2
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1).astype(np.float32)


def _check_sizes(w: np.ndarray, h: np.ndarray, layout: str) -> None:
    """w, h: (K,) box sizes read from a decoded output; negative ones mean a wrong layout or head."""
    if (w < 0).any() or (h < 0).any():
        raise UserError(f"outputs must be {layout} with w, h >= 0, but got a negative size (wrong layout or head?)")


def decode_course(
    outputs: np.ndarray,
    transforms: Sequence[Transform],
    anchors: Sequence[Sequence[float]] | np.ndarray = (),
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_det: int = 300,
    class_names: Sequence[str] = (),
    anchor_units: str = "grid",
    class_agnostic: bool = False,
    layout: str = "channels",
) -> list[Detections]:
    """The course's YOLO (YOLOv2) head: raw outputs of a grid of cells, A anchors per cell.

    outputs: float, layout "channels": (B, A*(5+C), S_h, S_w), the convolution's output, channels per anchor
    tx, ty, tw, th, to, c_1..c_C; layout "cells": (B, S_h, S_w, A, 5+C), the same numbers per cell and anchor.
    anchors: (A, 2) (w, h) in grid cells (anchor_units "grid", YOLOv2) or network-input pixels ("pixels"), A >= 1;
    the default () (no anchors) is refused: this head needs them.
    For the cell at (row, col): bx = (sigmoid(tx) + col) / S_w, by = (sigmoid(ty) + row) / S_h (fractions of the
    network input), bw = anchor_w * exp(tw), bh = anchor_h * exp(th) (tw, th clipped to MAX_LOG_SIZE);
    Pc = sigmoid(to), class probabilities = softmax(c), score = Pc * the best class probability. Boxes with
    score < conf_threshold are dropped (cells with Pc < conf_threshold first, before their softmax: the
    probability is <= 1), then class-aware NMS (suppress IoU > iou_threshold; across classes if class_agnostic)
    and the max_det best. transforms: one per image, dst_size the network input (height, width).
    Returns: one Detections per image, boxes xyxy in original-image pixels, by descending score.
    """
    selection = _selection(conf_threshold, iou_threshold, max_det, class_names, class_agnostic)
    anchor_wh = check_anchors(anchors, anchor_units)
    raw = _course_raw(outputs, len(anchor_wh), layout, selection.class_names)  # (B, A, 5+C, S_h, S_w)
    _check_transforms(transforms, len(raw))
    results = []
    for image, t in zip(raw, transforms, strict=True):
        cell = (t.dst_size[0] / image.shape[2], t.dst_size[1] / image.shape[3])  # (h, w) input pixels
        anchors_px = anchor_wh * ((cell[1], cell[0]) if anchor_units == "grid" else (1.0, 1.0))  # (A, 2)
        results.append(selection(*_course_candidates(image, anchors_px, cell, selection.conf), t))
    return results


def _course_raw(outputs: np.ndarray, a: int, layout: str, class_names: tuple[str, ...]) -> np.ndarray:
    """Check the course head's output against A anchors and the classes. Returns: (B, A, 5+C, S_h, S_w) float32."""
    if layout not in COURSE_LAYOUTS:
        raise UserError(f"layout must be one of {tuple(COURSE_LAYOUTS)}, but got {layout!r}")
    text = COURSE_LAYOUTS[layout]
    out = _check_output(outputs, 4 if layout == "channels" else 5, text)
    if layout == "cells":
        if out.shape[3] != a:
            raise UserError(f"outputs must be {text} with A = {a} anchors on axis 3, but got shape {out.shape}")
        _check_classes(out.shape[4] - 5, class_names, text, out.shape)
        return out.transpose(0, 3, 4, 1, 2)  # (B, A, 5+C, S_h, S_w), a view
    if out.shape[1] % a:
        raise UserError(
            f"outputs must be {text} with A = {a} anchors, but got shape {out.shape}: "
            f"{out.shape[1]} channels is not a multiple of {a}"
        )
    _check_classes(out.shape[1] // a - 5, class_names, text, out.shape)
    return out.reshape(len(out), a, out.shape[1] // a, *out.shape[2:])  # (B, A, 5+C, S_h, S_w)


def _course_candidates(
    raw: np.ndarray, anchors_px: np.ndarray, cell: tuple[float, float], conf: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode the cells of one image whose objectness can pass conf.

    raw: (A, 5+C, S_h, S_w) float32. anchors_px: (A, 2) (w, h) input pixels. cell: (h, w) of a cell, input pixels.
    Returns: boxes (K, 4) float32 xyxy input pixels, scores (K,) float32, class ids (K,) int64.
    """
    pc = _sigmoid(raw[:, 4])  # (A, S_h, S_w)
    a_idx, row, col = np.nonzero(pc >= conf)  # score = Pc * probability <= Pc: the other cells cannot pass
    t = raw[a_idx, :, row, col]  # (K, 5+C)
    logits = t[:, 5:]
    best = logits.argmax(axis=1)
    prob = 1.0 / np.exp(logits - logits.max(axis=1, keepdims=True)).sum(axis=1)  # softmax at the best class
    xy = (_sigmoid(t[:, :2]) + np.stack([col, row], axis=1)) * (cell[1], cell[0])  # (K, 2) centers, input pixels
    wh = anchors_px[a_idx] * np.exp(np.minimum(t[:, 2:4], MAX_LOG_SIZE))  # (K, 2)
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1).astype(np.float32)  # (K, 4) xyxy
    return boxes, pc[a_idx, row, col] * prob, best


def decode_yolov5(
    outputs: np.ndarray,
    transforms: Sequence[Transform],
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_det: int = 300,
    class_names: Sequence[str] = (),
    class_agnostic: bool = False,
    anchors: Sequence[Sequence[float]] | np.ndarray = (),
) -> list[Detections]:
    """YOLOv5-style decoded output (also YOLOv7, YOLOX-style exports with objectness).

    outputs: float (B, K, 5+C): cx, cy, w, h in network-input pixels, objectness, C class scores after sigmoid
    (in [0, 1]). score = objectness * the best class score; rows with objectness < conf_threshold are dropped
    first (the score cannot pass), then the score threshold, class-aware NMS and max_det as in decode_course.
    anchors: () only (this head has none), so that a model's metadata can be passed as it is.
    Returns: one Detections per image, boxes xyxy in original-image pixels, by descending score.
    """
    selection = _selection(conf_threshold, iou_threshold, max_det, class_names, class_agnostic)
    _check_no_anchors(anchors, "yolov5")
    layout = "(B, K, 5+C)"
    out = _check_output(outputs, 3, layout)
    _check_classes(out.shape[2] - 5, selection.class_names, layout, out.shape)
    _check_transforms(transforms, len(out))
    results = []
    for image, t in zip(out, transforms, strict=True):
        rows = image[image[:, 4] >= selection.conf]  # (K', 5+C)
        best = rows[:, 5:].argmax(axis=1)
        scores = rows[:, 4] * rows[np.arange(len(rows)), 5 + best]
        _check_sizes(rows[:, 2], rows[:, 3], layout)
        boxes = _xyxy(rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3])
        results.append(selection(boxes, scores, best, t))
    return results


def decode_yolov8(
    outputs: np.ndarray,
    transforms: Sequence[Transform],
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_det: int = 300,
    class_names: Sequence[str] = (),
    class_agnostic: bool = False,
    anchors: Sequence[Sequence[float]] | np.ndarray = (),
) -> list[Detections]:
    """YOLOv8 / YOLO11 anchor-free output, as Ultralytics exports it to ONNX.

    outputs: float (B, 4+C, K): rows cx, cy, w, h in network-input pixels, then C class scores after sigmoid; no
    objectness. score = the best class score; the score threshold is applied first, on the class rows as they
    are (no transpose), then class-aware NMS and max_det as in decode_course.
    anchors: () only (this head has none), so that a model's metadata can be passed as it is.
    Returns: one Detections per image, boxes xyxy in original-image pixels, by descending score.
    """
    selection = _selection(conf_threshold, iou_threshold, max_det, class_names, class_agnostic)
    _check_no_anchors(anchors, "yolov8")
    layout = "(B, 4+C, K)"
    out = _check_output(outputs, 3, layout)
    _check_classes(out.shape[1] - 4, selection.class_names, layout, out.shape)
    _check_transforms(transforms, len(out))
    results = []
    for image, t in zip(out, transforms, strict=True):
        boxes, scores, classes, _ = _yolov8_candidates(image, out.shape[1] - 4, selection.conf, layout)
        results.append(selection(boxes, scores, classes, t))
    return results


def _yolov8_candidates(
    image: np.ndarray, c: int, conf: float, layout: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One image's YOLOv8 output (4+C+E, N) (E more rows per column: a pose head's keypoints): the columns whose best
    class score passes conf, checked on the class rows as they are (no transpose). Returns their boxes (K', 4) xyxy
    input pixels, scores (K',), class ids (K',) and their extra rows (E, K').

    Only the rows needed are gathered: when most columns pass (a low conf), the class ids are found over all columns
    rather than in a copy of the passing columns' class rows."""
    scores = image[4 : 4 + c]
    top = scores.max(axis=0)  # (N,) best class score of each anchor point
    keep = np.flatnonzero(top >= conf)
    ids = _first_rows(scores, top)[keep] if 2 * keep.size > top.size else scores[:, keep].argmax(axis=0)
    box = image[:4, keep]
    _check_sizes(box[2], box[3], layout)
    return _xyxy(box[0], box[1], box[2], box[3]), top[keep], ids, image[4 + c :, keep]


def _first_rows(rows: np.ndarray, top: np.ndarray) -> np.ndarray:
    """rows: (C, N) float32, top: (N,) their maximum over C. Returns (N,) int64, the first row that reaches top in
    each column: argmax over axis 0, found a row at a time (contiguous) rather than by numpy's strided argmax."""
    first = np.zeros(rows.shape[1], dtype=np.int64)
    for k in range(len(rows) - 1, -1, -1):
        first[rows[k] == top] = k
    return first


# The heads in modules of their own import this module's checks, so they are imported here, once those exist.
from edgepipe.postprocess.pose import decode_course_pose, decode_yolov8_pose  # noqa: E402
from edgepipe.postprocess.windows import decode_windows  # noqa: E402

HEADS: dict[str, Callable[..., list[Detections]]] = {
    "yolo-course": decode_course,
    "yolov5": decode_yolov5,
    "yolov8": decode_yolov8,
    "windows": decode_windows,
    "yolo-course-pose": decode_course_pose,
    "yolov8-pose": decode_yolov8_pose,
    NMS_HEAD: decode_nms,  # a graph with decode + NMS inside (export --nms): postprocess/nms_output.py
}
COURSE_HEADS = ("yolo-course", "yolo-course-pose")  # the heads with anchors and the course's two layouts
# The keyword arguments only some heads take, from the model's metadata (runtime's ModelMeta.decode_options()).
HEAD_OPTIONS: dict[str, tuple[str, ...]] = {
    "windows": ("window", "window_stride"),
    "yolo-course-pose": ("kpt_shape", "class_keypoints"),
    "yolov8-pose": ("kpt_shape",),
}


def decode(
    head: str,
    outputs: np.ndarray,
    transforms: Sequence[Transform],
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_det: int = 300,
    class_names: Sequence[str] = (),
    anchors: Sequence[Sequence[float]] | np.ndarray = (),
    anchor_units: str = "grid",
    class_agnostic: bool = False,
    layout: str = "channels",
    **head_options: object,
) -> list[Detections]:
    """Decode a detector's output with the head named in its metadata, one of HEADS.

    anchors, anchor_units and layout belong to the course heads ("yolo-course", see decode_course, and
    "yolo-course-pose"), which need anchors; the other heads take anchors=() (no anchors, the default and
    ModelMeta's) and refuse any anchor or another layout, so decode(meta.head, ..., anchors=meta.anchors) decodes
    every head. head_options: the keyword arguments of HEAD_OPTIONS[head] ("windows": window, window_stride; the pose
    heads: kpt_shape, and class_keypoints for the course's); decode(meta.head, ..., **meta.decode_options()) passes a
    model's own. Returns: one Detections per image, boxes xyxy in original-image pixels (and keypoints).
    """
    if head not in HEADS:
        raise UserError(f"head must be one of {tuple(HEADS)}, but got {head!r}")
    foreign = sorted(set(head_options) - set(HEAD_OPTIONS.get(head, ())))
    if foreign:
        raise UserError(f"head {head!r} takes the options {HEAD_OPTIONS.get(head, ())}, but got {foreign}")
    settings = {
        "conf_threshold": conf_threshold, "iou_threshold": iou_threshold, "max_det": max_det,
        "class_names": class_names, "class_agnostic": class_agnostic,
    }
    if head in COURSE_HEADS:
        return HEADS[head](outputs, transforms, anchors, anchor_units=anchor_units, layout=layout, **settings,
                           **head_options)
    if layout != "channels":
        raise UserError(f"layout belongs to the yolo-course head, but got layout={layout!r} for head {head!r}: "
                        "leave it at 'channels'")
    return HEADS[head](outputs, transforms, anchors=anchors, **settings, **head_options)
