"""The Detections dataclass: boxes, scores and classes of one image, validated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from edgepipe.postprocess._check import as_boxes, as_class_ids, as_scores, check_xyxy
from edgepipe.postprocess.errors import UserError


@dataclass(frozen=True)
class Detections:
    """Detections of one image.

    xyxy: (N, 4) float32 boxes, xyxy pixels. scores: (N,) float32 in [0, 1]. class_ids: (N,) int64.
    class_names: names indexed by class id (the model's list, shared by every image), or empty.
    keypoints: (N, K, 2) float32 pixels (e.g. 5 face landmarks), or None when the model gives none.
    track_ids: (N,) int64 ids a tracker gave the detections (the same object keeps its id from frame to frame), or
    None when they are not tracked.
    keypoint_scores: (N, K) float32 in [0, 1], how present each keypoint is (a model's visibility score; 0 for a slot
    the detection's class does not have), or None (with keypoints: every one counts).
    """

    xyxy: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    class_names: tuple[str, ...] = ()
    keypoints: np.ndarray | None = field(default=None)
    track_ids: np.ndarray | None = field(default=None)
    keypoint_scores: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        xyxy = as_boxes(self.xyxy, "xyxy")
        check_xyxy(xyxy, "xyxy")
        n = len(xyxy)
        scores = as_scores(self.scores, n)
        class_ids = as_class_ids(self.class_ids, n)
        names = tuple(str(c) for c in self.class_names)
        if names and n and class_ids.max() >= len(names):
            raise UserError(
                f"class_ids must be < len(class_names) = {len(names)}, but got {int(class_ids.max())}"
            )
        keypoints = self.keypoints
        if keypoints is not None:
            keypoints = np.asarray(keypoints, dtype=np.float32)
            if keypoints.ndim != 3 or keypoints.shape[0] != n or keypoints.shape[2] != 2:
                raise UserError(f"keypoints must have shape ({n}, K, 2), but got shape {keypoints.shape}")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "class_ids", class_ids)
        object.__setattr__(self, "class_names", names)
        object.__setattr__(self, "keypoints", keypoints)
        if self.track_ids is not None:
            object.__setattr__(self, "track_ids", as_class_ids(self.track_ids, n, "track_ids"))
        if self.keypoint_scores is not None:
            ks = np.asarray(self.keypoint_scores, dtype=np.float32)
            if keypoints is None or ks.shape != keypoints.shape[:2]:
                want = "keypoints first" if keypoints is None else f"shape {keypoints.shape[:2]}"
                raise UserError(f"keypoint_scores must have {want}, but got shape {ks.shape}")
            object.__setattr__(self, "keypoint_scores", ks)

    @classmethod
    def empty(cls, class_names: Sequence[str] = ()) -> Detections:
        """No detections, correctly typed."""
        return cls(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), tuple(class_names)
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: np.ndarray | slice | int) -> Detections:
        """Select detections by a boolean mask, an index array, a slice or one int (kept as a 1-row result)."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        kp = None if self.keypoints is None else self.keypoints[index]
        ids = None if self.track_ids is None else self.track_ids[index]
        ks = None if self.keypoint_scores is None else self.keypoint_scores[index]
        return Detections(self.xyxy[index], self.scores[index], self.class_ids[index], self.class_names, kp, ids, ks)

    def with_track_ids(self, track_ids: np.ndarray) -> Detections:
        """The same detections with the tracker's ids. track_ids: (N,) int, one per detection."""
        return replace(self, track_ids=track_ids)

    def filter(
        self,
        min_score: float = 0.0,
        classes: Sequence[int] | None = None,
        min_area: float = 0.0,
    ) -> Detections:
        """Keep detections with score >= min_score, a class in classes (all when None), area >= min_area."""
        keep = self.scores >= min_score
        if classes is not None:
            keep &= np.isin(self.class_ids, np.asarray(list(classes), dtype=np.int64))
        if min_area > 0:
            wh = self.xyxy[:, 2:] - self.xyxy[:, :2]
            keep &= wh[:, 0] * wh[:, 1] >= min_area
        return self[keep]

    @classmethod
    def concatenate(cls, parts: Sequence[Detections]) -> Detections:
        """Join detections of one image (e.g. from several crops). Class names must agree."""
        if not parts:
            return cls.empty()
        names = parts[0].class_names
        for p in parts[1:]:
            if p.class_names != names:
                raise UserError(f"class_names must agree to concatenate, but got {names} and {p.class_names}")
        return cls(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.class_ids for p in parts]),
            names,
            _joined(parts, "keypoints"),
            _joined(parts, "track_ids"),
            _joined(parts, "keypoint_scores"),
        )

    def class_name(self, class_id: int) -> str:
        """The name of a class id, or the id as text when the model has no names."""
        return self.class_names[class_id] if class_id < len(self.class_names) else str(class_id)

    def to_dicts(self, decimals: int = 2) -> list[dict]:
        """Plain dicts, JSON-ready: [{"xyxy": [...], "score": s, "class_id": c, "class_name": n}, ...], with
        "keypoints" ([[x, y], ...]), "keypoint_scores" and "track_id" when the detections have them. Coordinates are
        rounded to `decimals`, scores to 4, half to even (numpy's rounding, whole columns at a time: a camera app
        writes a line of up to max_det of these every frame)."""
        ids = self.class_ids.tolist()
        columns = {
            "xyxy": _rounded(self.xyxy, decimals),
            "score": _rounded(self.scores, 4),
            "class_id": ids,
            "class_name": [self.class_name(c) for c in ids],
        }
        if self.keypoints is not None:
            columns["keypoints"] = _rounded(self.keypoints, decimals)
        if self.keypoint_scores is not None:
            columns["keypoint_scores"] = _rounded(self.keypoint_scores, 4)
        if self.track_ids is not None:
            columns["track_id"] = self.track_ids.tolist()
        return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _rounded(values: np.ndarray, decimals: int) -> list:
    """values: any shape of float32, rounded in float64 to decimals, as nested lists of Python floats."""
    return np.round(values.astype(np.float64), decimals).tolist()


def _joined(parts: Sequence[Detections], name: str) -> np.ndarray | None:
    """The optional field name ("keypoints", "track_ids", "keypoint_scores") of every part, concatenated; None when no
    part has it."""
    arrays = [getattr(p, name) for p in parts]
    present = [a is not None for a in arrays]
    if any(present) and not all(present):
        raise UserError(f"{name} must be present in all parts or in none to concatenate")
    return np.concatenate(arrays) if all(present) else None
