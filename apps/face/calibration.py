"""Calibrating a gallery's decision threshold from labeled images: pairs, their distances, ROC, the threshold."""

from __future__ import annotations

import itertools
import logging
import shlex
from pathlib import Path

import numpy as np

from edgepipe.apps.face.gallery.location import Location, file_inputs
from edgepipe.apps.face.pipeline import FaceAnalyzer
from edgepipe.apps.face.results import CalibrationReport, Pair
from edgepipe.apps.face.roc import png_path, save_roc
from edgepipe.apps.face.service import DEFAULT_GALLERY, FaceModels, face_in_file, open_for_encoder
from edgepipe.apps.stream.specs import IMAGE_SUFFIXES
from edgepipe.postprocess.calibration import calibrate, roc_curve
from edgepipe.postprocess.embeddings import distance
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.files import Input, Output, check_outputs
from edgepipe.runtime.progress import track

log = logging.getLogger("edgepipe.face")

FAR = 1e-2  # the target false-accept rate, by default
MIN_PAIRS = 10  # calibration needs at least this many same-person and this many different-person pairs


def calibrate_gallery(
    models: FaceModels, gallery: Location = DEFAULT_GALLERY, pairs: Path | None = None, dataset: Path | None = None,
    far: float = FAR, roc: Path | None = None, reencode: bool = False, progress: bool = True,
) -> CalibrationReport:
    """Embed labeled images (a pairs file, or a dataset folder with one sub-folder per person), then ROC, EER and
    the threshold for the target false-accept rate far, saved as the gallery's threshold; the ROC curve drawn to
    roc (a .png) when given, checked before any work (writable, none of the images, models or gallery). progress:
    a bar on stderr over the images embedded."""
    if not 0 < far < 1:
        raise UserError(f"--far must be a rate in (0, 1), e.g. 1e-2, but got {far}")
    if (pairs is None) == (dataset is None):
        raise UserError("calibration takes labeled images from one of --pairs FILE and --dataset DIR")
    labeled = read_pairs(pairs) if pairs is not None else dataset_pairs(dataset)
    if roc is not None:
        images = dict.fromkeys(p for pair in labeled for p in (pair.a, pair.b))
        given = [Input("--pairs", pairs)] if pairs is not None else [Input("--dataset", dataset)]
        check_outputs([Output("--roc", png_path(roc))],
                      [*given, *(Input("--pairs image" if pairs else "--dataset image", p) for p in images),
                       *models.detector.inputs("--detector"), *models.encoder.inputs("--encoder"),
                       *file_inputs(gallery)])
    analyzer = models.analyzer()
    with open_for_encoder(gallery, analyzer.encoder, models.encoder.path, True, reencode) as db:
        genuine, impostor, skipped = pair_distances(analyzer, labeled, progress)
        if len(genuine) < MIN_PAIRS or len(impostor) < MIN_PAIRS:
            raise UserError(f"calibration needs at least {MIN_PAIRS} same-person and {MIN_PAIRS} different-person "
                             f"pairs, but got {len(genuine)} and {len(impostor)} ({len(skipped)} image(s) skipped): "
                             "add images (or pairs)")
        if len(impostor) * far < 1:
            log.warning("--far %g: with %d different-person pairs the smallest FAR measured above 0 is %.2g; add "
                        "people for a finer calibration", far, len(impostor), 1 / len(impostor))
        cal = calibrate(genuine, impostor, far)
        if cal.threshold < 0:
            raise UserError("even distance 0 accepts too many different-person pairs (the same image under two "
                             "names?): check the pairs")
        if roc:
            save_roc(roc, roc_curve(genuine, impostor), cal)
        db.set_threshold(cal.threshold, far=cal.far, eer=cal.eer)
    return CalibrationReport(db.where, len(genuine), len(impostor), skipped, cal, str(roc or ""))


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


def pair_distances(analyzer: FaceAnalyzer, pairs: list[Pair], progress: bool = False
                   ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Embed each image once (images without one usable face are skipped, with their pairs), counted on a progress
    bar. Returns the genuine (P,) and impostor (N,) float64 distances and the reasons for the skipped images."""
    shots, skipped = {}, []
    images = list(dict.fromkeys(p for pair in pairs for p in (pair.a, pair.b)))
    for path in track(images, len(images), "embedding faces", progress):
        try:
            shots[path] = face_in_file(analyzer, path)
        except UserError as exc:
            log.warning("skipped %s", exc)
            skipped.append(str(exc))
    metric = analyzer.encoder.distance
    kept = [p for p in pairs if p.a in shots and p.b in shots]
    d = np.array([distance(shots[p.a].embedding, shots[p.b].embedding, metric) for p in kept], np.float64)
    same = np.array([p.same for p in kept], bool)
    return d[same], d[~same], tuple(skipped)
