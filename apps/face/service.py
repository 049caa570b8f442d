"""The face gallery's services: enroll, verify (1:1), identify (1:K), list, remove, export and import."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepipe.apps.detect.pipeline import Detector
from edgepipe.apps.face.gallery import (
    DecisionThreshold,
    EncoderId,
    GalleryStore,
    check_name,
    describe,
    discard_new_gallery,
    export_encoder,
    gallery_exists,
    open_gallery,
)
from edgepipe.apps.face.gallery.location import Location, file_inputs, writable
from edgepipe.apps.face.pipeline import MIN_FACE_PX, Encoder, FaceAnalyzer
from edgepipe.apps.face.results import Change, Enrollment, Identity, Listing, Shot, Verdict
from edgepipe.apps.face.siamese import MIN_PROBABILITY, PairHead
from edgepipe.apps.options import ModelOptions
from edgepipe.apps.stream.sources import Capture
from edgepipe.apps.stream.specs import parse_source, read_image
from edgepipe.postprocess.embeddings import UNKNOWN, identify, verify
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.files import Output, check_outputs

log = logging.getLogger("edgepipe.face")

DEFAULT_GALLERY = Path("faces.db")
SHOTS = 5  # frames to enroll from a camera or video, by default
SHOT_INTERVAL_S = 0.5  # enrolling from a camera: one shot at most every half second, so the shots differ
FRAMES_PER_SHOT = 30  # enrolling from a source: give up after count * this many frames


@dataclass(frozen=True)
class FaceModels:
    """The face detector and encoder, and how faces are taken from a frame.

    conf: the detector's score threshold. margin: share of the face box's longer side added around the crop.
    min_face: faces whose shorter side is below this many px are not recognized (too far away).
    """

    detector: ModelOptions
    encoder: ModelOptions
    conf: float = 0.5
    margin: float = 0.0
    min_face: float = MIN_FACE_PX

    def analyzer(self) -> FaceAnalyzer:
        """Load both models: a FaceAnalyzer."""
        detector = Detector(self.detector.load(), self.conf, rect=self.detector.rect)
        return FaceAnalyzer(detector, Encoder(self.encoder.load()), self.margin, self.min_face)


def one_face(analyzer: FaceAnalyzer, image: np.ndarray, where: str) -> Shot:
    """The one face of image (H, W, 3) uint8 BGR; UserError naming where when there are none, several, or it is
    smaller than min_face."""
    faces = analyzer(image)
    if len(faces) == 0:
        conf = analyzer.detector.settings["conf_threshold"]
        raise UserError(f"{where}: no face found (detector --conf {conf:g}): use a photo with one clear face, "
                        "or lower --conf")
    if len(faces) > 1:
        raise UserError(f"{where}: {len(faces)} faces found, expected exactly one: use a photo of one person alone")
    if not faces.embedded[0]:
        raise UserError(f"{where}: the face is {faces.sizes[0]:.0f} px, smaller than --min-face "
                        f"{analyzer.min_face:g}: use a photo taken closer, or lower --min-face")
    return Shot(faces.embeddings[0], faces.crops[0])


def face_in_file(analyzer: FaceAnalyzer, path: Path) -> Shot:
    """The one face of the image file at path (UserError naming it otherwise)."""
    return one_face(analyzer, read_image(path), str(path))


def missing_gallery(location: Location) -> UserError:
    where = describe(location)
    return UserError(f"no face gallery at {where}: pass --gallery, or enroll people first with "
                     f"`edgepipe face enroll --gallery {where} --name NAME --images ...`")


def existing_gallery(location: Location, readonly: bool = False) -> GalleryStore:
    """The gallery at location with its stored encoder (list, remove, export; readonly for the commands that only
    read it); UserError when there is none."""
    if not gallery_exists(location):
        raise missing_gallery(location)
    return open_gallery(location, create=False, readonly=readonly)


def open_for_encoder(
    location: Location, encoder: Encoder, encoder_file: Path, create: bool, reencode: bool = False,
    readonly: bool = False,
) -> GalleryStore:
    """The gallery at location (a file or a postgresql:// URL) for encoder (loaded from encoder_file, whose bytes
    identify it); with reencode, a gallery enrolled with another encoder is re-embedded first (its stored crops
    through encoder); readonly: opened for reading only."""
    model = EncoderId.of_file(encoder_file, encoder.embedding_size)
    exists = gallery_exists(location)
    if not (create or exists):
        raise missing_gallery(location)
    if not (reencode and exists):
        return open_gallery(location, model, create=create, readonly=readonly)
    db = open_gallery(location, create=False)
    try:
        if (db.encoder.sha256, db.encoder.embedding_size) != (model.sha256, model.embedding_size):
            old = db.encoder.describe()
            n = db.reencode(encoder, model)
            log.warning("re-encoded %d embeddings of %s with %s (enrolled with %s): recalibrate the threshold with "
                        "`edgepipe face calibrate`", n, db.where, model.describe(), old)
    except BaseException:
        db.close()
        raise
    return db


def decision_threshold(threshold: float | None, db: GalleryStore, encoder: Encoder) -> tuple[float, str]:
    """(threshold, where it came from): the given one, else the gallery's calibrated one, else the encoder's
    metadata threshold when > 0; UserError saying how to get one otherwise."""
    if threshold is not None:
        if not (math.isfinite(threshold) and threshold >= 0):
            raise UserError(f"--threshold must be a finite distance >= 0, but got {threshold}")
        return threshold, "--threshold"
    try:
        return db.threshold, f"gallery {db.where}"
    except ValueError:  # not calibrated yet
        pass
    name = Path(encoder.model.name).name
    if encoder.model.meta.threshold > 0:
        return encoder.model.meta.threshold, f"encoder {name} metadata"
    raise UserError(f"gallery {db.where} has no calibrated threshold and encoder {name} has none in its metadata: "
                    "run `edgepipe face calibrate --dataset DIR` (or --pairs FILE) first, or pass --threshold")


def enroll(
    name: str, models: FaceModels, gallery: Location = DEFAULT_GALLERY, images: Sequence[Path] = (), source: str = "",
    count: int = SHOTS, reencode: bool = False,
) -> Enrollment:
    """Enroll name from images (one face each; the others refused, with the reason) or count frames of source.
    The faces are saved in one transaction; the gallery is created only when a face is saved."""
    name = check_name(name)
    analyzer = models.analyzer()
    exists = gallery_exists(gallery)
    db = open_for_encoder(gallery, analyzer.encoder, models.encoder.path, False, reencode) if exists else None
    try:
        if images:
            shots, where, refused = shots_from_files(analyzer, images)
        else:
            (shots, where), refused = shots_from_source(analyzer, source, count), ()
        if not shots:
            return Enrollment(name, (), refused, 0)
        db = db or open_for_encoder(gallery, analyzer.encoder, models.encoder.path, True)
        how = "edgepipe face enroll " + ("--images" if images else f"--source {source}")
        person = db.enroll(name, np.stack([s.embedding for s in shots]), [s.crop for s in shots], how)
        return Enrollment(name, where, refused, person.n_embeddings)
    finally:
        if db is not None:
            db.close()


def shots_from_files(
    analyzer: FaceAnalyzer, paths: Sequence[Path]
) -> tuple[list[Shot], tuple[str, ...], tuple[str, ...]]:
    """The one face of each image. Returns the shots, the images they came from, and the refusals ("IMAGE: why")."""
    shots, where, refused = [], [], []
    for path in paths:
        try:
            shots.append(face_in_file(analyzer, path))
            where.append(str(path))
        except UserError as exc:
            refused.append(str(exc))
    return shots, tuple(where), tuple(refused)


def shots_from_source(analyzer: FaceAnalyzer, source: str, count: int) -> tuple[list[Shot], tuple[str, ...]]:
    """count frames with exactly one large-enough face, from a camera at most one per SHOT_INTERVAL_S. Returns the
    shots and their frames' names; UserError when the source ends or count * FRAMES_PER_SHOT frames pass first."""
    if count < 1:
        raise UserError(f"--count must be >= 1, but got {count}")
    spec = parse_source(source)
    shots: list[Shot] = []
    where: list[str] = []
    last, seen = -math.inf, 0
    with Capture(spec) as capture:
        for frame in capture.frames():
            seen += 1
            if spec.live and frame.time - last < SHOT_INTERVAL_S:
                continue
            name = frame.name or f"frame {frame.index}"
            try:
                shots.append(one_face(analyzer, frame.image, name))
                where.append(name)
                last = frame.time
                log.info("shot %d of %d: %s", len(shots), count, name)
            except UserError as exc:
                log.info("skipped %s", exc)
            if len(shots) == count or seen >= count * FRAMES_PER_SHOT:
                break
    if len(shots) < count:
        raise UserError(f"only {len(shots)} of --count {count} frames from {spec.describe()} had one face of at "
                        f"least --min-face px ({seen} frames read); nothing enrolled: face the camera alone, closer")
    return shots, tuple(where)


