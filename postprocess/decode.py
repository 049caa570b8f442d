"""YOLO decoders: the course (YOLOv2) grid/anchor head, YOLOv5 and YOLOv8 outputs, to Detections per image."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from postprocess._check import check_unit
from postprocess.boxes import Transform, boxes_to_original
from postprocess.detections import Detections
from postprocess.nms import select

ANCHOR_UNITS = ("grid", "pixels")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    """Inverse sigmoid, with -inf / +inf at 0 / 1."""
    if p <= 0.0:
        return -np.inf
    if p >= 1.0:
        return np.inf
    return float(np.log(p / (1.0 - p)))


def _check_output(outputs: np.ndarray, ndims: tuple[int, ...], layout: str) -> np.ndarray:
    """A model output as a float32 array of one of the ranks in ndims, finite everywhere."""
    out = np.asarray(outputs)
    if out.ndim not in ndims or not np.issubdtype(out.dtype, np.floating):
        raise ValueError(f"outputs must be a float array shaped {layout}, but got {out.dtype} {out.shape}")
    out = out.astype(np.float32, copy=False)
    if not np.isfinite(out.sum(dtype=np.float64)):
        raise ValueError("outputs must be finite, but got NaN or inf (a broken model or wrong input scaling?)")
    return out


def _check_batch(batch: int, transforms: Sequence[Transform]) -> None:
    if len(transforms) != batch:
        raise ValueError(f"transforms must have one Transform per image ({batch}), but got {len(transforms)}")


def _cxcywh_to_xyxy(cx: np.ndarray, cy: np.ndarray, w: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Four (K,) arrays to (K, 4) float32 xyxy."""
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)


def _finish(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    transform: Transform,
    conf: float,
    iou: float,
    max_det: int,
    class_names: Sequence[str],
    class_agnostic: bool,
) -> Detections:
    """Score filter + NMS in network-input pixels, then boxes mapped to the original image."""
    det = select(boxes, scores, class_ids, conf, iou, max_det, class_agnostic, class_names)
    return Detections(boxes_to_original(det.xyxy, transform), det.scores, det.class_ids, det.class_names)


def _check_names(num_classes: int, class_names: Sequence[str], what: str) -> None:
    if class_names and len(class_names) != num_classes:
        raise ValueError(
            f"class_names must have {num_classes} entries to match the {what}, but got {len(class_names)}"
        )


