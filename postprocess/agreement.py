"""Greedy matching of detections to reference boxes, and how far a model variant's detections agree with the
original model's (precision, recall, the largest box shift): the check of `edgepipe quantize`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.errors import UserError
from edgepipe.postprocess.iou import box_iou


def greedy_matches(
    boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, ref_boxes: np.ndarray, ref_class_ids: np.ndarray,
    iou_threshold: float = 0.5,
) -> np.ndarray:
    """Match detections to reference boxes, highest score first: each detection takes the free reference box of its
    class with the highest IoU, if that IoU >= iou_threshold (the rule of COCO's and VOC's true positives).

    boxes: (N, 4) float32 xyxy, scores: (N,), class_ids: (N,) int; ref_boxes: (M, 4) float32 xyxy, ref_class_ids:
    (M,) int. Returns: (K, 2) int64 pairs (detection index, reference index), in matching order.
    """
    iou = box_iou(boxes, ref_boxes)  # (N, M)
    free = np.ones(len(ref_boxes), bool)
    pairs = []
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        candidates = np.flatnonzero((ref_class_ids == class_ids[i]) & free & (iou[i] >= iou_threshold))
        if len(candidates):
            j = candidates[np.argmax(iou[i, candidates])]
            free[j] = False
            pairs.append((i, j))
    return np.array(pairs, np.int64).reshape(-1, 2)


@dataclass(frozen=True)
class Agreement:
    """A variant's detections against the original's on the same images.

    precision: matched / the variant's boxes; recall: matched / the original's boxes (1.0 when there are none);
    max_shift: the largest |coordinate difference| of a matched pair, pixels; matched, variant_boxes,
    reference_boxes: the counts. score: min(precision, recall), what a budget is checked against.
    """

    precision: float
    recall: float
    max_shift: float
    matched: int
    variant_boxes: int
    reference_boxes: int

    @property
    def score(self) -> float:
        return min(self.precision, self.recall)


def agreement(variant: Sequence[Detections], reference: Sequence[Detections], iou_threshold: float = 0.5
              ) -> Agreement:
    """Match each image's variant detections to the reference's (greedy_matches, same class, IoU >= iou_threshold)
    and sum over the images. variant, reference: one Detections per image, the same images in the same order."""
    if len(variant) != len(reference):
        raise UserError(f"agreement needs one Detections per image on both sides, but got {len(variant)} and "
                         f"{len(reference)}")
    matched = n_variant = n_reference = 0
    shift = 0.0
    for v, r in zip(variant, reference, strict=True):
        pairs = greedy_matches(v.xyxy, v.scores, v.class_ids, r.xyxy, r.class_ids, iou_threshold)
        matched += len(pairs)
        n_variant, n_reference = n_variant + len(v), n_reference + len(r)
        if len(pairs):
            shift = max(shift, float(np.abs(v.xyxy[pairs[:, 0]] - r.xyxy[pairs[:, 1]]).max()))
    precision = matched / n_variant if n_variant else 1.0
    recall = matched / n_reference if n_reference else 1.0
    return Agreement(precision, recall, shift, matched, n_variant, n_reference)
