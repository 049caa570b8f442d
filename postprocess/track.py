"""Tracking by detection: greedy IoU association across frames gives each object a stable track id."""

from __future__ import annotations

from collections import Counter

import numpy as np

from edgepipe.postprocess._check import check_unit
from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.errors import UserError
from edgepipe.postprocess.iou import box_iou


class IouTracker:
    """IoU tracker: SORT's greedy association without its Kalman filter.

    Each track keeps its last box and the per-frame motion of its center. In a new frame every track is predicted
    by moving its last box along that motion for the frames since it was seen; then, best pair first, a detection
    continues the track whose prediction it overlaps most at IoU >= iou. Detections left over start new tracks
    (ids count up from 0); a track unseen for more than max_age frames ends. Association ignores the class unless
    class_aware (a detector that flips an object's class for a frame must not split its track); classes(ids) gives
    each track's most frequent class so far. A second box on one object shares its id (see update).
    """

    def __init__(
        self, iou: float = 0.3, max_age: int = 15, class_aware: bool = False, duplicate_iou: float = 0.6
    ) -> None:
        self.iou = check_unit(iou, "iou")
        self.duplicate_iou = check_unit(duplicate_iou, "duplicate_iou")
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
            raise UserError(f"max_age must be an int >= 0 (frames), but got {max_age!r}")
        self.max_age = max_age
        self.class_aware = bool(class_aware)
        self._next_id = 0
        self._ids = np.zeros(0, np.int64)  # (T,)
        self._boxes = np.zeros((0, 4), np.float32)  # (T, 4) xyxy, last seen
        self._motion = np.zeros((0, 2), np.float32)  # (T, 2) center pixels per frame
        self._classes = np.zeros(0, np.int64)  # (T,) class of the first detection
        self._missed = np.zeros(0, np.int64)  # (T,) frames since last seen
        self._votes: dict[int, Counter[int]] = {}  # track id -> its detections' classes

    def update(self, det: Detections) -> np.ndarray:
        """det: one frame's detections, frames in order. Returns: (N,) int64 the track id of each detection.

        A detection overlapping a higher-scored one of the same frame at IoU >= duplicate_iou is a second box on
        that object (class-aware NMS keeps one per class): it shares that detection's id and takes no part in the
        association, so it can neither start a track nor keep a stale one alive.
        """
        twin = self._twins(det)  # (N,) the detection each one duplicates, or -1
        primary = twin < 0
        track_of = self._associate(det, primary)  # (N,) track index or -1
        old = track_of >= 0
        t = track_of[old]
        ids = np.full(len(det), -1, np.int64)
        ids[old] = self._ids[t]
        gap = (self._missed[t] + 1)[:, None]  # frames since the track was seen
        self._motion[t] = (_centers(det.xyxy[old]) - _centers(self._boxes[t])) / gap
        self._boxes[t] = det.xyxy[old]
        self._missed += 1
        self._missed[t] = 0
        new = primary & ~old
        ids[new] = np.arange(self._next_id, self._next_id + int(new.sum()))
        self._next_id += int(new.sum())
        ids[~primary] = ids[twin[~primary]]
        for track_id, class_id in zip(ids[primary].tolist(), det.class_ids[primary].tolist(), strict=True):
            self._votes.setdefault(track_id, Counter())[class_id] += 1
        keep = self._missed <= self.max_age
        for track_id in self._ids[~keep].tolist():
            del self._votes[track_id]
        self._ids = np.concatenate([self._ids[keep], ids[new]])
        self._boxes = np.concatenate([self._boxes[keep], det.xyxy[new]])
        self._motion = np.concatenate([self._motion[keep], np.zeros((int(new.sum()), 2), np.float32)])
        self._classes = np.concatenate([self._classes[keep], det.class_ids[new]])
        self._missed = np.concatenate([self._missed[keep], np.zeros(int(new.sum()), np.int64)])
        return ids

    def classes(self, ids: np.ndarray) -> np.ndarray:
        """ids: (N,) live track ids (as update returned them). Returns (N,) int64 each track's most frequent class,
        the first seen among equals."""
        return np.array([self._votes[int(i)].most_common(1)[0][0] for i in ids], dtype=np.int64)

    def _twins(self, det: Detections) -> np.ndarray:
        """Returns (N,) int64: for each detection, the higher-scored detection of the frame it duplicates (IoU >=
        duplicate_iou with the best such one, kept ones only, as in NMS), or -1."""
        twin = np.full(len(det), -1, np.int64)
        if len(det) < 2:
            return twin
        overlap = box_iou(det.xyxy, det.xyxy)  # (N, N)
        kept: list[int] = []
        for i in np.argsort(-det.scores, kind="stable").tolist():
            best = kept[int(np.argmax(overlap[i, kept]))] if kept else -1
            if best >= 0 and overlap[i, best] >= self.duplicate_iou:
                twin[i] = best
            else:
                kept.append(i)
        return twin

    def _associate(self, det: Detections, primary: np.ndarray) -> np.ndarray:
        """Greedy matching of the primary detections ((N,) bool), highest IoU first. Returns (N,) int64: the track
        index each detection continues, or -1."""
        track_of = np.full(len(det), -1, np.int64)
        if not primary.any() or not len(self._ids):
            return track_of
        shift = self._motion * (self._missed + 1)[:, None].astype(np.float32)  # (T, 2)
        predicted = self._boxes + np.concatenate([shift, shift], axis=1)
        iou = box_iou(predicted, det.xyxy)  # (T, N)
        iou[:, ~primary] = -1.0
        if self.class_aware:
            iou[self._classes[:, None] != det.class_ids[None, :]] = -1.0
        rows, cols = np.nonzero(iou >= self.iou)
        order = np.argsort(-iou[rows, cols], kind="stable")
        used = np.zeros(len(self._ids), bool)
        for r, c in zip(rows[order], cols[order], strict=True):
            if not used[r] and track_of[c] < 0:
                used[r] = True
                track_of[c] = r
        return track_of


def _centers(boxes: np.ndarray) -> np.ndarray:
    """boxes: (N, 4) xyxy -> (N, 2) float32 centers."""
    return ((boxes[:, :2] + boxes[:, 2:]) / 2).astype(np.float32)