def decode_course(
    outputs: np.ndarray,
    transforms: Sequence[Transform],
    anchors: Sequence[Sequence[float]],
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_det: int = 300,
    class_names: Sequence[str] = (),
    anchor_units: str = "grid",
    class_agnostic: bool = False,
) -> list[Detections]:
    """The course's YOLO (YOLOv2) head.

    outputs: (B, A*(5+C), S_h, S_w), per anchor the channels tx, ty, tw, th, to, c_1..c_C; or the same values as
    (B, S_h, S_w, A, 5+C). For cell (row, col): bx = (sigmoid(tx) + col) / S_w, by = (sigmoid(ty) + row) / S_h
    (fractions of the network input), bw = anchor_w * exp(tw), bh = anchor_h * exp(th) with anchors (A, 2) as
    (w, h) in grid cells ("grid", YOLOv2) or network-input pixels ("pixels"). Pc = sigmoid(to), class
    probabilities = softmax(c), score = Pc * best class probability; boxes with score < conf_threshold are
    dropped, then NMS. transforms: one per image. Returns: one Detections per image, original-image pixels.
    """
    conf = check_unit(conf_threshold, "conf_threshold")
    anchor_wh = _check_anchors(anchors, anchor_units)
    out = _check_output(outputs, (4, 5), "(B, A*(5+C), S, S) or (B, S, S, A, 5+C)")
    a = len(anchor_wh)
    if out.ndim == 5:
        if out.shape[3] != a:
            raise ValueError(f"outputs must have {a} anchors on axis 3 of (B, S, S, A, 5+C), but got {out.shape}")
        out = out.transpose(0, 3, 4, 1, 2)  # (B, A, 5+C, S_h, S_w)
    else:
        if out.shape[1] % a or out.shape[1] // a < 6:
            raise ValueError(
                f"outputs must have A*(5+C) channels with A = {a} anchors and C >= 1, but got {out.shape[1]}"
            )
        out = out.reshape(out.shape[0], a, out.shape[1] // a, *out.shape[2:])  # (B, A, 5+C, S_h, S_w)
    _check_names(out.shape[2] - 5, class_names, "outputs' classes")
    _check_batch(len(out), transforms)
    min_logit = _logit(conf)  # score <= Pc, so cells with Pc < conf cannot pass: skip them before the softmax
    return [
        _finish(
            *_course_candidates(raw, anchor_wh, anchor_units, t.dst_size, min_logit),
            t, conf, iou_threshold, max_det, class_names, class_agnostic,
        )
        for raw, t in zip(out, transforms, strict=True)
    ]


def _course_candidates(
    raw: np.ndarray, anchors: np.ndarray, units: str, input_size: tuple[int, int], min_logit: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """raw: (A, 5+C, S_h, S_w) of one image. Returns boxes (K, 4) xyxy input pixels, scores (K,), class ids (K,)."""
    s_h, s_w = raw.shape[2:]
    h_in, w_in = input_size
    a_idx, row, col = np.nonzero(raw[:, 4] >= min_logit)
    t = raw[a_idx, :, row, col]  # (K, 5+C)
    logits = t[:, 5:]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    best = e.argmax(axis=1)
    prob = e[np.arange(len(t)), best] / e.sum(axis=1)
    scores = _sigmoid(t[:, 4]) * prob
    cx = (_sigmoid(t[:, 0]) + col) / s_w * w_in
    cy = (_sigmoid(t[:, 1]) + row) / s_h * h_in
    scale = np.array([w_in / s_w, h_in / s_h]) if units == "grid" else np.ones(2)
    wh = anchors[a_idx] * np.exp(np.minimum(t[:, 2:4], 20.0)) * scale  # exp clipped: no overflow to inf
    return _cxcywh_to_xyxy(cx, cy, wh[:, 0], wh[:, 1]), scores.astype(np.float32), best


def _check_anchors(anchors: Sequence[Sequence[float]] | None, units: str) -> np.ndarray:
    if units not in ANCHOR_UNITS:
        raise ValueError(f"anchor_units must be one of {ANCHOR_UNITS}, but got {units!r}")
    if anchors is None:
        raise ValueError("anchors must be given for the yolo-course head as (A, 2) (w, h), but got None")
    arr = np.asarray(anchors, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) == 0 or not (arr > 0).all() or not np.isfinite(arr).all():
        raise ValueError(f"anchors must be (A, 2) positive (w, h) pairs, but got {np.asarray(anchors).tolist()}")
    return arr


def decode_yolov5(
    outputs: np.ndarray,
    transforms: Sequence[Transform],
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_det: int = 300,
    class_names: Sequence[str] = (),
    class_agnostic: bool = False,
) -> list[Detections]:
    """YOLOv5-style decoded output.

    outputs: (B, K, 5+C): cx, cy, w, h in network-input pixels, objectness, C class probabilities (after
    sigmoid). score = objectness * best class probability. Returns one Detections per image, original pixels.
    """
    conf = check_unit(conf_threshold, "conf_threshold")
    out = _check_output(outputs, (3,), "(B, K, 5+C)")
    if out.shape[2] < 6:
        raise ValueError(f"outputs must be (B, K, 5+C) with C >= 1, but got shape {out.shape}")
    _check_names(out.shape[2] - 5, class_names, "outputs' classes")
    _check_batch(len(out), transforms)
    results = []
    for p, t in zip(out, transforms, strict=True):
        p = p[p[:, 4] >= conf]  # (K', 5+C): score <= objectness
        best = p[:, 5:].argmax(axis=1)
        scores = p[:, 4] * p[np.arange(len(p)), 5 + best]
        boxes = _cxcywh_to_xyxy(p[:, 0], p[:, 1], p[:, 2], p[:, 3])
        results.append(_finish(boxes, scores, best, t, conf, iou_threshold, max_det, class_names, class_agnostic))
    return results


def decode_yolov8(
    outputs: np.ndarray,
    transforms: Sequence[Transform],
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_det: int = 300,
    class_names: Sequence[str] = (),
    class_agnostic: bool = False,
) -> list[Detections]:
    """YOLOv8 / YOLO11 anchor-free output (Ultralytics ONNX export).

    outputs: (B, 4+C, K): cx, cy, w, h in network-input pixels, then C class scores (after sigmoid); no
    objectness. score = best class score. Returns one Detections per image, original pixels.
    """
    conf = check_unit(conf_threshold, "conf_threshold")
    out = _check_output(outputs, (3,), "(B, 4+C, K)")
    if out.shape[1] < 5:
        raise ValueError(f"outputs must be (B, 4+C, K) with C >= 1, but got shape {out.shape}")
    _check_names(out.shape[1] - 4, class_names, "outputs' classes (axis 1 of (B, 4+C, K))")
    _check_batch(len(out), transforms)
    results = []
    for p, t in zip(out, transforms, strict=True):
        keep = np.flatnonzero(p[4:].max(axis=0) >= conf)  # (K',) filter before anything else
        cand = p[:, keep]  # (4+C, K')
        best = cand[4:].argmax(axis=0)
        scores = cand[4 + best, np.arange(len(keep))]
        boxes = _cxcywh_to_xyxy(cand[0], cand[1], cand[2], cand[3])
        results.append(_finish(boxes, scores, best, t, conf, iou_threshold, max_det, class_names, class_agnostic))
    return results


HEADS: dict[str, Callable[..., list[Detections]]] = {
    "yolo-course": decode_course,
    "yolov5": decode_yolov5,
    "yolov8": decode_yolov8,
}


def decode(
    head: str,
    outputs: np.ndarray,
    transforms: Sequence[Transform],
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_det: int = 300,
    class_names: Sequence[str] = (),
    anchors: Sequence[Sequence[float]] | None = None,
    anchor_units: str = "grid",
    class_agnostic: bool = False,
) -> list[Detections]:
    """Decode a detector's output with the head named in its metadata ("yolo-course", "yolov5", "yolov8").

    Returns one Detections per image in original-image pixels (see each head's function for its layout).
    """
    if head not in HEADS:
        raise ValueError(f"head must be one of {tuple(HEADS)}, but got {head!r}")
    common = dict(
        conf_threshold=conf_threshold, iou_threshold=iou_threshold, max_det=max_det,
        class_names=class_names, class_agnostic=class_agnostic,
    )
    if head == "yolo-course":
        return decode_course(outputs, transforms, anchors, anchor_units=anchor_units, **common)
    return HEADS[head](outputs, transforms, **common)
