"""The "yolo-nms" head: rows of a graph that decoded and suppressed its boxes itself (`edgepipe export --nms`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from edgepipe.postprocess._check import FLOAT_DTYPES, check_max_det, check_unit
from edgepipe.postprocess.anchors import no_anchors
from edgepipe.postprocess.boxes import Transform, boxes_to_original
from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.errors import UserError

NMS_HEAD = "yolo-nms"
LAYOUT = "(K, 7): image index, x1, y1, x2, y2 (network-input pixels), score, class id"
NMS_KEYS = ("conf", "iou", "max_det")  # what the graph's NMS was built with, written in the file's metadata


def check_nms_settings(nms: Mapping[str, float], conf: float, iou: float, class_agnostic: bool = False) -> None:
    """Raise unless decoding at conf and iou gives what the Python path gives on the graph's raw output: the graph
    kept every box scoring at least nms["conf"] after class-aware NMS at nms["iou"], so a higher conf can be applied
    afterwards (a box under it never suppresses one above it), a lower one or another IoU cannot."""
    missing = [k for k in NMS_KEYS if k not in nms]
    if missing:
        raise UserError(f"a {NMS_HEAD} model's metadata must give nms {NMS_KEYS}, but {missing} are missing: "
                         "re-export it with --nms")
    fix = f"use conf >= {nms['conf']:g} and iou {nms['iou']:g}, or the model without --nms"
    if conf < nms["conf"] or abs(iou - nms["iou"]) > 1e-9 or class_agnostic:
        wanted = f"conf {conf:g}, iou {iou:g}" + (", agnostic NMS" if class_agnostic else "")
        raise UserError(f"this model runs class-aware NMS inside its graph at conf {nms['conf']:g}, iou "
                         f"{nms['iou']:g}, so it cannot give {wanted}: {fix}")


def decode_nms(
    outputs: np.ndarray,
    transforms: Sequence[Transform],
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_det: int = 300,
    class_names: Sequence[str] = (),
    class_agnostic: bool = False,
    anchors: Sequence[Sequence[float]] | np.ndarray = (),
) -> list[Detections]:
    """Rows already decoded and suppressed inside the graph, to Detections per image.

    outputs: float (K, 7) rows image index, x1, y1, x2, y2 in network-input pixels, score, class id, for the B
    images of the batch. Rows scoring under conf_threshold are dropped, each image keeps its max_det best, and the
    boxes are mapped to (and clipped to) the original image. iou_threshold and class_agnostic cannot change what
    the graph did: check them against the model's metadata with check_nms_settings. anchors: () only.
    Returns: one Detections per image, by descending score.
    """
    conf = check_unit(conf_threshold, "conf_threshold")
    check_unit(iou_threshold, "iou_threshold")
    max_det = check_max_det(max_det)
    if not no_anchors(anchors):
        raise UserError(f"anchors belong to the yolo-course head, but got anchors for head {NMS_HEAD!r}: give ()")
    rows = np.asarray(outputs)
    if rows.dtype not in FLOAT_DTYPES or rows.ndim != 2 or rows.shape[1] != 7:
        raise UserError(f"outputs must be a float array {LAYOUT}, but got {rows.dtype} {rows.shape}")
    rows = rows.astype(np.float32, copy=False)
    if not np.isfinite(rows).all():
        raise UserError("outputs must be finite, but got NaN or inf (a broken model or wrong input scaling?)")
    images, classes = rows[:, 0].astype(np.int64), rows[:, 6].astype(np.int64)
    if len(rows) and (images.min() < 0 or images.max() >= len(transforms)):
        raise UserError(f"outputs {LAYOUT} name image {int(images.max())}, but got {len(transforms)} transforms")
    names = tuple(str(c) for c in class_names)
    results = []
    for b, t in enumerate(transforms):
        if not isinstance(t, Transform):
            raise UserError(f"transforms[{b}] must be a Transform, but got {type(t).__name__}")
        mine = np.flatnonzero((images == b) & (rows[:, 5] >= conf))
        mine = mine[np.argsort(-rows[mine, 5], kind="stable")][:max_det]
        results.append(Detections(boxes_to_original(rows[mine, 1:5], t), rows[mine, 5], classes[mine], names))
    return results
