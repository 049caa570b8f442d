"""Postprocessing in numpy: boxes, IoU, NMS, YOLO, sliding-window and pose decoding, anchors, tracking, embeddings."""

from edgepipe.postprocess.anchors import AnchorResult, TargetAssignment, assign_targets, kmeans_anchors, shape_iou
from edgepipe.postprocess.boxes import (
    Transform,
    box_area,
    box_convert,
    boxes_to_input,
    boxes_to_original,
    clip_boxes,
    denormalize_boxes,
    normalize_boxes,
    points_to_input,
    points_to_original,
)
from edgepipe.postprocess.calibration import (
    Calibration,
    Roc,
    calibrate,
    equal_error_rate,
    roc_auc,
    roc_curve,
    threshold_at_far,
)
from edgepipe.postprocess.decoders import HEADS, decode, decode_course, decode_yolov5, decode_yolov8
from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.embeddings import (
    Gallery,
    Identification,
    Verification,
    distance,
    distance_matrix,
    identify,
    l2_normalize,
    verify,
)
from edgepipe.postprocess.iou import box_iou, box_iou_pairwise
from edgepipe.postprocess.pose import decode_course_pose, decode_yolov8_pose
from edgepipe.postprocess.suppression import SoftNMSResult, batched_nms, nms, select, soft_nms
from edgepipe.postprocess.track import IouTracker
from edgepipe.postprocess.windows import decode_windows

__all__ = [
    "HEADS",
    "AnchorResult",
    "Calibration",
    "Detections",
    "Gallery",
    "Identification",
    "IouTracker",
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
    "calibrate",
    "clip_boxes",
    "decode",
    "decode_course",
    "decode_course_pose",
    "decode_windows",
    "decode_yolov5",
    "decode_yolov8",
    "decode_yolov8_pose",
    "denormalize_boxes",
    "distance",
    "distance_matrix",
    "equal_error_rate",
    "identify",
    "kmeans_anchors",
    "l2_normalize",
    "nms",
    "normalize_boxes",
    "points_to_input",
    "points_to_original",
    "roc_auc",
    "roc_curve",
    "select",
    "shape_iou",
    "soft_nms",
    "threshold_at_far",
    "verify",
]
