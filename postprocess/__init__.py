"""Postprocessing in numpy: box formats, IoU, NMS, YOLO decoding, anchor boxes, embedding comparison."""

from postprocess.anchors import AnchorResult, TargetAssignment, assign_targets, kmeans_anchors, shape_iou
from postprocess.boxes import (
    Transform,
    box_area,
    box_convert,
    boxes_to_input,
    boxes_to_original,
    clip_boxes,
    denormalize_boxes,
    normalize_boxes,
)
from postprocess.decode import HEADS, decode, decode_course, decode_yolov5, decode_yolov8
from postprocess.detections import Detections
from postprocess.embeddings import (
    Calibration,
    Identification,
    Roc,
    Verification,
    distance,
    distance_matrix,
    equal_error_rate,
    identify,
    l2_normalize,
    roc_auc,
    roc_curve,
    threshold_at_far,
    verify,
)
from postprocess.iou import box_iou, box_iou_pairwise
from postprocess.nms import SoftNMSResult, batched_nms, nms, select, soft_nms

__all__ = [
    "HEADS",
    "AnchorResult",
    "Calibration",
    "Detections",
    "Identification",
    "Roc",
    "SoftNMSResult",
    "TargetAssignment",
    "Transform",
    "Verification",
    "assign_targets",
    "batched_nms",
    "box_area",
    "box_convert",
    "box_iou",
    "box_iou_pairwise",
    "boxes_to_input",
    "boxes_to_original",
    "clip_boxes",
    "decode",
    "decode_course",
    "decode_yolov5",
    "decode_yolov8",
    "denormalize_boxes",
    "distance",
    "distance_matrix",
    "equal_error_rate",
    "identify",
    "kmeans_anchors",
    "l2_normalize",
    "nms",
    "normalize_boxes",
    "roc_auc",
    "roc_curve",
    "select",
    "shape_iou",
    "soft_nms",
    "threshold_at_far",
    "verify",
]