def verify_face(
    name: str, image: Path, models: FaceModels, gallery: Location = DEFAULT_GALLERY, threshold: float | None = None,
    reencode: bool = False, siamese: ModelOptions | None = None, min_probability: float = MIN_PROBABILITY,
) -> Verdict:
    """1:1: compare the image's face with the named person's embeddings (the closest one decides); logged.

    siamese: a Siamese head (.onnx) decides instead of the distance threshold: a match when its probability for the
    most likely of the person's embeddings is >= min_probability (the distance to that embedding is reported).
    """
    name = check_name(name)
    if not 0 < min_probability < 1:
        raise UserError(f"--min-probability must be in (0, 1), but got {min_probability}")
    if siamese is not None and threshold is not None:
        raise UserError("--threshold is the distance threshold, but with --siamese the head's probability decides: "
                        "give --min-probability instead")
    analyzer = models.analyzer()
    head = PairHead(siamese.load(), analyzer.encoder.embedding_size) if siamese is not None else None
    metric = analyzer.encoder.distance
    with open_for_encoder(gallery, analyzer.encoder, models.encoder.path, False, reencode,
                          not writable(gallery)) as db:
        stored = db.embeddings_of(name)  # (K, D); an unknown name lists close ones
        if head is not None:
            head.check_encoder(db.encoder)
            shot = face_in_file(analyzer, image)
            p = head(shot.embedding, stored)
            k = int(np.argmax(p))
            match, d = bool(p[k] >= min_probability), verify(shot.embedding, stored[k], 0.0, metric).distance
            db.log(str(image), f"{'match' if match else 'no match'} (siamese {p[k]:.3f})", d, name)
            return Verdict(name, str(image), match, d, min_probability, f"--siamese {head.name}", metric,
                           float(p[k]))
        limit, origin = decision_threshold(threshold, db, analyzer.encoder)
        shot = face_in_file(analyzer, image)
        best = min((verify(shot.embedding, e, limit, metric) for e in stored), key=lambda v: v.distance)
        audit(db, str(image), "match" if best.match else "no match", best.distance, name)
    return Verdict(name, str(image), best.match, best.distance, limit, origin, metric)


