"""`edgepipe face enroll|verify|identify|list|remove|export|import|calibrate`: the face gallery from the shell."""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import shlex
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.apps.detect.pipeline import Detector
from edgepipe.apps.face.db import DecisionThreshold, EncoderId, FaceDB, Person, check_name, export_encoder
from edgepipe.apps.face.pipeline import Encoder, FaceAnalyzer
from edgepipe.apps.face.roc import save_roc
from edgepipe.apps.modelargs import add_model_args, load_model
from edgepipe.apps.sources import IMAGE_SUFFIXES, Capture, parse_source, read_image
from edgepipe.postprocess.calibration import Calibration, calibrate, roc_curve
from edgepipe.postprocess.embeddings import UNKNOWN, distance, identify, verify
from edgepipe.postprocess.errors import UserError

log = logging.getLogger("edgepipe.face")

DEFAULT_GALLERY = Path("faces.db")
MIN_PAIRS = 10  # calibration needs at least this many same-person and this many different-person pairs
SHOT_INTERVAL_S = 0.5  # enrolling from a camera: one shot at most every half second, so the shots differ
FRAMES_PER_SHOT = 30  # enrolling from a source: give up after count * this many frames
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def when(t: float) -> str:
    """Unix seconds as local time, e.g. 2026-01-31 09:15:00."""
    return time.strftime(TIME_FORMAT, time.localtime(t))


# Results: one frozen dataclass per subcommand, printed by lines() or as JSON.


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
    """1:1 verification of an image against one enrolled person: match when distance <= threshold.

    distance: to the closest of the person's embeddings, in the encoder's metric; threshold_from: where the
    threshold came from (--threshold, the gallery's calibration or the encoder's metadata).
    """

    name: str
    image: str
    match: bool
    distance: float
    threshold: float
    threshold_from: str
    metric: str

    def lines(self) -> list[str]:
        word, sign = ("match", "<=") if self.match else ("no match", ">")
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
        calibrated = "not calibrated" if t is None else f"{t.value:.4f} (FAR {t.far}, EER {t.eer}, set {when(t.when)})"
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


# The parser.


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("face", help="the face gallery: enroll, verify, identify, list, remove, export, import, "
                       "calibrate", description="Enroll people in a face gallery (an SQLite file), verify (1:1) or "
                       "identify (1:K) a face, manage the gallery, and calibrate its decision threshold.")
    face = p.add_subparsers(dest="face_command", metavar="SUBCOMMAND", required=True)
    add_enroll(face)
    add_verify(face)
    add_identify(face)
    command(face, "list", "list the enrolled people, the encoder and the threshold", run_list, models=False)
    q = command(face, "remove", "remove a person and their embeddings", run_remove, models=False)
    q.add_argument("name", metavar="NAME", help="the person to remove")
    q = command(face, "export", "write the gallery to a JSON file (no audit log)", run_export, models=False)
    q.add_argument("file", type=Path, metavar="FILE", help="the JSON file to write")
    q = command(face, "import", "add the people of an exported JSON file", run_import, models=False)
    q.add_argument("file", type=Path, metavar="FILE", help="a JSON file written by `edgepipe face export`")
    q.add_argument("--replace", action="store_true", help="replace people already in the gallery")
    add_calibrate(face)


def command(face: argparse._SubParsersAction, name: str, text: str, func: Callable[[argparse.Namespace], int],
            models: bool) -> argparse.ArgumentParser:
    """A face subcommand with the common options (and the model options when it runs the models)."""
    q = face.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
    q.add_argument("--gallery", type=Path, default=DEFAULT_GALLERY, help="the gallery file (default: faces.db)")
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.set_defaults(func=gallery_errors(func))
    if models:
        add_face_model_args(q)
    return q


