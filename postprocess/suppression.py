"""Non-maximum suppression: greedy (plain and class-aware), soft-NMS, and the detector's final selection step."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

from edgepipe.postprocess._check import as_boxes, as_class_ids, as_scores, check_unit, check_xyxy
from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.errors import UserError
from edgepipe.postprocess.iou import box_iou

SOFT_NMS_METHODS = ("linear", "gaussian")

# Class ids below this are renumbered with np.bincount (O(N + id), at most 512 KiB), larger ones with np.unique (a
# sort, several times slower: docs/benchmarks.md, "The switches in the code and the measurements behind them").
BINCOUNT_MAX_ID = 2**16
# Class-aware NMS uses one (C, N) score row per class while C x N stays under this (16 MiB of float32), else one
# padded batch entry per class. Both are exactly per-class NMS on the original coordinates (torchvision's offset
# trick would round them differently).
CLASS_ROWS_MAX = 2**22
# Over this many times max_det candidates, NMS runs on the best PREFIX_MIN x max_det first, then on PREFIX_GROWTH
# times more while it keeps fewer than max_det: the same result, at a cost that follows max_det rather than the
# candidates (docs/benchmarks.md, "Postprocess at conf 0.001").
PREFIX_MIN = 4
PREFIX_GROWTH = 4
# Class ids below this index the score rows directly (rows of absent classes stay empty), skipping the renumbering.
ROWS_BY_ID_MAX = 1024


@dataclass(frozen=True)
class SoftNMSResult:
    """indices: (K,) int64 boxes kept, in selection order. scores: (K,) float32 their decayed scores."""

    indices: np.ndarray
    scores: np.ndarray


def _inputs(boxes: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate boxes (N, 4) xyxy and scores (N,). Returns float32 arrays (the caller's when already float32)."""
    b = as_boxes(boxes)
    check_xyxy(b)
    return b, as_scores(scores, len(b))


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS with torchvision's meaning: a box is suppressed when its IoU with a kept box is > iou_threshold.

    boxes: (N, 4) float or int xyxy pixels. scores: (N,) float, any range. iou_threshold: in [0, 1]; 0 suppresses
    any overlap, 1 suppresses nothing. IoU is box_iou's, in float32, and compared with float32(iou_threshold).
    Returns: (K,) int64 indices of the kept boxes in descending score order; equal scores keep the lower index
    first. Zero-area boxes have IoU 0 with everything, so they are always kept and suppress nothing.
    """
    b, s = _inputs(boxes, scores)
    thr = check_unit(iou_threshold, "iou_threshold")
    return _kept(b, s, np.zeros(len(b), dtype=np.int64), thr, class_agnostic=True)


def batched_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    iou_threshold: float,
    class_agnostic: bool = False,
) -> np.ndarray:
    """Class-aware NMS: boxes of different classes never suppress each other (unless class_agnostic).

    boxes: (N, 4) float or int xyxy pixels. scores: (N,) float. class_ids: (N,) int >= 0. iou_threshold: in [0, 1].
    class_agnostic: suppress across classes too (the course's assignment does); the same as nms.
    Returns: (K,) int64 kept indices in descending score order, equal scores by lower index; exactly the union of
    nms run on each class alone.
    """
    b, s = _inputs(boxes, scores)
    c = as_class_ids(class_ids, len(b))
    thr = check_unit(iou_threshold, "iou_threshold")
    return _kept(b, s, c, thr, class_agnostic)


def _kept(b: np.ndarray, s: np.ndarray, c: np.ndarray, thr: float, class_agnostic: bool) -> np.ndarray:
    """batched_nms on checked inputs: b (N, 4) float32 finite xyxy, s (N,) float32, c (N,) int64 >= 0, thr in
    [0, 1]. The checks cost more than the kernel for a few boxes, so the decoders call this once they checked."""
    if len(b) == 0:
        return np.zeros(0, dtype=np.int64)
    order, rank = _ranks(s)
    if class_agnostic:
        kept = _ort_nms()(b[None], rank[None, None, :], thr)[:, 2]  # already in descending rank order
        return order[len(b) - rank[kept].astype(np.int64)]
    top = int(c.max())
    if top < ROWS_BY_ID_MAX and (top + 1) * len(b) <= CLASS_ROWS_MAX:
        kept = _class_rows_nms(b, rank, c, top + 1, thr)  # small ids index the rows as they are
    else:
        dense, n_classes = _dense_class_ids(c)
        if n_classes * len(b) <= CLASS_ROWS_MAX:
            kept = _class_rows_nms(b, rank, dense, n_classes, thr)
        else:
            kept = _class_batches_nms(b, rank, dense, n_classes, thr)
    return order[np.sort(len(b) - rank[kept].astype(np.int64))]


def _class_rows_nms(b: np.ndarray, rank: np.ndarray, rows: np.ndarray, n_rows: int, thr: float) -> np.ndarray:
    """Class-aware NMS as one kernel call with a score row per class (rows: (N,) each box's row, < n_rows): each
    box's rank in its class's row, 0 elsewhere (dropped by the kernel's score threshold). The boxes go in as they
    are, with no copy. Returns the kept box indices. Measured no slower than plain nms on clustered boxes
    (docs/benchmarks.md, "The switches in the code and the measurements behind them")."""
    ranks = np.zeros((1, n_rows, len(b)), dtype=np.float32)  # (1, C, N)
    ranks[0, rows, np.arange(len(b))] = rank
    return _ort_nms()(b[None], ranks, thr)[:, 2]


def _class_batches_nms(
    b: np.ndarray, rank: np.ndarray, dense: np.ndarray, n_classes: int, thr: float
) -> np.ndarray:
    """Class-aware NMS with each class as its own batch entry of the kernel, padded to the largest class (padding
    has rank 0): C x max(class size) scores instead of C x N, for many classes over many boxes. Returns the kept
    box indices."""
    by_class = np.argsort(dense, kind="stable")  # (N,) box indices grouped by class
    counts = np.bincount(dense, minlength=n_classes)
    starts = np.cumsum(counts) - counts
    cls = dense[by_class]
    pos = np.arange(len(b)) - starts[cls]  # position of each grouped box inside its class
    boxes_p = np.zeros((n_classes, int(counts.max()), 4), dtype=np.float32)  # (C, M, 4)
    ranks_p = np.zeros((n_classes, 1, int(counts.max())), dtype=np.float32)  # (C, 1, M)
    boxes_p[cls, pos] = b[by_class]
    ranks_p[cls, 0, pos] = rank[by_class]
    sel = _ort_nms()(boxes_p, ranks_p, thr)  # (K, 3): class entry, 0, position
    return by_class[starts[sel[:, 0]] + sel[:, 2]]


def _ranks(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scores: (N,) float32. Returns order (N,) int64, the indices by descending score with ties by lower index,
    and rank (N,) float32 with rank[order[i]] = N - i: distinct, >= 1, exact in float32 up to N = 2**24.

    NMS runs on ranks instead of scores, so that the tie-breaking is ours and not the kernel's.
    """
    n = len(scores)
    if n > 2**24:
        raise UserError(f"scores must have at most 2**24 entries, but got {n}")
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(n, dtype=np.float32)
    rank[order] = np.arange(n, 0, -1)
    return order, rank


def _dense_class_ids(class_ids: np.ndarray) -> tuple[np.ndarray, int]:
    """class_ids: (N,) int64 >= 0, N > 0. Returns them renumbered 0..C-1 in the same order, and C."""
    if class_ids.max() < BINCOUNT_MAX_ID:
        lookup = np.cumsum(np.bincount(class_ids) > 0)  # (max id + 1,) classes present up to each id
        return lookup[class_ids] - 1, int(lookup[-1])
    classes, dense = np.unique(class_ids, return_inverse=True)
    return dense, len(classes)


@lru_cache(maxsize=1)
def _ort_nms() -> Callable[[np.ndarray, np.ndarray, float], np.ndarray]:
    """onnxruntime's NonMaxSuppression kernel as a function (built once, on first use).

    Chosen by measurement (benchmarks/postprocess.py; docs/benchmarks.md, "Postprocess: IoU and NMS"): from
    N = 1,000 it is faster than cv2.dnn.NMSBoxes given prepared lists (OpenCV's best call) and than the plain numpy
    loop, on clustered and on uniform boxes. The kernel computes IoU in float32 with box_iou's formula, skips
    zero-area boxes (never suppressed, never suppressing) and suppresses when IoU > threshold; tests/test_nms.py
    proves its kept sets equal a Python reference's.
    """
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores", "max_out", "iou", "min_score"], ["selected"])
    graph = helper.make_graph(
        [node],
        "nms",
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["B", "N", 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["B", "C", "N"]),
            helper.make_tensor_value_info("iou", TensorProto.FLOAT, [1]),
        ],
        [helper.make_tensor_value_info("selected", TensorProto.INT64, ["K", 3])],
        [
            helper.make_tensor("max_out", TensorProto.INT64, [1], [2**31 - 1]),
            # Ranks are >= 1; a 0 in a class's row means "not this class", dropped by this threshold.
            helper.make_tensor("min_score", TensorProto.FLOAT, [1], [0.5]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def run(boxes: np.ndarray, ranks: np.ndarray, iou_threshold: float) -> np.ndarray:
        """boxes: (B, N, 4) float32 xyxy. ranks: (B, 1, N) float32, 0 for padding. Each batch entry is one
        independent NMS. Returns: (K, 3) int64 rows (batch entry, 0, box index), each entry by descending rank."""
        feeds = {"boxes": boxes, "scores": ranks, "iou": np.array([iou_threshold], dtype=np.float32)}
        return session.run(None, feeds)[0]

    return run


def soft_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float = 0.3,
    sigma: float = 0.5,
    method: str = "linear",
    score_threshold: float = 0.001,
) -> SoftNMSResult:
    """Soft-NMS (Bodla et al. 2017): the boxes overlapping a kept box have their scores decayed, not removed.

    boxes: (N, 4) float or int xyxy pixels. scores: (N,) float in [0, 1]. Each step keeps the highest current
    score (ties by lower index) and decays every remaining score s by its IoU with the kept box:
    "linear": s *= 1 - IoU when IoU >= iou_threshold (the paper's N_t); "gaussian": s *= exp(-IoU^2 / sigma).
    Boxes whose score is below score_threshold (in [0, 1]) are dropped, at the start and after each decay.
    Returns: SoftNMSResult, indices and decayed scores in selection order (descending decayed score).
    """
    b, s = _inputs(boxes, scores)
    thr = check_unit(iou_threshold, "iou_threshold")
    min_score = check_unit(score_threshold, "score_threshold")
    if method not in SOFT_NMS_METHODS:
        raise UserError(f"method must be one of {SOFT_NMS_METHODS}, but got {method!r}")
    gaussian_sigma = _check_sigma(sigma)
    current = s.astype(np.float64)
    remaining = np.flatnonzero(current >= min_score)
    kept, kept_scores = [], []
    while remaining.size:
        best = remaining[np.argmax(current[remaining])]  # the first maximum: ties by lower index
        kept.append(best)
        kept_scores.append(current[best])
        remaining = remaining[remaining != best]
        iou = box_iou(b[best : best + 1], b[remaining])[0].astype(np.float64)  # (R,)
        if method == "linear":
            current[remaining] *= np.where(iou >= thr, 1.0 - iou, 1.0)
        else:
            current[remaining] *= np.exp(-(iou**2) / gaussian_sigma)
        remaining = remaining[current[remaining] >= min_score]
    return SoftNMSResult(np.asarray(kept, dtype=np.int64), np.asarray(kept_scores, dtype=np.float32))


def _check_sigma(sigma: float) -> float:
    """Raise unless sigma is a finite number > 0; return it as float."""
    try:
        value = float(sigma)
    except (TypeError, ValueError):
        raise UserError(f"sigma must be a finite number > 0, but got {sigma!r}") from None
    if not 0 < value < math.inf:
        raise UserError(f"sigma must be a finite number > 0, but got {sigma!r}")
    return value


def select(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    score_threshold: float,
    iou_threshold: float,
    max_det: int = 300,
    class_agnostic: bool = False,
    class_names: Sequence[str] = (),
) -> Detections:
    """A detector's last step: keep scores >= score_threshold, class-aware NMS, then the max_det best boxes.

    boxes: (N, 4) float or int xyxy pixels. scores: (N,) float in [0, 1]. class_ids: (N,) int >= 0.
    score_threshold, iou_threshold: in [0, 1]. max_det: int >= 1. class_names: names indexed by class id, or ().
    Returns: Detections sorted by descending score (ties by lower index), empty when nothing passes.
    """
    b, s = _inputs(boxes, scores)
    c = as_class_ids(class_ids, len(b))
    conf = check_unit(score_threshold, "score_threshold")
    thr = check_unit(iou_threshold, "iou_threshold")
    if isinstance(max_det, bool) or not isinstance(max_det, (int, np.integer)) or max_det < 1:
        raise UserError(f"max_det must be an int >= 1, but got {max_det!r}")
    keep = select_indices(b, s, c, conf, thr, int(max_det), class_agnostic)
    return Detections(b[keep], s[keep], c[keep], tuple(class_names))


def select_indices(
    boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, conf: float, iou: float, max_det: int,
    class_agnostic: bool,
) -> np.ndarray:
    """select's work on inputs the caller has checked (the decoders): boxes (N, 4) float32 finite xyxy, scores (N,)
    float32, class_ids (N,) int64 >= 0, conf and iou in [0, 1], max_det >= 1.
    Returns: (K,) int64 indices of the kept boxes, by descending score (ties by lower index).
    """
    idx = np.flatnonzero(scores >= conf)
    if len(idx) <= PREFIX_MIN * max_det:
        return idx[_kept(boxes[idx], scores[idx], class_ids[idx], iou, class_agnostic)][:max_det]
    # Suppression flows only from higher scores to lower ones, so NMS over the best n candidates keeps exactly what
    # NMS over all of them keeps among those n: once that is max_det boxes, the others cannot enter the result. A
    # box suppressed among the best n suppresses nothing after them either, so each next part is NMS over the boxes
    # kept so far and the new candidates (in that order: the kept ones rank first, ties included).
    ranked = idx[np.argsort(-scores[idx], kind="stable")]  # ties by lower index, as _ranks orders them
    kept, start, n = ranked[:0], 0, PREFIX_MIN * max_det
    while True:
        part = np.concatenate([kept, ranked[start:n]])
        kept = part[_kept(boxes[part], scores[part], class_ids[part], iou, class_agnostic)]
        if len(kept) >= max_det or n >= len(ranked):
            return kept[:max_det]
        start, n = n, n * PREFIX_GROWTH
