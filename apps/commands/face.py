"""`edgepipe face enroll|verify|identify|list|remove|export|import|calibrate`: the face gallery from the shell."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from edgepipe.apps.commands.common import (
    add_face_model_args,
    add_gallery_args,
    add_sample_args,
    emit,
    face_models,
    finite,
    gallery_errors,
)
from edgepipe.apps.face import service
from edgepipe.apps.face.calibration import FAR, calibrate_gallery
from edgepipe.apps.face.samples import SamplesOptions, write_samples
from edgepipe.apps.face.siamese import MIN_PROBABILITY
from edgepipe.apps.options import ModelOptions
from edgepipe.postprocess.embeddings import UNKNOWN


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("face", help="the face gallery: enroll, verify, identify, list, remove, export, import, "
                       "calibrate; sample photos to try them on", description="Enroll people in a face gallery (an "
                       "SQLite file or a PostgreSQL database), verify (1:1) or identify (1:K) a face, manage the "
                       "gallery, calibrate its decision threshold, and write sample photos to try it all on.")
    face = p.add_subparsers(dest="face_command", metavar="SUBCOMMAND", required=True)
    q = command(face, "enroll", "enroll a person from photos with exactly one face each, or from a camera",
                run_enroll, models=True)
    q.add_argument("--name", required=True, help="the person's name")
    what = q.add_mutually_exclusive_group(required=True)
    what.add_argument("--images", nargs="+", type=Path, metavar="FILE", help="photos, one face each")
    what.add_argument("--source", help="a camera index (0), video, folder or glob: take --count shots from it")
    q.add_argument("--count", type=int, default=service.SHOTS, help="shots to take from --source (default %(default)s)")
    q = command(face, "verify", "1:1: is the face in the image this enrolled person?", run_verify, models=True,
                threshold=True, epilog="exit codes: 0 a match, 1 no match, 2 bad input (no face or several in the "
                "image, an unknown name, a missing file, a bad option)")
    q.add_argument("--name", required=True, help="the person the face claims to be")
    q.add_argument("--image", type=Path, required=True, help="a photo with one face")
    q.add_argument("--siamese", type=Path, metavar="HEAD.onnx", help="decide by a Siamese head's probability "
                   "(verification as binary classification) instead of the distance threshold")
    q.add_argument("--min-probability", type=float, default=MIN_PROBABILITY,
                   help="with --siamese: accept at this probability or more (default %(default)s)")
    q = command(face, "identify", "1:K: who, among the enrolled, is the face in the image?", run_identify,
                models=True, threshold=True, epilog="exit codes: 0 an enrolled person (named on the output), 1 "
                "unknown (nobody within the threshold), 2 bad input (no face or several in the image, an empty "
                "gallery, a missing file, a bad option)")
    q.add_argument("--image", type=Path, required=True, help="a photo with one face")
    command(face, "list", "list the enrolled people, the encoder and the threshold", run_list)
    q = command(face, "remove", "remove a person and their embeddings", run_remove)
    q.add_argument("name", metavar="NAME", help="the person to remove")
    q = command(face, "export", "write the gallery to a JSON file (no audit log)", run_export)
    q.add_argument("file", type=Path, metavar="FILE", help="the JSON file to write")
    q = command(face, "import", "add the people of an exported JSON file", run_import)
    q.add_argument("file", type=Path, metavar="FILE", help="a JSON file written by `edgepipe face export`")
    q.add_argument("--replace", action="store_true", help="replace people already in the gallery")
    q = command(face, "calibrate", "choose the gallery's threshold for a false-accept rate from labeled images",
                run_calibrate, models=True)
    what = q.add_mutually_exclusive_group(required=True)
    what.add_argument("--pairs", type=Path, metavar="FILE",
                      help="lines 'IMAGE_A IMAGE_B same|different' (paths relative to the file's folder)")
    what.add_argument("--dataset", type=Path, metavar="DIR", help="one sub-folder of images per person")
    q.add_argument("--far", type=finite, default=FAR,
                   help="target false-accept rate (default %(default)s)")
    q.add_argument("--roc", type=Path, metavar="PNG", help="write the ROC curve to this .png")
    q.add_argument("--quiet", dest="progress", action="store_false", help="no progress bar")
    add_samples_parser(face)


def add_samples_parser(face: argparse._SubParsersAction) -> None:
    q = face.add_parser("samples", help="write generated people to try the face commands and the kiosk on",
                        description="Write photos of generated people into DIR (several photos of each person to "
                        "enroll, door photos to verify or identify, unknown people, held-out people to calibrate "
                        "on) and a kiosk clip with its truth; each photo is checked to enroll with the face models "
                        "given. Then print the commands to try next.")
    q.add_argument("dir", type=Path, metavar="DIR", help="the folder to write (created; no file is written over)")
    add_sample_args(q)
    q.add_argument("--calibration-people", type=int, default=SamplesOptions.calibration_people,
                   help="held-out people to calibrate the threshold on (default %(default)s)")
    q.add_argument("--no-video", dest="video", action="store_false", help="no kiosk clip")
    q.add_argument("--quiet", dest="progress", action="store_false", help="no progress bar")
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    add_face_model_args(q, shipped=True)
    q.set_defaults(func=run_samples)


def command(face: argparse._SubParsersAction, name: str, text: str, func: Callable[[argparse.Namespace], int],
            models: bool = False, threshold: bool = False, epilog: str | None = None) -> argparse.ArgumentParser:
    """A face subcommand with the common options (and the models' options when it runs them); epilog: its exit
    codes where they answer a question."""
    description = text[0].upper() + text[1:] + ("" if text.endswith("?") else ".")
    q = face.add_parser(name, help=text, description=description, epilog=epilog)
    add_gallery_args(q, reencode=models, threshold=threshold)
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.set_defaults(func=gallery_errors(func))
    if models:
        add_face_model_args(q)
    return q


def run_enroll(args: argparse.Namespace) -> int:
    result = service.enroll(args.name, face_models(args), args.gallery, args.images or (), args.source or "",
                            args.count, args.reencode)
    for reason in result.refused:
        print(f"edgepipe face enroll: refused {reason}", file=sys.stderr)
    emit(result, args.json)
    return 2 if result.refused or not result.enrolled else 0


def run_verify(args: argparse.Namespace) -> int:
    siamese = ModelOptions(args.siamese, args.encoder_provider, args.encoder_allow_fallback) if args.siamese else None
    verdict = service.verify_face(args.name, args.image, face_models(args), args.gallery, args.threshold,
                                  args.reencode, siamese, args.min_probability)
    emit(verdict, args.json)
    return 0 if verdict.match else 1


def run_identify(args: argparse.Namespace) -> int:
    identity = service.identify_face(args.image, face_models(args), args.gallery, args.threshold, args.reencode)
    emit(identity, args.json)
    return 1 if identity.name == UNKNOWN else 0


def run_list(args: argparse.Namespace) -> int:
    emit(service.list_gallery(args.gallery), args.json)
    return 0


def run_remove(args: argparse.Namespace) -> int:
    emit(service.remove_person(args.name, args.gallery), args.json)
    return 0


def run_export(args: argparse.Namespace) -> int:
    emit(service.export_gallery(args.file, args.gallery), args.json)
    return 0


def run_import(args: argparse.Namespace) -> int:
    emit(service.import_gallery(args.file, args.gallery, args.replace), args.json)
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    emit(calibrate_gallery(face_models(args), args.gallery, args.pairs, args.dataset, args.far, args.roc,
                           args.reencode, args.progress), args.json)
    return 0


def run_samples(args: argparse.Namespace) -> int:
    emit(write_samples(SamplesOptions(args.dir, face_models(args), args.people, args.photos, args.unknown,
                                      args.calibration_people, args.video, args.fps, args.seed, args.progress)),
         args.json)
    return 0