def gallery_errors(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """func with SQLite's own errors (a damaged gallery, one locked too long) raised as UserError: one line, exit 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except sqlite3.Error as exc:
            raise UserError(f"gallery {args.gallery}: {exc} (SQLite): the file is damaged or another process holds "
                             "it; retry, or restore the gallery from a copy or an export") from exc

    return run


def add_face_model_args(q: argparse.ArgumentParser) -> None:
    q.add_argument("--detector", type=Path, required=True, help="the face detector .onnx (task detect)")
    q.add_argument("--encoder", type=Path, required=True, help="the face encoder .onnx (task embed)")
    q.add_argument("--conf", type=float, default=0.5, help="detector score threshold (default 0.5)")
    q.add_argument("--margin", type=float, default=0.0,
                   help="share of the face box's longer side added around the crop (default 0.0)")
    q.add_argument("--min-face", type=float, default=50.0,
                   help="faces whose shorter side is below this many px are refused (default 50)")
    q.add_argument("--reencode", action="store_true",
                   help="the gallery was enrolled with another encoder: re-embed its stored crops with --encoder")
    add_model_args(q, "detector")
    add_model_args(q, "encoder")


def add_enroll(face: argparse._SubParsersAction) -> None:
    q = command(face, "enroll", "enroll a person from photos with exactly one face each, or from a camera",
                run_enroll, models=True)
    q.add_argument("--name", required=True, help="the person's name")
    what = q.add_mutually_exclusive_group(required=True)
    what.add_argument("--images", nargs="+", type=Path, metavar="FILE", help="photos, one face each")
    what.add_argument("--source", help="a camera index (0), video, folder or glob: take --count shots from it")
    q.add_argument("--count", type=int, default=5, help="shots to take from --source (default 5)")


def add_verify(face: argparse._SubParsersAction) -> None:
    q = command(face, "verify", "1:1: is the face in the image this enrolled person?", run_verify, models=True)
    q.add_argument("--name", required=True, help="the person the face claims to be")
    q.add_argument("--image", type=Path, required=True, help="a photo with one face")
    add_threshold_arg(q)


def add_identify(face: argparse._SubParsersAction) -> None:
    q = command(face, "identify", "1:K: who, among the enrolled, is the face in the image?", run_identify,
                models=True)
    q.add_argument("--image", type=Path, required=True, help="a photo with one face")
    add_threshold_arg(q)


def add_threshold_arg(q: argparse.ArgumentParser) -> None:
    q.add_argument("--threshold", type=float,
                   help="accept when distance <= this (default: the gallery's calibrated threshold, else the "
                   "encoder's metadata threshold)")


def add_calibrate(face: argparse._SubParsersAction) -> None:
    q = command(face, "calibrate", "choose the gallery's threshold for a false-accept rate from labeled images",
                run_calibrate, models=True)
    what = q.add_mutually_exclusive_group(required=True)
    what.add_argument("--pairs", type=Path, metavar="FILE",
                      help="lines 'IMAGE_A IMAGE_B same|different' (paths relative to the file's folder)")
    what.add_argument("--dataset", type=Path, metavar="DIR", help="one sub-folder of images per person")
    q.add_argument("--far", type=float, default=1e-2, help="target false-accept rate (default 1e-2)")
    q.add_argument("--roc", type=Path, metavar="PNG", help="write the ROC curve to this .png")


# Shared steps.


def emit(args: argparse.Namespace, result: Any) -> None:
    """Print a result: one JSON line with --json, else its lines()."""
    print(json.dumps(asdict(result)) if args.json else "\n".join(result.lines()))


def build_analyzer(args: argparse.Namespace) -> FaceAnalyzer:
    """The detector and encoder the options name, as a FaceAnalyzer."""
    detector = Detector(load_model(args.detector, args, "detector"), args.conf)
    encoder = Encoder(load_model(args.encoder, args, "encoder"))
    return FaceAnalyzer(detector, encoder, args.margin, args.min_face)


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
    """The one face of the image file at path (FileNotFoundError or UserError naming it otherwise)."""
    return one_face(analyzer, read_image(path), str(path))


def require_gallery(path: Path) -> None:
    if not path.exists():
        raise UserError(f"no face gallery at {path}: pass --gallery, or enroll people first with "
                                f"`edgepipe face enroll --gallery {path} --name NAME --images ...`")


def open_gallery(args: argparse.Namespace, encoder: Encoder, create: bool) -> FaceDB:
    """The gallery for --encoder; with --reencode, a gallery enrolled with another encoder is re-embedded first."""
    model = EncoderId.of_file(args.encoder, encoder.embedding_size)
    if not create:
        require_gallery(args.gallery)
    if not (args.reencode and args.gallery.exists()):
        return FaceDB.open(args.gallery, model, create=create)
    db = FaceDB.open(args.gallery, create=False)
    try:
        if (db.encoder.sha256, db.encoder.embedding_size) != (model.sha256, model.embedding_size):
            old = db.encoder.describe()
            n = db.reencode(encoder, model)
            log.warning("re-encoded %d embeddings of %s with %s (enrolled with %s): recalibrate the threshold with "
                        "`edgepipe face calibrate`", n, args.gallery, model.describe(), old)
    except BaseException:
        db.close()
        raise
    return db


def decision_threshold(args: argparse.Namespace, db: FaceDB, encoder: Encoder) -> tuple[float, str]:
    """(threshold, where it came from): --threshold, else the gallery's calibrated one, else the encoder's
    metadata threshold when > 0; UserError saying how to get one otherwise."""
    if args.threshold is not None:
        if not (math.isfinite(args.threshold) and args.threshold >= 0):
            raise UserError(f"--threshold must be a finite distance >= 0, but got {args.threshold}")
        return args.threshold, "--threshold"
    try:
        return db.threshold, f"gallery {db.path}"
    except ValueError:  # not calibrated yet
        pass
    name = Path(encoder.model.name).name
    if encoder.model.meta.threshold > 0:
        return encoder.model.meta.threshold, f"encoder {name} metadata"
    raise UserError(f"gallery {db.path} has no calibrated threshold and encoder {name} has none in its metadata: "
                     "run `edgepipe face calibrate --dataset DIR` (or --pairs FILE) first, or pass --threshold")


# enroll


def run_enroll(args: argparse.Namespace) -> int:
    result = enroll(args)
    for reason in result.refused:
        print(f"edgepipe face enroll: refused {reason}", file=sys.stderr)
    emit(args, result)
    return 2 if result.refused or not result.enrolled else 0


def enroll(args: argparse.Namespace) -> Enrollment:
    """Take the faces, then save them in one transaction; the gallery is created only when a face is saved."""
    name = check_name(args.name)
    analyzer = build_analyzer(args)
    db = open_gallery(args, analyzer.encoder, create=False) if args.gallery.exists() else None
    try:
        if args.images:
            shots, where, refused = shots_from_files(analyzer, args.images)
        else:
            (shots, where), refused = shots_from_source(analyzer, args.source, args.count), ()
        if not shots:
            return Enrollment(name, (), refused, 0)
        db = db or open_gallery(args, analyzer.encoder, create=True)
        source = "edgepipe face enroll " + ("--images" if args.images else f"--source {args.source}")
        person = db.enroll(name, np.stack([s.embedding for s in shots]), [s.crop for s in shots], source)
        return Enrollment(name, where, refused, person.n_embeddings)
    finally:
        if db is not None:
            db.close()


def shots_from_files(analyzer: FaceAnalyzer, paths: list[Path]) -> tuple[list[Shot], tuple[str, ...], tuple[str, ...]]:
    """The one face of each image. Returns the shots, the images they came from, and the refusals ("IMAGE: why")."""
    shots, where, refused = [], [], []
    for path in paths:
        try:
            shots.append(face_in_file(analyzer, path))
            where.append(str(path))
        except (ValueError, FileNotFoundError) as exc:
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
            except ValueError as exc:
                log.info("skipped %s", exc)
            if len(shots) == count or seen >= count * FRAMES_PER_SHOT:
                break
    if len(shots) < count:
        raise UserError(f"only {len(shots)} of --count {count} frames from {spec.describe()} had one face of at "
                         f"least --min-face px ({seen} frames read); nothing enrolled: face the camera alone, closer")
    return shots, tuple(where)


# verify, identify


def run_verify(args: argparse.Namespace) -> int:
    emit(args, verify_face(args))
    return 0


def verify_face(args: argparse.Namespace) -> Verdict:
    """Compare the image's face with the named person's embeddings (the closest one decides); logged."""
    name = check_name(args.name)
    analyzer = build_analyzer(args)
    metric = analyzer.encoder.distance
    with open_gallery(args, analyzer.encoder, create=False) as db:
        stored = db.embeddings_of(name)  # (K, D); an unknown name lists close ones
        threshold, origin = decision_threshold(args, db, analyzer.encoder)
        shot = face_in_file(analyzer, args.image)
        best = min((verify(shot.embedding, e, threshold, metric) for e in stored), key=lambda v: v.distance)
        db.log(str(args.image), "match" if best.match else "no match", best.distance, name)
    return Verdict(name, str(args.image), best.match, best.distance, threshold, origin, metric)


def run_identify(args: argparse.Namespace) -> int:
    emit(args, identify_face(args))
    return 0


def identify_face(args: argparse.Namespace) -> Identity:
    """The enrolled person nearest to the image's face, or unknown beyond the threshold; logged."""
    analyzer = build_analyzer(args)
    metric = analyzer.encoder.distance
    with open_gallery(args, analyzer.encoder, create=False) as db:
        enrolled = db.matrix()
        if len(enrolled.gallery) == 0:
            raise UserError(f"gallery {db.path} is empty: nobody to identify against; enroll people first with "
                             "`edgepipe face enroll --name NAME --images ...`")
        threshold, origin = decision_threshold(args, db, analyzer.encoder)
        shot = face_in_file(analyzer, args.image)
        (found,) = identify(shot.embedding[None], enrolled.gallery, enrolled.labels, threshold, metric=metric)
        known = found.label != UNKNOWN
        db.log(str(args.image), "identified" if known else "unknown", found.distance, found.label if known else "")
    return Identity(str(args.image), found.label, found.labels[0], found.distance, threshold, origin, metric)


# list, remove, export, import


def run_list(args: argparse.Namespace) -> int:
    require_gallery(args.gallery)
    with FaceDB.open(args.gallery, create=False) as db:
        try:
            threshold: DecisionThreshold | None = db.decision_threshold
        except ValueError:  # not calibrated yet
            threshold = None
        emit(args, Listing(str(args.gallery), db.encoder, threshold, tuple(db.people())))
    return 0


def run_remove(args: argparse.Namespace) -> int:
    require_gallery(args.gallery)
    with FaceDB.open(args.gallery, create=False) as db:
        n = db.remove(args.name, source="edgepipe face remove")
    emit(args, Change("removed", str(args.gallery), (check_name(args.name),), n, ""))
    return 0


def run_export(args: argparse.Namespace) -> int:
    require_gallery(args.gallery)
    with FaceDB.open(args.gallery, create=False) as db:
        db.export_json(args.file)
        people = db.people()
    emit(args, Change("exported", str(args.gallery), tuple(p.name for p in people),
                      sum(p.n_embeddings for p in people), str(args.file)))
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Import into the gallery; a missing gallery is created for the file's encoder (and removed again when the
    import fails, so a later import is not refused for a wrong encoder)."""
    created = not args.gallery.exists()
    db = FaceDB.open(args.gallery, export_encoder(args.file) if created else None, create=created)
    try:
        people = db.import_json(args.file, replace=args.replace)
    except BaseException:
        db.close()
        if created:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{args.gallery}{suffix}").unlink(missing_ok=True)
        raise
    db.close()
    emit(args, Change("imported", str(args.gallery), tuple(p.name for p in people),
                      sum(p.n_embeddings for p in people), str(args.file)))
    return 0


# calibrate


def run_calibrate(args: argparse.Namespace) -> int:
    emit(args, calibrate_gallery(args))
    return 0


def calibrate_gallery(args: argparse.Namespace) -> CalibrationReport:
    """Pair distances -> ROC, EER and the threshold for --far, saved as the gallery's threshold."""
    if not 0 < args.far < 1:
        raise UserError(f"--far must be a rate in (0, 1), e.g. 1e-2, but got {args.far}")
    pairs = read_pairs(args.pairs) if args.pairs else dataset_pairs(args.dataset)
    analyzer = build_analyzer(args)
    with open_gallery(args, analyzer.encoder, create=True) as db:
        genuine, impostor, skipped = pair_distances(analyzer, pairs)
        if len(genuine) < MIN_PAIRS or len(impostor) < MIN_PAIRS:
            raise UserError(f"calibration needs at least {MIN_PAIRS} same-person and {MIN_PAIRS} different-person "
                             f"pairs, but got {len(genuine)} and {len(impostor)} ({len(skipped)} image(s) skipped): "
                             "add images (or pairs)")
        if len(impostor) * args.far < 1:
            log.warning("--far %g: with %d different-person pairs the smallest FAR measured above 0 is %.2g; add "
                        "people for a finer calibration", args.far, len(impostor), 1 / len(impostor))
        cal = calibrate(genuine, impostor, args.far)
        if cal.threshold < 0:
            raise UserError("even distance 0 accepts too many different-person pairs (the same image under two "
                             "names?): check the pairs")
        if args.roc:
            save_roc(args.roc, roc_curve(genuine, impostor), cal)
        db.set_threshold(cal.threshold, far=cal.far, eer=cal.eer)
    return CalibrationReport(str(args.gallery), len(genuine), len(impostor), skipped, cal, str(args.roc or ""))


