"""Faces in a frame: detect -> square crop with a margin -> embed (L2-normalized), for enroll, verify and the kiosk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepipe.apps.detect.pipeline import Detector
from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.embeddings import l2_normalize
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.faces import face_crops
from edgepipe.runtime.preprocessing import preprocess
from edgepipe.runtime.session import Model

EDGE_PX = 2.0  # a face box this close to the frame's edge is cut by it
MIN_FACE_PX = 80.0  # a face whose shorter side is smaller is too far away to recognize, or to enroll from


@dataclass(frozen=True)
class Faces:
    """The faces found in one frame, largest first.

    boxes: (N, 4) float32 xyxy frame pixels. scores: (N,) float32 detector scores. sizes: (N,) float32 the shorter
    side of each box in px. cut: (N,) bool, faces touching the frame's edge (partly out of view). embedded: (N,)
    bool, the faces recognized: neither cut nor smaller than min_face (too far). embeddings: (N, D) float32
    L2-normalized (zero rows where not embedded). crops: N (h, w, 3) uint8 encoder inputs.
    """

    boxes: np.ndarray
    scores: np.ndarray
    sizes: np.ndarray
    cut: np.ndarray
    embedded: np.ndarray
    embeddings: np.ndarray
    crops: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.boxes)


class Encoder:
    """A face encoder (metadata task "embed"): crops -> (N, D) float32 L2-normalized embeddings.

    mirror: embed each crop and its mirror image in one batch and average the two (test-time augmentation, on by
    default because it raised the true-accept rate on held-out identities: docs/kiosk.md). Enrollment and queries
    go through the same Encoder, so they always agree.
    """

    def __init__(self, model: Model, mirror: bool = True) -> None:
        meta = model.meta
        name = Path(model.name).name
        if meta.task != "embed" or meta.embedding_size < 1:
            raise UserError(f"{name} is not a face encoder (its metadata says task {meta.task!r}, embedding size "
                             f"{meta.embedding_size}): give an encoder (task 'embed'), or describe it with "
                             "--encoder-meta task=embed --encoder-meta embedding_size=128")
        self.model = model
        self.spec = model.spec
        self.size = meta.preprocess.input_size
        self.embedding_size = meta.embedding_size
        self.distance = meta.distance or "squared_l2"
        self.mirror = mirror

    def __call__(self, crops: list[np.ndarray]) -> np.ndarray:
        """crops: (h, w, 3) uint8 BGR, any size (resized by the encoder's preprocessing). Returns (N, D) float32."""
        if not crops:
            return np.zeros((0, self.embedding_size), np.float32)
        views = crops + [np.ascontiguousarray(c[:, ::-1]) for c in crops] if self.mirror else crops
        (out,) = self.model.run(preprocess(views, self.spec).batch)
        out = np.asarray(out, np.float32).reshape(len(views), -1)
        if out.shape[1] != self.embedding_size:
            raise UserError(f"{Path(self.model.name).name} gives {out.shape[1]}-d embeddings, but its metadata says "
                             f"{self.embedding_size}: fix embedding_size (--encoder-meta embedding_size=...)")
        if self.mirror:
            out = l2_normalize(out[: len(crops)]) + l2_normalize(out[len(crops) :])
        return l2_normalize(out)


class FaceAnalyzer:
    """Detect faces with a one-class detector, crop a square around each (margin: share of the box's longer side
    added), and embed the crops. Faces are reported but not embedded when their shorter side is below min_face px
    (too far to recognize: "step closer") or when they touch the frame's edge (partly out of view)."""

    def __init__(
        self, detector: Detector, encoder: Encoder, margin: float = 0.0, min_face: float = MIN_FACE_PX
    ) -> None:
        if margin < 0 or min_face < 0:
            raise UserError(f"margin and min_face must be >= 0, but got {margin} and {min_face}")
        self.detector, self.encoder, self.margin, self.min_face = detector, encoder, margin, min_face

    def __call__(self, image: np.ndarray) -> Faces:
        """image: (H, W, 3) uint8 BGR -> Faces, largest first."""
        return self.analyze(image, self.detector.infer(self.detector.prepare(image))[0].detections)

    def analyze(self, image: np.ndarray, det: Detections) -> Faces:
        """Faces from a frame (H, W, 3) uint8 BGR and its detections (frame pixels)."""
        wh = det.xyxy[:, 2:] - det.xyxy[:, :2]  # (N, 2)
        sizes = wh.min(axis=1).astype(np.float32)
        order = np.argsort(-sizes, kind="stable")
        boxes, sizes = det.xyxy[order], sizes[order]
        crops = face_crops(image, boxes, self.encoder.size, self.margin)
        h, w = image.shape[:2]
        cut = (boxes[:, 0] <= EDGE_PX) | (boxes[:, 1] <= EDGE_PX) | (boxes[:, 2] >= w - EDGE_PX) | (
            boxes[:, 3] >= h - EDGE_PX)
        embedded = (sizes >= self.min_face) & ~cut
        embeddings = np.zeros((len(boxes), self.encoder.embedding_size), np.float32)
        embeddings[embedded] = self.encoder([c for c, e in zip(crops, embedded, strict=True) if e])
        return Faces(boxes, det.scores[order], sizes, cut, embedded, embeddings, crops)

