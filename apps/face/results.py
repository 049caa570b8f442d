"""What the face commands return: one frozen dataclass each, printed by lines() or as JSON."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepipe.apps.face.gallery import DecisionThreshold, EncoderId, Person
from edgepipe.postprocess.calibration import Calibration
from edgepipe.postprocess.embeddings import UNKNOWN

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def when(t: float) -> str:
    """Unix seconds as local time, e.g. 2026-01-31 09:15:00."""
    return time.strftime(TIME_FORMAT, time.localtime(t))


@dataclass(frozen=True)
class Enrollment:
    """One enroll run: the images (or frames) enrolled, those refused with the reason (each naming its image), and
    the person's embeddings in the gallery afterwards (total; 0 when nothing was saved)."""

    name: str
    enrolled: tuple[str, ...]
    refused: tuple[str, ...]
    total: int

    def lines(self) -> list[str]:
        if not self.enrolled:
            return [f"nothing enrolled for {self.name}: every image was refused"]
        return [f"enrolled {self.name}: {len(self.enrolled)} face(s) added, {self.total} in the gallery"]


@dataclass(frozen=True)
class Verdict:
    """1:1 verification of an image against one enrolled person: match when distance <= threshold, or, when a
    Siamese head decided, when probability >= threshold.

    distance: to the closest of the person's embeddings (with a head: to the most likely one), in the encoder's
    metric; threshold_from: where the threshold came from (--threshold, the gallery's calibration, the encoder's
    metadata, or --siamese HEAD); probability: the head's probability of the same person, None without a head.
    """

    name: str
    image: str
    match: bool
    distance: float
    threshold: float
    threshold_from: str
    metric: str
    probability: float | None = None

    def lines(self) -> list[str]:
        word = "match" if self.match else "no match"
        if self.probability is not None:
            return [f"{word}: {self.image} vs {self.name}, probability {self.probability:.4f} "
                    f"{'>=' if self.match else '<'} {self.threshold:.2f} ({self.threshold_from}; distance "
                    f"{self.distance:.4f}, {self.metric})"]
        sign = "<=" if self.match else ">"
        return [f"{word}: {self.image} vs {self.name}, distance {self.distance:.4f} {sign} threshold "
                f"{self.threshold:.4f} ({self.metric}, threshold from {self.threshold_from})"]


@dataclass(frozen=True)
class Identity:
    """1:K identification of an image: name, the nearest person when within the threshold, else "unknown";
    nearest and distance: the closest enrolled person and the distance to them."""

    image: str
    name: str
    nearest: str
    distance: float
    threshold: float
    threshold_from: str
    metric: str

    def lines(self) -> list[str]:
        how = f"threshold {self.threshold:.4f} ({self.metric}, threshold from {self.threshold_from})"
        if self.name == UNKNOWN:
            return [f"unknown: {self.image}, nearest {self.nearest} at distance {self.distance:.4f} > {how}"]
        return [f"{self.name}: {self.image}, distance {self.distance:.4f} <= {how}"]


@dataclass(frozen=True)
class Listing:
    """A gallery's encoder, decision threshold (None when not calibrated yet) and people in enrollment order."""

    gallery: str
    encoder: EncoderId
    threshold: DecisionThreshold | None
    people: tuple[Person, ...]

    def lines(self) -> list[str]:
        t = self.threshold
        calibrated = "not calibrated" if t is None else (f"{t.value:.4f} (FAR {_rate(t.far)}, EER {_rate(t.eer)}, "
                                                         f"set {when(t.when)})")
        out = [f"gallery {self.gallery}: {len(self.people)} people, encoder {self.encoder.describe()}, "
               f"threshold {calibrated}"]
        return out + [f"  {p.name}: {p.n_embeddings} embedding(s), enrolled {when(p.created)}" for p in self.people]


@dataclass(frozen=True)
class Change:
    """What remove, export or import did: action, the people it touched and their embeddings, the file involved."""

    action: str
    gallery: str
    people: tuple[str, ...]
    embeddings: int
    file: str

    def lines(self) -> list[str]:
        where = {"removed": "from", "exported": "to", "imported": "from"}[self.action]
        target = self.gallery if self.action == "removed" else self.file
        return [f"{self.action} {len(self.people)} people ({self.embeddings} embeddings) {where} {target}: "
                f"{', '.join(self.people) or 'nobody'}"]


@dataclass(frozen=True)
class CalibrationReport:
    """A calibration saved to the gallery: the pairs used, the images skipped (each with the reason), the
    postprocess Calibration (threshold for target_far, the FAR and TAR it reaches, EER, AUC), the ROC image ("")."""

    gallery: str
    genuine_pairs: int
    impostor_pairs: int
    skipped: tuple[str, ...]
    calibration: Calibration
    roc: str

    def lines(self) -> list[str]:
        c = self.calibration
        out = [f"{self.genuine_pairs} same-person and {self.impostor_pairs} different-person pairs "
               f"({len(self.skipped)} image(s) skipped)",
               f"threshold {c.threshold:.4f} for FAR <= {c.target_far:g}: FAR {c.far:.4f}, TAR {c.tar:.4f}",
               f"EER {c.eer:.4f} at {c.eer_threshold:.4f}, AUC {c.auc:.4f}",
               f"saved as the threshold of gallery {self.gallery}"]
        return out + ([f"wrote {self.roc}"] if self.roc else [])


@dataclass(frozen=True, eq=False)
class Shot:
    """One face taken from an image: embedding (D,) float32 L2-normalized, crop (h, w, 3) uint8 BGR encoder input."""

    embedding: np.ndarray
    crop: np.ndarray


@dataclass(frozen=True)
class Pair:
    """Two images for calibration and whether they show the same person."""

    a: Path
    b: Path
    same: bool


def _rate(value: float | None) -> str:
    """A rate as people read it: 4 significant digits ("0.009580"), or "not measured"."""
    return "not measured" if value is None else f"{value:.4g}"