def read_pairs(path: Path) -> list[Pair]:
    """Lines 'IMAGE_A IMAGE_B same|different' (shell quoting for spaces, '#' comments, relative to the file)."""
    if not path.is_file():
        raise UserError(f"--pairs file {path} not found: check the path")
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            fields = shlex.split(line, comments=True)
        except ValueError as exc:
            raise UserError(f"{path}:{number}: {exc}: quote paths with spaces as in a shell") from exc
        if not fields:
            continue
        if len(fields) != 3 or fields[2] not in ("same", "different"):
            raise UserError(f"{path}:{number}: expected 'IMAGE_A IMAGE_B same|different', but got {line.strip()!r}")
        pairs.append(Pair(path.parent / fields[0], path.parent / fields[1], fields[2] == "same"))
    return pairs


def dataset_pairs(folder: Path) -> list[Pair]:
    """Every pair of images of a folder holding one sub-folder of images per person."""
    if not folder.is_dir():
        raise UserError(f"--dataset folder {folder} not found: pass a folder with one sub-folder per person")
    people = {d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
              for d in sorted(folder.iterdir()) if d.is_dir()}
    people = {name: paths for name, paths in people.items() if paths}
    if len(people) < 2 or max(len(paths) for paths in people.values()) < 2:
        raise UserError(f"--dataset {folder} must hold at least 2 sub-folders of images (one per person) and one "
                         f"with 2 images or more, but got {len(people)} with "
                         f"{[len(p) for p in people.values()]} images: add people or images")
    files = [(path, name) for name, paths in people.items() for path in paths]
    return [Pair(a, b, na == nb) for (a, na), (b, nb) in itertools.combinations(files, 2)]


def pair_distances(analyzer: FaceAnalyzer, pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Embed each image once (images without one usable face are skipped, with their pairs). Returns the genuine
    (P,) and impostor (N,) float64 distances and the reasons for the skipped images."""
    shots, skipped = {}, []
    for path in dict.fromkeys(p for pair in pairs for p in (pair.a, pair.b)):
        try:
            shots[path] = face_in_file(analyzer, path)
        except (ValueError, FileNotFoundError) as exc:
            log.warning("skipped %s", exc)
            skipped.append(str(exc))
    metric = analyzer.encoder.distance
    kept = [p for p in pairs if p.a in shots and p.b in shots]
    d = np.array([distance(shots[p.a].embedding, shots[p.b].embedding, metric) for p in kept], np.float64)
    same = np.array([p.same for p in kept], bool)
    return d[same], d[~same], tuple(skipped)