def identify_face(
    image: Path, models: FaceModels, gallery: Location = DEFAULT_GALLERY, threshold: float | None = None,
    reencode: bool = False,
) -> Identity:
    """1:K: the enrolled person nearest to the image's face, or unknown beyond the threshold; logged."""
    analyzer = models.analyzer()
    metric = analyzer.encoder.distance
    with open_for_encoder(gallery, analyzer.encoder, models.encoder.path, False, reencode,
                          not writable(gallery)) as db:
        enrolled = db.matrix()
        if len(enrolled.gallery) == 0:
            raise UserError(f"gallery {db.where} is empty: nobody to identify against; enroll people first with "
                            "`edgepipe face enroll --name NAME --images ...`")
        limit, origin = decision_threshold(threshold, db, analyzer.encoder)
        shot = face_in_file(analyzer, image)
        (found,) = identify(shot.embedding[None], enrolled.gallery, enrolled.labels, limit, metric=metric)
        known = found.label != UNKNOWN
        audit(db, str(image), "identified" if known else "unknown", found.distance, found.label if known else "")
    return Identity(str(image), found.label, found.labels[0], found.distance, limit, origin, metric)


def audit(db: GalleryStore, source: str, decision: str, distance: float, name: str) -> None:
    """Log a decision to the gallery's audit log; a read-only gallery is read as it is, its log left unwritten."""
    if db.readonly:
        log.warning("gallery %s is read-only: this decision is not in its audit log", db.where)
        return
    db.log(source, decision, distance, name)


def list_gallery(gallery: Location = DEFAULT_GALLERY) -> Listing:
    """The gallery's encoder, threshold (None when not calibrated) and people."""
    with existing_gallery(gallery, readonly=True) as db:
        try:
            threshold: DecisionThreshold | None = db.decision_threshold
        except ValueError:  # not calibrated yet
            threshold = None
        return Listing(db.where, db.encoder, threshold, tuple(db.people()))


def remove_person(name: str, gallery: Location = DEFAULT_GALLERY) -> Change:
    """Remove a person and their embeddings (logged)."""
    with existing_gallery(gallery) as db:
        n = db.remove(name, source="edgepipe face remove")
    return Change("removed", db.where, (check_name(name),), n, "")


def export_gallery(file: Path, gallery: Location = DEFAULT_GALLERY) -> Change:
    """Write the gallery to a JSON export file (no audit log); refused before any work when file is the gallery."""
    check_outputs([Output("FILE", file)], file_inputs(gallery))
    with existing_gallery(gallery, readonly=True) as db:
        db.export_json(file)
        people = db.people()
    return Change("exported", db.where, tuple(p.name for p in people), sum(p.n_embeddings for p in people),
                  str(file))


def import_gallery(file: Path, gallery: Location = DEFAULT_GALLERY, replace: bool = False) -> Change:
    """Import an export file into the gallery; a missing gallery is created for the file's encoder (and removed
    again when the import fails, so a later import is not refused for a wrong encoder)."""
    created = not gallery_exists(gallery)
    db = open_gallery(gallery, export_encoder(file) if created else None, create=created)
    try:
        people = db.import_json(file, replace=replace)
    except BaseException:
        if created:
            discard_new_gallery(db)
        else:
            db.close()
        raise
    db.close()
    return Change("imported", db.where, tuple(p.name for p in people), sum(p.n_embeddings for p in people),
                  str(file))
